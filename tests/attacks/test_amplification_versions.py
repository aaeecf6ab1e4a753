"""Issue 9, item 4: a small ingest request must not make the store grow quadratically.

Every execution that adds a cell makes a new notebook version. When each version held the
notebook's whole cell list, 3,000 executions adding one cell each (1.3 MB of requests)
stored 340-490 MB, and 10,000 stored ~3.8 GB. These attacks run against a real
`cellops serve` on SQLite and PostgreSQL (the module's ``team``) over real HTTP.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from cellops_server.store import Store, create_engine
from cellops_server.store.engine import MIGRATIONS
from cellops_server.store.records import MAX_RECORDS_PER_REQUEST
from cellops_server.store.version_storage import MAX_CELLS_PER_NOTEBOOK

from ..records import T0, execution, run
from .conftest import API, Team

CELLS = 3_000
HALF = CELLS // 2


def cell_id(i: int) -> str:
    # JupyterLab's cell ids are UUIDs: 36 characters.
    return f"{i:08d}-0000-4000-8000-000000000000"


def code(i: int, rev: int = 0) -> str:
    return f"x_{i} = load_part({i})  # rev {rev}"


def adding_cells(notebook: str, first: int, count: int, run_key: str) -> list[dict[str, Any]]:
    """Executions ``first``..``first+count-1`` of one run, each running a new cell once."""
    return [
        execution(i + 1, code(i), cell_id(i), run_key, notebook, msg_id=f"{run_key}-{i}")
        for i in range(first, first + count)
    ]


def ingest(team: Team, records: list[dict[str, Any]], user: str = "alice") -> Any:
    return team.as_(user).request("POST", f"{API}/ingest", json={"records": records})


def stored_version_bytes(db_url: str) -> int:
    """Bytes the database holds for versions and content-addressed texts (tables and indexes)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                query = (
                    "SELECT sum(d.pgsize) FROM dbstat d JOIN sqlite_master m ON m.name = d.name "
                    "WHERE m.tbl_name IN ('texts', 'versions')"
                )
            else:
                query = (
                    "SELECT pg_total_relation_size('texts') + pg_total_relation_size('versions')"
                )
            return int(conn.scalar(sa.text(query)) or 0)
    finally:
        engine.dispose()


def all_versions(team: Team, notebook: str) -> dict[int, int]:
    """Version number -> version id, every page."""
    found: dict[int, int] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"notebook": notebook, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = team.as_("vera").cellops("versions", **params)
        found.update({v["number"]: v["id"] for v in page["items"]})
        cursor = page["next"]
        if not cursor:
            return found


def notebook_cells(team: Team, version_id: int) -> list[tuple[str, str]]:
    nb = team.as_("vera").cellops(f"versions/{version_id}")
    return [(c["id"], "".join(c["source"])) for c in nb["cells"]]


def first_cells(n: int) -> list[tuple[str, str]]:
    return [(cell_id(i), code(i)) for i in range(n)]


@pytest.fixture(scope="module")
def long_notebook(team: Team) -> Iterator[dict[str, Any]]:
    """The attack: 3,000 executions adding one cell each, in two requests of 1,500 (1.3 MB of
    JSON in all). The store must absorb it in space linear in what was sent.

    Measured before the fix (every version a full cell list), texts + versions grew by
    123 MB then 367 MB on SQLite (490 MB), 86 MB then 255 MB on PostgreSQL (342 MB, TOAST-
    compressed). After: 0.77 MB then 0.76 MB on SQLite, 1.0 MB then 0.9 MB on PostgreSQL."""
    notebook = "attack/quadratic.ipynb"
    before = stored_version_bytes(team.db_url)
    first = [run("quadratic-run", notebook), *adding_cells(notebook, 0, HALF, "quadratic-run")]
    second = adding_cells(notebook, HALF, HALF, "quadratic-run")
    r1 = ingest(team, first)
    assert r1.status_code == 200, r1.text[:500]
    middle = stored_version_bytes(team.db_url)
    r2 = ingest(team, second)
    assert r2.status_code == 200, r2.text[:500]
    growth = (middle - before, stored_version_bytes(team.db_url) - middle)
    sent = len(json.dumps({"records": first})) + len(json.dumps({"records": second}))
    # 4x the request (5.3 MB): the old scheme stored 65-90x more than this allows.
    assert sum(growth) < 4 * sent, f"{sum(growth):,} B stored for {sent:,} B sent"
    yield {"notebook": notebook, "growth": growth}


def test_quadratic_body_adds_storage_linear_in_the_request(long_notebook: dict[str, Any]) -> None:
    """The second 1,500 versions (of a notebook twice as long) cost what the first did."""
    first, second = long_notebook["growth"]
    assert second < 1.5 * first, f"first half {first:,} B, second half {second:,} B"


def test_quadratic_body_versions_still_rebuild_exactly(
    team: Team, long_notebook: dict[str, Any]
) -> None:
    """Versions first, middle and last, and either side of where snapshots are taken, read back
    as exactly the cells that had run; a diff between two lists what was added between."""
    numbers = all_versions(team, long_notebook["notebook"])
    assert sorted(numbers) == list(range(1, CELLS + 1))
    for n in (1, 2, 63, 64, 65, 97, 128, 129, HALF, HALF + 1, 2_222, CELLS):
        assert notebook_cells(team, numbers[n]) == first_cells(n), f"version {n}"
    diff = team.as_("vera").cellops(f"versions/{numbers[1_000]}/diff/{numbers[CELLS]}")
    assert [c["cell_id"] for c in diff["added"]] == [cell_id(i) for i in range(1_000, CELLS)]
    assert diff["removed"] == [] and diff["changed"] == []
    assert diff["unchanged"] == 1_000


def test_edit_and_delete_after_the_quadratic_body_make_exact_versions(
    team: Team, long_notebook: dict[str, Any]
) -> None:
    """An execution that edits one cell and deletes two more (JupyterLab's deletedCells) after
    the long notebook: its version has the edit in place and the two cells gone."""
    notebook = long_notebook["notebook"]
    edit = execution(
        CELLS + 1,
        code(5, rev=1),
        cell_id(5),
        "quadratic-run",
        notebook,
        msg_id="quadratic-run-edit",
        deleted_cells=[cell_id(7), cell_id(2_999), "never-ran"],
    )
    r = ingest(team, [edit])
    assert r.status_code == 200, r.text[:500]
    numbers = all_versions(team, notebook)
    latest = numbers[CELLS + 1]
    expected = [c for c in first_cells(CELLS) if c[0] not in (cell_id(7), cell_id(2_999))]
    expected[5] = (cell_id(5), code(5, rev=1))
    assert notebook_cells(team, latest) == expected
    diff = team.as_("vera").cellops(f"versions/{numbers[CELLS]}/diff/{latest}")
    assert [c["cell_id"] for c in diff["removed"]] == [cell_id(7), cell_id(2_999)]
    assert [c["cell_id"] for c in diff["changed"]] == [cell_id(5)]
    assert diff["added"] == []


def test_cells_past_the_notebook_limit_are_set_aside(team: Team) -> None:
    """Fill a notebook to MAX_CELLS_PER_NOTEBOOK (10,000) cells, then one execution more adds a
    cell: it is set aside with its reason, not stored; a re-run of a cell still lands, and so
    does a new cell whose execution deletes another (JupyterLab's deletedCells)."""
    notebook = "attack/full.ipynb"
    key = "full-run"
    chunk = 2_500
    before = stored_version_bytes(team.db_url)
    for first in range(0, MAX_CELLS_PER_NOTEBOOK, chunk):
        records = adding_cells(notebook, first, chunk, key)
        r = ingest(team, [run(key, notebook), *records] if first == 0 else records)
        assert r.status_code == 200, r.text[:500]
        # Still linear while filling (the old scheme wrote ~250 MB on the first chunk alone).
        grown = stored_version_bytes(team.db_url) - before
        assert grown < 2_000 * (first + chunk), f"{grown:,} B for {first + chunk:,} cells"
    over = execution(
        MAX_CELLS_PER_NOTEBOOK + 1, "one_more = 1", "one-cell-too-many", key, notebook,
        msg_id=f"{key}-over",
    )  # fmt: skip
    rerun = execution(
        MAX_CELLS_PER_NOTEBOOK + 2, code(3, rev=2), cell_id(3), key, notebook,
        msg_id=f"{key}-rerun",
    )  # fmt: skip
    swap = execution(
        MAX_CELLS_PER_NOTEBOOK + 3, "swapped = 1", "swapped-in", key, notebook,
        msg_id=f"{key}-swap", deleted_cells=[cell_id(0)],
    )  # fmt: skip
    r = ingest(team, [over, rerun, swap])
    assert r.status_code == 200, r.text[:500]
    rejected = r.json()["rejected"]
    assert [x["index"] for x in rejected] == [0]
    assert f"at most {MAX_CELLS_PER_NOTEBOOK:,}" in rejected[0]["reason"]
    api = team.as_("vera")
    stored = api.cellops("executions", notebook=notebook, limit=5)["items"]
    assert "one-cell-too-many" not in {e["cell_id"] for e in stored}
    assert {f"{key}-rerun", f"{key}-swap"} <= {e["msg_id"] for e in stored}
    numbers = all_versions(team, notebook)
    # The rerun's edit and the swap (a deletion makes room), not the extra cell.
    assert max(numbers) == MAX_CELLS_PER_NOTEBOOK + 2
    cells = notebook_cells(team, numbers[max(numbers)])
    assert len(cells) == MAX_CELLS_PER_NOTEBOOK
    assert cells[2] == (cell_id(3), code(3, rev=2))
    assert cells[-1] == ("swapped-in", "swapped = 1")


def test_too_many_records_in_one_request_answer_a_short_400(team: Team) -> None:
    """A full request (MAX_RECORDS_PER_REQUEST records; a member's writer sends 1,000) lands;
    one record more answers 400 naming the limit, not an echo of the body (pydantic's error
    repeated all 10,001 records: a 4.3 MB answer), and stores nothing."""
    full = "attack/full-request.ipynb"
    records = [
        run("full-request", full),
        *adding_cells(full, 0, MAX_RECORDS_PER_REQUEST - 1, "full-request"),
    ]
    r = ingest(team, records)
    assert r.status_code == 200, r.text[:500]
    assert r.json()["accepted"] == MAX_RECORDS_PER_REQUEST

    notebook = "attack/too-many.ipynb"
    records = [
        run("too-many", notebook),
        *adding_cells(notebook, 0, MAX_RECORDS_PER_REQUEST, "too-many"),
    ]
    r = ingest(team, records)
    assert r.status_code == 400
    assert len(r.content) < 1_000, f"{len(r.content):,} B answer"
    body = r.json()
    assert str(MAX_RECORDS_PER_REQUEST) in body["error"]
    assert body["detail"] == {"limit": MAX_RECORDS_PER_REQUEST, "records": len(records)}
    paths = {n["path"] for n in team.as_("vera").cellops("notebooks", limit=500)["items"]}
    assert full in paths and notebook not in paths


def test_oversized_ingest_body_answers_413_before_it_is_read(team: Team) -> None:
    """A client announcing a 1 GiB ingest body gets 413 with the limit, without sending it."""
    url = urlsplit(team.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            (
                f"POST /{API}/ingest HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"Authorization: token {team.tokens['alice']}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {2**30}\r\n\r\n"
            ).encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert "limit" in json.loads(body[body.index(b"{") :])["detail"]


# -- migration: stores written by the full-list scheme ---------------------------------------


def legacy_store(db_url: str, revision: str) -> None:
    """A store at ``revision`` holding one notebook's versions as the old code wrote them:
    every version a full cell list in ``texts``."""
    engine = create_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        md = sa.MetaData()
        md.reflect(engine, only=["notebooks", "runs", "executions", "texts", "versions"])
        t = md.tables
        with engine.begin() as conn:
            nb = conn.execute(
                t["notebooks"].insert().returning(t["notebooks"].c.id),
                {"path": "legacy.ipynb", "created_at": T0, "last_activity_at": T0,
                 "versions_count": len(LEGACY)},
            ).scalar_one()  # fmt: skip
            run_id = conn.execute(
                t["runs"].insert().returning(t["runs"].c.id),
                {"key": "legacy-run", "notebook_id": nb, "kernel_id": "k", "started_at": T0,
                 "source": "s", "instance": "i"},
            ).scalar_one()  # fmt: skip
            texts: dict[str, str] = {}
            for number, (cells, changed) in enumerate(LEGACY, start=1):
                texts.update({_sha(body): body for _, body in cells})
                listing = json.dumps(
                    [[cid, _sha(body)] for cid, body in cells], separators=(",", ":")
                )
                texts[_sha(listing)] = listing
                ex = conn.execute(
                    t["executions"].insert().returning(t["executions"].c.id),
                    {"msg_id": f"legacy-{number}", "run_id": run_id, "notebook_id": nb,
                     "seq": number, "cell_id": changed, "code_sha": _sha(dict(cells)[changed]),
                     "status": "ok", "started_at": T0, "version_number": number},
                ).scalar_one()  # fmt: skip
                conn.execute(
                    t["versions"].insert(),
                    {"notebook_id": nb, "number": number, "created_at": T0, "execution_id": ex,
                     "cells_sha": _sha(listing), "cells_count": len(cells)},
                )  # fmt: skip
            conn.execute(t["texts"].insert(), [{"sha256": k, "body": v} for k, v in texts.items()])
    finally:
        engine.dispose()


def _sha(body: str) -> str:
    import hashlib

    return hashlib.sha256(body.encode()).hexdigest()


# (cells after the version, the cell its execution ran)
LEGACY: list[tuple[list[tuple[str, str]], str]] = [
    ([("a", "a = 1")], "a"),
    ([("a", "a = 1"), ("b", "b = a + 1")], "b"),
    ([("a", "a = 2"), ("b", "b = a + 1")], "a"),
    ([("a", "a = 2"), ("c", "c = 3")], "c"),  # b deleted while c ran
]


@pytest.mark.parametrize("revision", ["0003", "0004"])
def test_store_written_by_the_full_list_scheme_reads_the_same_after_upgrade(
    db_url: str, tmp_path: Path, revision: str
) -> None:
    """Versions stored as full cell lists read back unchanged after the upgrade; the notebook
    then goes on from its last version, and 1,000 more executions adding a cell each grow it
    linearly (the old scheme: 55 MB on SQLite, 39 MB on PostgreSQL; now 0.5 and 0.7 MB)."""
    legacy_store(db_url, revision)
    store = Store(db_url, str(tmp_path / "artifacts"))  # migrates to head
    try:
        ids = {v.number: v.id for v in store.list_versions("legacy.ipynb", limit=50).items}
        assert sorted(ids) == [1, 2, 3, 4]
        for number, (cells, _) in enumerate(LEGACY, start=1):
            nb = store.version_notebook(ids[number])
            assert [(c["id"], c["source"]) for c in nb["cells"]] == cells
        diff = store.diff_versions(ids[2], ids[4])
        assert [c.cell_id for c in diff.added] == ["c"]
        assert [c.cell_id for c in diff.removed] == ["b"]
        assert [c.cell_id for c in diff.changed] == ["a"]

        before = stored_version_bytes(db_url)
        more = 1_000
        store.ingest_json(
            [
                run("legacy-run-2", "legacy.ipynb"),
                *adding_cells("legacy.ipynb", 0, more, "legacy-run-2"),
            ]
        )
        grown = stored_version_bytes(db_url) - before
        assert grown < 2 * 1024**2, f"{grown:,} B for {more:,} versions"
        latest = store.list_versions("legacy.ipynb", limit=1).items[0]
        assert latest.number == len(LEGACY) + more
        nb = store.version_notebook(latest.id)
        cells = [(c["id"], c["source"]) for c in nb["cells"]]
        assert cells == [*LEGACY[-1][0], *first_cells(more)]
    finally:
        store.close()
