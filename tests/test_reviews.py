"""Reviews of model versions through a real `cellops serve`, on SQLite and PostgreSQL.

alice and bob are editors, ada and april approvers, vera a viewer, admin the admin
(tests/attacks/conftest.py; april is added by tests/reviewing.py). Every test registers a
model of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from cellops_server.store.tables import comments

from .attacks.conftest import Team
from .reviewing import (
    API,
    activity_of,
    add_members,
    ask,
    error_of,
    inbox_of,
    new_model,
    registered,
    reviews_of,
    team_db,
    verdict,
)


@pytest.fixture(scope="module")
def db(team: Team) -> Iterator[sa.Engine]:
    yield from team_db(team)


# -- review requests -------------------------------------------------------------------------


def test_an_editor_asks_known_users_and_they_find_it_in_their_inbox(
    team: Team, db: sa.Engine
) -> None:
    alice = team.as_("alice")
    name = new_model()
    v = registered(alice, name)
    r = ask(alice, name, v, ["ada", "bob", "ada"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "requested"
    assert sorted(body["requested"]) == ["ada", "bob"]
    assert body["approvals"] == [] and body["items"] == []
    for user in ("ada", "bob"):
        assert (
            "review_request",
            "review.requested",
            name,
            v,
        ) in inbox_of(db, user)
    assert not [e for e in inbox_of(db, "alice") if e[2] == name]  # the asker is not notified
    assert team.as_("vera").get(f"{API}/models/{name}/versions/{v}")["review"] == {
        "state": "requested",
        "approvals": [],
    }


def test_unknown_reviewers_are_named_and_nothing_is_stored(team: Team, db: sa.Engine) -> None:
    alice = team.as_("alice")
    name = new_model()
    v = registered(alice, name)
    err = error_of(ask(alice, name, v, ["ada", "nobody", "ghost"]), 400)
    assert "'nobody'" in err["error"] and "'ghost'" in err["error"]
    assert err["detail"] == {"reviewers": ["nobody", "ghost"]}
    assert reviews_of(alice, name, v)["requested"] == []  # not even ada was asked
    assert not [e for e in inbox_of(db, "ada") if e[2] == name]


def test_the_author_cannot_be_asked_to_review_their_own_version(team: Team) -> None:
    alice, bob = team.as_("alice"), team.as_("bob")
    name = new_model()
    v = registered(alice, name)
    err = error_of(ask(bob, name, v, ["alice", "ada"]), 400)
    assert "alice" in err["error"] and "created this version" in err["error"]


def test_a_viewer_cannot_ask_for_reviews_and_a_missing_version_is_404(team: Team) -> None:
    alice = team.as_("alice")
    name = new_model()
    v = registered(alice, name)
    error_of(ask(team.as_("vera"), name, v, ["ada"]), 403)
    error_of(ask(alice, name, v + 1, ["ada"]), 404)
    error_of(ask(alice, new_model(), 1, ["ada"]), 404)


# -- verdicts --------------------------------------------------------------------------------


def test_an_approver_approves_with_a_comment_and_the_author_is_told(
    team: Team, db: sa.Engine
) -> None:
    alice, ada = team.as_("alice"), team.as_("ada")
    name = new_model()
    v = registered(alice, name)
    assert ask(alice, name, v, ["ada", "april"]).status_code == 201
    r = verdict(ada, name, v, "approve", "Looks good: **calibrated**.")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "approved" and body["approvals"] == ["ada"]
    assert body["requested"] == ["april"]  # ada answered; april has not yet
    (item,) = body["items"]
    assert item["reviewer"] == "ada" and item["verdict"] == "approve"
    assert item["body"] == "Looks good: **calibrated**."
    # The body is a comment on the version, by ada, in its thread.
    with db.connect() as conn:
        row = conn.execute(sa.select(comments).where(comments.c.id == item["comment_id"])).one()
    assert (row.target_kind, row.model_version, row.author) == ("model_version", v, "ada")
    assert row.body == "Looks good: **calibrated**." and row.mentions == []
    assert ("review", "review.submitted", name, v) in inbox_of(db, "alice")
    submitted = [a for a in activity_of(db, name) if a[0] == "review.submitted"]
    assert submitted == [("review.submitted", "ada", {"verdict": "approve"})]
    listed = alice.get(f"{API}/models/{name}/versions")["items"]
    assert listed[0]["review"] == {"state": "approved", "approvals": ["ada"]}


def test_the_latest_verdict_of_each_reviewer_counts(team: Team) -> None:
    add_members(team)
    alice, ada, april = team.as_("alice"), team.as_("ada"), team.as_("april")
    name = new_model()
    v = registered(alice, name)
    assert reviews_of(alice, name, v)["state"] == "none"
    assert verdict(ada, name, v, "request_changes", "Leaks the label.").json()["state"] == (
        "changes_requested"
    )
    assert verdict(april, name, v, "approve").json()["state"] == "changes_requested"
    now = verdict(ada, name, v, "approve").json()
    assert now["state"] == "approved"
    assert now["approvals"] == ["ada", "april"] and now["changes_requested"] == []
    assert [i["verdict"] for i in now["items"]] == ["request_changes", "approve", "approve"]
    again = verdict(april, name, v, "request_changes").json()
    assert again["state"] == "changes_requested" and again["changes_requested"] == ["april"]


def test_asking_again_after_an_answer_asks_anew(team: Team) -> None:
    alice, ada = team.as_("alice"), team.as_("ada")
    name = new_model()
    v = registered(alice, name)
    ask(alice, name, v, ["ada"])
    verdict(ada, name, v, "request_changes")
    assert reviews_of(alice, name, v)["requested"] == []
    renewed = ask(alice, name, v, ["ada"]).json()
    assert renewed["requested"] == ["ada"]
    assert renewed["state"] == "changes_requested"  # her last verdict still stands


def test_nobody_reviews_their_own_version_not_even_an_admin(team: Team, db: sa.Engine) -> None:
    for author in ("ada", "admin"):
        api = team.as_(author)
        name = new_model()
        v = registered(api, name)
        for what in ("approve", "request_changes"):
            err = error_of(verdict(api, name, v, what, "mine is great"), 403)
            assert "own version" in err["error"]
        assert reviews_of(api, name, v)["items"] == []
        with db.connect() as conn:
            assert not conn.scalar(
                sa.select(sa.func.count())
                .select_from(comments)
                .where(comments.c.author == author)
                .where(comments.c.body == "mine is great")
            )


def test_editors_and_viewers_cannot_give_verdicts(team: Team) -> None:
    alice = team.as_("alice")
    name = new_model()
    v = registered(alice, name)
    for who in ("bob", "vera"):
        error_of(verdict(team.as_(who), name, v, "approve"), 403)
    assert reviews_of(alice, name, v)["state"] == "none"


def test_reviews_of_a_missing_version_are_404(team: Team) -> None:
    alice, ada = team.as_("alice"), team.as_("ada")
    name = new_model()
    v = registered(alice, name)
    error_of(alice.request("GET", f"{API}/models/{name}/versions/{v + 1}/reviews"), 404)
    error_of(verdict(ada, name, v + 1, "approve"), 404)
    error_of(verdict(ada, new_model(), 1, "approve"), 404)
