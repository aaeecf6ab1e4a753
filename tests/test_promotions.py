"""Promotion gates for pipelines (issue 13, point 2): POST /models/{name}/promotions and
`cellops promote`, through a real `cellops serve` on SQLite and PostgreSQL and through an
embedded Jupyter server's store; the signature and deploy rules of the policy; refused
attempts in the activity feed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from cellops_server.review import reviews as review_domain
from cellops_server.store import create_engine

from .attacks.conftest import Team
from .reviewing import (
    API,
    ARTIFACT,
    ARTIFACT_SHA,
    activity_of,
    error_of,
    new_model,
    team_db,
    verdict,
)
from .support import Api, JupyterServer, cellops_cli, free_port, running


@pytest.fixture(scope="module")
def db(team: Team) -> Iterator[sa.Engine]:
    yield from team_db(team)


GATED: dict[str, Any] = {
    "min_approvals": 1,
    "block_on_changes_requested": True,
    "metric_gates": [{"metric": "accuracy", "op": ">=", "value": 0.9}],
}


def register(
    api: Api,
    name: str,
    metrics: dict[str, float] | None = None,
    signature: dict[str, Any] | None = None,
) -> int:
    uploaded = api.put_artifact(ARTIFACT)
    assert uploaded.status_code in (200, 201), uploaded.text
    body: dict[str, Any] = {"artifact": ARTIFACT_SHA, "flavor": "bytes", "metrics": metrics or {}}
    if signature is not None:
        body["signature"] = signature
    r = api.request("POST", f"{API}/models/{name}/versions", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["version"])


def put_policy(api: Api, name: str, aliases: dict[str, Any], **extra: Any) -> requests.Response:
    body = {"protected_aliases": aliases, **extra}
    return api.request("PUT", f"{API}/models/{name}/policy", json=body)


def promote(api: Api, name: str, version: int, alias: str, **kw: Any) -> requests.Response:
    body = {"version": version, "alias": alias, **kw}
    return api.request("POST", f"{API}/models/{name}/promotions", json=body)


def aliases(api: Api, name: str) -> dict[str, int]:
    return api.get(f"{API}/models/{name}")["aliases"]


def by_rule(rules: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["rule"]: r for r in rules}


def refusal(r: requests.Response) -> dict[str, Any]:
    """The 409's detail, after checking it has an alias move's shape plus moved and rules."""
    detail = error_of(r, 409)["detail"]
    assert detail["moved"] is False
    failed = {f["rule"] for f in detail["failed"]}
    assert failed == {x["rule"] for x in detail["rules"] if not x["passed"]} and failed
    return detail


def gated_model(
    team: Team, rule: dict[str, Any] | None = None, **metrics: float
) -> tuple[str, int]:
    name = new_model()
    v = register(team.as_("alice"), name, metrics)
    r = put_policy(team.as_("admin"), name, {"production": rule or GATED})
    assert r.status_code == 200, r.text
    return name, v


# -- the endpoint --------------------------------------------------------------------------------


def test_promotion_refused_then_allowed_as_reviews_and_metrics_change(
    team: Team, db: sa.Engine
) -> None:
    name, v1 = gated_model(team, accuracy=0.88)
    alice = team.as_("alice")
    detail = refusal(promote(alice, name, v1, "production"))
    rules = by_rule(detail["rules"])
    assert set(rules) == {"min_approvals", "changes_requested", "metric:accuracy>="}
    assert rules["changes_requested"]["passed"] is True  # passes are listed too
    assert (rules["min_approvals"]["need"], rules["min_approvals"]["have"]) == (1, 0)
    assert rules["metric:accuracy>="]["have"] == 0.88
    assert "production" not in aliases(alice, name)

    assert verdict(team.as_("ada"), name, v1, "approve").status_code == 201
    rules = by_rule(refusal(promote(alice, name, v1, "production"))["rules"])
    assert rules["min_approvals"]["passed"] is True and rules["min_approvals"]["have"] == 1
    assert rules["metric:accuracy>="]["passed"] is False

    v2 = register(alice, name, {"accuracy": 0.93})
    assert (
        by_rule(refusal(promote(alice, name, v2, "production"))["rules"])["min_approvals"]["passed"]
        is False
    )
    assert verdict(team.as_("ada"), name, v2, "approve").status_code == 201
    r = promote(alice, name, v2, "production")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["moved"] is True and body["allowed"] is True and body["protected"] is True
    assert body["previous"] is None and body["version"] == v2
    assert all(x["passed"] for x in body["rules"]) and len(body["rules"]) == 3
    assert aliases(alice, name) == {"production": v2}

    records = activity_of(db, name)
    refused = [a for a in records if a[0] == "promotion.refused"]
    assert len(refused) == 3 and {a[1] for a in refused} == {"alice"}
    assert refused[0][2]["alias"] == "production" and refused[0][2]["version"] == v1
    assert {f["rule"] for f in refused[0][2]["failed"]} == {"min_approvals", "metric:accuracy>="}
    assert "accuracy 0.88 < 0.9" in refused[0][2]["summary"]
    moved = [a for a in records if a[0] == "alias.moved"]
    assert moved == [("alias.moved", "alice", {"alias": "production", "from": None, "to": v2})]


def test_a_changes_request_refuses_until_the_policy_stops_blocking_on_it(team: Team) -> None:
    name, v = gated_model(team, accuracy=0.95)
    verdict(team.as_("ada"), name, v, "request_changes", "Not on this data.")
    rules = by_rule(refusal(promote(team.as_("alice"), name, v, "production"))["rules"])
    assert rules["changes_requested"] == {
        "rule": "changes_requested",
        "passed": False,
        "need": [],
        "have": ["ada"],
        "message": "changes requested by ada",
    }


def test_a_dry_run_never_moves_nor_records_and_lists_every_rule(team: Team, db: sa.Engine) -> None:
    rule = {**GATED, "not_worse_than_current": [{"metric": "accuracy"}]}
    name, v = gated_model(team, rule, accuracy=0.95)
    alice = team.as_("alice")
    before = activity_of(db, name)
    r = promote(alice, name, v, "production", dry_run=True)
    assert r.status_code == 200, r.text  # a dry run is never a 409
    body = r.json()
    assert (body["moved"], body["allowed"], body["dry_run"]) == (False, False, True)
    rules = by_rule(body["rules"])
    assert set(rules) == {
        "min_approvals",
        "changes_requested",
        "metric:accuracy>=",
        "not_worse_than_current:accuracy",
    }
    assert rules["not_worse_than_current:accuracy"]["passed"] is True
    assert "no version holds the alias" in rules["not_worse_than_current:accuracy"]["message"]
    verdict(team.as_("ada"), name, v, "approve")
    body = promote(alice, name, v, "production", dry_run=True).json()
    assert (body["moved"], body["allowed"]) == (False, True)
    assert "production" not in aliases(alice, name)
    since = [a[0] for a in activity_of(db, name)[len(before) :]]
    assert "promotion.refused" not in since and "alias.moved" not in since, since


def test_an_unprotected_alias_moves_with_no_rules(team: Team) -> None:
    name, v = gated_model(team, accuracy=0.1)
    r = promote(team.as_("alice"), name, v, "staging")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["moved"], body["protected"], body["rules"]) == (True, False, [])
    assert aliases(team.as_("alice"), name) == {"staging": v}
    again = promote(team.as_("alice"), name, v, "staging").json()
    assert again["moved"] is True and again["previous"] == v


def test_bad_input_is_a_4xx_naming_the_problem(team: Team) -> None:
    name, v = gated_model(team, accuracy=0.95)
    alice = team.as_("alice")
    err = error_of(promote(alice, name, v + 5, "production"), 404)
    assert f"no version {v + 5}" in err["error"]
    err = error_of(promote(alice, new_model(), 1, "production"), 404)
    assert "no model named" in err["error"]
    err = error_of(promote(alice, name, v, "1st choice"), 400)
    assert "invalid alias" in err["error"]
    raw = requests.post(
        f"{alice.base}/{API}/models/{name}/promotions",
        data=b'{"version": 1, "alias":',
        headers={**alice.headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert "not valid JSON" in error_of(raw, 400)["error"]
    for body, where in (
        ({"alias": "production"}, "version"),
        ({"version": v}, "alias"),
        ({"version": 0, "alias": "production"}, "version"),
        ({"version": v, "alias": "production", "dry_run": "yes"}, "dry_run"),
        ({"version": v, "alias": "production", "force": True}, "force"),
    ):
        r = alice.request("POST", f"{API}/models/{name}/promotions", json=body)
        err = error_of(r, 400)
        assert [where] in [e["loc"] for e in err["detail"]], (body, err)
    error_of(alice.request("POST", f"{API}/models/bad%20name/promotions", json={}), 400)
    assert "production" not in aliases(alice, name)


def test_a_member_below_editor_cannot_promote_not_even_a_dry_run(team: Team, db: sa.Engine) -> None:
    name, v = gated_model(team, {"min_approvals": 0}, accuracy=0.95)
    before = activity_of(db, name)
    for who in ("vera", "cora"):
        for dry in (False, True):
            err = error_of(promote(team.as_(who), name, v, "production", dry_run=dry), 403)
            assert "editor" in err["error"]
    assert aliases(team.as_("admin"), name) == {}
    assert activity_of(db, name) == before
    assert promote(team.as_("bob"), name, v, "production").status_code == 200


def test_a_refused_attempt_appears_in_the_activity_feed(team: Team) -> None:
    name, v = gated_model(team, accuracy=0.5)
    refusal(promote(team.as_("bob"), name, v, "production"))
    feed = team.as_("vera").get(f"{API}/activity", limit=50)["items"]
    (item,) = [i for i in feed if i["model"] == name and i["type"] == "promotion.refused"]
    assert item["actor"] == "bob" and item["version"] == v
    assert set(item["data"]) == {"alias", "version", "from", "failed", "summary"}
    assert {f["rule"] for f in item["data"]["failed"]} == {"min_approvals", "metric:accuracy>="}


# -- signature_compatible --------------------------------------------------------------------------


def frame(**dtypes: str) -> dict[str, Any]:
    columns = [{"name": n, "dtype": t} for n, t in dtypes.items()]
    return {"type": "dataframe", "shape": [None, len(columns)], "columns": columns}


SIGNED = {"min_approvals": 0, "signature_compatible": True}


def test_signature_compatibility_against_the_version_holding_the_alias(team: Team) -> None:
    alice = team.as_("alice")
    name = new_model()
    v1 = register(alice, name, signature=frame(a="int64", b="float64", c="object"))
    assert put_policy(team.as_("admin"), name, {"production": SIGNED}).status_code == 200
    first = promote(alice, name, v1, "production").json()
    sig = by_rule(first["rules"])["signature_compatible"]
    assert first["moved"] is True and sig["passed"] is True
    assert "no version holds the alias" in sig["message"]

    def check(signature: dict[str, Any] | None) -> dict[str, Any]:
        v = register(alice, name, signature=signature)
        body = promote(alice, name, v, "production", dry_run=True).json()
        return by_rule(body["rules"])["signature_compatible"]

    widened = check(frame(c="string", b="float64", a="float64"))  # reordered, int → float
    assert widened["passed"] is True, widened
    missing = check(frame(a="int64", b="float64"))
    assert missing["passed"] is False and "missing column 'c'" in missing["message"]
    assert "c: object" in missing["need"] and missing["have"] == "a: int64, b: float64"
    narrowed = check(frame(a="int64", b="int64", c="object"))
    assert narrowed["passed"] is False
    assert "'b' is int64, the current version's is float64" in narrowed["message"]
    texts = check(frame(a="int64", b="float64", c="float64"))
    assert texts["passed"] is False and "'c' is float64" in texts["message"]
    numbers = check(frame(a="object", b="float64", c="object"))
    assert numbers["passed"] is False and "'a' is object" in numbers["message"]
    unsigned = check(None)
    assert unsigned["passed"] is False and unsigned["have"] == "no input signature"
    assert "has no input signature" in unsigned["message"]
    extra = check(frame(a="int64", b="float64", c="object", d="int64"))
    assert extra["passed"] is False and "extra column 'd'" in extra["message"]

    # A real move of an incompatible version is refused like any other rule.
    v = register(alice, name, signature=frame(a="int64", b="float64"))
    detail = refusal(promote(alice, name, v, "production"))
    assert [f["rule"] for f in detail["failed"]] == ["signature_compatible"]
    assert aliases(alice, name) == {"production": v1}


def test_a_policy_without_the_new_rules_keeps_its_shape(team: Team) -> None:
    name, _ = gated_model(team)
    policy = team.as_("vera").get(f"{API}/models/{name}/policy")
    assert policy["deploy_requires_alias"] is None
    assert policy["protected_aliases"]["production"]["signature_compatible"] is False


# -- deploy_requires_alias -------------------------------------------------------------------------


def deploy(api: Api, name: str, model: str, **kw: Any) -> requests.Response:
    return api.request("POST", f"{API}/deployments", json={"name": name, "model": model, **kw})


def patch(api: Api, name: str, **kw: Any) -> requests.Response:
    return api.request("PATCH", f"{API}/deployments/{name}", json=kw)


def deploy_refusal(r: requests.Response, alias: str, versions: list[int]) -> dict[str, Any]:
    err = error_of(r, 409)
    assert f"holding the alias {alias!r}" in err["error"] and "override" not in err["error"]
    detail = err["detail"]
    assert detail["refused"] == "deploy" and detail["alias"] == alias
    assert [f["rule"] for f in detail["failed"]] == ["deploy_requires_alias"] * len(versions)
    assert [f["have"] for f in detail["failed"]] == versions
    return detail


def test_deployments_serve_only_versions_holding_the_required_alias(team: Team) -> None:
    alice, admin = team.as_("alice"), team.as_("admin")
    name = new_model()
    v1, v2 = register(alice, name), register(alice, name)
    policy = {"production": {"min_approvals": 0}}
    err = error_of(put_policy(admin, name, policy, deploy_requires_alias="staging"), 400)
    assert "must be one of the protected aliases" in err["error"]
    r = put_policy(admin, name, policy, deploy_requires_alias="production")
    assert r.status_code == 200 and r.json()["deploy_requires_alias"] == "production"
    assert promote(alice, name, v1, "production").status_code == 200
    assert promote(alice, name, v2, "staging").status_code == 200
    tag = uuid.uuid4().hex[:6]

    # create: a pinned version, the latest (v2), or following another alias
    deploy_refusal(deploy(alice, f"d-{tag}-a", name, version=v2), "production", [v2])
    deploy_refusal(deploy(alice, f"d-{tag}-b", name), "production", [v2])
    deploy_refusal(deploy(alice, f"d-{tag}-c", name, alias="staging"), "production", [v2])
    listed = team.as_("vera").get(f"{API}/deployments")["items"]
    assert [d for d in listed if d["model"] == name] == []  # nothing was created
    pinned = deploy(alice, f"d-{tag}-pinned", name, version=v1)
    assert pinned.status_code == 201, pinned.text
    follower = deploy(alice, f"d-{tag}-follow", name, alias="production")
    assert follower.status_code == 201, follower.text

    # change: pin, follow another alias, split traffic
    deploy_refusal(patch(alice, f"d-{tag}-pinned", version=v2), "production", [v2])
    deploy_refusal(patch(alice, f"d-{tag}-pinned", alias="staging"), "production", [v2])
    split = [{"version": v1, "percent": 90}, {"version": v2, "percent": 10}]
    deploy_refusal(patch(alice, f"d-{tag}-pinned", traffic=split), "production", [v2])
    served = team.as_("vera").get(f"{API}/deployments/d-{tag}-pinned")
    assert (served["version"], served["alias"]) == (v1, None)
    assert patch(alice, f"d-{tag}-pinned", public=True).status_code == 200  # not a version change

    # after a promotion, the version holding the alias is deployable, the old one is not
    assert promote(alice, name, v2, "production").status_code == 200
    assert patch(alice, f"d-{tag}-pinned", version=v2).status_code == 200
    deploy_refusal(patch(alice, f"d-{tag}-pinned", version=v1), "production", [v1])
    assert team.as_("vera").get(f"{API}/deployments/d-{tag}-follow")["version"] == v2
    # the follower may switch to following the alias it must hold anyway
    assert patch(alice, f"d-{tag}-pinned", alias="production").status_code == 200


# -- `cellops promote` against the team backend ------------------------------------------------


def cli(team: Team, who: str, *args: str, url: str | None = None) -> Any:
    env = {"CELLOPS_BACKEND_URL": url or team.url, "CELLOPS_TOKEN": team.tokens[who]}
    return cellops_cli("promote", *args, env=env)


def test_cellops_promote_against_the_team_backend(team: Team) -> None:
    name, v = gated_model(team, accuracy=0.95)
    dry = cli(team, "alice", name, str(v), "--alias", "production", "--dry-run")
    assert dry.returncode == 4, dry.stdout + dry.stderr
    assert "FAIL  min_approvals" in dry.stdout and "PASS  metric:accuracy>=" in dry.stdout
    assert "need: 1" in dry.stdout and "have: 0" in dry.stdout
    refused = cli(team, "alice", name, str(v), "--alias", "production")
    assert refused.returncode == 4 and "REFUSED: version" in refused.stdout, refused.stdout
    assert "production" not in aliases(team.as_("alice"), name)

    verdict(team.as_("ada"), name, v, "approve")
    dry = cli(team, "alice", name, str(v), "--alias", "production", "--dry-run")
    assert dry.returncode == 0 and "ALLOWED (dry run)" in dry.stdout, dry.stdout
    assert "production" not in aliases(team.as_("alice"), name)
    moved = cli(team, "alice", name, str(v), "--alias", "production")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "PASS  min_approvals" in moved.stdout and "MOVED" in moved.stdout
    assert aliases(team.as_("alice"), name) == {"production": v}


def test_cellops_promote_says_why_it_could_not_try(team: Team) -> None:
    name, v = gated_model(team, accuracy=0.95)
    missing = cli(team, "alice", new_model(), "1", "--alias", "production")
    assert missing.returncode == 3 and "not found: no model named" in missing.stderr
    version = cli(team, "alice", name, str(v + 9), "--alias", "production")
    assert version.returncode == 3 and f"has no version {v + 9}" in version.stderr
    down = cli(
        team, "alice", name, str(v), "--alias", "production", url=f"http://127.0.0.1:{free_port()}"
    )
    assert down.returncode == 3 and "cannot reach the team backend" in down.stderr
    bad = cli(team, "alice", name, str(v), "--alias", "1st")
    assert bad.returncode == 2 and "invalid alias" in bad.stderr
    viewer = cli(team, "vera", name, str(v), "--alias", "production")
    assert viewer.returncode == 3 and "refused" in viewer.stderr
    usage = cellops_cli("promote", name, "three", "--alias", "production")
    assert usage.returncode == 2 and "not a version number" in usage.stderr
    no_token = cellops_cli(
        "promote", name, str(v), "--alias", "production",
        env={"CELLOPS_BACKEND_URL": team.url, "CELLOPS_TOKEN": ""},
    )  # fmt: skip
    assert no_token.returncode == 2 and "CELLOPS_TOKEN" in no_token.stderr


# -- embedded: a Jupyter server's own store, and the CLI on the same one -----------------------


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    server = JupyterServer(tmp_path_factory.mktemp("embedded"))
    for var in ("CELLOPS_BACKEND_URL", "CELLOPS_TOKEN"):
        server.env.pop(var, None)
    with running(server):
        yield server


def embedded_cli(server: JupyterServer, *args: str) -> Any:
    env = {"CELLOPS_HOME": str(server.home), "CELLOPS_BACKEND_URL": "", "CELLOPS_TOKEN": ""}
    return cellops_cli("promote", *args, env=env)


def test_embedded_api_and_cli_share_the_local_store(
    embedded: JupyterServer, tmp_path: Path
) -> None:
    api = Api(embedded.url, embedded.token)
    name = new_model()
    v1 = register(api, name, {"accuracy": 0.95})
    r = put_policy(api, name, {"production": GATED})
    assert r.status_code == 200, r.text
    detail = refusal(promote(api, name, v1, "production"))
    assert by_rule(detail["rules"])["min_approvals"]["passed"] is False

    refused = embedded_cli(embedded, name, str(v1), "--alias", "production")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "FAIL  min_approvals" in refused.stdout
    # A teammate's approval (the embedded store has no team: any other name counts).
    engine = create_engine(f"sqlite:///{embedded.home / 'cellops.db'}")
    try:
        review_domain.submit_review(engine, name, v1, "ada", "approve", None)
    finally:
        engine.dispose()
    dry = embedded_cli(embedded, name, str(v1), "--alias", "production", "--dry-run")
    assert dry.returncode == 0 and "ALLOWED (dry run)" in dry.stdout, dry.stdout + dry.stderr
    moved = embedded_cli(embedded, name, str(v1), "--alias", "production")
    assert moved.returncode == 0 and "MOVED" in moved.stdout, moved.stdout + moved.stderr
    assert aliases(api, name) == {"production": v1}  # the server sees the CLI's move
    feed = api.get(f"{API}/activity")["items"]
    types = [i["type"] for i in feed if i["model"] == name]
    assert types.count("promotion.refused") == 2 and "alias.moved" in types

    unknown = embedded_cli(embedded, name, "77", "--alias", "production")
    assert unknown.returncode == 3 and "has no version 77" in unknown.stderr
    nothing = cellops_cli(
        "promote", name, "1", "--alias", "production",
        env={"CELLOPS_HOME": str(tmp_path / "empty"), "CELLOPS_BACKEND_URL": "",
             "CELLOPS_DB_URL": ""},
    )  # fmt: skip
    assert nothing.returncode == 3 and "no embedded cellops store" in nothing.stderr


def test_an_alias_a_deployment_follows_moves_only_to_versions_holding_the_required_one(
    team: Team, db: sa.Engine
) -> None:
    alice = team.as_("alice")
    name = new_model()
    v1, v2 = register(alice, name), register(alice, name)
    policy = {"production": {"min_approvals": 0}}
    r = put_policy(team.as_("admin"), name, policy, deploy_requires_alias="production")
    assert r.status_code == 200, r.text
    assert promote(alice, name, v1, "production").status_code == 200
    assert promote(alice, name, v1, "staging").status_code == 200
    deployment = f"d-{uuid.uuid4().hex[:6]}"
    assert deploy(alice, deployment, name, alias="staging").status_code == 201

    dry = promote(alice, name, v2, "staging", dry_run=True).json()
    assert (dry["allowed"], dry["moved"]) == (False, False)
    assert by_rule(dry["rules"])["deploy_requires_alias"]["passed"] is False
    detail = deploy_refusal(promote(alice, name, v2, "staging"), "production", [v2])
    assert detail["moved"] is False and detail["deployments"] == [f"deployment {deployment!r}"]
    assert [x["rule"] for x in detail["rules"]] == ["deploy_requires_alias"]
    moved = alice.request("PUT", f"{API}/models/{name}/aliases/staging", json={"version": v2})
    deploy_refusal(moved, "production", [v2])
    assert aliases(alice, name) == {"production": v1, "staging": v1}
    assert team.as_("vera").get(f"{API}/deployments/{deployment}")["version"] == v1
    refused = [a for a in activity_of(db, name) if a[0] == "promotion.refused"]
    assert [a[2]["alias"] for a in refused] == ["staging"]
    assert refused[0][2]["failed"][0]["rule"] == "deploy_requires_alias"

    assert promote(alice, name, v2, "production").status_code == 200
    assert promote(alice, name, v2, "staging").status_code == 200
    assert team.as_("vera").get(f"{API}/deployments/{deployment}")["version"] == v2


def test_the_kernel_client_offers_no_override_for_a_deploy_refusal(team: Team) -> None:
    from cellops.client import _refusal

    name = new_model()
    v1, v2 = register(team.as_("alice"), name), register(team.as_("alice"), name)
    policy = {"production": {"min_approvals": 0}}
    put_policy(team.as_("admin"), name, policy, deploy_requires_alias="production")
    assert promote(team.as_("alice"), name, v1, "production").status_code == 200
    refused = deploy(team.as_("alice"), f"d-{uuid.uuid4().hex[:6]}", name, version=v2)
    err = error_of(refused, 409)
    text = str(_refusal(409, err["error"], err["detail"], "by test"))
    assert f"version {v2} does not hold the alias 'production'" in text
    assert "override" not in text
    alias = promote(team.as_("alice"), name, v2, "production")
    assert alias.status_code == 200
    gated, v = gated_model(team, accuracy=0.1)
    err = error_of(promote(team.as_("alice"), gated, v, "production"), 409)
    assert "admin may move it anyway" in str(_refusal(409, err["error"], err["detail"], "test"))
