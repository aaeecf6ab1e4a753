"""The settings JupyterLab pushes (PUT /settings) decide what a real Jupyter server records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import JupyterServer

API = "cellops/api/v1"
DEFAULTS = {"tracking": True, "exclude": [], "max_output_size": 10_000}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[JupyterServer]:
    srv = JupyterServer(tmp_path).start()
    yield srv
    srv.stop()


def put_settings(server: JupyterServer, body: dict) -> dict:
    r = server.api.request("PUT", f"{API}/settings", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def recorded_codes(server: JupyterServer, notebook: str) -> list[str]:
    items = server.api.cellops("executions", notebook=notebook)["items"]
    return [e["code"] for e in reversed(items)]


def test_excluded_notebooks_and_tracking_off_are_not_recorded(server: JupyterServer) -> None:
    assert server.api.cellops("settings") == DEFAULTS
    put_settings(server, {"tracking": True, "exclude": ["scratch/*", "*.tmp.ipynb"]})
    assert (
        server.api.cellops("status", notebook="scratch/deep/a.ipynb")["notebook_tracking"] is False
    )
    assert server.api.cellops("status", notebook="x.tmp.ipynb")["notebook_tracking"] is False
    assert server.api.cellops("status", notebook="work/b.ipynb")["notebook_tracking"] is True

    scratch = server.connect(server.new_session("scratch/deep/a.ipynb"))
    work = server.connect(server.new_session("work/b.ipynb"))
    scratch.execute("secret = 1", cell_id="s1")
    work.execute("kept = 1", cell_id="w1")
    server.api.wait_for("executions", lambda b: len(b["items"]) == 1, notebook="work/b.ipynb")
    assert recorded_codes(server, "scratch/deep/a.ipynb") == []

    put_settings(server, {"tracking": False})
    status = server.api.cellops("status", notebook="work/b.ipynb")
    assert (status["tracking"], status["notebook_tracking"]) == (False, False)
    work.execute("while_off = 1", cell_id="w2")
    put_settings(server, {"tracking": True})
    work.execute("back_on = 1", cell_id="w3")
    server.api.wait_for("executions", lambda b: len(b["items"]) == 2, notebook="work/b.ipynb")
    assert recorded_codes(server, "work/b.ipynb") == ["kept = 1", "back_on = 1"]
    scratch.close()
    work.close()


def test_max_output_size_cuts_stored_text_and_survives_a_restart(server: JupyterServer) -> None:
    put_settings(server, {"max_output_size": 100})
    server.stop()
    server.start()  # the setting was kept on disk: no browser needs to push it again
    assert server.api.cellops("settings")["max_output_size"] == 100
    client = server.connect(server.new_session("long.ipynb"))
    client.execute("print('z' * 1000)", cell_id="c1")
    client.close()
    item = server.api.wait_for(
        "executions",
        lambda b: b["items"] and b["items"][0]["status"] == "ok",
        notebook="long.ipynb",
    )["items"][0]
    text = item["outputs"][0]["text"]
    assert text.startswith("z" * 100) and not text.startswith("z" * 101)
    assert "901 more characters not stored" in text  # 1000 z and a newline


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_output_size": 0}, "max_output_size"),
        ({"exclude": "scratch/*"}, "exclude"),
        ({"exclude": [""]}, "exclude"),
        ({"tracking": "maybe"}, "tracking"),
        ({"track": False}, "track"),
    ],
)
def test_bad_settings_get_400_and_change_nothing(
    server: JupyterServer, body: dict, field: str
) -> None:
    put_settings(server, {"exclude": ["keep/*"]})
    r = server.api.request("PUT", f"{API}/settings", json=body)
    assert r.status_code == 400
    answer = r.json()
    assert answer["error"] == "invalid TrackingSettings"
    assert any(field in map(str, problem["loc"]) for problem in answer["detail"])
    assert server.api.cellops("settings")["exclude"] == ["keep/*"]


def test_a_cells_history_lists_only_that_cell(server: JupyterServer) -> None:
    client = server.connect(server.new_session("hist.ipynb"))
    client.execute("a = 1", cell_id="cell-a")
    client.execute("b = 1", cell_id="cell-b")
    client.execute("a = 2", cell_id="cell-a")
    client.close()
    server.api.wait_for("executions", lambda b: len(b["items"]) == 3, notebook="hist.ipynb")
    items = server.api.cellops("executions", notebook="hist.ipynb", cell="cell-a")["items"]
    assert [e["code"] for e in items] == ["a = 2", "a = 1"]  # newest first
    assert server.api.cellops("executions", notebook="hist.ipynb", cell="nope")["items"] == []
