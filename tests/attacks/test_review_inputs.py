"""Attacks on reviews and promotion policies: self-approval by every path, overrides by
non-admins, policy bodies huge or invalid, unknown or crafted reviewers, version numbers
out of range, non-finite numbers in gates. Each is refused with a 4xx JSON error that says
what to fix, and nothing stored changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from ..reviewing import (
    API,
    activity_of,
    ask,
    error_of,
    new_model,
    register,
    registered,
    reviews_of,
    team_db,
    verdict,
)
from .conftest import Team

RULE = {"min_approvals": 1, "metric_gates": [{"metric": "accuracy", "op": ">=", "value": 0.9}]}


@pytest.fixture(scope="module")
def db(team: Team) -> Iterator[sa.Engine]:
    yield from team_db(team)


def raw_put_policy(team: Team, who: str, name: str, data: bytes | str) -> requests.Response:
    api = team.as_(who)
    return requests.put(
        f"{api.base}/{API}/models/{name}/policy",
        data=data,
        headers={**api.headers, "Content-Type": "application/json"},
        timeout=60,
    )


def policy_of(team: Team, name: str) -> dict[str, Any]:
    return team.as_("vera").get(f"{API}/models/{name}/policy")


@pytest.fixture
def guarded(team: Team) -> tuple[str, int]:
    """alice's model with one version (accuracy 0.95) and ``production`` protected."""
    name = new_model()
    v = registered(team.as_("alice"), name, {"accuracy": 0.95})
    r = team.as_("admin").request(
        "PUT", f"{API}/models/{name}/policy", json={"protected_aliases": {"production": RULE}}
    )
    assert r.status_code == 200, r.text
    return name, v


# -- self-approval, by every path ------------------------------------------------------------


def test_self_approval_through_the_api_is_refused_for_every_role_that_may_approve(
    team: Team, guarded: tuple[str, int]
) -> None:
    name, _ = guarded
    for author in ("ada", "admin"):
        v = registered(team.as_(author), name, {"accuracy": 0.99})
        error_of(verdict(team.as_(author), name, v, "approve"), 403)
        assert reviews_of(team.as_(author), name, v)["approvals"] == []
        # Nor can they count as their own reviewer through a request.
        assert ask(team.as_(author), name, v, [author]).status_code == 400
        checks = team.as_(author).get(f"{API}/models/{name}/versions/{v}/promotion")["items"]
        assert checks[0]["allowed"] is False


def test_an_author_cannot_approve_by_registering_straight_into_a_protected_alias(
    team: Team, guarded: tuple[str, int], db: sa.Engine
) -> None:
    name, v = guarded
    for who in ("alice", "ada"):
        r = register(team.as_(who), name, {"accuracy": 0.99}, alias="production")
        assert {f["rule"] for f in error_of(r, 409)["detail"]["failed"]} == {"min_approvals"}
    versions = team.as_("alice").get(f"{API}/models/{name}/versions")["items"]
    assert [x["version"] for x in versions] == [v]
    assert [a[0] for a in activity_of(db, name)].count("model_version.created") == 1


@pytest.mark.parametrize("who", ["alice", "ada", "vera"])
def test_override_by_a_non_admin_is_refused_and_moves_nothing(
    team: Team, guarded: tuple[str, int], db: sa.Engine, who: str
) -> None:
    name, v = guarded
    r = team.as_(who).request(
        "PUT",
        f"{API}/models/{name}/aliases/production",
        json={"version": v, "override": "I am sure"},
    )
    error_of(r, 403)
    assert team.as_("vera").get(f"{API}/models/{name}")["aliases"] == {}
    assert "alias.override" not in [a[0] for a in activity_of(db, name)]


def test_an_approval_cannot_be_slipped_in_under_another_name(
    team: Team, guarded: tuple[str, int]
) -> None:
    name, v = guarded
    r = team.as_("ada").request(
        "POST",
        f"{API}/models/{name}/versions/{v}/reviews",
        json={"verdict": "approve", "reviewer": "april"},
    )
    error_of(r, 400)
    assert reviews_of(team.as_("alice"), name, v)["items"] == []


# -- reviewers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reviewers",
    [
        [],
        ["ada"] * 21,
        ["x" * 257],
        [""],
        "ada",
        [1, 2],
        None,
        ["ada\n"],
        ["ADA"],
        ["ada", "' OR 1=1 --"],
        ["\u0000"],
    ],
    ids=repr,
)
def test_crafted_reviewers_are_refused_and_nobody_is_asked(
    team: Team, db: sa.Engine, reviewers: Any
) -> None:
    name = new_model()
    v = registered(team.as_("alice"), name)
    r = team.as_("alice").request(
        "POST", f"{API}/models/{name}/versions/{v}/review-requests", json={"reviewers": reviewers}
    )
    error_of(r, 400)
    assert reviews_of(team.as_("alice"), name, v)["requested"] == []
    assert not [a for a in activity_of(db, name) if a[0] == "review.requested"]


def test_an_unknown_reviewer_is_named_but_not_echoed_at_length(team: Team) -> None:
    name = new_model()
    v = registered(team.as_("alice"), name)
    long_name = "z" * 256
    err = error_of(ask(team.as_("alice"), name, v, ["ada", long_name]), 400)
    assert len(err["error"]) < 400 and "zzzz" in err["error"]
    assert err["detail"] == {"reviewers": [long_name]}


# -- verdict bodies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"verdict": "APPROVE"},
        {"verdict": "lgtm"},
        {"verdict": None},
        {},
        {"verdict": "approve", "body": ""},
        {"verdict": "approve", "body": "   \n\t "},
        {"verdict": "approve", "body": "x" * 10_001},
        {"verdict": "approve", "body": 42},
    ],
    ids=repr,
)
def test_malformed_verdicts_are_refused_and_store_nothing(
    team: Team, guarded: tuple[str, int], payload: dict[str, Any]
) -> None:
    name, v = guarded
    r = team.as_("ada").request("POST", f"{API}/models/{name}/versions/{v}/reviews", json=payload)
    error_of(r, 400)
    assert reviews_of(team.as_("alice"), name, v)["items"] == []


# -- version numbers and model names in the path ---------------------------------------------


@pytest.mark.parametrize(
    ("version", "status"),
    [
        ("0", 404),
        ("-1", 400),
        ("1e3", 400),
        ("1.0", 400),
        ("٣", 400),  # an Arabic-Indic digit: isdigit() says yes, the store never has it
        ("9" * 10, 400),
        ("9" * 5000, 400),
        ("999999999", 404),
        ("%00", 400),
    ],
    ids=repr,
)
def test_version_numbers_out_of_range_are_refused_on_every_review_route(
    team: Team, guarded: tuple[str, int], version: str, status: int
) -> None:
    name, _ = guarded
    alice, ada = team.as_("alice"), team.as_("ada")
    base = f"{API}/models/{name}/versions/{version}"
    answers = [
        alice.request("GET", f"{base}/reviews"),
        alice.request("GET", f"{base}/promotion"),
        alice.request("POST", f"{base}/review-requests", json={"reviewers": ["ada"]}),
        ada.request("POST", f"{base}/reviews", json={"verdict": "approve"}),
    ]
    for r in answers:
        error_of(r, status)


@pytest.mark.parametrize("name", ["-bad", "a" * 129, "..", "a b"], ids=repr)
def test_invalid_model_names_are_400_on_policy_and_review_routes(team: Team, name: str) -> None:
    admin = team.as_("admin")
    for r in (
        admin.request("GET", f"{API}/models/{name}/policy"),
        admin.request("PUT", f"{API}/models/{name}/policy", json={"protected_aliases": {}}),
        admin.request("GET", f"{API}/models/{name}/versions/1/reviews"),
        admin.request("GET", f"{API}/models/{name}/versions/1/promotion"),
    ):
        assert r.status_code in (400, 404), r.text  # ".." may be normalized away by the URL
        assert set(r.json()) == {"error", "detail"}


# -- policy bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '{"protected_aliases": {"production": {"metric_gates": [{"metric": "accuracy", '
        '"op": ">=", "value": NaN}]}}}',
        '{"protected_aliases": {"production": {"metric_gates": [{"metric": "accuracy", '
        '"op": ">=", "value": Infinity}]}}}',
        '{"protected_aliases": {"production": {"metric_gates": [{"metric": "accuracy", '
        '"op": ">=", "value": 1e999}]}}}',
        '{"protected_aliases": {"production": {"not_worse_than_current": [{"metric": "a", '
        '"tolerance": -Infinity}]}}}',
        '{"protected_aliases": {"production": {"not_worse_than_current": [{"metric": "a", '
        '"tolerance": -0.1}]}}}',
        '{"protected_aliases": {"production": {"metric_gates": [{"metric": "accuracy", '
        '"op": "=>", "value": 1}]}}}',
        '{"protected_aliases": {"production": {"metric_gates": [{"metric": "", '
        '"op": ">=", "value": 1}]}}}',
        '{"protected_aliases": {"production": {"min_approvals": -1}}}',
        '{"protected_aliases": {"production": {"min_approvals": 1000000000000000000000}}}',
        '{"protected_aliases": {"production": {"min_approvals": "1"}}}',
        '{"protected_aliases": {"production": {"block_on_changes_requested": "maybe"}}}',
        '{"protected_aliases": {"production": {"block_on_changes_requested": "false"}}}',
        '{"protected_aliases": {"production": {"not_worse_than_current": [{"metric": "a", "higher_is_better": 0}]}}}',
        '{"protected_aliases": {"production": {"unknown_rule": true}}}',
        '{"protected_aliases": {"production": null}}',
        '{"protected_aliases": []}',
        '{"protected_aliases": {"prod\\nuction": {}}}',
        '{"protected_aliases": {"": {}}}',
        '{"protected_aliases": {"production": {}}, "extra": 1}',
        "[]",
        "not json",
        '{"protected_aliases": ' + "[" * 10_000 + "]" * 10_000 + "}",
    ],
    ids=lambda b: b[:60],
)
def test_invalid_policies_are_refused_and_the_stored_one_stays(
    team: Team, guarded: tuple[str, int], body: str
) -> None:
    name, _ = guarded
    before = policy_of(team, name)
    error_of(raw_put_policy(team, "admin", name, body), 400)
    assert policy_of(team, name) == before


def test_too_many_protected_aliases_or_rules_are_refused(
    team: Team, guarded: tuple[str, int]
) -> None:
    name, _ = guarded
    before = policy_of(team, name)
    many = {"protected_aliases": {f"a{i}": {} for i in range(21)}}
    error_of(raw_put_policy(team, "admin", name, json.dumps(many)), 400)
    gates = [{"metric": f"m{i}", "op": ">=", "value": 0} for i in range(21)]
    body = {"protected_aliases": {"production": {"metric_gates": gates}}}
    error_of(raw_put_policy(team, "admin", name, json.dumps(body)), 400)
    assert policy_of(team, name) == before


def test_a_huge_policy_body_is_refused_before_it_is_read(
    team: Team, guarded: tuple[str, int]
) -> None:
    name, _ = guarded
    before = policy_of(team, name)
    huge = (
        '{"protected_aliases": {"production": {"metric_gates": [], "x": "'
        + "a" * (2 * 1024 * 1024)
        + '"}}}'
    )
    r = raw_put_policy(team, "admin", name, huge)
    assert error_of(r, 413)["detail"]["limit"] > 0
    assert policy_of(team, name) == before


def test_a_gate_on_a_metric_nobody_logged_fails_and_never_passes_by_accident(
    team: Team, db: sa.Engine
) -> None:
    name = new_model()
    v = registered(team.as_("alice"), name, {"accuracy": 0.95})
    rule = {
        "min_approvals": 0,
        "metric_gates": [{"metric": "accuracy\u0000", "op": "<=", "value": 1e308}],
    }
    r = team.as_("admin").request(
        "PUT", f"{API}/models/{name}/policy", json={"protected_aliases": {"production": rule}}
    )
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        moved = team.as_("alice").request(
            "PUT", f"{API}/models/{name}/aliases/production", json={"version": v}
        )
        error_of(moved, 409)
    assert team.as_("vera").get(f"{API}/models/{name}")["aliases"] == {}
