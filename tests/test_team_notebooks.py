"""Issue 10: the team's notebooks browser (GET /notebooks, GET /notebooks/{id}/cells).

alice and bob record into one real `cellops serve` (SQLite and PostgreSQL) through its
ingest endpoint, as their Jupyter servers do; every member, viewers included, can list the
team's notebooks and read any notebook's cells.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from . import records as rec
from .attacks.conftest import API, Team

STARTED = datetime.now(timezone.utc)


def record(team: Team, member: str, path: str, cells: list[tuple[str, str]], run: str) -> None:
    """``member`` runs ``cells`` (cell id, code) in one kernel session on ``path``, now."""
    start = datetime.now(timezone.utc)
    batch: list[dict[str, Any]] = [
        rec.run(run, path, user=member, started_at=start.isoformat(), kernel_id=f"k-{run}")
    ]
    for seq, (cell, code) in enumerate(cells, 1):
        at = start + timedelta(milliseconds=seq)
        extra: dict[str, Any] = {}
        if code.startswith("raise"):
            extra = {"status": "error", "error": {"ename": "ValueError", "evalue": "bad"}}
        batch.append(
            rec.execution(
                seq,
                code,
                cell,
                run,
                path,
                started_at=at.isoformat(),
                finished_at=(at + timedelta(microseconds=100)).isoformat(),
                **extra,
            )
        )
    r = team.as_(member).request("POST", f"{API}/ingest", json={"records": batch})
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def tag(team: Team) -> str:
    """A folder of this module's notebooks: alice's and bob's, one path shared by both."""
    tag = f"nb-{uuid.uuid4().hex[:8]}"
    record(team, "alice", f"{tag}/old.ipynb", [("a1", "x = 1")], f"{tag}-r1")
    record(team, "bob", f"{tag}/shared.ipynb", [("b1", "y = 2")], f"{tag}-r3")
    alice_cells = [("c1", "import math"), ("c2", "print(math.pi)"), ("c3", "raise ValueError")]
    record(team, "alice", f"{tag}/shared.ipynb", alice_cells, f"{tag}-r2")
    record(team, "alice", f"{tag}/shared.ipynb", [("c1", "import os")], f"{tag}-r2b")
    record(team, "bob", f"{tag}/bob.ipynb", [("b1", "z = 3")], f"{tag}-r4")
    record(team, "bob", f"{tag}/bob.ipynb", [("b1", "z = 4")], f"{tag}-r5")
    return tag


def listing(team: Team, who: str, **params: Any) -> list[dict[str, Any]]:
    return team.as_(who).get(f"{API}/notebooks", **params)["items"]


def test_a_member_lists_the_whole_teams_notebooks_newest_activity_first(
    team: Team, tag: str
) -> None:
    items = listing(team, "bob", q=tag)
    assert [(n["path"].split("/")[1], n["owner"]) for n in items] == [
        ("bob.ipynb", "bob"),
        ("shared.ipynb", "alice"),
        ("shared.ipynb", "bob"),
        ("old.ipynb", "alice"),
    ]
    bob_nb, alice_shared = items[0], items[1]
    assert (bob_nb["runs"], bob_nb["executions"]) == (2, 2)
    assert (alice_shared["runs"], alice_shared["executions"]) == (2, 4)
    assert alice_shared["versions"] >= 2  # import math, then import os in the same cell
    times = [n["last_activity_at"] for n in items]
    assert times == sorted(times, reverse=True)
    # The last activity is the latest execution (bob's second run), not the first one.
    assert datetime.fromisoformat(bob_nb["last_activity_at"]) >= STARTED


def test_the_owner_filter_and_the_path_search(team: Team, tag: str) -> None:
    mine = listing(team, "bob", q=tag, owner="me")
    assert {(n["path"], n["owner"]) for n in mine} == {
        (f"{tag}/bob.ipynb", "bob"),
        (f"{tag}/shared.ipynb", "bob"),
    }
    alices = listing(team, "bob", q=tag, owner="alice")
    assert [n["path"] for n in alices] == [f"{tag}/shared.ipynb", f"{tag}/old.ipynb"]
    assert listing(team, "bob", q=tag, owner="nobody-here") == []
    # Case-insensitive substring; LIKE wildcards are taken literally.
    assert [n["owner"] for n in listing(team, "bob", q=f"{tag.upper()}/SHARED")] == [
        "alice",
        "bob",
    ]
    assert listing(team, "bob", q=f"{tag}/%") == []
    assert listing(team, "bob", q=f"{tag}_") == []


def test_a_viewer_reads_a_teammates_notebook_cells(team: Team, tag: str) -> None:
    nb = listing(team, "alice", q=f"{tag}/shared", owner="alice")[0]
    body = team.as_("vera").get(f"{API}/notebooks/{nb['id']}/cells")
    assert body["notebook"]["owner"] == "alice"
    assert body["version"] == nb["versions"]
    cells = {c["cell_id"]: c for c in body["cells"]}
    assert [c["cell_id"] for c in body["cells"]] == ["c1", "c2", "c3"]
    assert cells["c1"]["code"] == "import os"  # the latest version: c1 was changed
    assert cells["c2"]["status"] == "ok" and cells["c2"]["output_text"] == "out 2\n"
    assert cells["c3"]["status"] == "error" and cells["c3"]["error"] == "ValueError: bad"
    # An earlier version still has the first code of c1.
    first = team.as_("vera").get(f"{API}/notebooks/{nb['id']}/cells", version=1)
    assert first["version"] == 1
    assert [c["code"] for c in first["cells"]] == ["import math"]


def test_pages_walk_every_notebook_once_in_order(team: Team, tag: str) -> None:
    everything = listing(team, "bob", q=tag)
    seen: list[int] = []
    cursor = None
    while True:
        body = team.as_("bob").get(f"{API}/notebooks", q=tag, limit=1, cursor=cursor or "")
        seen += [n["id"] for n in body["items"]]
        cursor = body["next"]
        if not cursor:
            break
    assert seen == [n["id"] for n in everything]


@pytest.mark.parametrize(
    "path,params,status,says",
    [
        ("notebooks", {"limit": "0"}, 400, "limit"),
        ("notebooks", {"limit": "many"}, 400, "limit"),
        ("notebooks", {"cursor": "not-a-cursor"}, 400, "cursor"),
        ("notebooks", {"owner": "x" * 300}, 400, "owner"),
        ("notebooks", {"q": "a\tb"}, 400, "control"),
        ("notebooks", {"q": "y" * 201}, 400, "q must be"),
        ("notebooks/abc/cells", {}, 400, "notebook id"),
        ("notebooks/999999/cells", {}, 404, "no notebook"),
        ("notebooks/1/cells", {"version": "0"}, 400, "version"),
        ("notebooks/1/cells", {"version": "999"}, 404, "no version 999"),
    ],
)
def test_bad_parameters_get_a_4xx_saying_what_to_fix(
    team: Team, tag: str, path: str, params: dict[str, str], status: int, says: str
) -> None:
    r = team.as_("bob").request("GET", f"{API}/{path}", params=params)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]


def test_nobody_lists_without_a_token(team: Team) -> None:
    r = team.api("").request("GET", f"{API}/notebooks")
    assert r.status_code == 401
