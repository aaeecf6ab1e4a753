"""Capture through a real Jupyter server, real kernels and real websockets (both protocols)."""

from __future__ import annotations

import ast
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support import V1, JupyterServer

TINY_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    tmp = tmp_path_factory.mktemp("capture")
    root = tmp / "root"
    root.mkdir()
    git = ["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (root / "README.md").write_text("data\n")
    subprocess.run([*git, "add", "README.md"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    srv = JupyterServer(tmp, extra_args=["--CellopsConfig.max_output_text=50"]).start()
    yield srv
    srv.stop()


def executions_of(server: JupyterServer, notebook: str, count: int) -> list[dict[str, Any]]:
    runs = server.api.wait_for("runs", lambda b: b["items"], notebook=notebook)["items"]
    body = server.api.wait_for(
        f"runs/{runs[0]['id']}/executions",
        lambda b: len(b["items"]) >= count and all(e["status"] != "running" for e in b["items"]),
    )
    return body["items"]


@pytest.mark.parametrize("protocol", [V1, "legacy"])
def test_cells_run_over_the_websocket_are_recorded(server: JupyterServer, protocol: str) -> None:
    notebook = f"work/{protocol[:2]}.ipynb"
    client = server.connect(server.new_session(notebook), protocol)
    client.execute("x = 21\nprint('hello')\nx * 2", cell_id="c-ok")
    client.execute("raise ValueError('bad value')", cell_id="c-err")
    client.execute(
        f"import base64\nfrom IPython.display import Image, display\ndisplay(Image(data=base64.b64decode('{TINY_PNG}')))",
        cell_id="c-img",
    )
    client.execute("print('y' * 500)", cell_id="c-long")
    client.close()

    ok, err, img, long = executions_of(server, notebook, 4)
    assert [e["seq"] for e in (ok, err, img, long)] == [1, 2, 3, 4]
    assert (ok["cell_id"], ok["code"], ok["status"], ok["execution_count"]) == (
        "c-ok",
        "x = 21\nprint('hello')\nx * 2",
        "ok",
        1,
    )
    assert ok["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": "hello\n"},
        {"output_type": "execute_result", "data": {"text/plain": "42"}, "execution_count": 1},
    ]
    assert ok["duration_ms"] > 0 and ok["finished_at"] >= ok["started_at"]
    assert err["status"] == "error"
    assert (err["error"]["ename"], err["error"]["evalue"]) == ("ValueError", "bad value")
    assert any("ValueError" in line for line in err["error"]["traceback"])
    blob = img["outputs"][0]["data"]["image/png"]["blob"]
    r = server.api.request("GET", f"cellops/api/v1/blobs/{blob}")
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    text = long["outputs"][0]["text"]
    assert text.startswith("y" * 50) and "not stored" in text and len(text) < 120  # cut at 50


def test_run_records_user_kernel_and_git_state(server: JupyterServer) -> None:
    client = server.connect(server.new_session("meta.ipynb"))
    client.execute("1", cell_id="c1")
    client.close()
    run = server.api.wait_for(
        "runs", lambda b: b["items"] and b["items"][0]["git"], notebook="meta.ipynb"
    )["items"][0]
    head = subprocess.run(
        ["git", "-C", str(server.root), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    assert run["git"] == {"commit": head.stdout.strip(), "branch": "main", "dirty": False}
    assert run["kernel_spec"]["name"] == "python3" and run["kernel_spec"]["language"] == "python"
    assert run["user"]  # the Jupyter identity of the token's user
    assert run["ended_at"] is None


def test_restart_starts_a_second_run(server: JupyterServer) -> None:
    kernel = server.new_session("restart.ipynb")
    client = server.connect(kernel)
    client.execute("a = 1", cell_id="c1")
    server.restart(kernel)
    client.close()
    client = server.connect(kernel)  # JupyterLab reconnects after a restart, too
    client.execute("b = 2", cell_id="c2")
    client.close()

    runs = server.api.wait_for("runs", lambda b: len(b["items"]) == 2, notebook="restart.ipynb")[
        "items"
    ]
    newest, first = runs
    executions_of(server, "restart.ipynb", 1)  # the newest run's execution has finished
    assert first["ended_at"] is not None and newest["ended_at"] is None
    assert first["kernel_id"] == newest["kernel_id"] == kernel
    codes = [
        [e["code"] for e in server.api.cellops(f"runs/{r['id']}/executions")["items"]]
        for r in (first, newest)
    ]
    assert codes == [["a = 1"], ["b = 2"]]
    assert server.api.cellops(f"runs/{newest['id']}/executions")["items"][0]["execution_count"] == 1


def test_two_tabs_on_one_kernel_record_each_execution_once(server: JupyterServer) -> None:
    kernel = server.new_session("tabs.ipynb")
    tab1, tab2 = server.connect(kernel), server.connect(kernel)
    tab1.execute("print('from tab 1')", cell_id="t1")
    tab2.execute("print('from tab 2')", cell_id="t2")
    tab1.execute("print('tab 1 again')", cell_id="t1")
    time.sleep(0.5)
    tab1.close()
    tab2.close()
    items = executions_of(server, "tabs.ipynb", 3)
    assert [(e["cell_id"], e["outputs"][0]["text"]) for e in items] == [
        ("t1", "from tab 1\n"),
        ("t2", "from tab 2\n"),
        ("t1", "tab 1 again\n"),
    ]
    assert len({e["msg_id"] for e in items}) == 3


def test_silent_requests_are_not_recorded(server: JupyterServer) -> None:
    client = server.connect(server.new_session("silent.ipynb"))
    client.execute("secret = 1", cell_id="s", silent=True)
    client.execute("visible = 2", cell_id="v")
    client.close()
    assert [e["code"] for e in executions_of(server, "silent.ipynb", 1)] == ["visible = 2"]


def test_interrupted_and_skipped_executions_end_aborted(server: JupyterServer) -> None:
    kernel = server.new_session("interrupt.ipynb")
    client = server.connect(kernel)
    slow = client.send_execute("import time\ntime.sleep(30)", cell_id="slow")
    queued = client.send_execute("print('never runs')", cell_id="queued")
    time.sleep(1.5)
    r = server.api.request("POST", f"api/kernels/{kernel}/interrupt")
    assert r.status_code == 204
    assert client.wait(slow)["reply"]["status"] == "error"
    assert client.wait(queued)["reply"]["status"] == "aborted"
    client.close()
    items = executions_of(server, "interrupt.ipynb", 2)
    assert [(e["cell_id"], e["status"]) for e in items] == [
        ("slow", "aborted"),
        ("queued", "aborted"),
    ]
    assert items[0]["error"]["ename"] == "KeyboardInterrupt"


def test_versions_diff_and_restore_over_the_api(server: JupyterServer, tmp_path: Path) -> None:
    notebook = "versions/model.ipynb"
    client = server.connect(server.new_session(notebook))
    client.execute("lr = 0.1", cell_id="params")
    client.execute("score = lr * 2", cell_id="train")
    client.execute("lr = 0.01\nepochs = 5", cell_id="params")
    client.execute("print(score)", cell_id="report", deleted=["train"])
    client.close()
    versions = server.api.wait_for("versions", lambda b: len(b["items"]) == 4, notebook=notebook)[
        "items"
    ]
    assert [v["number"] for v in versions] == [4, 3, 2, 1]

    v2, v3 = versions[2], versions[1]
    nb = server.api.cellops(f"versions/{v3['id']}")
    assert [(c["id"], c["source"]) for c in nb["cells"]] == [
        ("params", "lr = 0.01\nepochs = 5"),
        ("train", "score = lr * 2"),
    ]
    diff = server.api.cellops(f"versions/{v2['id']}/diff/{v3['id']}")
    (change,) = diff["changed"]
    assert change["cell_id"] == "params"
    assert [(line["op"], line["text"]) for line in change["lines"]] == [
        ("delete", "lr = 0.1"),
        ("insert", "lr = 0.01"),
        ("insert", "epochs = 5"),
    ]
    diff = server.api.cellops(f"versions/{v3['id']}/diff/{versions[0]['id']}")
    assert ([c["cell_id"] for c in diff["added"]], [c["cell_id"] for c in diff["removed"]]) == (
        ["report"],
        ["train"],
    )

    r = server.api.request("POST", f"cellops/api/v1/versions/{v2['id']}/restore", json={})
    assert r.status_code == 201, r.text
    path = r.json()["path"]
    assert path == "versions/model-v2.ipynb"
    import nbformat

    restored = nbformat.read(server.root / path, as_version=4)
    nbformat.validate(restored)
    assert [c.source for c in restored.cells] == ["lr = 0.1", "score = lr * 2"]
    again = server.api.request("POST", f"cellops/api/v1/versions/{v2['id']}/restore", json={})
    assert again.json()["path"] == "versions/model-v2-2.ipynb"  # never overwrites


def test_a_store_that_is_down_at_start_gets_everything_when_it_returns(tmp_path: Path) -> None:
    """Embedded mode on PostgreSQL: cells run while the database does not exist yet;
    records wait in the spool and arrive, in order, once it does."""
    import uuid

    import psycopg

    from .postgres import PG_ADMIN, require_postgres

    require_postgres()
    name = f"cellops_late_{uuid.uuid4().hex[:10]}"
    url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    server = JupyterServer(tmp_path, env={"CELLOPS_DB_URL": url}).start()
    try:
        client = server.connect(server.new_session("late.ipynb"))
        for i in range(3):
            assert client.execute(f"step = {i}", cell_id=f"c{i}")["reply"]["status"] == "ok"
        client.close()
        status = server.api.wait_for("status", lambda s: s["last_error"] and s["spool_pending"] > 0)
        assert status["mode"] == "embedded"
        r = server.api.request("GET", "cellops/api/v1/notebooks")
        assert r.status_code == 503 and "unavailable" in r.json()["error"]

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        server.api.wait_for(
            "status", lambda s: s["spool_pending"] == 0 and s["last_error"] is None, timeout=30
        )
        items = executions_of(server, "late.ipynb", 3)
        assert [e["code"] for e in items] == ["step = 0", "step = 1", "step = 2"]
    finally:
        server.stop()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize(
    ("code", "status", "text"),
    [
        (
            "import time\nprint('start', flush=True)\ntime.sleep(2)\nprint('end')",
            "ok",
            "start\nend\n",
        ),
        ("import time\ntime.sleep(2)\nraise KeyError('late')", "error", None),
    ],
)
def test_a_cell_still_running_when_the_browser_leaves_is_recorded_to_its_end(
    server: JupyterServer, code: str, status: str, text: str | None
) -> None:
    notebook = f"leaving-{status}.ipynb"
    kernel = server.new_session(notebook)
    client = server.connect(kernel)
    client.send_execute(code, cell_id="long")
    time.sleep(0.8)
    client.close()  # the tab closes; the kernel carries on

    run = server.api.wait_for("runs", lambda b: b["items"], notebook=notebook)["items"][0]
    body = server.api.wait_for(
        f"runs/{run['id']}/executions",
        lambda b: b["items"] and b["items"][0]["status"] != "running",
        timeout=30,
    )
    (e,) = body["items"]
    assert e["status"] == status
    assert e["execution_count"] == 1 and e["finished_at"] and e["duration_ms"] >= 1500
    if text is not None:
        assert e["outputs"] == [{"output_type": "stream", "name": "stdout", "text": text}]
    else:
        assert e["error"]["ename"] == "KeyError"


def test_renaming_a_notebook_moves_its_history(server: JupyterServer) -> None:
    server.new_session("draft.ipynb")  # the session's kernel
    (server.root / "draft.ipynb").write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    sessions = server.api.get("api/sessions")
    session = next(s for s in sessions if s["path"] == "draft.ipynb")
    client = server.connect(session["kernel"]["id"])
    client.execute("before = 1", cell_id="c1")

    # What JupyterLab does on rename: move the file, then point the session at it.
    r = server.api.request("PATCH", "api/contents/draft.ipynb", json={"path": "final.ipynb"})
    assert r.status_code == 200, r.text
    r = server.api.request("PATCH", f"api/sessions/{session['id']}", json={"path": "final.ipynb"})
    assert r.status_code == 200, r.text
    client.execute("after = 2", cell_id="c2")
    client.close()

    runs = server.api.wait_for(
        "runs", lambda b: b["items"] and b["items"][0]["executions"] == 2, notebook="final.ipynb"
    )["items"]
    assert len(runs) == 1
    codes = [e["code"] for e in server.api.cellops(f"runs/{runs[0]['id']}/executions")["items"]]
    assert codes == ["before = 1", "after = 2"]
    assert [
        v["number"] for v in server.api.cellops("versions", notebook="final.ipynb")["items"]
    ] == [2, 1]
    assert server.api.cellops("runs", notebook="draft.ipynb")["items"] == []


def test_the_writer_runs_in_its_own_process_and_is_restarted_if_it_dies(
    server: JupyterServer,
) -> None:
    """Validation and database writes never share the Jupyter server's GIL; a crashed
    writer costs a moment, not a record."""
    import os
    import signal

    def writer_pids() -> list[int]:
        found = subprocess.run(
            ["pgrep", "-f", f"cellops_server.writer --spool {server.home}"],
            capture_output=True,
            text=True,
        )
        return [int(p) for p in found.stdout.split()]

    (pid,) = writer_pids()
    assert pid != server.proc.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGKILL)
    client = server.connect(server.new_session("after-crash.ipynb"))
    client.execute("still = 'recorded'", cell_id="c1")
    client.close()
    assert [e["code"] for e in executions_of(server, "after-crash.ipynb", 1)] == [
        "still = 'recorded'"
    ]
    (new_pid,) = writer_pids()
    assert new_pid != pid


def test_a_cell_ending_as_the_browser_leaves_is_never_left_running(server: JupyterServer) -> None:
    """Whether its end reaches the closing tab, cellops' late subscription, or neither
    (then the kernel going idle settles it), the execution ends."""
    kernel = server.new_session("closing-race.ipynb")
    for i in range(3):
        client = server.connect(kernel)
        client.send_execute(f"import time; time.sleep(0.{i}); r = {i}", cell_id=f"c{i}")
        client.close()  # no wait for the reply
    run = server.api.wait_for("runs", lambda b: b["items"], notebook="closing-race.ipynb")["items"][
        0
    ]
    body = server.api.wait_for(
        f"runs/{run['id']}/executions",
        lambda b: len(b["items"]) == 3 and all(e["status"] != "running" for e in b["items"]),
        timeout=30,
    )
    assert [e["cell_id"] for e in body["items"]] == ["c0", "c1", "c2"]
    # Each is recorded as it went: ok if the kernel ran it. A request whose socket closed
    # before jupyter_server passed it on never reached the kernel: aborted (seen under load).
    client = server.connect(kernel)
    history = ast.literal_eval(
        client.execute("print(repr(In))", cell_id="c3")["outputs"][0]["text"]
    )
    client.close()
    assert [e["status"] for e in body["items"]] == [
        "ok" if e["code"] in history else "aborted" for e in body["items"]
    ]


def test_kernels_are_told_where_their_server_is(server: JupyterServer) -> None:
    """`import cellops` in a kernel needs no setup: the kernel's environment names this
    server and its token (CELLOPS_SERVER_URL / CELLOPS_SERVER_TOKEN)."""
    client = server.connect(server.new_session("discover.ipynb"))
    client.execute(
        "import os, urllib.request\n"
        "req = urllib.request.Request(os.environ['CELLOPS_SERVER_URL'] + 'cellops/api/v1/status',\n"
        "    headers={'Authorization': 'token ' + os.environ['CELLOPS_SERVER_TOKEN']})\n"
        "print(urllib.request.urlopen(req).status)",
        cell_id="c1",
    )
    client.close()
    (item,) = server.api.wait_for(
        "executions",
        lambda b: b["items"] and b["items"][0]["status"] != "running",
        notebook="discover.ipynb",
    )["items"]
    assert item["status"] == "ok", item["error"]
    assert item["outputs"][0]["text"] == "200\n"
