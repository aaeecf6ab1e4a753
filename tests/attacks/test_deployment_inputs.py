"""Hostile and mistaken input to the deployments API of a real `cellops serve` (both stores):
every refusal is a 4xx JSON error saying what to fix, and nothing is stored by it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from cellops_server.serving.deployments import desired, key_matches
from cellops_server.store import create_engine
from cellops_server.store.tables import deployment_events, deployment_keys, deployments

from .conftest import API, Team
from .seed import register


@pytest.fixture(scope="module")
def db(team: Team) -> Iterator[sa.Engine]:
    engine = create_engine(team.db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def model(team: Team) -> str:
    """A model with versions 1-3 and alias champion on 3."""
    name = f"atk-{uuid.uuid4().hex[:8]}"
    alice = team.as_("alice")
    for i in range(3):
        r = register(alice, name, alias="champion" if i == 2 else None)
        assert r.status_code == 201, r.text
    return name


def refused(r: requests.Response, status: int, *says: str) -> dict[str, Any]:
    assert r.status_code == status, f"{r.status_code} {r.text[:500]}"
    body = r.json()
    assert set(body) == {"error", "detail"} and body["error"], body
    said = body["error"] + " " + str(body["detail"])
    for word in says:
        assert word in said, f"{word!r} not in {said!r}"
    return body


def deploy(team: Team, body: dict[str, Any], who: str = "alice") -> requests.Response:
    return team.as_(who).request("POST", f"{API}/deployments", json=body)


def names(db: sa.Engine) -> set[str]:
    with db.connect() as conn:
        return set(conn.scalars(sa.select(deployments.c.name)))


def new_name() -> str:
    return f"dep-{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize(
    "bad",
    [
        "../etc",
        "a/b",
        "..",
        ".hidden",
        "-dash",
        "iris\n",
        "ïris",
        "iris%2Fx",
        "a b",
        "",
        "x" * 65,
        "a\u202e",
    ],
)
def test_bad_names_are_refused_with_the_rule(
    team: Team, model: str, db: sa.Engine, bad: str
) -> None:
    before = names(db)
    body = refused(deploy(team, {"name": bad, "model": model}), 400, "1-64")
    assert "letters, digits" in body["error"]
    assert names(db) == before


def test_64_characters_is_the_longest_name(team: Team, model: str) -> None:
    name = "n" * 54 + uuid.uuid4().hex[:10]
    assert len(name) == 64
    assert deploy(team, {"name": name, "model": model}).status_code == 201
    r = team.as_("vera").request("GET", f"{API}/deployments/{name}x")
    refused(r, 400, "1-64")


@pytest.mark.parametrize("path", ["..%2F..%2Fmodels", "%2e%2e", "a%00b", "x" * 65])
def test_bad_names_in_the_url_are_refused(team: Team, path: str) -> None:
    r = team.as_("vera").request("GET", f"{API}/deployments/{path}")
    assert r.status_code in (400, 404), r.text
    refused(r, r.status_code)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"model": "no-such-model"}, 400, "no model named 'no-such-model'"),
        ({"version": 99}, 400, "has no version 99"),
        ({"alias": "nowhere"}, 400, "has no alias 'nowhere'"),
        ({"alias": "1bad"}, 400, "invalid alias"),
        ({"version": 1, "alias": "champion"}, 400, "either version or alias"),
        ({"version": 0}, 400, "version"),
        ({"version": -1}, 400, "version"),
        ({"version": "1; drop table"}, 400, "version"),
        ({"public": "yes"}, 400, "public"),  # never made public by a lax reading
        ({"public": 1}, 400, "public"),
        ({"key": "mine"}, 400, "key"),  # a client never picks its key
        ({"traffic": []}, 400, "traffic"),  # extra fields are refused, not ignored
        ({"model": "../../x"}, 400, "invalid model name"),
    ],
)
def test_bad_bodies_are_refused_and_store_nothing(
    team: Team, model: str, db: sa.Engine, body: dict[str, Any], status: int, says: str
) -> None:
    before = names(db)
    full = {"name": new_name(), "model": model, **body}
    refused(deploy(team, full), status, says)
    assert names(db) == before


def test_a_body_that_is_not_json_is_refused(team: Team) -> None:
    r = requests.post(
        f"{team.url}/{API}/deployments",
        data=b"{nope",
        headers={"Authorization": f"token {team.tokens['alice']}"},
        timeout=10,
    )
    refused(r, 400, "not valid JSON")


def test_a_taken_name_is_a_409(team: Team, model: str) -> None:
    name = new_name()
    assert deploy(team, {"name": name, "model": model}).status_code == 201
    refused(deploy(team, {"name": name, "model": model, "version": 1}), 409, name)


@pytest.fixture(scope="module")
def served(team: Team, model: str) -> str:
    name = new_name()
    r = deploy(team, {"name": name, "model": model, "version": 2})
    assert r.status_code == 201, r.text
    return name


@pytest.mark.parametrize(
    ("patch", "says"),
    [
        ({"traffic": [{"version": 1, "percent": 60}, {"version": 2, "percent": 30}]}, "not 90"),
        ({"traffic": [{"version": 1, "percent": 100}, {"version": 2, "percent": 10}]}, "not 110"),
        (
            {
                "traffic": [
                    {"version": 1, "percent": 34},
                    {"version": 2, "percent": 33},
                    {"version": 3, "percent": 33},
                ]
            },
            "at most 2",
        ),
        ({"traffic": [{"version": 2, "percent": 50}, {"version": 2, "percent": 50}]}, "twice"),
        ({"traffic": [{"version": 1, "percent": 100}, {"version": 2, "percent": 0}]}, "at least 1"),
        (
            {"traffic": [{"version": 1, "percent": 50}, {"version": 99, "percent": 50}]},
            "no version 99",
        ),
        ({"traffic": [{"version": 1, "percent": 101}]}, "100"),
        ({"traffic": []}, "at least 1"),
        ({"traffic": [{"version": 1, "percent": 100, "weight": 3}]}, "weight"),
        ({"version": 1, "alias": "champion"}, "exactly one"),
        ({}, "exactly one"),
        ({"version": None}, "exactly one"),
        ({"name": "renamed"}, "name"),
        ({"public": "false"}, "public"),
        ({"alias": "nowhere"}, "no alias 'nowhere'"),
        ({"version": 42}, "no version 42"),
    ],
)
def test_bad_patches_are_refused_and_change_nothing(
    team: Team, served: str, db: sa.Engine, patch: dict[str, Any], says: str
) -> None:
    alice = team.as_("alice")
    before = alice.get(f"{API}/deployments/{served}")
    r = alice.request("PATCH", f"{API}/deployments/{served}", json=patch)
    refused(r, 400, says)
    assert alice.get(f"{API}/deployments/{served}") == before


def test_unknown_deployments_are_a_404(team: Team) -> None:
    alice = team.as_("alice")
    for method, suffix, body in [
        ("GET", "", None),
        ("PATCH", "", {"version": 1}),
        ("DELETE", "", None),
        ("GET", "/events", None),
        ("POST", "/key", None),
    ]:
        r = alice.request(method, f"{API}/deployments/never-made{suffix}", json=body)
        refused(r, 404, "no deployment named 'never-made'")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("POST", "", {"name": "viewer-made", "model": "x"}),
        ("PATCH", "/NAME", {"version": 1}),
        ("DELETE", "/NAME", None),
        ("POST", "/NAME/key", None),
    ],
)
def test_a_viewer_reads_but_cannot_change(
    team: Team, served: str, db: sa.Engine, method: str, suffix: str, body: Any
) -> None:
    vera = team.as_("vera")
    assert vera.get(f"{API}/deployments/{served}")["name"] == served
    with db.connect() as conn:
        before = conn.execute(sa.select(deployments).order_by(deployments.c.id)).all()
    r = vera.request(method, f"{API}/deployments{suffix.replace('NAME', served)}", json=body)
    refused(r, 403, "editor")
    with db.connect() as conn:
        assert conn.execute(sa.select(deployments).order_by(deployments.c.id)).all() == before


def test_every_endpoint_needs_a_token(team: Team, served: str) -> None:
    for method, suffix in [
        ("GET", ""),
        ("POST", ""),
        ("GET", f"/{served}"),
        ("PATCH", f"/{served}"),
        ("DELETE", f"/{served}"),
        ("GET", f"/{served}/events"),
        ("GET", f"/{served}/metrics"),
        ("POST", f"/{served}/key"),
    ]:
        for headers in ({}, {"Authorization": "token not-a-token"}):
            r = requests.request(
                method, f"{team.url}/{API}/deployments{suffix}", headers=headers, timeout=10
            )
            refused(r, 401)


def test_a_served_version_cannot_be_deleted_or_archived(
    team: Team, model: str, served: str
) -> None:
    alice = team.as_("alice")
    r = alice.request("DELETE", f"{API}/models/{model}/versions/2")
    body = refused(r, 409, f"deployment {served!r}")
    assert f"deployment {served!r}" in body["detail"]["used_by"]
    r = alice.request("PATCH", f"{API}/models/{model}/versions/2", json={"archived": True})
    refused(r, 409, f"deployment {served!r}")
    refused(alice.request("DELETE", f"{API}/models/{model}"), 409, f"deployment {served!r}")
    assert alice.get(f"{API}/models/{model}/versions/2")["version"] == 2


def test_an_archived_version_cannot_be_deployed(team: Team, db: sa.Engine) -> None:
    alice = team.as_("alice")
    name = f"arch-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        assert register(alice, name).status_code == 201
    r = alice.request("PATCH", f"{API}/models/{name}/versions/1", json={"archived": True})
    assert r.status_code == 200, r.text
    refused(deploy(team, {"name": new_name(), "model": name, "version": 1}), 409, "archived")
    made = deploy(team, {"name": new_name(), "model": name, "version": 2})
    assert made.status_code == 201
    dep = made.json()["name"]
    r = alice.request("PATCH", f"{API}/deployments/{dep}", json={"version": 1})
    refused(r, 409, "archived")


def test_a_followed_alias_cannot_be_removed(team: Team, model: str) -> None:
    alice = team.as_("alice")
    name = new_name()
    assert deploy(team, {"name": name, "model": model, "alias": "champion"}).status_code == 201
    r = alice.request("DELETE", f"{API}/models/{model}/aliases/champion")
    refused(r, 409, f"deployment {name!r} follows it")
    r = alice.request("PATCH", f"{API}/deployments/{name}", json={"version": 3})
    assert r.status_code == 200 and r.json()["alias"] is None


def test_the_key_is_shown_once_and_only_its_hash_is_stored(
    team: Team, model: str, db: sa.Engine
) -> None:
    alice = team.as_("alice")
    r = deploy(team, {"name": new_name(), "model": model})
    assert r.status_code == 201
    made = r.json()
    key = made["key"]
    with db.connect() as conn:
        dep_id = conn.scalar(sa.select(deployments.c.id).where(deployments.c.name == made["name"]))
        stored = conn.scalar(
            sa.select(deployment_keys.c.key_sha256).where(deployment_keys.c.deployment_id == dep_id)
        )
        dumped = " ".join(
            str(tuple(row))
            for table in (deployments, deployment_keys, deployment_events)
            for row in conn.execute(sa.select(table))
        )
    assert stored == hashlib.sha256(key.encode()).hexdigest()
    assert key not in dumped  # nowhere in the store in the clear
    again = alice.get(f"{API}/deployments/{made['name']}")
    assert key not in str(again) and "key" not in again
    assert key not in str(alice.get(f"{API}/deployments/{made['name']}/events"))
    # Rotation: the old key stops matching, the new one matches.
    r = alice.request("POST", f"{API}/deployments/{made['name']}/key")
    assert r.status_code == 201, r.text
    new = r.json()["key"]
    [d] = [d for d in desired(db) if d.name == made["name"]]
    assert key_matches(d.key_sha256, new)
    assert not key_matches(d.key_sha256, key)
    assert not key_matches(d.key_sha256, "")
    events = alice.get(f"{API}/deployments/{made['name']}/events")["items"]
    assert events[-1]["type"] == "key_rotated" and events[-1]["actor"] == "alice"
    assert events[-1]["at"]


def test_a_public_deployment_has_no_key_to_rotate(team: Team, model: str) -> None:
    alice = team.as_("alice")
    r = deploy(team, {"name": new_name(), "model": model, "public": True})
    assert r.status_code == 201 and r.json()["key"] is None and r.json()["public"] is True
    refused(alice.request("POST", f"{API}/deployments/{r.json()['name']}/key"), 400, "public")


def test_oversized_bodies_are_refused(team: Team, model: str) -> None:
    huge = {"name": new_name(), "model": model, "alias": "a" * (2 * 1024 * 1024)}
    refused(deploy(team, huge), 413, "too large")
