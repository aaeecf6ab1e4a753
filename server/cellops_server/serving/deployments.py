"""Deployments over the store: create, change (pin, roll back, follow an alias, split
traffic, public or keyed), delete, keys and events; and what the serving router reads.

Like the registry (registry/store.py), every change is one transaction that holds the
model's row lock (``SELECT … FOR UPDATE``; SQLite: ``BEGIN IMMEDIATE``) while it reads
versions and aliases, so a version cannot be deleted or archived between the check and the
write. Registry deletions and archiving take the same lock and ask ``usages()``, which
names the deployments serving a version (``deployment_usages`` below).

A deployment that follows an alias stores the traffic it had when last changed; what it
serves is resolved when read (``desired``, ``get``), so moving the alias moves the
deployment without a write here: the router sees the new version on its next poll.

Keys: ``secrets.token_urlsafe(32)``, shown once; only their sha256 is stored.

A model's policy may let deployments serve only versions holding one alias
(``deploy_requires_alias``): creating and changing a deployment ask ``check_deploy`` under
the same lock, so the alias cannot move between the check and the write.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ..registry.names import check_alias, check_model_name
from ..review.activity import record_activity
from ..review.policy import check_deploy
from ..schemas import (
    Deployment,
    DeploymentCreate,
    DeploymentCreated,
    DeploymentEvent,
    DeploymentPatch,
    DeploymentUrls,
    TrafficShare,
)
from ..store import NotFound, Store
from ..store.engine import write_transaction
from ..store.tables import (
    deployment_events,
    deployment_keys,
    deployment_metrics,
    deployment_samples,
    deployments,
    model_aliases,
    model_versions,
    models,
)
from .names import check_deployment_name

STATES = ("starting", "ready", "failed")
MAX_ERROR = 2000  # characters of a failure reason kept (it is shown in the sidebar)


class DeploymentExists(Exception):
    """A 409: the name is taken."""


class NotServable(Exception):
    """A 409: the version exists but may not be served (archived)."""


# -- what the serving router reads ---------------------------------------------------------


@dataclass(frozen=True)
class ServedVersion:
    version: int
    percent: int
    artifact: str  # sha256 of the artifact in the artifact store
    flavor: str
    signature: dict[str, Any] | None


@dataclass(frozen=True)
class DesiredDeployment:
    name: str
    model: str
    alias: str | None
    public: bool
    key_sha256: str | None  # None: no key (public, or none made yet)
    generation: int
    versions: tuple[ServedVersion, ...]


def desired(engine: sa.Engine) -> list[DesiredDeployment]:
    """Every deployment with the versions it should serve now (aliases resolved), in two
    queries whatever the number of deployments: the router polls this."""
    with engine.connect() as conn:
        rows = list(conn.execute(_deployment_query().order_by(deployments.c.name)))
        pairs = {(r.model_id, s["version"]) for r in rows for s in _traffic(r)}
        details = _version_details(conn, pairs)
    out = []
    for r in rows:
        served = tuple(
            ServedVersion(s["version"], s["percent"], *details[(r.model_id, s["version"])])
            for s in _traffic(r)
            if (r.model_id, s["version"]) in details
        )
        out.append(
            DesiredDeployment(
                name=r.name,
                model=r.model_name,
                alias=r.alias,
                public=bool(r.public),
                key_sha256=r.key_sha256,
                generation=r.generation,
                versions=served,
            )
        )
    return out


def report_state(
    engine: sa.Engine,
    name: str,
    state: str,
    error: str | None = None,
    generation: int | None = None,
) -> None:
    """The router's word on a deployment: ``state`` (starting | ready | failed) and why it
    failed. A ``state_changed`` event (actor None) only when state or error changed. With
    ``generation``, a report about an older configuration than the stored one is dropped
    (a change made meanwhile must not be reported ready by the old load)."""
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    error = error[:MAX_ERROR] if error else None
    with write_transaction(engine) as conn:
        row = conn.execute(
            sa.select(deployments.c.state, deployments.c.error, deployments.c.generation)
            .where(deployments.c.name == name)
            .with_for_update()
        ).first()
        if row is None or (generation is not None and generation != row.generation):
            return
        if (row.state, row.error) == (state, error):
            return
        conn.execute(
            sa.update(deployments)
            .where(deployments.c.name == name)
            .values(state=state, error=error)
        )
        _event(conn, name, None, "state_changed", {"from": row.state, "to": state, "error": error})


def key_matches(stored_sha256: str | None, presented: str) -> bool:
    """Whether ``presented`` is the key whose sha256 is stored (constant-time compare)."""
    if not stored_sha256 or not presented:
        return False
    return hmac.compare_digest(hash_key(presented), stored_sha256)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


# -- what the registry asks before deleting or archiving -----------------------------------


def deployment_usages(conn: sa.Connection, model_id: int, number: int | None) -> list[str]:
    """The deployments serving the model (``number`` None) or that version of it, in words
    (registry/store.py ``usages``)."""
    rows = conn.execute(
        _deployment_query().where(deployments.c.model_id == model_id).order_by(deployments.c.name)
    )
    found = []
    for r in rows:
        served = [s["version"] for s in _traffic(r)]
        if number is None:
            found.append(f"deployment {r.name!r}")
        elif number in served:
            how = f" (via alias {r.alias!r})" if r.alias else ""
            found.append(f"deployment {r.name!r}{how}")
    return found


def alias_followers(conn: sa.Connection, model_id: int, alias: str) -> list[str]:
    """The deployments following ``alias`` of the model (the alias cannot be removed)."""
    names = conn.scalars(
        sa.select(deployments.c.name)
        .where(deployments.c.model_id == model_id, deployments.c.alias == alias)
        .order_by(deployments.c.name)
    )
    return [f"deployment {n!r}" for n in names]


# -- the domain the API handlers call -------------------------------------------------------


class Deployments:
    def __init__(self, store: Store, serving_url: str = "") -> None:
        self.engine = store.engine
        self.serving_url = serving_url.rstrip("/")

    def create(self, body: DeploymentCreate, actor: str | None) -> DeploymentCreated:
        """A new deployment of a version, of what an alias points at, or (neither) of the
        model's latest version; keyed unless ``public`` (the key is answered once)."""
        name = check_deployment_name(body.name)
        check_model_name(body.model)
        if body.version is not None and body.alias is not None:
            raise ValueError("give either version or alias, not both")
        if body.alias is not None:
            check_alias(body.alias)
        now = _now()
        key = None if body.public else new_key()
        with write_transaction(self.engine) as conn:
            model_id = _lock_model(conn, body.model)
            if conn.scalar(sa.select(deployments.c.id).where(deployments.c.name == name)):
                raise DeploymentExists(f"a deployment named {name!r} exists: pick another name")
            if body.alias is not None:
                version = _alias_version(conn, model_id, body.model, body.alias)
            elif body.version is not None:
                version = body.version
            else:
                version = _latest_servable(conn, model_id, body.model)
            _check_servable(conn, model_id, body.model, version)
            check_deploy(conn, model_id, body.model, [version], body.alias)
            deployment_id = conn.execute(
                sa.insert(deployments)
                .values(
                    name=name,
                    model_id=model_id,
                    alias=body.alias,
                    traffic=[{"version": version, "percent": 100}],
                    public=body.public,
                    state="starting",
                    error=None,
                    generation=1,
                    created_by=actor,
                    created_at=now,
                    updated_at=now,
                )
                .returning(deployments.c.id)
            ).scalar_one()
            if key is not None:
                _store_key(conn, deployment_id, key, actor, now)
            data = {
                "model": body.model,
                "version": version,
                "alias": body.alias,
                "public": body.public,
            }
            _event(conn, name, actor, "created", data)
            record_activity(
                conn,
                "deployment.created",
                actor,
                model=body.model,
                version=version,
                data={"deployment": name, "alias": body.alias, "public": body.public},
            )
        return DeploymentCreated(**self.get(name).model_dump(), key=key)

    def list(self) -> list[Deployment]:
        with self.engine.connect() as conn:
            q = _deployment_query().add_columns(_last_drift()).order_by(deployments.c.name)
            return [self._deployment(r) for r in conn.execute(q)]

    def get(self, name: str) -> Deployment:
        check_deployment_name(name)
        with self.engine.connect() as conn:
            q = _deployment_query().add_columns(_last_drift())
            row = conn.execute(q.where(deployments.c.name == name)).first()
        if row is None:
            raise NotFound(f"no deployment named {name!r}")
        return self._deployment(row)

    def patch(self, name: str, body: DeploymentPatch, actor: str | None) -> DeploymentCreated:
        """One change: pin ``version`` (``rolled_back`` when older than the version taking
        most traffic), follow ``alias``, split ``traffic``, or make it ``public`` or keyed.
        Making it keyed again makes a new key, answered in ``key`` (null otherwise)."""
        check_deployment_name(name)
        fields = [
            f for f in ("version", "alias", "traffic", "public") if getattr(body, f) is not None
        ]
        if len(fields) != 1:
            raise ValueError(
                "send exactly one of version, alias, traffic or public "
                f"(got {', '.join(fields) or 'none'})"
            )
        key = None
        with write_transaction(self.engine) as conn:
            row = self._lock(conn, name)
            change = self._change(conn, row, body)  # None: no event, no new generation
            if change is not None:
                values, event, data = change
                now = _now()
                if values.get("public") is True:
                    conn.execute(
                        sa.delete(deployment_keys).where(deployment_keys.c.deployment_id == row.id)
                    )
                elif values.get("public") is False:
                    key = new_key()
                    _store_key(conn, row.id, key, actor, now)
                conn.execute(
                    sa.update(deployments)
                    .where(deployments.c.id == row.id)
                    .values(
                        **values,
                        generation=deployments.c.generation + 1,
                        state="starting",
                        error=None,
                        updated_at=now,
                    )
                )
                _event(conn, name, actor, event, data)
                record_activity(
                    conn,
                    "deployment.changed",
                    actor,
                    model=row.model_name,
                    version=_primary(values.get("traffic") or _traffic(row)),
                    data={"deployment": name, "change": event, **data},
                )
        return DeploymentCreated(**self.get(name).model_dump(), key=key)

    def delete(self, name: str, actor: str | None) -> None:
        """Remove the deployment, its key, metrics and samples; its events stay (history)."""
        check_deployment_name(name)
        with write_transaction(self.engine) as conn:
            row = self._lock(conn, name)
            conn.execute(
                sa.delete(deployment_keys).where(deployment_keys.c.deployment_id == row.id)
            )
            conn.execute(sa.delete(deployments).where(deployments.c.id == row.id))
            # A deployment made later under the same name starts with no history of numbers.
            conn.execute(
                sa.delete(deployment_metrics).where(deployment_metrics.c.deployment == name)
            )
            conn.execute(
                sa.delete(deployment_samples).where(deployment_samples.c.deployment == name)
            )
            _event(conn, name, actor, "deleted", {"model": row.model_name})
            record_activity(
                conn,
                "deployment.deleted",
                actor,
                model=row.model_name,
                data={"deployment": name},
            )

    def rotate_key(self, name: str, actor: str | None) -> str:
        """A new key; the old one stops working at once. Refused (400) for a public one."""
        check_deployment_name(name)
        key = new_key()
        with write_transaction(self.engine) as conn:
            row = self._lock(conn, name)
            if row.public:
                raise ValueError(
                    f"deployment {name!r} is public: it has no key (PATCH public false first)"
                )
            _store_key(conn, row.id, key, actor, _now())
            conn.execute(
                sa.update(deployments)
                .where(deployments.c.id == row.id)
                .values(generation=deployments.c.generation + 1, updated_at=_now())
            )
            _event(conn, name, actor, "key_rotated", {})
        return key

    def events(self, name: str) -> list[DeploymentEvent]:
        """Every change of the deployment, oldest first (of a deleted one too)."""
        check_deployment_name(name)
        with self.engine.connect() as conn:
            rows = list(
                conn.execute(
                    sa.select(deployment_events)
                    .where(deployment_events.c.deployment == name)
                    .order_by(deployment_events.c.id)
                )
            )
            if not rows and not conn.scalar(
                sa.select(deployments.c.id).where(deployments.c.name == name)
            ):
                raise NotFound(f"no deployment named {name!r}")
        return [
            DeploymentEvent(id=r.id, at=r.at, actor=r.actor, type=r.type, data=r.data) for r in rows
        ]

    def exists(self, name: str) -> None:
        """NotFound unless the deployment exists."""
        check_deployment_name(name)
        with self.engine.connect() as conn:
            if conn.scalar(sa.select(deployments.c.id).where(deployments.c.name == name)) is None:
                raise NotFound(f"no deployment named {name!r}")

    # -- helpers ---------------------------------------------------------------------------

    def _lock(self, conn: sa.Connection, name: str) -> Any:
        """The deployment's row (with alias resolved), its model's row locked first (the
        order registry writes take), then its own."""
        model_id = conn.scalar(sa.select(deployments.c.model_id).where(deployments.c.name == name))
        if model_id is None:
            raise NotFound(f"no deployment named {name!r}")
        conn.execute(sa.select(models.c.id).where(models.c.id == model_id).with_for_update())
        conn.execute(
            sa.select(deployments.c.id).where(deployments.c.name == name).with_for_update()
        )
        row = conn.execute(_deployment_query().where(deployments.c.name == name)).first()
        if row is None:
            raise NotFound(f"no deployment named {name!r}")
        return row

    def _change(
        self, conn: sa.Connection, row: Any, body: DeploymentPatch
    ) -> tuple[dict[str, Any], str, dict[str, Any]] | None:
        """(new column values, event type, event data) of the patch, or None if it changes
        nothing."""
        model, current = row.model_name, _traffic(row)
        if body.version is not None:
            _check_servable(conn, row.model_id, model, body.version)
            traffic = [{"version": body.version, "percent": 100}]
            if row.alias is None and traffic == current:
                return None
            check_deploy(conn, row.model_id, model, [body.version], None)
            was = _primary(current)
            event = "rolled_back" if body.version < was else "version_changed"
            return {"alias": None, "traffic": traffic}, event, {"from": was, "to": body.version}
        if body.alias is not None:
            check_alias(body.alias)
            version = _alias_version(conn, row.model_id, model, body.alias)
            if row.alias == body.alias:
                return None
            check_deploy(conn, row.model_id, model, [version], body.alias)
            traffic = [{"version": version, "percent": 100}]
            data = {"alias": body.alias, "version": version, "from": _primary(current)}
            return {"alias": body.alias, "traffic": traffic}, "alias_followed", data
        if body.traffic is not None:
            traffic = _check_traffic(conn, row.model_id, model, body.traffic)
            if row.alias is None and traffic == current:
                return None
            check_deploy(conn, row.model_id, model, [s["version"] for s in traffic], None)
            data = {"traffic": traffic, "from": current}
            return {"alias": None, "traffic": traffic}, "traffic_changed", data
        assert body.public is not None
        if bool(row.public) == body.public:
            return None
        return {"public": body.public}, "public_changed", {"public": body.public}

    def _deployment(self, r: Any) -> Deployment:
        traffic = _traffic(r)
        base = self.serving_url
        return Deployment(
            name=r.name,
            model=r.model_name,
            version=_primary(traffic),
            alias=r.alias,
            state=r.state,
            error=r.error,
            traffic=[TrafficShare(**s) for s in traffic],
            urls=DeploymentUrls(
                v2=f"{base}/v2/models/{r.name}",
                invocations=f"{base}/deployments/{r.name}/invocations",
            ),
            public=bool(r.public),
            drifted=None if r.last_drift is None else bool(r.last_drift.get("drifted")),
            created_by=r.created_by,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


# -- queries and checks ---------------------------------------------------------------------


def _deployment_query() -> sa.Select[Any]:
    """Deployments with their model's name, the followed alias's version now, and the key."""
    return sa.select(
        deployments,
        models.c.name.label("model_name"),
        model_aliases.c.version.label("alias_version"),
        deployment_keys.c.key_sha256,
    ).select_from(
        deployments.join(models, models.c.id == deployments.c.model_id)
        .outerjoin(
            model_aliases,
            sa.and_(
                model_aliases.c.model_id == deployments.c.model_id,
                model_aliases.c.alias == deployments.c.alias,
            ),
        )
        .outerjoin(deployment_keys, deployment_keys.c.deployment_id == deployments.c.id)
    )


def _last_drift() -> sa.Label[Any]:
    """The data of the deployment's latest drift_changed event (monitoring/drift.py), a
    column of the one query that lists deployments; a deleted namesake's are not its own."""
    e = deployment_events.c
    return (
        sa.select(e.data)
        .where(
            e.deployment == deployments.c.name,
            e.type == "drift_changed",
            e.at >= deployments.c.created_at,
        )
        .order_by(e.id.desc())
        .limit(1)
        .scalar_subquery()
        .label("last_drift")
    )


def _traffic(r: Any) -> list[dict[str, int]]:
    """What the deployment serves now: the followed alias's version, else its stored split
    (also if the alias vanished: a followed alias cannot be removed, so only defensively)."""
    if r.alias is not None and r.alias_version is not None:
        return [{"version": int(r.alias_version), "percent": 100}]
    return [{"version": int(s["version"]), "percent": int(s["percent"])} for s in r.traffic]


def _primary(traffic: list[dict[str, int]]) -> int:
    """The version taking most of the traffic (the first listed on a tie)."""
    return max(traffic, key=lambda s: s["percent"])["version"]


def _version_details(
    conn: sa.Connection, pairs: set[tuple[int, int]]
) -> dict[tuple[int, int], tuple[str, str, dict[str, Any] | None]]:
    if not pairs:
        return {}
    mv = model_versions
    rows = conn.execute(
        sa.select(mv.c.model_id, mv.c.version, mv.c.artifact, mv.c.flavor, mv.c.signature).where(
            sa.tuple_(mv.c.model_id, mv.c.version).in_(sorted(pairs))
        )
    )
    return {(r.model_id, r.version): (r.artifact, r.flavor, r.signature) for r in rows}


def _lock_model(conn: sa.Connection, name: str) -> int:
    model_id = conn.scalar(sa.select(models.c.id).where(models.c.name == name).with_for_update())
    if model_id is None:
        raise ValueError(f"no model named {name!r}: register it first")
    return int(model_id)


def _alias_version(conn: sa.Connection, model_id: int, model: str, alias: str) -> int:
    version = conn.scalar(
        sa.select(model_aliases.c.version).where(
            model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
        )
    )
    if version is None:
        raise ValueError(f"model {model!r} has no alias {alias!r}")
    return int(version)


def _latest_servable(conn: sa.Connection, model_id: int, model: str) -> int:
    version = conn.scalar(
        sa.select(sa.func.max(model_versions.c.version)).where(
            model_versions.c.model_id == model_id, model_versions.c.archived == sa.false()
        )
    )
    if version is None:
        raise ValueError(f"model {model!r} has no version that can be deployed")
    return int(version)


def _check_servable(conn: sa.Connection, model_id: int, model: str, version: int) -> None:
    archived = conn.execute(
        sa.select(model_versions.c.archived).where(
            model_versions.c.model_id == model_id, model_versions.c.version == version
        )
    ).first()
    if archived is None:
        raise ValueError(f"model {model!r} has no version {version}")
    if archived[0]:
        raise NotServable(
            f"model {model!r} version {version} is archived: unarchive it before deploying it"
        )


def _check_traffic(
    conn: sa.Connection, model_id: int, model: str, shares: list[TrafficShare]
) -> list[dict[str, int]]:
    versions = [s.version for s in shares]
    if len(set(versions)) != len(versions):
        raise ValueError(f"traffic names version {versions[0]} twice: split between two versions")
    if any(s.percent == 0 for s in shares):
        raise ValueError("every version in traffic needs a percent of at least 1 (drop it instead)")
    total = sum(s.percent for s in shares)
    if total != 100:
        raise ValueError(f"traffic percents must sum to 100, not {total}")
    for s in shares:
        _check_servable(conn, model_id, model, s.version)
    return [{"version": s.version, "percent": s.percent} for s in shares]


def _store_key(
    conn: sa.Connection, deployment_id: int, key: str, actor: str | None, now: datetime
) -> None:
    """The key's sha256 replaces any earlier one (one key per deployment)."""
    conn.execute(sa.delete(deployment_keys).where(deployment_keys.c.deployment_id == deployment_id))
    conn.execute(
        sa.insert(deployment_keys).values(
            deployment_id=deployment_id, key_sha256=hash_key(key), created_by=actor, created_at=now
        )
    )


def _event(
    conn: sa.Connection, name: str, actor: str | None, type: str, data: dict[str, Any]
) -> None:
    conn.execute(
        sa.insert(deployment_events).values(
            deployment=name, at=_now(), actor=actor, type=type, data=data
        )
    )


def new_key() -> str:
    return secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(timezone.utc)
