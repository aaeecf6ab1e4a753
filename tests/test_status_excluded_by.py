"""GET /status?notebook= names the exclude pattern a notebook matches (the sidebar shows it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import JupyterServer

API = "cellops/api/v1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    srv = JupyterServer(Path(tmp_path_factory.mktemp("excluded"))).start()
    yield srv
    srv.stop()


def status(server: JupyterServer, notebook: str | None = None) -> dict:
    params = {} if notebook is None else {"notebook": notebook}
    return server.api.cellops("status", **params)


def test_status_names_the_first_matching_pattern_as_the_user_wrote_it(
    server: JupyterServer,
) -> None:
    body = {"tracking": True, "exclude": ["/scratch/**", "*.tmp.ipynb"], "max_output_size": 10_000}
    r = server.api.request("PUT", f"{API}/settings", json=body)
    assert r.status_code == 200, r.text
    deep = status(server, "scratch/a/b.ipynb")
    assert (deep["notebook_tracking"], deep["excluded_by"]) == (False, "/scratch/**")
    assert status(server, "x.tmp.ipynb")["excluded_by"] == "*.tmp.ipynb"
    kept = status(server, "work/kept.ipynb")
    assert (kept["notebook_tracking"], kept["excluded_by"]) == (True, None)
    assert status(server)["excluded_by"] is None  # no notebook asked about

    # Tracking off and no pattern: not recorded, and no pattern to name.
    r = server.api.request(
        "PUT", f"{API}/settings", json={**body, "tracking": False, "exclude": []}
    )
    assert r.status_code == 200, r.text
    off = status(server, "scratch/a/b.ipynb")
    assert (off["tracking"], off["notebook_tracking"], off["excluded_by"]) == (False, False, None)
