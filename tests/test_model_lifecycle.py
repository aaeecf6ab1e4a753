"""Archiving and deleting model versions and models through the team backend (both stores).

One `cellops serve` per store is shared by the module (tests/conftest.py `team`); each test
registers under a model name of its own, so the tests do not depend on each other's order.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from cellops_server.registry import Registry
from cellops_server.registry.names import ALIAS_RULE, ALIAS_RULE_TEXT, anchored
from cellops_server.store import Store, create_engine
from cellops_server.store.engine import MIGRATIONS
from cellops_server.store.tables import model_versions, models

from .attacks.conftest import Team
from .support import Api

API = "cellops/api/v1"
DIALOGS_TS = Path(__file__).parents[1] / "extension" / "src" / "sidebar" / "modelDialogs.ts"


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def register(api: Api, model: str, data: bytes, alias: str | None = None) -> dict[str, Any]:
    sha = hashlib.sha256(data).hexdigest()
    assert api.put_artifact(data).status_code in (200, 201)
    body: dict[str, Any] = {"artifact": sha, "flavor": "sklearn"}
    if alias is not None:
        body["alias"] = alias
    r = api.request("POST", f"{API}/models/{model}/versions", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def versions(api: Api, model: str, **params: Any) -> list[int]:
    return [v["version"] for v in api.get(f"{API}/models/{model}/versions", **params)["items"]]


def model_names(api: Api, **params: Any) -> list[str]:
    return [m["name"] for m in api.get(f"{API}/models", limit=500, **params)["items"]]


def artifact_file(team: Team, data: bytes) -> Path:
    sha = hashlib.sha256(data).hexdigest()
    return Path(team.artifacts) / sha[:2] / sha[2:4] / sha


def test_archived_version_is_hidden_by_default_still_loadable_and_can_return(team: Team) -> None:
    alice = team.as_("alice")
    model = fresh("arch")
    register(alice, model, b"v1 " + model.encode())
    register(alice, model, b"v2 " + model.encode())

    r = alice.request("PATCH", f"{API}/models/{model}/versions/1", json={"archived": True})
    assert r.status_code == 200 and r.json()["archived"] is True
    assert versions(alice, model) == [2]
    assert versions(alice, model, archived="true") == [2, 1]

    # What cellops.load reads: the version by number, then its artifact.
    got = alice.get(f"{API}/models/{model}/versions/1")
    assert got["archived"] is True
    assert alice.request("GET", f"{API}/artifacts/{got['artifact']}").content == b"v1 " + (
        model.encode()
    )

    r = alice.request("PATCH", f"{API}/models/{model}/versions/1", json={"archived": False})
    assert r.status_code == 200 and r.json()["archived"] is False
    assert versions(alice, model) == [2, 1]


def test_an_aliased_version_is_neither_archived_nor_deleted_and_the_alias_is_named(
    team: Team,
) -> None:
    alice = team.as_("alice")
    model = fresh("aliased")
    register(alice, model, b"champ " + model.encode(), alias="champion")

    for method, body in (("PATCH", {"archived": True}), ("DELETE", None)):
        r = alice.request(method, f"{API}/models/{model}/versions/1", json=body)
        assert r.status_code == 409, r.text
        assert "'champion'" in r.json()["error"]
        assert r.json()["detail"] == {"used_by": ["alias 'champion' (on v1)"]}
    for method, body in (("PATCH", {"archived": True}), ("DELETE", None)):
        r = alice.request(method, f"{API}/models/{model}", json=body)
        assert r.status_code == 409 and "'champion'" in r.json()["error"], r.text
    assert versions(alice, model) == [1]
    assert model in model_names(alice)

    # Once the alias is removed, both go through.
    assert alice.request("DELETE", f"{API}/models/{model}/aliases/champion").status_code == 204
    r = alice.request("PATCH", f"{API}/models/{model}/versions/1", json={"archived": True})
    assert r.status_code == 200


def test_an_alias_cannot_point_at_an_archived_version(team: Team) -> None:
    alice = team.as_("alice")
    model = fresh("noalias")
    register(alice, model, b"only " + model.encode())
    alice.request("PATCH", f"{API}/models/{model}/versions/1", json={"archived": True})
    r = alice.request("PUT", f"{API}/models/{model}/aliases/prod", json={"version": 1})
    assert r.status_code == 409 and "archived" in r.json()["error"]
    assert alice.get(f"{API}/models/{model}")["aliases"] == {}


def test_deleting_a_version_removes_its_artifact_only_when_no_other_version_has_it(
    team: Team,
) -> None:
    alice = team.as_("alice")
    model, other = fresh("del"), fresh("del-other")
    shared, own = b"shared " + model.encode(), b"own " + model.encode()
    register(alice, model, shared)  # v1
    register(alice, other, shared)  # the same bytes in another model
    register(alice, model, own)  # v2

    assert alice.request("DELETE", f"{API}/models/{model}/versions/1").status_code == 204
    assert artifact_file(team, shared).is_file()  # still other's v1
    assert alice.request("DELETE", f"{API}/models/{model}/versions/2").status_code == 204
    assert not artifact_file(team, own).exists()
    assert alice.request("GET", f"{API}/models/{model}/versions/2").status_code == 404
    assert versions(alice, model, archived="true") == []
    assert alice.get(f"{API}/models/{model}")["latest_version"] == 0

    # Numbers are never given out again: the next version is v3, not v1.
    assert register(alice, model, own)["version"] == 3
    assert alice.get(f"{API}/models/{model}")["latest_version"] == 3


def test_latest_is_the_highest_remaining_version(team: Team) -> None:
    alice = team.as_("alice")
    model = fresh("latest")
    register(alice, model, b"a " + model.encode())
    register(alice, model, b"b " + model.encode())
    assert alice.request("DELETE", f"{API}/models/{model}/versions/2").status_code == 204
    assert alice.get(f"{API}/models/{model}")["latest_version"] == 1  # what load() picks


def test_archive_and_delete_a_whole_model(team: Team) -> None:
    alice = team.as_("alice")
    model, other = fresh("whole"), fresh("whole-other")
    mine, shared = b"mine " + model.encode(), b"shared " + model.encode()
    register(alice, model, mine)
    register(alice, model, shared)
    register(alice, other, shared)

    r = alice.request("PATCH", f"{API}/models/{model}", json={"archived": True})
    assert r.status_code == 200 and r.json()["archived"] is True
    assert model not in model_names(alice)
    assert model in model_names(alice, archived="true")
    assert alice.get(f"{API}/models/{model}/versions/2")["artifact"]  # still loadable
    # A new version brings the model back into the list.
    register(alice, model, b"new " + model.encode())
    assert model in model_names(alice)

    assert alice.request("DELETE", f"{API}/models/{model}").status_code == 204
    assert alice.request("GET", f"{API}/models/{model}").status_code == 404
    assert model not in model_names(alice, archived="true")
    assert not artifact_file(team, mine).exists()
    assert artifact_file(team, shared).is_file()  # other's version has these bytes
    assert versions(alice, other) == [1]
    assert register(alice, model, mine)["version"] == 1  # the name is free again


def test_viewers_may_not_archive_or_delete(team: Team) -> None:
    alice, vera = team.as_("alice"), team.as_("vera")
    model = fresh("roles")
    register(alice, model, b"roles " + model.encode())
    for method, path, body in (
        ("PATCH", f"models/{model}/versions/1", {"archived": True}),
        ("DELETE", f"models/{model}/versions/1", None),
        ("PATCH", f"models/{model}", {"archived": True}),
        ("DELETE", f"models/{model}", None),
    ):
        r = vera.request(method, f"{API}/{path}", json=body)
        assert r.status_code == 403, (method, path, r.text)
    assert versions(alice, model) == [1]
    assert alice.get(f"{API}/models/{model}")["archived"] is False


def test_bad_input_is_refused_with_what_to_fix(team: Team) -> None:
    alice = team.as_("alice")
    model = fresh("bad")
    register(alice, model, b"bad " + model.encode())
    cases = [
        ("PATCH", f"models/{model}", {"archived": "yes"}, 400, "archived"),
        ("PATCH", f"models/{model}", {"archive": True}, 400, "archive"),
        ("PATCH", f"models/{model}/versions/1", {"archived": 1.5}, 400, "archived"),
        ("DELETE", f"models/{model}/versions/x", None, 400, "integer"),
        ("DELETE", f"models/{model}/versions/9", None, 404, "no version 9"),
        ("DELETE", "models/no-such-model", None, 404, "no model"),
        ("DELETE", "models/-bad", None, 400, "invalid model name"),
        ("GET", f"models/{model}/versions?archived=maybe", None, 400, "archived"),
        ("GET", "models?archived=maybe", None, 400, "archived"),
    ]
    for method, path, body, status, says in cases:
        r = alice.request(method, f"{API}/{path}", json=body)
        assert r.status_code == status, (method, path, r.text)
        assert says in r.text, (method, path, r.text)  # the error or its detail
    assert alice.get(f"{API}/models/{model}/versions/1")["archived"] is False


def test_the_alias_rule_is_published_and_the_sidebar_mirrors_it(team: Team) -> None:
    alice = team.as_("alice")
    doc = alice.get(f"{API}/openapi.json")
    schema = doc["components"]["schemas"]["AliasSet"]
    assert schema["x-alias-pattern"] == anchored(ALIAS_RULE)
    assert schema["x-alias-rule"] == ALIAS_RULE_TEXT
    # The dialog validates as the user types with the same expression and words.
    source = DIALOGS_TS.read_text()
    found = re.search(r"const ALIAS_RULE = /(.+)/;", source)
    assert found is not None and found.group(1) == anchored(ALIAS_RULE)
    assert ALIAS_RULE_TEXT in source


# -- migration 0009 on both stores ---------------------------------------------------------------


def test_migration_0009_keeps_models_and_versions_unarchived(db_url: str, tmp_path: Path) -> None:
    engine = create_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
        now = datetime.now(timezone.utc)
        model_id = conn.execute(
            sa.insert(models).values(name="old", latest_version=1, created_at=now, updated_at=now)
        ).inserted_primary_key[0]
        conn.execute(
            sa.insert(model_versions).values(
                model_id=model_id,
                version=1,
                artifact="0" * 64,
                artifact_size=1,
                flavor="sklearn",
                library_versions={},
                metrics={"accuracy": 0.5},
                params={},
                tags={},
                created_by="alice",
                created_at=now,
                data_fingerprints=[],
            )
        )
    engine.dispose()

    store = Store(db_url, str(tmp_path / "artifacts"))  # migrates to the head
    try:
        registry = Registry(store)
        (model,) = registry.list_models().items
        assert (model.name, model.latest_version, model.archived) == ("old", 1, False)
        (version,) = registry.list_versions("old").items
        assert (version.version, version.created_by, version.archived) == (1, "alice", False)
        assert version.metrics == {"accuracy": 0.5}
    finally:
        store.close()


def test_a_reviewed_and_discussed_version_and_model_can_be_deleted(team: Team) -> None:
    """Comments, review requests, verdicts and a policy point at the model: deleting the
    version, then the model, removes them with it (not a 409 from a dangling reference)."""
    alice, ada, admin = team.as_("alice"), team.as_("ada"), team.as_("admin")
    model = fresh("discussed")
    for n in (1, 2):
        register(alice, model, f"discussed {n} {model}".encode())
    for version in (1, 2):
        thread = {"kind": "model_version", "model": model, "version": version}
        assert (
            alice.request(
                "POST", f"{API}/comments", json={"target": thread, "body": "looks fine?"}
            ).status_code
            == 201
        )
        assert (
            alice.request(
                "POST",
                f"{API}/models/{model}/versions/{version}/review-requests",
                json={"reviewers": ["ada"]},
            ).status_code
            == 201
        )
        assert (
            ada.request(
                "POST",
                f"{API}/models/{model}/versions/{version}/reviews",
                json={"verdict": "approve", "body": "yes"},
            ).status_code
            == 201
        )
    policy = {"protected_aliases": {"production": {"min_approvals": 1}}}
    assert admin.request("PUT", f"{API}/models/{model}/policy", json=policy).status_code == 200

    assert alice.request("DELETE", f"{API}/models/{model}/versions/1").status_code == 204
    assert versions(alice, model) == [2]
    gone = alice.request("GET", f"{API}/comments", params={"model": model, "version": 1})
    assert gone.status_code == 404, gone.text
    kept = alice.get(f"{API}/comments", model=model, version=2)["items"]
    assert [c["body"] for c in kept] == ["looks fine?", "yes"]
    assert alice.get(f"{API}/models/{model}/versions/2/reviews")["state"] == "approved"

    assert alice.request("DELETE", f"{API}/models/{model}").status_code == 204
    assert alice.request("GET", f"{API}/models/{model}").status_code == 404
    # The name is free again, with no policy and no reviews carried over.
    register(alice, model, b"anew " + model.encode())
    assert alice.get(f"{API}/models/{model}/policy")["protected_aliases"] == {}
    assert alice.get(f"{API}/models/{model}/versions/1/reviews")["state"] == "none"
