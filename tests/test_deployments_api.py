"""Deployments: the domain over the store (SQLite and PostgreSQL) and its REST API through a
real `cellops serve` (team mode, both stores)."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from cellops_server.registry import Registry
from cellops_server.registry.store import InUse
from cellops_server.schemas import (
    DeploymentCreate,
    DeploymentPatch,
    ModelVersionCreate,
    ModelVersionUpdate,
    TrafficShare,
)
from cellops_server.serving.deployments import (
    DeploymentExists,
    Deployments,
    NotServable,
    desired,
    key_matches,
    report_state,
)
from cellops_server.serving.metrics import BUCKETS, MinuteRow, add_minutes, quantile, read_minutes
from cellops_server.store import NotFound, Store
from cellops_server.store.tables import activity, deployment_keys

from .attacks.conftest import Team
from .reviewing import API, error_of, new_model, register

ARTIFACT = b"a deployable model"
SHA = hashlib.sha256(ARTIFACT).hexdigest()
SIGNATURE = {"inputs": [{"name": "x", "type": "double"}]}


def registered(store: Store, name: str, count: int = 2, alias: str | None = None) -> Registry:
    registry = Registry(store)
    if registry.artifacts.size(SHA) is None:
        up = registry.artifacts.upload(SHA, 1 << 20)
        up.write(ARTIFACT)
        up.finish()
    for _ in range(count):
        body = ModelVersionCreate(artifact=SHA, flavor="sklearn", signature=SIGNATURE)
        registry.create_version(name, body, "alice")
    if alias is not None:
        registry.set_alias(name, alias, count)
    return registry


def create(deps: Deployments, name: str, model: str, **kw: Any) -> Any:
    return deps.create(DeploymentCreate(name=name, model=model, **kw), "alice")


# -- the domain, on both stores ----------------------------------------------------------------


def test_create_pins_the_latest_version_and_shows_the_key_once(store: Store) -> None:
    registered(store, "iris", 3)
    deps = Deployments(store, "http://127.0.0.1:8900/")
    made = create(deps, "iris-prod", "iris")
    assert (made.version, made.alias, made.state, made.public) == (3, None, "starting", False)
    assert [s.model_dump() for s in made.traffic] == [{"version": 3, "percent": 100}]
    assert made.urls.v2 == "http://127.0.0.1:8900/v2/models/iris-prod"
    assert made.urls.invocations == "http://127.0.0.1:8900/deployments/iris-prod/invocations"
    assert made.created_by == "alice" and made.key and len(made.key) >= 40
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(deployment_keys.c.key_sha256)).scalars().all()
    assert stored == [hashlib.sha256(made.key.encode()).hexdigest()]  # only the hash is kept
    assert "key" not in deps.get("iris-prod").model_dump()
    [d] = desired(store.engine)
    assert key_matches(d.key_sha256, made.key) and not key_matches(d.key_sha256, made.key + "x")
    assert not key_matches(None, made.key)
    assert [(v.version, v.percent, v.artifact, v.flavor, v.signature) for v in d.versions] == [
        (3, 100, SHA, "sklearn", SIGNATURE)
    ]
    with pytest.raises(DeploymentExists):
        create(deps, "iris-prod", "iris", version=1)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(activity).where(activity.c.type == "deployment.created")).one()
    assert (row.actor, row.model, row.model_version, row.data["deployment"]) == (
        "alice",
        "iris",
        3,
        "iris-prod",
    )


def test_a_public_deployment_has_no_key(store: Store) -> None:
    registered(store, "pub", 1)
    made = create(Deployments(store), "pub", "pub", public=True)
    assert made.key is None and made.public
    assert desired(store.engine)[0].key_sha256 is None


def test_following_an_alias_switches_when_the_alias_moves(store: Store) -> None:
    registry = registered(store, "iris", 2, alias="champion")
    deps = Deployments(store)
    made = create(deps, "iris", "iris", alias="champion")
    assert (made.version, made.alias) == (2, "champion")
    generation = desired(store.engine)[0].generation
    registry.set_alias("iris", "champion", 1)
    [d] = desired(store.engine)
    assert [v.version for v in d.versions] == [1] and d.alias == "champion"
    assert d.generation == generation  # the router sees the switch in versions
    assert deps.get("iris").version == 1
    # The followed alias cannot be removed from under the deployment.
    with pytest.raises(InUse, match="deployment 'iris' follows it"):
        registry.delete_alias("iris", "champion")


def test_rollback_canary_and_events_with_who_and_when(store: Store) -> None:
    registered(store, "m", 3)
    deps = Deployments(store)
    create(deps, "m", "m")
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    rolled = deps.patch("m", DeploymentPatch(version=1), "bob")
    assert rolled.version == 1 and rolled.key is None and rolled.state == "starting"
    forward = deps.patch("m", DeploymentPatch(version=2), "bob")
    assert forward.version == 2
    split = [TrafficShare(version=2, percent=90), TrafficShare(version=3, percent=10)]
    canary = deps.patch("m", DeploymentPatch(traffic=split), "carol")
    assert [(s.version, s.percent) for s in canary.traffic] == [(2, 90), (3, 10)]
    assert canary.version == 2  # the version taking most of the traffic
    [d] = desired(store.engine)
    assert [(v.version, v.percent) for v in d.versions] == [(2, 90), (3, 10)]
    assert d.generation == 4
    events = deps.events("m")
    assert [(e.type, e.actor) for e in events] == [
        ("created", "alice"),
        ("rolled_back", "bob"),
        ("version_changed", "bob"),
        ("traffic_changed", "carol"),
    ]
    assert events[1].data == {"from": 3, "to": 1}
    assert all(e.at >= before for e in events)
    # The same change again changes nothing: no event, no new generation.
    deps.patch("m", DeploymentPatch(traffic=split), "carol")
    assert len(deps.events("m")) == 4 and desired(store.engine)[0].generation == 4


def test_public_and_keyed_again_and_rotation(store: Store) -> None:
    registered(store, "k", 1)
    deps = Deployments(store)
    first = create(deps, "k", "k").key
    assert deps.patch("k", DeploymentPatch(public=True), "bob").key is None
    assert desired(store.engine)[0].key_sha256 is None
    with pytest.raises(ValueError, match="public"):
        deps.rotate_key("k", "bob")
    again = deps.patch("k", DeploymentPatch(public=False), "bob").key
    assert again and again != first
    [d] = desired(store.engine)
    assert key_matches(d.key_sha256, again) and not key_matches(d.key_sha256, first)
    rotated = deps.rotate_key("k", "bob")
    [d] = desired(store.engine)
    assert key_matches(d.key_sha256, rotated) and not key_matches(d.key_sha256, again)
    assert [e.type for e in deps.events("k")][-3:] == [
        "public_changed",
        "public_changed",
        "key_rotated",
    ]


def test_served_and_archived_versions_are_protected(store: Store) -> None:
    registry = registered(store, "m", 3)
    deps = Deployments(store)
    create(deps, "dep", "m", version=2)
    with pytest.raises(InUse, match="deployment 'dep'"):
        registry.delete_version("m", 2)
    with pytest.raises(InUse, match="deployment 'dep'"):
        registry.update_version("m", 2, ModelVersionUpdate(archived=True))
    with pytest.raises(InUse, match="deployment 'dep'"):
        registry.delete_model("m")
    registry.delete_version("m", 1)  # not served: fine
    registry.update_version("m", 3, ModelVersionUpdate(archived=True))
    with pytest.raises(NotServable, match="archived"):
        deps.patch("dep", DeploymentPatch(version=3), "bob")
    with pytest.raises(NotServable, match="archived"):
        create(deps, "dep3", "m", version=3)
    with pytest.raises(ValueError, match="no version 1"):
        deps.patch("dep", DeploymentPatch(version=1), "bob")
    deps.delete("dep", "bob")
    registry.delete_version("m", 2)  # no longer served
    with pytest.raises(NotFound):
        deps.get("dep")
    assert [e.type for e in deps.events("dep")][-1] == "deleted"  # history stays
    assert desired(store.engine) == []


def test_report_state_writes_an_event_only_on_a_change(store: Store) -> None:
    registered(store, "m", 2)
    deps = Deployments(store)
    create(deps, "m", "m")
    report_state(store.engine, "m", "ready", generation=1)
    report_state(store.engine, "m", "ready", generation=1)
    assert deps.get("m").state == "ready"
    deps.patch("m", DeploymentPatch(version=1), "bob")  # generation 2, starting
    report_state(store.engine, "m", "ready", generation=1)  # late word on the old one
    assert deps.get("m").state == "starting"
    report_state(store.engine, "m", "failed", "version 1 would not load: no module 'xgb'")
    got = deps.get("m")
    assert (got.state, got.error) == ("failed", "version 1 would not load: no module 'xgb'")
    changes = [e for e in deps.events("m") if e.type == "state_changed"]
    assert [(e.actor, e.data["to"]) for e in changes] == [(None, "ready"), (None, "failed")]
    report_state(store.engine, "gone", "ready")  # a deleted deployment: nothing to do
    with pytest.raises(ValueError):
        report_state(store.engine, "m", "exploded")


def test_desired_reads_many_deployments_in_two_queries(store: Store) -> None:
    for i in range(5):
        registered(store, f"m{i}", 2)
        create(Deployments(store), f"d{i}", f"m{i}", version=1 + i % 2)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        found = desired(store.engine)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert [(d.name, d.versions[0].version) for d in found] == [
        (f"d{i}", 1 + i % 2) for i in range(5)
    ]
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2


def test_concurrent_creates_of_one_name_make_one_deployment(store: Store) -> None:
    registered(store, "m", 1)
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            create(Deployments(store), "same", "m")
            outcomes.append("made")
        except (DeploymentExists, sa.exc.IntegrityError):
            outcomes.append("taken")

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["made", "taken", "taken", "taken"]


def test_minutes_add_up_and_give_percentiles(store: Store) -> None:
    now = datetime.now(timezone.utc)
    fast = [0] * (len(BUCKETS) + 1)
    fast[1] = 10  # (0.5 ms, 1 ms]
    slow = [0] * (len(BUCKETS) + 1)
    slow[7] = 10  # (50 ms, 100 ms]
    add_minutes(store.engine, [MinuteRow("d", 1, now, 10, 1, 0.008, fast)])
    add_minutes(
        store.engine,
        [
            MinuteRow("d", 1, now, 10, 0, 0.7, slow),
            MinuteRow("d", 2, now, 3, 3, 0.003, [3] + [0] * len(BUCKETS)),
            MinuteRow("d", 1, now - timedelta(minutes=90), 5, 0, 0.001, fast),
        ],
    )
    minutes = read_minutes(store.engine, "d", 60)
    assert [(m.version, m.requests, m.errors) for m in minutes] == [(1, 20, 1), (2, 3, 3)]
    one = minutes[0]
    assert one.p50 == pytest.approx(0.001)  # the 10th of 20 is the last fast one
    assert 0.05 < one.p95 <= 0.1  # type: ignore[operator]
    assert len(read_minutes(store.engine, "d", 120)) == 3
    assert quantile([0] * (len(BUCKETS) + 1), 0.5) is None
    assert quantile([0] * len(BUCKETS) + [4], 0.5) == BUCKETS[-1]
    with pytest.raises(ValueError):
        add_minutes(store.engine, [MinuteRow("d", 1, now, 1, 0, 0.1, [1])])


# -- the API through a real `cellops serve` ---------------------------------------------------


def deploy(team: Team, who: str, body: dict[str, Any]) -> Any:
    return team.as_(who).request("POST", f"{API}/deployments", json=body)


def test_the_api_round_trip(team: Team) -> None:
    alice, vera = team.as_("alice"), team.as_("vera")
    model = new_model()
    for _ in range(2):
        assert register(alice, model).status_code == 201
    name = f"d-{model}"
    r = deploy(team, "alice", {"name": name, "model": model})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["key"] and made["version"] == 2 and made["created_by"] == "alice"
    assert made["urls"]["v2"].endswith(f"/v2/models/{name}")
    listed = vera.get(f"{API}/deployments")["items"]
    assert name in [d["name"] for d in listed]
    assert all("key" not in d for d in listed)
    got = vera.get(f"{API}/deployments/{name}")
    assert got["traffic"] == [{"version": 2, "percent": 100}]
    r = alice.request("PATCH", f"{API}/deployments/{name}", json={"version": 1})
    assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["key"] is None
    r = alice.request(
        "PATCH",
        f"{API}/deployments/{name}",
        json={"traffic": [{"version": 1, "percent": 80}, {"version": 2, "percent": 20}]},
    )
    assert r.status_code == 200, r.text
    events = vera.get(f"{API}/deployments/{name}/events")["items"]
    assert [(e["type"], e["actor"]) for e in events] == [
        ("created", "alice"),
        ("rolled_back", "alice"),
        ("traffic_changed", "alice"),
    ]
    assert all(datetime.fromisoformat(e["at"]) for e in events)
    metrics = vera.get(f"{API}/deployments/{name}/metrics", window=5)
    assert metrics == {"deployment": name, "window": 5, "minutes": []}
    r = alice.request("POST", f"{API}/deployments/{name}/key")
    assert r.status_code == 201 and r.json()["key"] != made["key"]
    # A served version cannot be deleted; the deployment can, then the version too.
    err = error_of(alice.request("DELETE", f"{API}/models/{model}/versions/1"), 409)
    assert f"deployment {name!r}" in err["error"]
    assert alice.request("DELETE", f"{API}/deployments/{name}").status_code == 204
    assert alice.request("GET", f"{API}/deployments/{name}").status_code == 404
    assert alice.request("DELETE", f"{API}/models/{model}/versions/1").status_code == 204


def test_metrics_window_is_bounded_and_needs_a_deployment(team: Team) -> None:
    vera = team.as_("vera")
    err = error_of(vera.request("GET", f"{API}/deployments/nothing-here/metrics"), 404)
    assert "nothing-here" in err["error"]
    model = new_model()
    assert register(team.as_("alice"), model).status_code == 201
    name = f"w-{model}"
    assert deploy(team, "alice", {"name": name, "model": model}).status_code == 201
    for bad in ("0", "1441", "abc"):
        r = vera.request("GET", f"{API}/deployments/{name}/metrics", params={"window": bad})
        error_of(r, 400)
    assert vera.get(f"{API}/deployments/{name}/metrics")["window"] == 60
