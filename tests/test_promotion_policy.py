"""Promotion policies enforced by a real `cellops serve` (SQLite and PostgreSQL): a
protected alias moves only for a version that passes its rules, or by an admin's recorded
override; registration with a protected alias stores nothing when refused."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from cellops_server.registry import Registry
from cellops_server.review import reviews as review_domain
from cellops_server.review.policy import PromotionRefused, set_policy
from cellops_server.schemas import ModelVersionCreate, PromotionPolicy
from cellops_server.store import Store
from cellops_server.store.tables import model_versions, models, reviews
from cellops_server.team.users import TeamUser, remove_user, set_role

from .attacks.conftest import Team
from .reviewing import (
    API,
    ARTIFACT,
    ARTIFACT_SHA,
    activity_of,
    add_members,
    error_of,
    new_model,
    register,
    registered,
    team_db,
    verdict,
)
from .support import Api, JupyterServer
from .test_registry import upload


@pytest.fixture(scope="module")
def db(team: Team) -> Iterator[sa.Engine]:
    yield from team_db(team)


PRODUCTION: dict[str, Any] = {
    "min_approvals": 1,
    "block_on_changes_requested": True,
    "metric_gates": [{"metric": "accuracy", "op": ">=", "value": 0.9}],
}


def put_policy(api: Api, name: str, aliases: dict[str, Any]) -> requests.Response:
    return api.request("PUT", f"{API}/models/{name}/policy", json={"protected_aliases": aliases})


def move(
    api: Api, name: str, alias: str, version: int, override: str | None = None
) -> requests.Response:
    body: dict[str, Any] = {"version": version}
    if override is not None:
        body["override"] = override
    return api.request("PUT", f"{API}/models/{name}/aliases/{alias}", json=body)


def aliases(api: Api, name: str) -> dict[str, int]:
    return api.get(f"{API}/models/{name}")["aliases"]


def failed_rules(r: requests.Response) -> dict[str, dict[str, Any]]:
    """The 409's failed rules by rule name."""
    err = error_of(r, 409)
    return {f["rule"]: f for f in err["detail"]["failed"]}


def protected_model(
    team: Team, rule: dict[str, Any] | None = None, **metrics: float
) -> tuple[str, int]:
    """A model of alice's with one version (``metrics``) and ``production`` protected."""
    name = new_model()
    v = registered(team.as_("alice"), name, metrics)
    r = put_policy(team.as_("admin"), name, {"production": rule or PRODUCTION})
    assert r.status_code == 200, r.text
    return name, v


# -- the policy document ---------------------------------------------------------------------


def test_only_an_admin_sets_a_policy_and_every_member_reads_it(team: Team, db: sa.Engine) -> None:
    name = new_model()
    registered(team.as_("alice"), name)
    empty = team.as_("vera").get(f"{API}/models/{name}/policy")
    assert empty["protected_aliases"] == {} and empty["updated_by"] is None
    for who in ("alice", "ada"):
        error_of(put_policy(team.as_(who), name, {"production": PRODUCTION}), 403)
    r = put_policy(team.as_("admin"), name, {"production": PRODUCTION})
    assert r.status_code == 200, r.text
    stored = team.as_("vera").get(f"{API}/models/{name}/policy")
    assert stored["updated_by"] == "admin" and stored["updated_at"]
    rule = stored["protected_aliases"]["production"]
    assert rule["min_approvals"] == 1 and rule["metric_gates"][0]["value"] == 0.9
    assert rule["not_worse_than_current"] == []
    assert ("policy.changed", "admin", {"protected_aliases": ["production"], "before": []}) in (
        activity_of(db, name)
    )


def test_a_policy_of_a_missing_model_is_404_and_alias_names_are_checked(team: Team) -> None:
    admin = team.as_("admin")
    error_of(admin.request("GET", f"{API}/models/{new_model()}/policy"), 404)
    error_of(put_policy(admin, new_model(), {"production": PRODUCTION}), 404)
    name = new_model()
    registered(team.as_("alice"), name)
    err = error_of(put_policy(admin, name, {"1st choice": PRODUCTION}), 400)
    assert "invalid alias" in err["error"]
    assert admin.get(f"{API}/models/{name}/policy")["protected_aliases"] == {}


# -- enforcement -----------------------------------------------------------------------------


def test_an_unreviewed_version_below_the_gate_is_refused_with_each_rule(team: Team) -> None:
    name, v = protected_model(team, accuracy=0.88)
    alice = team.as_("alice")
    r = move(alice, name, "production", v)
    failed = failed_rules(r)
    assert set(failed) == {"min_approvals", "metric:accuracy>="}
    assert failed["min_approvals"]["need"] == 1 and failed["min_approvals"]["have"] == 0
    assert failed["min_approvals"]["message"].startswith("needs 1 more approval")
    assert failed["metric:accuracy>="]["message"] == "accuracy 0.88 < 0.9"
    assert failed["metric:accuracy>="]["have"] == 0.88
    assert "production" not in aliases(alice, name)
    # The Models tab's "still missing" says the same.
    (check,) = alice.get(f"{API}/models/{name}/versions/{v}/promotion")["items"]
    assert check["alias"] == "production" and check["allowed"] is False
    assert {f["rule"] for f in check["failed"]} == set(failed)
    # Unprotected aliases move freely.
    assert move(alice, name, "staging", v).status_code == 200


def test_an_approved_version_that_passes_the_gate_moves_and_the_move_is_recorded(
    team: Team, db: sa.Engine
) -> None:
    name, v = protected_model(team, accuracy=0.95)
    alice = team.as_("alice")
    assert verdict(team.as_("ada"), name, v, "approve").status_code == 201
    checks = alice.get(f"{API}/models/{name}/versions/{v}/promotion")["items"]
    assert checks == [{"alias": "production", "allowed": True, "failed": []}]
    r = move(alice, name, "production", v)
    assert r.status_code == 200, r.text
    assert aliases(alice, name) == {"production": v}
    moved = [a for a in activity_of(db, name) if a[0] == "alias.moved"]
    assert moved == [("alias.moved", "alice", {"alias": "production", "from": None, "to": v})]


def test_a_missing_metric_fails_its_gate_and_says_so(team: Team) -> None:
    name, v = protected_model(team, loss=0.1)
    verdict(team.as_("ada"), name, v, "approve")
    failed = failed_rules(move(team.as_("alice"), name, "production", v))
    assert set(failed) == {"metric:accuracy>="}
    assert failed["metric:accuracy>="]["have"] is None
    assert "accuracy is not logged" in failed["metric:accuracy>="]["message"]


def test_two_approvals_from_others_than_the_creator_are_needed(team: Team) -> None:
    add_members(team)
    rule = {"min_approvals": 2, "block_on_changes_requested": True}
    name, v = protected_model(team, rule)
    alice = team.as_("alice")
    verdict(team.as_("ada"), name, v, "approve")
    failed = failed_rules(move(alice, name, "production", v))
    assert failed["min_approvals"]["message"].startswith("needs 1 more approval")
    assert (failed["min_approvals"]["need"], failed["min_approvals"]["have"]) == (2, 1)
    verdict(team.as_("april"), name, v, "approve")
    assert move(alice, name, "production", v).status_code == 200


def test_an_approval_stops_counting_when_its_approver_is_demoted(team: Team, db: sa.Engine) -> None:
    approver = f"temp-{uuid.uuid4().hex[:6]}"
    team.tokens[approver] = team.add_user(approver, "approver")
    name, v = protected_model(team, {"min_approvals": 1})
    assert verdict(team.as_(approver), name, v, "approve").status_code == 201
    allowed = team.as_("alice").get(f"{API}/models/{name}/versions/{v}/promotion")["items"]
    assert allowed[0]["allowed"] is True
    set_role(db, approver, "editor")
    failed = failed_rules(move(team.as_("alice"), name, "production", v))
    assert (failed["min_approvals"]["need"], failed["min_approvals"]["have"]) == (1, 0)
    remove_user(db, approver)
    error_of(move(team.as_("alice"), name, "production", v), 409)


def test_an_outstanding_change_request_blocks_unless_the_rule_says_otherwise(team: Team) -> None:
    add_members(team)
    name, v = protected_model(team, {"min_approvals": 1, "block_on_changes_requested": True})
    alice = team.as_("alice")
    verdict(team.as_("ada"), name, v, "approve")
    verdict(team.as_("april"), name, v, "request_changes", "Not on this data.")
    failed = failed_rules(move(alice, name, "production", v))
    assert set(failed) == {"changes_requested"}
    assert failed["changes_requested"]["have"] == ["april"]
    assert failed["changes_requested"]["message"] == "changes requested by april"
    r = put_policy(
        team.as_("admin"),
        name,
        {"production": {"min_approvals": 1, "block_on_changes_requested": False}},
    )
    assert r.status_code == 200
    assert move(alice, name, "production", v).status_code == 200


def test_not_worse_than_the_version_holding_the_alias_within_a_tolerance(team: Team) -> None:
    rule = {
        "min_approvals": 0,
        "not_worse_than_current": [{"metric": "accuracy", "tolerance": 0.01}],
    }
    name, v1 = protected_model(team, rule, accuracy=0.95)
    alice = team.as_("alice")
    assert move(alice, name, "production", v1).status_code == 200  # nothing holds it yet
    v2 = registered(alice, name, {"accuracy": 0.93})
    failed = failed_rules(move(alice, name, "production", v2))
    f = failed["not_worse_than_current:accuracy"]
    assert f["have"] == 0.93 and f"v{v1}" in f["message"]
    v3 = registered(alice, name, {"accuracy": 0.945})
    assert move(alice, name, "production", v3).status_code == 200
    # Lower is better: a loss may not grow.
    loss_rule = {
        "min_approvals": 0,
        "not_worse_than_current": [{"metric": "loss", "tolerance": 0.0, "higher_is_better": False}],
    }
    name, w1 = protected_model(team, loss_rule, loss=0.2)
    assert move(alice, name, "production", w1).status_code == 200
    w2 = registered(alice, name, {"loss": 0.25})
    assert "not_worse_than_current:loss" in failed_rules(move(alice, name, "production", w2))


def test_an_admin_overrides_with_a_reason_which_is_recorded(team: Team, db: sa.Engine) -> None:
    name, v = protected_model(team, accuracy=0.5)
    for who in ("alice", "ada"):
        err = error_of(move(team.as_(who), name, "production", v, "hotfix"), 403)
        assert "only an admin" in err["error"]
    error_of(move(team.as_("admin"), name, "production", v, "   "), 400)
    assert "production" not in aliases(team.as_("alice"), name)
    r = move(team.as_("admin"), name, "production", v, "incident 42: roll forward now")
    assert r.status_code == 200, r.text
    assert aliases(team.as_("alice"), name) == {"production": v}
    (override,) = [a for a in activity_of(db, name) if a[0] == "alias.override"]
    assert override[1] == "admin"
    assert override[2]["reason"] == "incident 42: roll forward now"
    assert {f["rule"] for f in override[2]["failed"]} == {"min_approvals", "metric:accuracy>="}
    assert (override[2]["alias"], override[2]["from"], override[2]["to"]) == ("production", None, v)


def test_registering_with_a_protected_alias_refused_stores_nothing(
    team: Team, db: sa.Engine
) -> None:
    name, v = protected_model(team, accuracy=0.99)
    alice = team.as_("alice")
    before = activity_of(db, name)
    failed = failed_rules(register(alice, name, {"accuracy": 0.99}, alias="production"))
    assert set(failed) == {"min_approvals"}
    listed = alice.get(f"{API}/models/{name}/versions")["items"]
    assert [x["version"] for x in listed] == [v]
    with db.connect() as conn:
        count = conn.scalar(
            sa.select(sa.func.count())
            .select_from(model_versions.join(models, models.c.id == model_versions.c.model_id))
            .where(models.c.name == name)
        )
    assert count == 1
    assert activity_of(db, name) == before  # no "model_version.created" for what was undone
    # The next registration gets the next number: nothing was used up.
    assert registered(alice, name) == v + 1


def test_registration_records_its_activity(team: Team, db: sa.Engine) -> None:
    name = new_model()
    v = registered(team.as_("bob"), name)
    assert activity_of(db, name)[0] == ("model_version.created", "bob", {})
    assert team.as_("bob").get(f"{API}/models/{name}/versions/{v}")["review"]["state"] == "none"


def test_only_an_admin_removes_a_protected_alias(team: Team, db: sa.Engine) -> None:
    name, v = protected_model(team, accuracy=0.5)
    admin = team.as_("admin")
    assert move(admin, name, "production", v, "bootstrap").status_code == 200
    err = error_of(
        team.as_("alice").request("DELETE", f"{API}/models/{name}/aliases/production"), 403
    )
    assert "only an admin" in err["error"]
    assert aliases(admin, name) == {"production": v}
    r = admin.request("DELETE", f"{API}/models/{name}/aliases/production")
    assert r.status_code == 204, r.text
    assert aliases(admin, name) == {}
    assert activity_of(db, name)[-1] == (
        "alias.moved",
        "admin",
        {"alias": "production", "from": v, "to": None},
    )


# -- a verdict given while an alias moves ----------------------------------------------------


@pytest.fixture
def pg_store(pg_url: str, tmp_path: Path) -> Iterator[Store]:
    s = Store(pg_url, str(tmp_path / "artifacts"))
    yield s
    s.close()


def wait_until_blocked(engine: sa.Engine, thread: threading.Thread, timeout: float = 20) -> None:
    """Wait until another session of the database waits on a lock (the mover's)."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            conn.rollback()  # pg_stat_activity is a snapshot per transaction
            if waiting or not thread.is_alive():
                return
            time.sleep(0.02)
    raise AssertionError("the alias move never waited on the model's lock")


def test_a_change_request_committed_during_a_move_is_never_missed(pg_store: Store) -> None:
    """The alias move evaluates the rules under the model's row lock, which verdicts take
    too: a verdict whose transaction holds the lock when the move starts is seen by it.
    (PostgreSQL: SQLite runs one writer at a time, BEGIN IMMEDIATE, so it cannot race.)"""
    registry = Registry(pg_store)
    upload(registry, ARTIFACT)
    name = new_model()
    v = registry.create_version(
        name, ModelVersionCreate(artifact=ARTIFACT_SHA, flavor="bytes"), created_by="alice"
    ).version
    rule = {"protected_aliases": {"production": {"min_approvals": 1}}}
    set_policy(pg_store.engine, name, PromotionPolicy.model_validate(rule), "admin")
    review_domain.submit_review(pg_store.engine, name, v, "ada", "approve", None)

    outcome: dict[str, Any] = {}
    started = threading.Event()

    def move_alias() -> None:
        started.wait(10)
        try:
            registry.set_alias(name, "production", v, TeamUser("alice", "editor"))
            outcome["moved"] = True
        except PromotionRefused as exc:
            outcome["failed"] = {f["rule"] for f in exc.detail["failed"]}

    mover = threading.Thread(target=move_alias)
    mover.start()
    # ada changes her mind: her verdict's transaction holds the model's lock as the move starts.
    with review_domain.write(pg_store.engine) as conn:
        model_id = review_domain.lock_model(conn, name)
        conn.execute(
            sa.insert(reviews).values(
                model_id=model_id,
                model_version=v,
                reviewer="ada",
                verdict="request_changes",
                created_at=datetime.now(timezone.utc),
            )
        )
        started.set()
        wait_until_blocked(pg_store.engine, mover)
    mover.join(30)
    assert outcome == {"failed": {"changes_requested", "min_approvals"}}
    assert registry.get_model(name).aliases == {}


# -- embedded mode: the Jupyter user is the admin of their own store --------------------------


def test_embedded_the_single_user_cannot_approve_themselves_but_may_override(
    tmp_path: Path,
) -> None:
    server = JupyterServer(tmp_path).start()
    try:
        api = server.api
        name = new_model()
        v = registered(api, name, {"accuracy": 0.97})
        error_of(verdict(api, name, v, "approve"), 403)
        assert put_policy(api, name, {"production": PRODUCTION}).status_code == 200
        failed = failed_rules(move(api, name, "production", v))
        assert set(failed) == {"min_approvals"}
        r = move(api, name, "production", v, "working alone: reviewed in the lab meeting")
        assert r.status_code == 200, r.text
        assert api.get(f"{API}/models/{name}/versions/{v}")["aliases"] == ["production"]
    finally:
        server.stop()
