"""What the review and promotion tests share: registering, asking, verdicts, and a look
into the backend's database to check what was (not) stored beside what the API answers."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import requests
import sqlalchemy as sa
from cellops_server.store import create_engine
from cellops_server.store.tables import activity, inbox

from .attacks.conftest import Team
from .support import Api

API = "cellops/api/v1"
ARTIFACT = b"a model version under review"
ARTIFACT_SHA = hashlib.sha256(ARTIFACT).hexdigest()
EXTRA_MEMBERS = {"april": "approver"}  # min_approvals 2 needs a second approver


def add_members(team: Team) -> None:
    for name, role in EXTRA_MEMBERS.items():
        if name not in team.tokens:
            team.tokens[name] = team.add_user(name, role)


def new_model() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


def register(
    api: Api, name: str, metrics: dict[str, float] | None = None, alias: str | None = None
) -> requests.Response:
    """Upload the artifact (idempotent) and register it as a new version of ``name``."""
    uploaded = api.put_artifact(ARTIFACT)
    assert uploaded.status_code in (200, 201), uploaded.text
    body: dict[str, Any] = {"artifact": ARTIFACT_SHA, "flavor": "bytes", "metrics": metrics or {}}
    if alias is not None:
        body["alias"] = alias
    return api.request("POST", f"{API}/models/{name}/versions", json=body)


def registered(api: Api, name: str, metrics: dict[str, float] | None = None) -> int:
    r = register(api, name, metrics)
    assert r.status_code == 201, r.text
    return int(r.json()["version"])


def ask(api: Api, name: str, version: int | str, reviewers: list[str]) -> requests.Response:
    return api.request(
        "POST",
        f"{API}/models/{name}/versions/{version}/review-requests",
        json={"reviewers": reviewers},
    )


def verdict(
    api: Api, name: str, version: int | str, what: str, body: str | None = None
) -> requests.Response:
    payload: dict[str, Any] = {"verdict": what}
    if body is not None:
        payload["body"] = body
    return api.request("POST", f"{API}/models/{name}/versions/{version}/reviews", json=payload)


def reviews_of(api: Api, name: str, version: int) -> dict[str, Any]:
    return api.get(f"{API}/models/{name}/versions/{version}/reviews")


def error_of(r: requests.Response, status: int) -> dict[str, Any]:
    """The JSON error of a refusal, after checking its status and shape."""
    assert r.status_code == status, f"{r.status_code} {r.text[:500]}"
    body = r.json()
    assert set(body) == {"error", "detail"} and body["error"], body
    return body


def team_db(team: Team) -> Iterator[sa.Engine]:
    """The backend's database (for a module's ``db`` fixture); adds the extra members."""
    add_members(team)
    engine = create_engine(team.db_url)
    yield engine
    engine.dispose()


def inbox_of(db: sa.Engine, user: str) -> list[tuple[str, str, str | None, int | None]]:
    """(reason, activity type, model, version) of each inbox entry of ``user``."""
    q = (
        sa.select(inbox.c.reason, activity.c.type, activity.c.model, activity.c.model_version)
        .select_from(inbox.join(activity, activity.c.id == inbox.c.activity_id))
        .where(inbox.c.user_name == user)
        .order_by(inbox.c.id)
    )
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(q)]  # type: ignore[misc]


def activity_of(db: sa.Engine, model: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    q = (
        sa.select(activity.c.type, activity.c.actor, activity.c.data)
        .where(activity.c.model == model)
        .order_by(activity.c.id)
    )
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(q)]  # type: ignore[misc]
