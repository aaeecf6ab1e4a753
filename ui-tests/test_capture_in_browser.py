"""Capture, end to end: cells run in a real JupyterLab are what the cellops API reports.

Each test drives the UI as a person does (menus, dialogs, typing, Shift+Enter) and then
asks the REST API (the writer is asynchronous: the API is polled with ``wait_for``).
"""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import expect

from tests.support import JupyterServer


def runs_of(server: JupyterServer, notebook: str, count: int) -> list[dict[str, Any]]:
    """The notebook's runs (newest first), once there are ``count`` of them."""
    body = server.api.wait_for("runs", lambda b: len(b["items"]) >= count, notebook=notebook)
    return body["items"]


def executions_of(server: JupyterServer, run_id: int, count: int) -> list[dict[str, Any]]:
    """A run's executions (in order), once ``count`` of them have finished."""
    body = server.api.wait_for(
        f"runs/{run_id}/executions",
        lambda b: len(b["items"]) >= count and all(e["status"] != "running" for e in b["items"]),
    )
    return body["items"]


def stdout(execution: dict[str, Any]) -> str:
    return "".join(
        o["text"]
        for o in execution["outputs"]
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )


def test_cells_run_in_the_ui_are_recorded(lab: Any, jupyter: JupyterServer) -> None:
    path = lab.new_notebook()
    lab.run_cell(0, "x = 41", 1)
    lab.run_cell(1, "print(x + 1)", 2)
    lab.run_cell(2, "raise ValueError('boom')", 3)
    expect(lab.output(1)).to_have_text("42")
    expect(lab.output(2)).to_contain_text("ValueError: boom")
    lab.screenshot("three-cells-run")
    ids = lab.cell_ids()[:3]

    (run,) = runs_of(jupyter, path, 1)
    assert run["notebook"] == path
    assert run["kernel_spec"]["name"] == "python3"
    assert run["ended_at"] is None
    ok, printed, failed = executions_of(jupyter, run["id"], 3)
    assert [e["seq"] for e in (ok, printed, failed)] == [1, 2, 3]
    assert [e["code"] for e in (ok, printed, failed)] == [
        "x = 41",
        "print(x + 1)",
        "raise ValueError('boom')",
    ]
    assert [e["status"] for e in (ok, printed, failed)] == ["ok", "ok", "error"]
    assert [e["execution_count"] for e in (ok, printed, failed)] == [1, 2, 3]
    assert stdout(printed) == "42\n"
    assert failed["error"]["ename"] == "ValueError" and failed["error"]["evalue"] == "boom"
    assert any("ValueError" in line for line in failed["error"]["traceback"])
    # The cell ids JupyterLab gave those cells, not ids cellops made up.
    assert [e["cell_id"] for e in (ok, printed, failed)] == ids
    assert len(set(ids)) == 3 and all(ids)


def test_editing_a_cell_makes_a_new_version_with_its_diff(lab: Any, jupyter: JupyterServer) -> None:
    path = lab.new_notebook()
    lab.run_cell(0, "x = 41", 1)
    lab.run_cell(1, "print(x + 1)", 2)
    first_id = lab.cell_ids()[0]
    before = jupyter.api.wait_for("versions", lambda b: len(b["items"]) == 2, notebook=path)[
        "items"
    ][0]

    lab.run_cell(0, "x = 100", 3, replace=True)
    assert lab.sources()[:2] == ["x = 100", "print(x + 1)"]
    lab.screenshot("first-cell-edited-and-rerun")

    versions = jupyter.api.wait_for("versions", lambda b: len(b["items"]) == 3, notebook=path)[
        "items"
    ]
    after = versions[0]
    assert [v["number"] for v in versions] == [
        before["number"] + 1,
        before["number"],
        before["number"] - 1,
    ]
    assert after["cells"] == 2
    diff = jupyter.api.cellops(f"versions/{before['id']}/diff/{after['id']}")
    assert diff["added"] == [] and diff["removed"] == [] and diff["unchanged"] == 1
    (changed,) = diff["changed"]
    assert changed["cell_id"] == first_id
    assert (changed["old"], changed["new"]) == ("x = 41", "x = 100")
    assert {"op": "delete", "text": "x = 41"} in changed["lines"]
    assert {"op": "insert", "text": "x = 100"} in changed["lines"]
    assert all(line["op"] != "equal" for line in changed["lines"])
    # The rerun execution points at the version it made.
    (run,) = runs_of(jupyter, path, 1)
    rerun = executions_of(jupyter, run["id"], 3)[-1]
    assert (rerun["code"], rerun["cell_id"], rerun["version"]) == (
        "x = 100",
        first_id,
        after["number"],
    )


def test_restarting_the_kernel_starts_a_new_run(lab: Any, jupyter: JupyterServer) -> None:
    path = lab.new_notebook()
    lab.run_cell(0, "x = 41", 1)
    (first,) = runs_of(jupyter, path, 1)
    executions_of(jupyter, first["id"], 1)

    lab.restart_kernel()
    # Execution count 1 again: the cell ran in the new kernel process.
    lab.run_cell(1, "print('after restart')", 1)
    expect(lab.output(1)).to_have_text("after restart")
    lab.screenshot("after-restart")

    newest, older = runs_of(jupyter, path, 2)
    assert older["id"] == first["id"]
    assert newest["id"] != first["id"]
    assert newest["kernel_id"] == older["kernel_id"]  # same kernel, new process
    assert newest["started_at"] >= older["started_at"]
    (after,) = executions_of(jupyter, newest["id"], 1)
    assert (after["code"], after["status"], after["execution_count"], after["seq"]) == (
        "print('after restart')",
        "ok",
        1,
        1,
    )
    assert stdout(after) == "after restart\n"
    assert [e["code"] for e in executions_of(jupyter, older["id"], 1)] == ["x = 41"]
    ended = jupyter.api.wait_for(f"runs/{older['id']}", lambda r: r["ended_at"] is not None)
    assert ended["ended_at"] >= ended["started_at"]


def test_history_outlives_the_browser_tab(lab: Any, jupyter: JupyterServer) -> None:
    path = lab.new_notebook()
    lab.run_cell(0, "x = 41", 1)
    lab.run_cell(1, "print(x + 1)", 2)
    ids = lab.cell_ids()[:2]
    assert lab.save() == path
    lab.screenshot("saved-before-closing")
    lab.page.close()

    # Nobody has the notebook open: the history is still there, the run still going.
    (run,) = runs_of(jupyter, path, 1)
    assert run["ended_at"] is None
    recorded = executions_of(jupyter, run["id"], 2)
    assert [(e["cell_id"], e["code"], e["status"]) for e in recorded] == [
        (ids[0], "x = 41", "ok"),
        (ids[1], "print(x + 1)", "ok"),
    ]

    # Open the notebook again in a new tab: same kernel, same run, recording goes on.
    lab.open(path, page=lab.page.context.new_page())
    lab.wait_for_kernel()
    assert lab.cell_ids()[:2] == ids
    expect(lab.output(1)).to_have_text("42")
    lab.run_cell(2, "print(x * 2)", 3)
    expect(lab.output(2)).to_have_text("82")  # x survived: the kernel kept running
    lab.screenshot("reopened-and-run")

    assert [r["id"] for r in runs_of(jupyter, path, 1)] == [run["id"]]
    # The reply (shell) may be recorded before the printed line (iopub), which is added to
    # the execution when the kernel goes idle: wait for it rather than read in between.
    executions = jupyter.api.wait_for(
        f"runs/{run['id']}/executions",
        lambda b: len(b["items"]) >= 3 and stdout(b["items"][2]) != "",
    )["items"]
    assert [e["code"] for e in executions] == ["x = 41", "print(x + 1)", "print(x * 2)"]
    assert [e["seq"] for e in executions] == [1, 2, 3]
    assert [e["status"] for e in executions] == ["ok"] * 3
    assert stdout(executions[2]) == "82\n"


def test_cell_running_when_the_tab_closes_is_recorded_to_the_end(
    lab: Any, jupyter: JupyterServer
) -> None:
    path = lab.new_notebook()
    code = "import time\nprint('start', flush=True)\ntime.sleep(2)\nprint('done')"
    editor = lab.cells.nth(0).locator(".cm-content")
    editor.click()
    lab.page.keyboard.type(code)
    lab.page.keyboard.press("Shift+Enter")
    expect(lab.output(0)).to_have_text("start")  # the cell is running
    lab.screenshot("running-before-closing")
    kernel_id = lab.kernel_id()
    lab.page.close()

    # The kernel finishes the cell with nobody connected (Jupyter's own activity watcher
    # follows the kernel without a browser).
    deadline = time.monotonic() + 20
    while jupyter.api.get(f"api/kernels/{kernel_id}")["execution_state"] != "idle":
        assert time.monotonic() < deadline, "the kernel never finished the cell"
        time.sleep(0.1)
    (run,) = runs_of(jupyter, path, 1)
    body = jupyter.api.wait_for(
        f"runs/{run['id']}/executions", lambda b: b["items"][0]["status"] != "running", timeout=4
    )
    (execution,) = body["items"]
    assert execution["status"] == "ok"
    assert stdout(execution) == "start\ndone\n"


def test_executions_after_a_rename_are_filed_under_the_new_name(
    lab: Any, jupyter: JupyterServer
) -> None:
    old = lab.new_notebook()
    lab.run_cell(0, "x = 41", 1)
    new = lab.save(rename_to=f"renamed-{lab.kernel_id()[:8]}.ipynb")
    assert new != old and new.startswith("renamed-")
    expect(lab.page.locator(".lm-DockPanel-tabBar .lm-mod-current")).to_contain_text(new)
    lab.run_cell(1, "print(x + 1)", 2)
    lab.screenshot("renamed-and-run")

    def recorded(notebooks: dict[str, Any]) -> int:
        return sum(n["executions"] for n in notebooks["items"] if n["path"] in (old, new))

    jupyter.api.wait_for("notebooks", lambda b: recorded(b) >= 2)  # both executions are written
    r = jupyter.api.request("GET", "cellops/api/v1/runs", params={"notebook": new})
    assert r.status_code == 200, f"no history under {new}: {r.status_code} {r.text}"
    run = r.json()["items"][0]
    codes = [e["code"] for e in executions_of(jupyter, run["id"], 2)]
    assert codes == ["x = 41", "print(x + 1)"]  # the history followed the file
    assert jupyter.api.cellops("runs", notebook=old)["items"] == []  # nothing left behind
