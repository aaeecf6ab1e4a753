"""What cellops writes to disk is readable by its owner only, whatever the process umask.

The store (the SQLite file and its -wal and -shm), the spool, the blobs and the model
artifacts hold everyone's code, outputs and models. Under a permissive umask they used
to be created readable (and writable) by every account on the machine. The servers here
start with umask 000, the worst case: every folder cellops creates must be 0700 and
every file 0600.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support import JupyterServer
from .conftest import Team, start_team, team_db_url
from .seed import API, register

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def umask_000() -> Iterator[None]:
    """Servers started meanwhile inherit a umask that takes no permission away."""
    previous = os.umask(0)
    yield
    os.umask(previous)


@pytest.fixture(scope="module")
def jupyter(umask_000: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """An embedded Jupyter server that ran a cell (an image output: a blob), stored a model
    artifact and saved its user's tracking settings; its cellops home holds them all."""
    server = JupyterServer(tmp_path_factory.mktemp("modes-jupyter")).start()
    client = server.connect(server.new_session("modes.ipynb"))
    client.execute(f"display({{'image/png': '{PNG}'}}, raw=True); print('recorded')", "c1")
    client.close()
    server.api.wait_for(
        "executions", lambda b: any(e["mime_types"] for e in b["items"]), notebook="modes.ipynb"
    )
    assert register(server.api, "private-model").status_code == 201
    settings = server.api.request("PUT", f"{API}/settings", json={"exclude": ["scratch/*"]})
    assert settings.status_code == 200, settings.text
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def team(
    umask_000: None, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Team]:
    """`cellops serve` (store in a folder it creates) with an artifact registered."""
    tmp = tmp_path_factory.mktemp(f"modes-team-{request.param}")
    backend = start_team(team_db_url(request, tmp / "store" / "team.db"), tmp)
    assert register(backend.as_("alice"), "private-model").status_code == 201
    yield backend
    backend.stop()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def too_open(root: Path) -> dict[str, str]:
    """Everything under ``root`` (itself included) that is not owner-only."""
    wrong = {}
    for path in [root, *root.rglob("*")]:
        wanted = 0o700 if path.is_dir() else 0o600
        if mode(path) != wanted:
            wrong[str(path.relative_to(root.parent))] = oct(mode(path))
    return wrong


def test_an_embedded_servers_store_spool_and_blobs(jupyter: JupyterServer) -> None:
    home = jupyter.home
    database = home / "cellops.db"
    assert {p.name for p in home.iterdir()} >= {
        "cellops.db", "spool", "artifacts", "tracking-settings.json"}  # fmt: skip
    for part in ("-wal", "-shm"):
        assert database.with_name(database.name + part).exists()
    assert list(home.glob("spool/*/spool-*.jsonl")), "the cell went through the spool"
    blobs = [p for p in (home / "artifacts").rglob("*") if p.is_file()]
    assert len(blobs) >= 2, "the image and the artifact are stored as blobs"
    assert too_open(home) == {}


def test_a_team_backends_store_and_artifacts(team: Team) -> None:
    stored = [p for p in team.artifacts.rglob("*") if p.is_file()]
    assert stored, "the artifact is stored"
    assert too_open(team.artifacts) == {}
    if team.db_url.startswith("sqlite"):
        store = Path(team.db_url.removeprefix("sqlite:///")).parent
        assert {p.name for p in store.iterdir()} >= {"team.db", "team.db-wal", "team.db-shm"}
        assert too_open(store) == {}


def test_an_artifact_upload_in_progress(team: Team) -> None:
    """The partial upload (before its checksum is verified) is private too."""
    alice = team.as_("alice")
    url = alice.base.removeprefix("http://")
    host, port = url.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (
            f"PUT /{API}/artifacts/{'a' * 64} HTTP/1.1\r\nHost: {url}\r\n"
            f"Authorization: {alice.headers['Authorization']}\r\nContent-Length: 100000\r\n\r\n"
        )
        sock.sendall(head.encode() + b"x" * 50_000)  # half of it: the upload waits for more
        uploads = team.artifacts / ".uploads"
        partial = wait_for_file(uploads)
        assert mode(uploads) == 0o700 and mode(partial) == 0o600


def wait_for_file(folder: Path, timeout: float = 10.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in folder.glob("*") if p.is_file()] if folder.exists() else []
        if found and found[0].stat().st_size > 0:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no upload appeared in {folder}")
