"""The tracking settings in a real JupyterLab: the server is their one source of truth.

The settings editor shows the server's values when a page loads and live when they change
elsewhere; a change in the editor reaches the server; a value stored under the old key
(`maxOutputSize`) is moved to `max_output_size`; a kernel cut off from the team backend
says so in the status bar, not in the notebook.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BENIGN_CONSOLE_ERRORS, ConsoleWatcher, Lab
from playwright.sync_api import Browser, BrowserContext, Locator, expect

from tests.support import JupyterServer, free_port

API = "cellops/api/v1"
PLUGIN = "cellops:plugin"
SCHEMA = json.loads((Path(__file__).parents[1] / "extension/schema/plugin.json").read_text())


def lab_server(tmp: Path, legacy: dict[str, Any] | None = None, **env: str) -> JupyterServer:
    """A `jupyter lab` of this module's own, so its settings start (and end) as a test says."""
    settings = tmp / "lab-settings"
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    if legacy is not None:  # what an older cellops left in the user's settings
        (settings / "cellops").mkdir()
        (settings / "cellops" / "plugin.jupyterlab-settings").write_text(json.dumps(legacy))
    return JupyterServer(
        tmp,
        app="lab",
        env={
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
            **env,
        },
        extra_args=["--LabApp.expose_app_in_browser=True"],
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    srv = lab_server(tmp_path_factory.mktemp("settings-lab"), legacy={"maxOutputSize": 500})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    watcher = ConsoleWatcher(ctx)
    yield ctx
    ctx.close()
    watcher.check("the test ran")


def open_lab(context: BrowserContext, server: JupyterServer, name: str) -> Lab:
    page = context.new_page()
    page.goto(f"{server.url}/lab?token={server.token}", wait_until="domcontentloaded")
    lab = Lab(page, server, name)
    lab.open()
    return lab


def wait_stored(lab: Lab, wanted: dict[str, Any]) -> None:
    """Until the user's cellops settings, as JupyterLab stored them, are ``wanted``."""
    lab.page.wait_for_function(
        """([id, wanted]) => {
            const canon = o => JSON.stringify(Object.keys(o).sort().map(k => [k, o[k]]));
            return window.jupyterapp.serviceManager.settings.fetch(id)
                .then(p => canon(p.settings ?? {}) === canon(wanted));
        }""",
        arg=[PLUGIN, wanted],
        polling=250,
    )


def open_editor(lab: Lab) -> Locator:
    """Settings → Settings Editor, on cellops; answers cellops' form."""
    lab.command("settingeditor:open", {"query": "cellops"})
    # The editor loads every plugin's schema first: slow on a busy machine.
    entry = lab.page.locator(".jp-PluginList-entry", has_text="cellops").first
    expect(entry).to_be_visible(timeout=60_000)
    entry.click()
    form = lab.page.locator(".jp-SettingsForm", has_text="Record executed cells")
    expect(form).to_be_visible()
    return form


def test_the_server_wins_at_load_and_an_old_key_is_migrated(
    context: BrowserContext, server: JupyterServer
) -> None:
    # Changed through the API while no page was open; the registry still holds the old key.
    wanted = {"tracking": True, "exclude": ["scratch/*"], "max_output_size": 500}
    assert server.api.request("PUT", f"{API}/settings", json=wanted).status_code == 200
    lab = open_lab(context, server, "settings-load")
    # Defaults are left out of the stored file, as the settings editor does.
    wait_stored(lab, {"exclude": ["scratch/*"], "max_output_size": 500})
    assert server.api.cellops("settings") == wanted  # nothing was pushed back over it

    form = open_editor(lab)
    expect(form.get_by_role("spinbutton")).to_have_value("500")
    lab.screenshot("editor")
    # Each description shows once: the plugin's, and each setting's (an array's description
    # would show twice in JupyterLab's form, so `exclude` says it in its title).
    panel = lab.page.locator(".jp-SettingsPanel")
    settings = SCHEMA["properties"].values()
    texts = [SCHEMA["description"]] + [p["description"] for p in settings if "description" in p]
    for text in texts:
        expect(panel.get_by_text(text, exact=True).filter(visible=True)).to_have_count(1)
    title = SCHEMA["properties"]["exclude"]["title"]
    expect(panel.get_by_text(title, exact=True).filter(visible=True)).to_have_count(1)


def test_the_editor_and_the_api_stay_in_step_without_loops(
    context: BrowserContext, server: JupyterServer
) -> None:
    lab = open_lab(context, server, "settings-sync")
    form = open_editor(lab)
    before = server.api.cellops("events")["last"]

    # The settings editor → the server.
    size = form.get_by_role("spinbutton")
    size.fill("2000")
    size.press("Tab")
    server.api.wait_for("settings", lambda s: s["max_output_size"] == 2000)

    # The API → this open page, live (and into its form).
    live = {"tracking": False, "exclude": ["live/*"], "max_output_size": 2000}
    assert server.api.request("PUT", f"{API}/settings", json=live).status_code == 200
    wait_stored(lab, {"exclude": ["live/*"], "max_output_size": 2000, "tracking": False})
    expect(form.get_by_label(SCHEMA["properties"]["tracking"]["title"])).not_to_be_checked()
    status = lab.page.locator(".cellops-status-item")
    expect(status).to_have_attribute("data-state", "off")
    lab.screenshot("live")

    # Exactly two changes were announced, and nothing echoes back afterwards.
    seq = before
    kinds: list[str] = []
    while events := server.api.cellops("events", after=seq, timeout=3)["events"]:
        kinds += [e["type"] for e in events]
        seq = events[-1]["seq"]
    assert kinds.count("settings") == 2, kinds
    assert server.api.cellops("settings") == live


@pytest.fixture(scope="module")
def cut_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A team member's JupyterLab whose team backend does not answer."""
    srv = lab_server(
        tmp_path_factory.mktemp("cut-off-lab"),
        CELLOPS_BACKEND_URL=f"http://127.0.0.1:{free_port()}",
        CELLOPS_TOKEN="member-token",
    )
    srv.start()
    yield srv
    srv.stop()


# The member's server answers the panel's requests with 502 while the backend is away, and
# Chromium logs each as "Failed to load resource"; that message, only here, is expected.
BACKEND_DOWN = re.compile(r"Failed to load resource: the server responded with a status of 502")


def test_backend_down_shows_in_the_status_bar_not_in_the_notebook(
    context: BrowserContext, cut_off: JupyterServer
) -> None:
    BENIGN_CONSOLE_ERRORS.append(BACKEND_DOWN)
    try:
        lab = open_lab(context, cut_off, "backend-down")
        path = lab.new_notebook()
        lab.run_cell(0, "import cellops\ncellops.log_metrics({'accuracy': 0.9})", 1)
        status = lab.page.locator(".cellops-status-item")
        expect(status).to_have_text(
            re.compile(r"cellops: backend unreachable, \d+ records? waiting"), timeout=30_000
        )
        answer = cut_off.api.wait_for("status", lambda s: s["kernel_pending"] >= 1)
        expect(status).to_have_attribute("title", re.compile("records? (is|are) waiting"))
        assert "unreachable" in (answer["kernel_error"] or ""), answer
        lab.run_cell(1, "cellops.log_params({'C': 1})", 2)
        lab.screenshot("status-bar")
        path = lab.save()
        saved = json.loads((cut_off.root / path).read_text())
        code = [c for c in saved["cells"] if c["cell_type"] == "code"]
        assert [c["outputs"] for c in code[:2]] == [[], []], json.dumps(code)
    finally:
        BENIGN_CONSOLE_ERRORS.remove(BACKEND_DOWN)
