"""Issue 10, defect 1: a notebook's identity is not its path alone.

Two members' real Jupyter servers (team-client mode, real kernels) record into one real
`cellops serve`, on SQLite and on PostgreSQL: same-named notebooks stay apart, one file of
one git repository is one history, a rename keeps its history, a copy starts its own, and a
store migrated from revision 0005 keeps every record.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from cellops_server.identity import normalize_remote, notebook_key
from cellops_server.store import NotebookRef, Store, create_engine
from cellops_server.store.engine import MIGRATIONS
from cellops_server.store.tables import executions, notebooks, runs, texts, users, versions
from cellops_server.store.version_storage import snapshot_json

from .attacks.conftest import API, Team, member_server
from .support import JupyterServer

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def members(
    team: Team, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[JupyterServer, JupyterServer]]:
    """alice's and bob's own Jupyter servers, both forwarding to ``team``."""
    tmp = tmp_path_factory.mktemp("members")
    alice = member_server(team, tmp, "alice")
    bob = member_server(team, tmp, "bob")
    yield alice, bob
    alice.stop()
    bob.stop()


def write_notebook(file: Path) -> None:
    """An empty notebook on disk, as JupyterLab's "New notebook" leaves it."""
    file.parent.mkdir(parents=True, exist_ok=True)
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    file.write_text(json.dumps(nb))


def run_cells(server: JupyterServer, path: str, *cells: tuple[str, str]) -> None:
    """Open ``path`` in a kernel and run (cell id, code) pairs, as the browser does."""
    client = server.connect(server.new_session(path))
    try:
        for cell_id, code in cells:
            assert client.execute(code, cell_id=cell_id)["reply"]["status"] == "ok"
    finally:
        client.close()


def codes_of(server: JupyterServer, path: str, count: int) -> list[str]:
    """The notebook's executed code, oldest first, read through ``server`` (its sidebar)."""
    body = server.api.wait_for(
        "executions", lambda b: len(b["items"]) >= count, notebook=path, limit=500
    )
    return [e["code"] for e in reversed(body["items"])]


def newest_version_cells(server: JupyterServer, path: str) -> list[str]:
    version = server.api.cellops("versions", notebook=path)["items"][0]
    notebook = server.api.cellops(f"versions/{version['id']}")
    return ["".join(c["source"]) for c in notebook["cells"]]


def test_same_named_notebooks_of_two_members_stay_apart(
    team: Team, members: tuple[JupyterServer, JupyterServer]
) -> None:
    alice, bob = members
    path = f"Untitled-{uuid.uuid4().hex[:6]}.ipynb"
    write_notebook(alice.root / path)
    write_notebook(bob.root / path)
    run_cells(alice, path, ("a1", "churn = 'alice'"), ("a2", "fit = 1"))
    codes_of(alice, path, 2)
    # bob's file at that path is his: before he runs a cell it has no history, not alice's
    assert bob.api.cellops("executions", notebook=path)["items"] == []
    assert bob.api.cellops("versions", notebook=path)["items"] == []
    run_cells(bob, path, ("b1", "pricing = 'bob'"))

    assert codes_of(alice, path, 2) == ["churn = 'alice'", "fit = 1"]
    assert codes_of(bob, path, 1) == ["pricing = 'bob'"]
    assert [r["user"] for r in alice.api.cellops("runs", notebook=path)["items"]] == ["alice"]
    assert [r["user"] for r in bob.api.cellops("runs", notebook=path)["items"]] == ["bob"]
    # a version holds one person's cells: restoring it never mixes their code
    assert newest_version_cells(alice, path) == ["churn = 'alice'", "fit = 1"]
    assert newest_version_cells(bob, path) == ["pricing = 'bob'"]

    listed = [n for n in alice.api.cellops("notebooks", limit=500)["items"] if n["path"] == path]
    assert sorted((n["owner"], n["runs"], n["executions"]) for n in listed) == [
        ("alice", 1, 2),
        ("bob", 1, 1),
    ]
    # a viewer, who has no file there, names whose notebook they mean
    vera = team.as_("vera")
    r = vera.request("GET", f"{API}/executions", params={"notebook": path})
    assert r.status_code == 400 and "owner=" in r.json()["error"], r.text
    assert sorted(r.json()["detail"]["owners"]) == ["alice", "bob"]
    mine = vera.cellops("executions", notebook=path, owner="bob")["items"]
    assert [e["code"] for e in mine] == ["pricing = 'bob'"]


@pytest.mark.parametrize(
    "remote",
    [
        "git@github.com:Org/churn.git",
        "https://github.com/Org/churn",
        "https://token:secret@GitHub.com/Org/churn.git/",
        "ssh://git@github.com/Org/churn",
    ],
)
def test_one_repository_has_one_identity_however_its_remote_is_spelled(remote: str) -> None:
    assert normalize_remote(remote) == "github.com/Org/churn"
    assert notebook_key("a/nb.ipynb", "alice", remote, "nb.ipynb") == notebook_key(
        "b/nb.ipynb", "bob", "git@github.com:Org/churn.git", "nb.ipynb"
    )


def git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_one_file_of_one_git_repository_is_one_history(
    members: tuple[JupyterServer, JupyterServer], tmp_path: Path
) -> None:
    alice, bob = members
    remote = tmp_path / "remote.git"
    git("init", "--bare", "-q", str(remote), cwd=tmp_path)
    seed = tmp_path / "seed"
    git("clone", "-q", str(remote), str(seed), cwd=tmp_path)
    write_notebook(seed / "models" / "train.ipynb")
    git("add", ".", cwd=seed)
    git("commit", "-q", "-m", "a notebook", cwd=seed)
    git("push", "-q", "origin", "HEAD", cwd=seed)
    project = f"proj-{uuid.uuid4().hex[:6]}"
    git("clone", "-q", str(remote), str(alice.root / project), cwd=tmp_path)
    git("clone", "-q", str(remote), str(bob.root / "work" / project), cwd=tmp_path)
    alices, bobs = f"{project}/models/train.ipynb", f"work/{project}/models/train.ipynb"

    run_cells(alice, alices, ("c1", "x = 1"))
    run_cells(bob, bobs, ("c2", "y = 2"))

    # each member's sidebar, asking for their own path, reads the one shared history
    for server, path in ((alice, alices), (bob, bobs)):
        assert codes_of(server, path, 2) == ["x = 1", "y = 2"]
        users = {r["user"] for r in server.api.cellops("runs", notebook=path)["items"]}
        assert users == {"alice", "bob"}
    (shared,) = [
        n
        for n in alice.api.cellops("notebooks", limit=500)["items"]
        if n["repo"] and n["repo"].endswith(str(remote.with_suffix("")))
    ]
    assert (shared["repo_path"], shared["owner"], shared["runs"]) == (
        "models/train.ipynb",
        None,
        2,
    )


def test_a_rename_keeps_history_and_a_copy_starts_its_own(
    members: tuple[JupyterServer, JupyterServer],
) -> None:
    alice, _ = members
    tag = uuid.uuid4().hex[:6]
    first, renamed = f"draft-{tag}.ipynb", f"final-{tag}.ipynb"
    write_notebook(alice.root / first)
    run_cells(alice, first, ("c1", "a = 1"))
    codes_of(alice, first, 1)

    r = alice.api.request("PATCH", f"api/contents/{first}", json={"path": renamed})
    assert r.status_code == 200, r.text
    # then JupyterLab moves the open session along, which is no copy
    (session,) = [s for s in alice.api.get("api/sessions") if s["path"] == first]
    r = alice.api.request("PATCH", f"api/sessions/{session['id']}", json={"path": renamed})
    assert r.status_code == 200, r.text
    assert codes_of(alice, renamed, 1) == ["a = 1"]
    assert alice.api.cellops("executions", notebook=first)["items"] == []

    # JupyterLab's "Duplicate": the contents manager's copy
    r = alice.api.request("POST", "api/contents", json={"copy_from": renamed})
    assert r.status_code == 201, r.text
    copy = r.json()["path"]
    found = alice.api.wait_for(
        "notebooks", lambda b: any(n["path"] == copy for n in b["items"]), limit=500
    )
    (listed,) = [n for n in found["items"] if n["path"] == copy]
    assert (listed["copied_from"], listed["owner"], listed["runs"]) == (renamed, "alice", 0)
    assert alice.api.cellops("executions", notebook=copy)["items"] == []

    run_cells(alice, copy, ("c1", "a = 2"))
    assert codes_of(alice, copy, 1) == ["a = 2"]
    assert codes_of(alice, renamed, 1) == ["a = 1"]  # the original's history is its own
    (moved,) = [
        n for n in alice.api.cellops("notebooks", limit=500)["items"] if n["path"] == renamed
    ]
    assert (moved["copied_from"], moved["runs"]) == (None, 1)


def test_a_copy_made_outside_jupyter_starts_its_own_history_linked_to_the_original(
    members: tuple[JupyterServer, JupyterServer],
) -> None:
    """A copy made with `cp` (or a restored version) keeps the cells' ids."""
    alice, bob = members
    tag = uuid.uuid4().hex[:6]
    original, saved_as = f"report-{tag}.ipynb", f"report-{tag}-final.ipynb"
    cell = f"cell-{tag}"
    for path in (original, saved_as):
        write_notebook(alice.root / path)
    write_notebook(bob.root / saved_as)
    run_cells(alice, original, (cell, "summary = 1"))
    codes_of(alice, original, 1)
    run_cells(alice, saved_as, (cell, "summary = 2"), ("other", "x = 3"))
    run_cells(bob, saved_as, (cell, "bob = 1"))  # bob's own file: never linked to alice's

    assert codes_of(alice, saved_as, 2) == ["summary = 2", "x = 3"]
    assert codes_of(alice, original, 1) == ["summary = 1"]
    assert codes_of(bob, saved_as, 1) == ["bob = 1"]
    listed = alice.api.cellops("notebooks", limit=500)["items"]
    assert sorted((n["owner"], n["copied_from"]) for n in listed if n["path"] == saved_as) == [
        ("alice", original),
        ("bob", None),
    ]


def test_save_as_continues_in_a_copy_with_its_own_history(
    members: tuple[JupyterServer, JupyterServer],
) -> None:
    """JupyterLab's "Save as" moves the open session to the new file (no rename): the cells
    run after it are the copy's, and the copy is linked to the original."""
    alice, _ = members
    tag = uuid.uuid4().hex[:6]
    original, saved_as = f"study-{tag}.ipynb", f"study-{tag}-v2.ipynb"
    write_notebook(alice.root / original)
    kernel = alice.new_session(original)
    client = alice.connect(kernel)
    try:
        assert client.execute("before = 1", cell_id="c1")["reply"]["status"] == "ok"
        (session,) = [s for s in alice.api.get("api/sessions") if s["kernel"]["id"] == kernel]
        r = alice.api.request(
            "PATCH", f"api/sessions/{session['id']}", json={"path": saved_as, "name": saved_as}
        )
        assert r.status_code == 200, r.text
        write_notebook(alice.root / saved_as)
        assert client.execute("after = 2", cell_id="c1")["reply"]["status"] == "ok"
    finally:
        client.close()

    assert codes_of(alice, saved_as, 1) == ["after = 2"]
    assert codes_of(alice, original, 1) == ["before = 1"]
    listed = alice.api.cellops("notebooks", limit=500)["items"]
    assert [n["copied_from"] for n in listed if n["path"] == saved_as] == [original]


# -- migration ------------------------------------------------------------------------------


def store_at_0005(db_url: str) -> None:
    engine = create_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    engine.dispose()


def seed_0005(conn: sa.Connection, team_users: list[str]) -> None:
    """shared.ipynb: runs by alice then bob (or two anonymous ids, embedded); solo.ipynb: bob's.
    Only the columns revision 0005 has."""
    for n, name in enumerate(team_users):
        conn.execute(
            users.insert().values(name=name, role="editor", token_hash=f"{n:064d}", created_at=T0)
        )
    code = {"c1": "a = 1", "c2": "b = 2", "c3": "c = 3"}
    for cell, body in code.items():
        conn.execute(texts.insert().values(sha256=f"sha-{cell}", body=body))
    counts = {"runs_count": 0, "executions_count": 0, "versions_count": 0}
    for path in ("shared.ipynb", "solo.ipynb"):
        conn.execute(
            notebooks.insert().values(path=path, created_at=T0, last_activity_at=T0, **counts)
        )
    nb = dict(conn.execute(sa.select(notebooks.c.path, notebooks.c.id)).all())
    who = ["alice", "bob"] if team_users else ["anon-1", "anon-2"]
    plan = [
        ("shared.ipynb", who[0], "c1"),
        ("shared.ipynb", who[1], "c2"),
        ("solo.ipynb", who[1], "c3"),
    ]
    for n, (path, user, cell) in enumerate(plan, 1):
        at = T0 + timedelta(minutes=n)
        run_id = conn.execute(
            runs.insert()
            .values(key=f"run-{n}", notebook_id=nb[path], kernel_id="k", user_name=user,
                    started_at=at, source="s", instance="i")
            .returning(runs.c.id)
        ).scalar_one()  # fmt: skip
        exec_id = conn.execute(
            executions.insert()
            .values(msg_id=f"msg-{n}", run_id=run_id, notebook_id=nb[path], seq=1, cell_id=cell,
                    code_sha=f"sha-{cell}", status="ok", started_at=at, owner=user, source="s",
                    version_number=1)
            .returning(executions.c.id)
        ).scalar_one()  # fmt: skip
        number = (
            conn.scalar(sa.select(sa.func.count()).where(versions.c.notebook_id == nb[path])) + 1
        )
        cells = (
            [(c, f"sha-{c}") for c in ("c1", "c2")[:number]]
            if path == "shared.ipynb"
            else [(cell, f"sha-{cell}")]
        )
        sha = f"cells-{n}"
        conn.execute(texts.insert().values(sha256=sha, body=snapshot_json(cells)))
        conn.execute(
            versions.insert().values(
                notebook_id=nb[path], number=number, created_at=at, execution_id=exec_id,
                cells_sha=sha, cells_count=len(cells),
            )
        )  # fmt: skip


def table_counts(db_url: str) -> dict[str, int]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        found = {
            t.name: conn.scalar(sa.select(sa.func.count()).select_from(t))
            for t in (notebooks, runs, executions, versions, texts)
        }
    engine.dispose()
    return found


@pytest.mark.parametrize("mode", ["team", "embedded"])
def test_a_store_migrated_from_0005_with_a_shared_path_keeps_every_record(
    db_url: str, tmp_path: Path, mode: str
) -> None:
    store_at_0005(db_url)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        seed_0005(conn, ["alice", "bob"] if mode == "team" else [])
    engine.dispose()
    before = table_counts(db_url)

    store = Store(db_url, str(tmp_path / "artifacts"))  # migrates to the newest revision
    try:
        assert table_counts(db_url) == before
        listed = {n.path: n for n in store.list_notebooks(limit=10).items}
        owner = "alice" if mode == "team" else None  # the first run's member keeps it whole
        assert (listed["shared.ipynb"].owner, listed["solo.ipynb"].owner) == (
            owner,
            "bob" if mode == "team" else None,
        )
        caller = "alice" if mode == "team" else None
        shared = NotebookRef("shared.ipynb", caller=caller)
        assert len(store.list_runs(shared).items) == 2
        assert [v.cells for v in store.list_versions(shared).items] == [2, 1]
        assert [e.code for e in store.list_notebook_executions(shared).items] == ["b = 2", "a = 1"]
        solo = NotebookRef("solo.ipynb", caller="bob" if mode == "team" else None, own=True)
        assert [e.code for e in store.list_notebook_executions(solo).items] == ["c = 3"]
        version = store.list_versions(shared).items[0]
        cells = store.version_notebook(version.id)["cells"]
        assert ["".join(c["source"]) for c in cells] == ["a = 1", "b = 2"]
    finally:
        store.close()
