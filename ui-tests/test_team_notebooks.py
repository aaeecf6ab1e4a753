"""Issue 10: the Notebooks tab of a team member's JupyterLab.

alice's notebook is recorded into a real `cellops serve`; bob, who does not have it on his
disk, finds it in his sidebar's Notebooks tab, reads its cells read-only, and copies it to
his disk as a new file (a second copy never overwrites the first).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import ConsoleWatcher, Lab
from playwright.sync_api import Browser, BrowserContext, Locator, expect

from tests.support import JupyterServer, TeamBackend

API = "cellops/api/v1"
ALICE_CELLS = [
    ("c1", "import math"),
    ("c2", "def area(r):\n    return math.pi * r ** 2"),
    ("c3", "print(area(2))"),
]


def alice_records(path: str) -> list[dict[str, Any]]:
    """What alice's Jupyter server sends after she ran three cells of ``path``."""
    start = datetime.now(timezone.utc)
    out: list[dict[str, Any]] = [
        {
            "kind": "run",
            "key": f"run-{uuid.uuid4().hex}",
            "notebook": path,
            "kernel_id": "kernel-alice",
            "user": "alice",
            "started_at": start.isoformat(),
            "kernel_spec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "source": "alice-server",
            "instance": "process-1",
        }
    ]
    for seq, (cell, code) in enumerate(ALICE_CELLS, 1):
        at = start + timedelta(milliseconds=seq)
        out.append(
            {
                "kind": "execution",
                "msg_id": f"{out[0]['key']}-{seq}",
                "run_key": out[0]["key"],
                "notebook": path,
                "seq": seq,
                "cell_id": cell,
                "code": code,
                "status": "ok",
                "started_at": at.isoformat(),
                "finished_at": (at + timedelta(microseconds=500)).isoformat(),
                "execution_count": seq,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "12.566\n"}]
                if cell == "c3"
                else [],
            }
        )
    return out


@pytest.fixture(scope="module")
def team_labs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TeamBackend, JupyterServer, str]]:
    """A team backend holding alice's notebook, and bob's JupyterLab forwarding to it."""
    tmp = tmp_path_factory.mktemp("team-notebooks")
    backend = TeamBackend(f"sqlite:///{tmp / 'team.db'}", tmp / "artifacts")
    tokens = {name: backend.add_user(name) for name in ("alice", "bob")}
    backend.start()
    path = "projects/circle.ipynb"
    r = backend.api(tokens["alice"]).request(
        "POST", f"{API}/ingest", json={"records": alice_records(path)}
    )
    assert r.status_code == 200, r.text
    settings = tmp / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    lab = JupyterServer(
        tmp / "bob",
        app="lab",
        env={
            "CELLOPS_BACKEND_URL": backend.url,
            "CELLOPS_TOKEN": tokens["bob"],
            "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        },
        extra_args=["--LabApp.expose_app_in_browser=True"],
    ).start()
    try:
        yield backend, lab, path
    finally:
        lab.stop()
        backend.stop()


@pytest.fixture
def bob(browser: Browser, team_labs: tuple[TeamBackend, JupyterServer, str]) -> Iterator[Lab]:
    _, server, _ = team_labs
    context: BrowserContext = browser.new_context(viewport={"width": 1400, "height": 900})
    watcher = ConsoleWatcher(context)
    page = context.new_page()
    page.goto(f"{server.url}/lab?token={server.token}")
    lab = Lab(page, server, f"team-notebooks-{uuid.uuid4().hex[:6]}")
    lab.open()
    yield lab
    watcher.check("bob browsed the team's notebooks")
    context.close()


def open_notebooks_tab(lab: Lab) -> Locator:
    """The sidebar's Notebooks tab, with no notebook open in JupyterLab."""
    sidebar = lab.open_sidebar()
    lab.sidebar_tab("notebooks")
    tab = sidebar.locator(".cellops-notebooks-tab")
    expect(tab).to_be_visible()
    return tab


def test_bob_reads_alices_notebook_that_is_not_on_his_disk(
    bob: Lab, team_labs: tuple[TeamBackend, JupyterServer, str]
) -> None:
    _, server, path = team_labs
    assert not (server.root / path).exists()
    tab = open_notebooks_tab(bob)
    row = tab.locator(".cellops-notebook-row", has_text=path)
    expect(row.locator(".cellops-notebook-owner")).to_have_text("alice")
    expect(row.locator(".cellops-notebook-runs")).to_have_text("1 run")
    expect(row.locator(".cellops-notebook-activity")).to_contain_text("ago")

    # "Mine only": bob has no notebook of his own; the filter box narrows by path.
    tab.locator(".cellops-notebooks-mine-toggle").check()
    expect(tab.locator(".cellops-notebook-row")).to_have_count(0)
    expect(tab.locator(".cellops-empty")).to_contain_text("No tracked notebook matches")
    tab.locator(".cellops-notebooks-mine-toggle").uncheck()
    tab.locator(".cellops-notebooks-filter").fill("nothing-like-this")
    expect(tab.locator(".cellops-notebook-row")).to_have_count(0)
    tab.locator(".cellops-notebooks-filter").fill("CIRCLE")
    expect(tab.locator(".cellops-notebook-row")).to_have_count(1)
    bob.screenshot("list")

    row.click()
    view = tab.locator(".cellops-notebook-view")
    expect(view.locator(".cellops-notebook-title")).to_have_text(path)
    cells = view.locator(".cellops-notebook-cell")
    expect(cells).to_have_count(3)
    for i, (_, code) in enumerate(ALICE_CELLS):
        expect(cells.nth(i).locator("pre")).to_have_text(code)
    # Highlighted by JupyterLab (keyword spans), and not editable.
    expect(cells.nth(1).locator("pre span").first).to_be_visible()
    expect(view.locator(".cm-editor, [contenteditable='true']")).to_have_count(0)
    expect(cells.nth(2).locator(".cellops-notebook-cell-result")).to_have_text("12.566")
    expect(cells.nth(2).locator(".cellops-notebook-cell-prompt")).to_have_text("[3]")
    bob.screenshot("cells")

    # Its runs, through the existing Runs view: alice's session with 3 executions.
    view.locator(".cellops-notebook-section[data-section='runs']").click()
    run = view.locator(".cellops-run")
    expect(run).to_have_count(1)
    expect(run.locator(".cellops-run-executions")).to_have_text("3")
    run.click()
    expect(view.locator(".cellops-timeline")).to_be_visible()
    bob.screenshot("runs")
    view.locator(".cellops-notebook-section[data-section='versions']").click()
    expect(view.locator(".cellops-versions > li")).to_have_count(3)
    assert not (server.root / path).exists()  # reading never touched bob's disk


def test_copy_to_my_disk_writes_a_new_file_and_never_overwrites(
    bob: Lab, team_labs: tuple[TeamBackend, JupyterServer, str]
) -> None:
    _, server, path = team_labs
    tab = open_notebooks_tab(bob)
    tab.locator(".cellops-notebook-row", has_text=path).click()
    view = tab.locator(".cellops-notebook-view")
    expect(view.locator(".cellops-notebook-cell")).to_have_count(3)
    copied = view.locator(".cellops-notebook-copied")
    names = []
    for expected in ("circle-alice.ipynb", "circle-alice-2.ipynb"):
        view.locator(".cellops-notebook-copy").click()
        expect(copied).to_have_text(f"Copied to {expected}")
        names.append(expected)
    for name in names:
        nb = json.loads((server.root / name).read_text())
        assert ["".join(c["source"]) for c in nb["cells"]] == [c for _, c in ALICE_CELLS]
    # The copy opened in JupyterLab, as a normal notebook bob can edit and run.
    bob.page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget?.context?.path === 'circle-alice-2.ipynb'"
    )
    assert not list(server.root.glob("Untitled*"))  # the temporary name was renamed
    bob.screenshot("copied")


def test_embedded_mode_lists_my_notebooks_even_once_deleted_from_disk(lab: Lab) -> None:
    """Single-user JupyterLab: the tab lists the user's own notebooks, also those that are
    no longer on disk, and opens them read-only."""
    lab.new_notebook()
    path = lab.save(rename_to=f"gone-{uuid.uuid4().hex[:8]}.ipynb")
    lab.run_cell(0, "deleted_later = 41 + 1", 1)
    lab.save()  # clean: closing asks nothing
    lab.command("application:close-all")
    expect(lab.page.locator(".jp-NotebookPanel")).to_have_count(0)
    r = lab.server.api.request("DELETE", f"api/contents/{path}")
    assert r.status_code == 204, r.text
    tab = open_notebooks_tab(lab)
    expect(tab.locator(".cellops-notebooks-mine")).to_be_hidden()  # all of them are mine
    tab.locator(".cellops-notebooks-filter").fill(path)
    row = tab.locator(".cellops-notebook-row", has_text=path)
    expect(row.locator(".cellops-notebook-owner")).to_have_text("yours")
    row.click()
    cell = tab.locator(".cellops-notebook-cell")
    expect(cell).to_have_count(1)
    expect(cell.locator("pre")).to_have_text("deleted_later = 41 + 1")
    lab.screenshot("embedded")
