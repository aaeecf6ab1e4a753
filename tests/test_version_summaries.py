"""Versions people can read: what each changed, steps of a top-to-bottom run, names and pins.

Store tests run on SQLite and PostgreSQL (``store``); the API tests on a team backend
per store (``team``), where roles and notebook owners are enforced.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from cellops_server.store import Store, create_engine
from cellops_server.store.engine import MIGRATIONS
from cellops_server.store.tables import versions
from sqlalchemy import inspect

from .attacks.conftest import API, Team
from .records import execution, run

_notebooks = itertools.count()


def summaries(store: Store, path: str = "nb.ipynb", **kw: Any) -> list[tuple[int, str, int]]:
    """(number, summary, step) of each version, oldest first."""
    items = store.list_versions(path, **kw).items
    return [(v.number, v.summary, v.step) for v in reversed(items)]


# -- what changed, and steps ------------------------------------------------------------------


def test_each_version_says_what_changed_since_the_one_before(store: Store) -> None:
    store.ingest_json(
        [
            run(),
            execution(1, "a = 1", "c1"),
            execution(2, "b = 2", "c2"),
            execution(3, "a = 10", "c1"),  # changed
            execution(4, "c = 3", "c3", deleted_cells=["c2"]),  # one added, one removed
            execution(5, "", None, deleted_cells=["c1"]),  # only a deletion (no cell id)
        ]
    )
    versions = {v.number: v for v in store.list_versions("nb.ipynb").items}
    counts = {
        n: (v.changes.changed, v.changes.added, v.changes.removed) for n, v in versions.items()
    }
    assert counts == {1: (0, 1, 0), 2: (0, 1, 0), 3: (1, 0, 0), 4: (0, 1, 1), 5: (0, 0, 1)}
    assert {n: v.summary for n, v in versions.items()} == {
        1: "first version, 1 cell",
        2: "1 cell added",
        3: "1 cell changed",
        4: "1 cell added, 1 removed",
        5: "1 cell removed",
    }
    # The single-version answers and the diff carry the same description.
    assert store.get_version(versions[4].id).summary == "1 cell added, 1 removed"
    diff = store.diff_versions(versions[2].id, versions[3].id)
    assert (diff.from_version.summary, diff.to_version.summary) == (
        "1 cell added",
        "1 cell changed",
    )


def test_versions_stored_before_deltas_are_described_from_their_cell_counts(
    store: Store,
) -> None:
    store.ingest_json(
        [
            run(),
            execution(1, "a = 1", "c1"),
            execution(2, "b = 1", "c2"),
            execution(3, "b = 2", "c2"),
        ]
    )
    # Rows written before revision 0005 hold only a full cell list, no delta.
    with store.engine.begin() as conn:
        conn.execute(
            versions.update().values(delta_deleted=None, delta_cell_id=None, delta_code_sha=None)
        )
    assert summaries(store) == [
        (1, "first version, 1 cell", 1),
        (2, "1 cell added", 1),
        (3, "1 cell changed", 3),
    ]


def test_a_fresh_notebook_run_top_to_bottom_is_one_step(store: Store) -> None:
    cells = [execution(n, f"x{n} = {n}", f"c{n}") for n in range(1, 15)]
    store.ingest_json([run(), *cells])
    listed = summaries(store)
    assert len(listed) == 14
    assert {step for _, _, step in listed} == {1}  # v1-v14: one step of 14 cells added

    # Editing a cell is a step of its own; adding cells after it starts the next step.
    store.ingest_json(
        [
            execution(15, "x3 = 33", "c3"),
            execution(16, "y = 1", "c15"),
            execution(17, "z = 1", "c16"),
        ]
    )
    assert summaries(store)[-3:] == [
        (15, "1 cell changed", 15),
        (16, "1 cell added", 16),
        (17, "1 cell added", 16),
    ]


def test_a_step_reaches_back_across_pages(store: Store) -> None:
    store.ingest_json([run(), *(execution(n, f"v = {n}", f"c{n}") for n in range(1, 8))])
    first = store.list_versions("nb.ipynb", limit=3)
    second = store.list_versions("nb.ipynb", cursor=first.next, limit=3)
    assert [v.step for v in first.items + second.items] == [1] * 6


def test_additions_of_another_run_start_a_new_step(store: Store) -> None:
    store.ingest_json(
        [
            run("run-1"),
            execution(1, "a = 1", "c1", "run-1"),
            execution(2, "b = 1", "c2", "run-1"),
            run("run-2", kernel_id="kernel-2"),
            execution(1, "c = 1", "c3", "run-2"),
            execution(2, "d = 1", "c4", "run-2"),
        ]
    )
    assert [step for _, _, step in summaries(store)] == [1, 1, 3, 3]


def test_named_and_pinned_versions_are_never_folded_into_a_step(store: Store) -> None:
    store.ingest_json([run(), *(execution(n, f"v = {n}", f"c{n}") for n in range(1, 7))])
    ids = {v.number: v.id for v in store.list_versions("nb.ipynb").items}
    store.update_version(ids[3], _update(name="baseline"))
    store.update_version(ids[5], _update(pinned=True))
    assert [step for _, _, step in summaries(store)] == [1, 1, 3, 4, 5, 6]

    store.update_version(ids[3], _update(name=None))  # unnamed: folded again
    store.update_version(ids[5], _update(pinned=False))
    assert [step for _, _, step in summaries(store)] == [1] * 6


# -- naming and pinning ------------------------------------------------------------------------


def _update(**fields: Any) -> Any:
    from cellops_server.schemas import VersionUpdate

    return VersionUpdate(**fields)


def test_a_name_is_trimmed_kept_apart_from_the_pin_and_cleared_when_blank(store: Store) -> None:
    store.ingest_json([run(), execution(1, "a = 1", "c1")])
    (v,) = store.list_versions("nb.ipynb").items
    named = store.update_version(v.id, _update(name="  before tuning  "))
    assert (named.name, named.pinned) == ("before tuning", False)
    pinned = store.update_version(v.id, _update(pinned=True))
    assert (pinned.name, pinned.pinned) == ("before tuning", True)  # name left as it was
    cleared = store.update_version(v.id, _update(name="   "))
    assert (cleared.name, cleared.pinned) == (None, True)
    (listed,) = store.list_versions("nb.ipynb").items
    assert (listed.name, listed.pinned) == (None, True)


def test_migration_0008_keeps_existing_versions(db_url: str, tmp_path: Path) -> None:
    # Versions stored by today's code, then the schema taken back to 0007 (no names, no pins):
    # upgrading again must keep every version and give each an empty name and no pin.
    stored = Store(db_url, str(tmp_path / "artifacts"))
    stored.ingest_json([run(), execution(1, "a = 1", "c1"), execution(2, "a = 2", "c1")])
    stored.close()
    engine = create_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
        assert "name" not in {c["name"] for c in inspect(conn).get_columns("versions")}
    engine.dispose()

    upgraded = Store(db_url, str(tmp_path / "artifacts"))
    try:
        listed = upgraded.list_versions("nb.ipynb").items
        assert [(v.number, v.summary, v.name, v.pinned) for v in listed] == [
            (2, "1 cell changed", None, False),
            (1, "first version, 1 cell", None, False),
        ]
        assert upgraded.update_version(listed[0].id, _update(name="kept")).name == "kept"
    finally:
        upgraded.close()


# -- the API on a team backend -----------------------------------------------------------------


def alices_notebook(team: Team, cells: int = 3) -> tuple[str, list[dict[str, Any]]]:
    """A notebook alice ran top to bottom; its versions newest first."""
    path = f"summaries-{next(_notebooks)}.ipynb"
    records = [run(f"{path}-run", path)]
    records += [
        execution(n, f"x = {n}", f"c{n}", f"{path}-run", path, msg_id=f"{path}-{n}")
        for n in range(1, cells + 1)
    ]
    alice = team.as_("alice")
    r = alice.request("POST", f"{API}/ingest", json={"records": records})
    assert r.status_code == 200 and r.json()["rejected"] == [], r.text
    return path, alice.get(f"{API}/versions", notebook=path)["items"]


def test_the_versions_api_answers_summaries_and_steps(team: Team) -> None:
    _, items = alices_notebook(team)
    assert [(v["number"], v["summary"], v["step"]) for v in items] == [
        (3, "1 cell added", 1),
        (2, "1 cell added", 1),
        (1, "first version, 1 cell", 1),
    ]
    assert items[0]["changes"] == {"changed": 0, "added": 1, "removed": 0}
    assert (items[0]["name"], items[0]["pinned"]) == (None, False)


def test_the_owner_names_and_pins_a_version(team: Team) -> None:
    path, items = alices_notebook(team)
    alice = team.as_("alice")
    vid = items[1]["id"]
    r = alice.request("PATCH", f"{API}/versions/{vid}", json={"name": " baseline ", "pinned": True})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["pinned"], r.json()["step"]) == ("baseline", True, 2)
    listed = alice.get(f"{API}/versions", notebook=path)["items"]
    assert [(v["number"], v["name"], v["pinned"], v["step"]) for v in listed] == [
        (3, None, False, 3),
        (2, "baseline", True, 2),
        (1, None, False, 1),
    ]
    # Only the pin: the name stays.
    r = alice.request("PATCH", f"{API}/versions/{vid}", json={"pinned": False})
    assert (r.json()["name"], r.json()["pinned"]) == ("baseline", False)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"name": "x" * 101}, "at most 100 characters"),
        ({"name": "two\nlines"}, "control characters"),
        ({"name": 5}, "invalid VersionUpdate"),
        ({"pinned": "yes please"}, "invalid VersionUpdate"),
        ({"title": "x"}, "invalid VersionUpdate"),
        ([1], "invalid VersionUpdate"),
    ],
)
def test_bad_names_and_pins_get_400_and_change_nothing(team: Team, body: Any, says: str) -> None:
    path, items = alices_notebook(team, cells=1)
    alice = team.as_("alice")
    r = alice.request("PATCH", f"{API}/versions/{items[0]['id']}", json=body)
    assert r.status_code == 400, r.text
    assert says in r.json()["error"]
    (after,) = alice.get(f"{API}/versions", notebook=path)["items"]
    assert (after["name"], after["pinned"]) == (None, False)


def test_bad_version_ids_are_told_apart(team: Team) -> None:
    alice = team.as_("alice")
    r = alice.request("PATCH", f"{API}/versions/abc", json={"pinned": True})
    assert r.status_code == 400 and "integer" in r.json()["error"]
    r = alice.request("PATCH", f"{API}/versions/999999", json={"pinned": True})
    assert r.status_code == 404 and "no version" in r.json()["error"]


@pytest.mark.parametrize(("member", "says"), [("vera", "not authorized"), ("bob", "alice")])
def test_a_viewer_or_another_member_cannot_name_or_pin(team: Team, member: str, says: str) -> None:
    path, items = alices_notebook(team, cells=1)
    r = team.as_(member).request(
        "PATCH", f"{API}/versions/{items[0]['id']}", json={"name": "mine", "pinned": True}
    )
    assert r.status_code == 403, r.text
    assert says in r.json()["error"]
    (after,) = team.as_("alice").get(f"{API}/versions", notebook=path)["items"]
    assert (after["name"], after["pinned"]) == (None, False)
