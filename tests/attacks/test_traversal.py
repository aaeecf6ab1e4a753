"""Paths from clients and teammates never reach outside the server's root, nor make folders.

Restoring a teammate's version (recorded as ``team/sub/nb.ipynb`` on their machine) on
your own Jupyter server used to create ``team/sub/`` in your root; a teammate's notebook
recorded under ``../../`` could not be restored at all. Without a path a restore now
goes beside the original when its folder exists here, else into the root folder; a path
the client chooses must be in an existing folder (400 otherwise, offering the default).

The standing checks below (restore paths outside the root, ``..``, blob and artifact
names) held before this change too; they stay as regression tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cellops_server.store.blobs import BlobNotFound, FileBlobStore

from ..support import JupyterServer
from .conftest import Team, member_server
from .seed import API, seed_history


@pytest.fixture(scope="module")
def bob_server(team: Team, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """Bob's Jupyter server, a client of the team where alice recorded her notebooks."""
    alice = team.as_("alice")
    seed_history(alice, "team/sub/nb.ipynb", "alice-nested", executions=2)
    seed_history(alice, "../../escape.ipynb", "alice-escape", executions=1)
    server = member_server(team, tmp_path_factory.mktemp("traversal"), "bob")
    yield server
    server.stop()


@pytest.fixture
def bob(bob_server: JupyterServer) -> Iterator[JupyterServer]:
    """Bob's server with an empty root, emptied again after the test."""
    yield bob_server
    for item in sorted(bob_server.root.rglob("*"), reverse=True):
        item.rmdir() if item.is_dir() else item.unlink()


def version_of(server: JupyterServer, notebook: str) -> int:
    return server.api.cellops("versions", notebook=notebook)["items"][0]["id"]


def restore(server: JupyterServer, version: int, **body: str) -> tuple[int, dict]:
    r = server.api.request("POST", f"{API}/versions/{version}/restore", json=body)
    return r.status_code, r.json()


def everything_under(root: Path) -> set[str]:
    """What is in ``root`` (Jupyter's own .ipynb_checkpoints aside)."""
    return {
        str(p.relative_to(root)) for p in root.rglob("*") if ".ipynb_checkpoints" not in p.parts
    }


def test_restoring_a_teammates_version_from_a_folder_missing_here(bob: JupyterServer) -> None:
    status, body = restore(bob, version_of(bob, "team/sub/nb.ipynb"))
    assert status == 201, body
    assert body["path"] == "nb-v2.ipynb"  # in the root: no folder is created
    assert everything_under(bob.root) == {"nb-v2.ipynb"}
    status, again = restore(bob, version_of(bob, "team/sub/nb.ipynb"))
    assert (status, again["path"]) == (201, "nb-v2-2.ipynb")  # never overwrites


def test_restoring_into_a_folder_that_does_not_exist(bob: JupyterServer) -> None:
    status, body = restore(bob, version_of(bob, "team/sub/nb.ipynb"), path="team/sub/copy.ipynb")
    assert status == 400, body
    assert "no folder 'team/sub'" in body["error"]
    assert body["detail"] == {"missing_folder": "team/sub", "suggested_path": "nb-v2.ipynb"}
    assert everything_under(bob.root) == set()


def test_restoring_a_teammates_notebook_recorded_outside_the_root(bob: JupyterServer) -> None:
    outside = bob.root.parent.parent / "escape-v1.ipynb"
    status, body = restore(bob, version_of(bob, "../../escape.ipynb"))
    assert status == 201, body
    assert body["path"] == "escape-v1.ipynb" and (bob.root / "escape-v1.ipynb").is_file()
    assert not outside.exists()


@pytest.mark.parametrize(
    "path",
    ["../outside.ipynb", "a/../../outside.ipynb", "/../outside.ipynb",
     "/etc/outside.ipynb", "sub/../../outside.ipynb"],
)  # fmt: skip
def test_restoring_to_a_path_outside_the_root(bob: JupyterServer, path: str) -> None:
    """Standing check: refused, nothing written anywhere."""
    status, body = restore(bob, version_of(bob, "team/sub/nb.ipynb"), path=path)
    assert 400 <= status < 500, body
    assert not (bob.root.parent / "outside.ipynb").exists()
    assert not (bob.root.parent.parent / "outside.ipynb").exists()
    assert everything_under(bob.root) == set()


@pytest.mark.parametrize(
    "name",
    ["..%2F..%2Fetc%2Fpasswd", "%2e%2e", "0" * 63, "0" * 65, "0" * 63 + "%0A", "G" * 64,
     "0" * 64 + "%0A"],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["blobs", "artifacts"])
def test_blob_and_artifact_names_that_are_not_digests(team: Team, kind: str, name: str) -> None:
    """Standing check: only a 64-hex-digit name reaches the blob store."""
    alice = team.as_("alice")
    assert alice.request("GET", f"{API}/{kind}/{name}").status_code == 404
    if kind == "artifacts":
        r = alice.request("PUT", f"{API}/artifacts/{name}", data=b"x")
        assert r.status_code == 404
    assert not any(p.name.startswith(("passwd", "..")) for p in team.artifacts.rglob("*"))


def test_a_blob_named_by_a_digest_plus_a_newline(tmp_path: Path) -> None:
    """The store's own check matches the whole name (``$`` accepts a final newline)."""
    blobs = FileBlobStore(tmp_path / "blobs")
    sha = blobs.put(b"an image")
    assert sha == hashlib.sha256(b"an image").hexdigest() and blobs.exists(sha)
    with pytest.raises(BlobNotFound):
        blobs.path_for(sha + "\n")
    assert not blobs.exists(sha + "\n")
    with pytest.raises(BlobNotFound):
        blobs.get(sha + "\n")
