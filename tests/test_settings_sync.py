"""The server is the one source of truth of the tracking settings: a PUT is kept and
announced to open pages; kernels report what they keep while the backend is down.

Settings and kernel reports live in the Jupyter server's home and memory, not in the
store, so one SQLite server covers them (the store kind plays no part).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import JupyterServer, free_port

API = "cellops/api/v1"
DEFAULTS = {"tracking": True, "exclude": [], "max_output_size": 10_000}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    srv = JupyterServer(tmp_path_factory.mktemp("settings-sync")).start()
    yield srv
    srv.stop()


def events_after(server: JupyterServer, after: int, wait: int = 0) -> list[dict]:
    return server.api.cellops("events", after=after, timeout=wait)["events"]


def put(server: JupyterServer, path: str, body: dict) -> dict:
    r = server.api.request("PUT" if path == "settings" else "POST", f"{API}/{path}", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_put_is_kept_and_announced_once(server: JupyterServer) -> None:
    wanted = {"tracking": True, "exclude": ["scratch/*"], "max_output_size": 500}
    last = server.api.cellops("events")["last"]
    assert put(server, "settings", wanted) == wanted
    announced = events_after(server, last, wait=5)
    assert [e["type"] for e in announced] == ["settings"]

    # A page writing back what it was told changes nothing, so nothing is announced (no loop).
    last = announced[-1]["seq"]
    assert put(server, "settings", wanted) == wanted
    assert events_after(server, last, wait=2) == []

    server.stop()
    server.start()  # kept on disk: a page that loads now gets these values
    assert server.api.cellops("settings") == wanted
    put(server, "settings", DEFAULTS)


def test_kernel_backlog_reports_add_up_in_the_status(server: JupyterServer) -> None:
    assert server.api.cellops("status")["kernel_pending"] == 0
    put(server, "status/kernels", {"kernel": "k1", "pending": 3, "error": "HTTP 502 backend down"})
    status = put(
        server, "status/kernels", {"kernel": "k2", "pending": 4, "error": "HTTP 502 again"}
    )
    assert (status["kernel_pending"], status["kernel_error"]) == (7, "HTTP 502 again")

    for bad in (
        {"kernel": "k1", "pending": -1},
        {"kernel": "", "pending": 1},
        {"kernel": "k1", "pending": 1, "extra": True},
    ):
        r = server.api.request("POST", f"{API}/status/kernels", json=bad)
        assert r.status_code == 400 and "KernelBacklog" in r.json()["error"], r.text
    assert server.api.cellops("status")["kernel_pending"] == 7  # bad reports changed nothing

    put(server, "status/kernels", {"kernel": "k1", "pending": 0})  # k1 sent everything
    put(server, "status/kernels", {"kernel": "k2", "pending": 0})
    status = server.api.cellops("status")
    assert (status["kernel_pending"], status["kernel_error"]) == (0, None)


@pytest.fixture(scope="module")
def cut_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A team member's Jupyter server whose team backend does not answer."""
    srv = JupyterServer(
        tmp_path_factory.mktemp("cut-off"),
        env={"CELLOPS_BACKEND_URL": f"http://127.0.0.1:{free_port()}", "CELLOPS_TOKEN": "t"},
    ).start()
    yield srv
    srv.stop()


def test_a_kernel_cut_off_from_the_backend_says_so_in_the_status_not_the_cell(
    cut_off: JupyterServer, tmp_path: Path
) -> None:
    client = cut_off.connect(cut_off.new_session("offline.ipynb"))
    result = client.execute(
        "import cellops\ncellops.log_metrics({'accuracy': 0.9})\nprint(cellops.flush(3))",
        timeout=60,
    )
    assert result["reply"]["status"] == "ok", result
    # Whatever the sender thread says while retrying must not land in the cell's output.
    texts = [o.get("text", "") for o in result["outputs"]]
    assert texts == ["False\n"], json.dumps(result["outputs"])
    status = cut_off.api.wait_for(
        "status", lambda s: s["kernel_pending"] >= 1 and s["backend_reachable"] is False
    )
    assert "unreachable" in status["kernel_error"], status
    later = client.execute("cellops.log_params({'C': 1})", timeout=60)
    assert later["outputs"] == [], json.dumps(later["outputs"])
    client.close()


def test_a_dead_kernels_backlog_stops_showing_after_a_while() -> None:
    from cellops_server.kernel_backlog import STALE_AFTER, KernelBacklogs

    now = [0.0]
    backlogs = KernelBacklogs(clock=lambda: now[0])
    backlogs.report("dead", 5, "HTTP 502")  # then its kernel died: no report comes again
    now[0] = STALE_AFTER / 2
    backlogs.report("alive", 2, "HTTP 503")
    assert backlogs.summary() == (7, "HTTP 503")
    now[0] = STALE_AFTER + 1  # the live kernel re-reports on each retry; the dead one cannot
    assert backlogs.summary() == (2, "HTTP 503")
