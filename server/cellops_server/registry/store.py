"""The model registry's queries and writes over the store's engine.

Version numbers are assigned under a lock on the model's row (``SELECT … FOR UPDATE``
on PostgreSQL, the write lock of ``BEGIN IMMEDIATE`` on SQLite), the same approach as
notebook versions in store/ingest.py, so concurrent registrations never share a number.
Lineage is stored as the registering cell's msg_id and resolved to the execution, run
and notebook version when read, because the execution row may be written later.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from cellops.serialize import UnsafeModelError, check, is_skops_file

from ..monitoring import reference as training_reference
from ..schemas import (
    Lineage,
    Model,
    ModelUpdate,
    ModelVersion,
    ModelVersionCreate,
    ModelVersionUpdate,
    Page,
    ReviewSummary,
)
from ..store import NotFound, Store
from ..store.blobs import BlobNotFound
from ..store.engine import write_transaction
from ..store.errors import NotOwner
from ..store.pagination import (
    BY_NUMBER,
    BY_TIME_AND_ID,
    after_time_and_id,
    decode_cursor,
    encode_cursor,
)
from ..store.tables import (
    executions,
    model_aliases,
    model_versions,
    models,
    notebooks,
    versions,
)
from ..team.users import TeamUser
from .artifacts import ArtifactStore
from .names import check_alias, check_model_name

# review/ (policies, review summaries) is imported where used: it imports registry.names,
# so importing it here would make a cycle through this package's __init__.


def _policy() -> Any:
    from ..review import policy

    return policy


def _summaries(conn: sa.Connection, model_id: int, numbers: list[int]) -> dict[int, Any]:
    from ..review.reviews import summaries

    return summaries(conn, model_id, numbers)


def _record_activity(conn: sa.Connection, *args: Any, **kwargs: Any) -> int:
    from ..review.activity import record_activity

    return record_activity(conn, *args, **kwargs)


def forget_model(conn: sa.Connection, model_id: int, version: int | None = None) -> None:
    from ..review.reviews import forget_model

    forget_model(conn, model_id, version)
    training_reference.forget(conn, model_id, version)


class UnsafeArtifact(ValueError):
    """A 400: the artifact is a model file cellops refuses to load (``detail`` says why)."""

    def __init__(self, message: str, detail: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.detail = detail


class InUse(Exception):
    """A 409: an alias or a deployment uses the model or version; ``detail`` names it."""

    def __init__(self, message: str, usages: list[str]) -> None:
        super().__init__(message)
        self.detail = {"used_by": usages}


class IdempotencyKeyReused(Exception):
    """A 422: the key already registered a version from a different request body."""


IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as headers carry it


def check_idempotency_key(key: str) -> None:
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise ValueError(
            "Idempotency-Key must be 1-255 visible ASCII characters (a UUID is a good choice)"
        )


def request_digest(body: ModelVersionCreate) -> str:
    """What identifies a registration request: its body, canonically serialized."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


MAX_LIMIT = 500
MAX_LISTED = 100  # refused names and tree problems in a 400: a crafted file can hold more


class Registry:
    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self.artifacts = ArtifactStore(store.blobs)

    # -- writing ---------------------------------------------------------------------------

    def create_version(
        self,
        name: str,
        body: ModelVersionCreate,
        created_by: str | None = None,
        lineage_owner: str | None = None,
    ) -> ModelVersion:
        """Register a version. ``lineage_owner`` (the team member registering; None in
        embedded mode) must own the execution the lineage names."""
        return self.register_version(name, body, created_by, lineage_owner)[0]

    def register_version(
        self,
        name: str,
        body: ModelVersionCreate,
        created_by: str | None = None,
        lineage_owner: str | None = None,
        idempotency_key: str | None = None,
        caller: TeamUser | None = None,
    ) -> tuple[ModelVersion, bool]:
        """create_version, answering (version, created). With ``idempotency_key``, a request
        repeated with the same key and body answers the version the first one created.
        ``body.alias``, if protected by the model's policy, must pass its rules (checked as
        ``caller``): else nothing is stored (PromotionRefused)."""
        digest = None
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
            digest = request_digest(body)
        check_model_name(name)
        if body.alias is not None:
            check_alias(body.alias)
        for what, value in (
            ("params", body.params),
            ("signature", body.signature),
            ("lineage.data_fingerprints", body.lineage.data_fingerprints),
        ):
            _check_json(what, value)
        if body.reference is not None:  # refused whole, before anything is stored
            training_reference.check(body.reference)
        # The artifact must be complete before the version exists: an interrupted upload
        # leaves no version pointing at missing bytes.
        size = self.artifacts.size(body.artifact)
        if size is None:
            raise ValueError(
                f"upload the artifact first: PUT /artifacts/{body.artifact} with its bytes"
            )
        self._check_artifact(body.artifact)
        now = _now()
        row = {
            "artifact": body.artifact,
            "artifact_size": size,
            "flavor": body.flavor,
            "library_versions": body.library_versions,
            "signature": body.signature,
            "metrics": body.metrics,
            "params": body.params,
            "tags": body.tags,
            "description": body.description,
            "created_by": created_by,
            "created_at": now,
            "lineage_msg_id": body.lineage.msg_id,
            "lineage_owner": lineage_owner,
            "data_fingerprints": body.lineage.data_fingerprints,
            "idempotency_key": idempotency_key,
            "request_digest": digest,
        }
        with self._write() as conn:
            _check_lineage_owner(conn, body.lineage.msg_id, lineage_owner)
            model = self._lock_model(conn, name, now)
            # Under the model's lock: a concurrent duplicate waits here, then finds the first.
            earlier = None
            if idempotency_key is not None:
                earlier = _version_by_key(conn, model.id, idempotency_key, digest)
            if earlier is None:
                # Again under the lock: a version deleted meanwhile may have removed the bytes.
                if self.artifacts.size(body.artifact) is None:
                    raise ValueError(
                        f"upload the artifact first: PUT /artifacts/{body.artifact} with its bytes"
                    )
                number = self._insert_version(conn, model, row, body.alias, name, caller)
                if body.reference is not None:
                    training_reference.store_reference(conn, model.id, number, body.reference, now)
        if earlier is not None:
            return self.get_version(name, earlier), False
        return self.get_version(name, number), True

    def _insert_version(
        self,
        conn: sa.Connection,
        model: Any,
        row: dict[str, Any],
        alias: str | None,
        name: str,
        caller: TeamUser | None,
    ) -> int:
        """The model's next version, from ``row``; the alias moved to it if given (and the
        policy lets it: a refusal rolls the whole registration back)."""
        number = model.latest_version + 1
        conn.execute(sa.insert(model_versions).values(model_id=model.id, version=number, **row))
        conn.execute(
            sa.update(models)
            .where(models.c.id == model.id)
            # A new version brings an archived model back into the list.
            .values(latest_version=number, updated_at=row["created_at"], archived=False)
        )
        _record_activity(
            conn, "model_version.created", row["created_by"], model=name, version=number
        )
        if alias is not None:
            _policy().check_move(conn, model.id, name, alias, number, caller, None)
            self._point_alias(conn, model.id, alias, number)
        return number

    def update_version(self, name: str, number: int, body: ModelVersionUpdate) -> ModelVersion:
        changes: dict[str, Any] = {}
        if "description" in body.model_fields_set:
            changes["description"] = body.description
        if body.tags is not None:
            changes["tags"] = body.tags
        if body.archived is not None:
            changes["archived"] = body.archived
        with self._write() as conn:
            model_id = self._version_id(conn, name, number)[0]
            if body.archived:
                _refuse_if_used(conn, name, model_id, number, "archive")
            if changes:
                conn.execute(
                    sa.update(model_versions)
                    .where(model_versions.c.model_id == model_id)
                    .where(model_versions.c.version == number)
                    .values(**changes)
                )
                self._touch(conn, model_id)
        return self.get_version(name, number)

    def set_alias(
        self,
        name: str,
        alias: str,
        number: int,
        caller: TeamUser | None = None,
        override: str | None = None,
    ) -> Model:
        """Point ``alias`` at version ``number``. A protected alias moves only if the
        version passes the policy's rules, evaluated here under the model row's lock (which
        review writes take too), or if an admin ``caller`` overrides with a reason."""
        self.move_alias(name, alias, number, caller, override)
        return self.get_model(name)

    def move_alias(
        self,
        name: str,
        alias: str,
        number: int,
        caller: TeamUser | None = None,
        override: str | None = None,
    ) -> Any:
        """``set_alias``'s move, answering the policy's verdict (review/policy.py
        MoveVerdict: every rule evaluated); POST /models/{name}/promotions moves this way."""
        check_alias(alias)
        with self._write() as conn:
            self._lock_existing(conn, name)
            model_id, version_id = self._version_id(conn, name, number)
            if conn.scalar(
                sa.select(model_versions.c.archived).where(model_versions.c.id == version_id)
            ):
                raise InUse(
                    f"model {name!r} version {number} is archived: unarchive it before "
                    f"pointing the alias {alias!r} at it",
                    [],
                )
            verdict = _policy().check_move(conn, model_id, name, alias, number, caller, override)
            self._point_alias(conn, model_id, alias, number)
            self._touch(conn, model_id)
        return verdict

    def delete_alias(self, name: str, alias: str, caller: TeamUser | None = None) -> None:
        """Remove an alias; a protected one only by an admin ``caller`` (NotAllowed)."""
        check_alias(alias)
        with self._write() as conn:
            model_id = self._lock_existing(conn, name)
            held = conn.scalar(
                sa.select(model_aliases.c.version).where(
                    model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
                )
            )
            if held is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            _refuse_if_followed(conn, name, model_id, alias)
            _policy().check_removal(conn, model_id, name, alias, caller)
            conn.execute(
                sa.delete(model_aliases).where(
                    model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
                )
            )
            _policy().record_moved(conn, caller.name if caller else None, name, alias, held, None)
            self._touch(conn, model_id)

    def update_model(self, name: str, body: ModelUpdate) -> Model:
        """Archive (refused while the model has an alias) or unarchive a model."""
        with self._write() as conn:
            model_id = self._lock_existing(conn, name)
            if body.archived:
                _refuse_if_used(conn, name, model_id, None, "archive")
            conn.execute(
                sa.update(models)
                .where(models.c.id == model_id)
                .values(archived=body.archived, updated_at=_now())
            )
        return self.get_model(name)

    def delete_version(self, name: str, number: int) -> None:
        """Remove a version (refused while something uses it) and its artifact, unless
        another version has the same bytes. Its number is never given out again."""
        with self._write() as conn:
            model_id = self._lock_existing(conn, name)
            version_id = self._version_id(conn, name, number)[1]
            _refuse_if_used(conn, name, model_id, number, "delete")
            forget_model(conn, model_id, number)  # its comments and reviews
            sha = conn.scalar(
                sa.select(model_versions.c.artifact).where(model_versions.c.id == version_id)
            )
            conn.execute(sa.delete(model_versions).where(model_versions.c.id == version_id))
            self._touch(conn, model_id)
            orphans = _unreferenced(conn, {sha})
        self._remove_artifacts(orphans)

    def delete_model(self, name: str) -> None:
        """Remove a model with all its versions (refused while it has an alias), and the
        artifacts no other model's version has. The name can then be registered anew."""
        with self._write() as conn:
            model_id = self._lock_existing(conn, name)
            _refuse_if_used(conn, name, model_id, None, "delete")
            shas = set(
                conn.scalars(
                    sa.select(model_versions.c.artifact).where(
                        model_versions.c.model_id == model_id
                    )
                )
            )
            forget_model(conn, model_id)  # comments, reviews and the policy
            conn.execute(sa.delete(model_versions).where(model_versions.c.model_id == model_id))
            conn.execute(sa.delete(model_aliases).where(model_aliases.c.model_id == model_id))
            conn.execute(sa.delete(models).where(models.c.id == model_id))
            orphans = _unreferenced(conn, shas)
        self._remove_artifacts(orphans)

    def _remove_artifacts(self, shas: set[str]) -> None:
        # After the commit: a failed transaction must leave its versions' bytes in place.
        for sha in shas:
            with suppress(BlobNotFound):
                self.artifacts.path(sha).unlink(missing_ok=True)

    def _check_artifact(self, sha: str) -> None:
        """Refuse a model file that would run code or read out of bounds in whoever loads it.

        The same check the kernel library runs (inspection only: nothing is built), on any
        skops file whatever flavor the client declares. Types from the author's own packages
        pass here; each loader must still trust them by name.
        """
        data = self.artifacts.path(sha)  # read member by member: artifacts may be large
        if not is_skops_file(data):
            return  # nothing skops would load: cellops.load refuses it as unreadable
        try:
            check(data, defer_own_types=True)
        except UnsafeModelError as err:
            listed = {"refused": err.refused[:MAX_LISTED], "problems": err.problems[:MAX_LISTED]}
            raise UnsafeArtifact(str(err), listed) from None

    # -- reading ---------------------------------------------------------------------------

    def list_models(
        self, cursor: str | None = None, limit: int = 50, archived: bool = False
    ) -> Page[Model]:
        """Models, most recently changed first; archived ones only with ``archived``."""
        _check_limit(limit)
        q = sa.select(models, _highest_version()).order_by(
            models.c.updated_at.desc(), models.c.id.desc()
        )
        if not archived:
            q = q.where(models.c.archived == sa.false())
        key = decode_cursor(cursor, BY_TIME_AND_ID)
        if key:
            q = q.where(after_time_and_id(models.c.updated_at, models.c.id, key))
        with self.engine.connect() as conn:
            rows = list(conn.execute(q.limit(limit + 1)))
            page = rows[:limit]
            aliases = self._aliases(conn, [r.id for r in page])
        nxt = None
        if len(rows) > limit:
            nxt = encode_cursor([page[-1].updated_at.isoformat(), page[-1].id])
        return Page[Model](items=[_model(r, aliases.get(r.id, {})) for r in page], next=nxt)

    def get_model(self, name: str) -> Model:
        check_model_name(name)
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(models, _highest_version()).where(models.c.name == name)
            ).first()
            if row is None:
                raise NotFound(f"no model named {name!r}")
            return _model(row, self._aliases(conn, [row.id]).get(row.id, {}))

    def list_versions(
        self, name: str, cursor: str | None = None, limit: int = 50, archived: bool = False
    ) -> Page[ModelVersion]:
        """Versions, newest first; archived ones only with ``archived``."""
        check_model_name(name)
        _check_limit(limit)
        q = self._version_query().where(models.c.name == name)
        if not archived:
            q = q.where(model_versions.c.archived == sa.false())
        q = q.order_by(model_versions.c.version.desc())
        key = decode_cursor(cursor, BY_NUMBER)
        if key:
            q = q.where(model_versions.c.version < key[0])
        with self.engine.connect() as conn:
            model_id = self._model_id(conn, name)
            rows = list(conn.execute(q.limit(limit + 1)))
            page = rows[:limit]
            aliases = self._aliases(conn, [model_id]).get(model_id, {})
            reviews = _summaries(conn, model_id, [r.version for r in page])
        nxt = encode_cursor([page[-1].version]) if len(rows) > limit else None
        items = [_version(r, aliases, reviews.get(r.version)) for r in page]
        return Page[ModelVersion](items=items, next=nxt)

    def get_version(self, name: str, number: int) -> ModelVersion:
        check_model_name(name)
        with self.engine.connect() as conn:
            model_id = self._model_id(conn, name)
            row = conn.execute(
                self._version_query().where(
                    model_versions.c.model_id == model_id, model_versions.c.version == number
                )
            ).first()
            if row is None:
                raise NotFound(f"model {name!r} has no version {number}")
            review = _summaries(conn, model_id, [number]).get(number)
            return _version(row, self._aliases(conn, [model_id]).get(model_id, {}), review)

    # -- helpers ---------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE, so it waits for the lock up front)."""
        with write_transaction(self.engine) as conn:
            yield conn

    def _lock_model(self, conn: sa.Connection, name: str, now: datetime) -> Any:
        """The model's row, created if new, locked until the transaction ends."""
        dialect = conn.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        conn.execute(
            insert(models)
            .values(name=name, latest_version=0, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return conn.execute(
            sa.select(models.c.id, models.c.latest_version)
            .where(models.c.name == name)
            .with_for_update()
        ).one()

    def _point_alias(self, conn: sa.Connection, model_id: int, alias: str, number: int) -> None:
        # Delete + insert under the transaction's lock: moves the alias if it existed.
        conn.execute(
            sa.delete(model_aliases).where(
                model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
            )
        )
        conn.execute(
            sa.insert(model_aliases).values(model_id=model_id, alias=alias, version=number)
        )

    def _touch(self, conn: sa.Connection, model_id: int) -> None:
        conn.execute(sa.update(models).where(models.c.id == model_id).values(updated_at=_now()))

    def _lock_existing(self, conn: sa.Connection, name: str) -> int:
        """An existing model's id, its row locked until the transaction ends (as
        registrations lock it: no version is added while it is deleted)."""
        check_model_name(name)
        model_id = conn.scalar(
            sa.select(models.c.id).where(models.c.name == name).with_for_update()
        )
        if model_id is None:
            raise NotFound(f"no model named {name!r}")
        return model_id

    def _model_id(self, conn: sa.Connection, name: str) -> int:
        check_model_name(name)
        model_id = conn.scalar(sa.select(models.c.id).where(models.c.name == name))
        if model_id is None:
            raise NotFound(f"no model named {name!r}")
        return model_id

    def _version_id(self, conn: sa.Connection, name: str, number: int) -> tuple[int, int]:
        model_id = self._model_id(conn, name)
        version_id = conn.scalar(
            sa.select(model_versions.c.id).where(
                model_versions.c.model_id == model_id, model_versions.c.version == number
            )
        )
        if version_id is None:
            raise NotFound(f"model {name!r} has no version {number}")
        return model_id, version_id

    def _aliases(self, conn: sa.Connection, model_ids: list[int]) -> dict[int, dict[str, int]]:
        out: dict[int, dict[str, int]] = {}
        if not model_ids:
            return out
        rows = conn.execute(
            sa.select(model_aliases)
            .where(model_aliases.c.model_id.in_(model_ids))
            .order_by(model_aliases.c.alias)
        )
        for r in rows:
            out.setdefault(r.model_id, {})[r.alias] = r.version
        return out

    def _version_query(self) -> sa.Select[Any]:
        mv = model_versions
        return sa.select(
            mv.c.model_id,
            models.c.name.label("model_name"),
            mv.c.version,
            mv.c.artifact,
            mv.c.artifact_size,
            mv.c.flavor,
            mv.c.library_versions,
            mv.c.signature,
            mv.c.metrics,
            mv.c.params,
            mv.c.tags,
            mv.c.description,
            mv.c.created_by,
            mv.c.created_at,
            mv.c.lineage_msg_id,
            mv.c.data_fingerprints,
            mv.c.archived,
            executions.c.id.label("execution_id"),
            executions.c.run_id,
            notebooks.c.path.label("notebook"),
            versions.c.id.label("notebook_version_id"),
            versions.c.number.label("notebook_version_number"),
        ).select_from(
            mv.join(models, models.c.id == mv.c.model_id)
            .outerjoin(
                executions,
                sa.and_(
                    executions.c.msg_id == mv.c.lineage_msg_id,
                    # Bound at registration: only the registering member's execution, even
                    # one stored later, is this version's lineage.
                    sa.or_(mv.c.lineage_owner.is_(None), executions.c.owner == mv.c.lineage_owner),
                ),
            )
            .outerjoin(notebooks, notebooks.c.id == executions.c.notebook_id)
            .outerjoin(
                versions,
                sa.and_(
                    versions.c.notebook_id == executions.c.notebook_id,
                    versions.c.number == executions.c.version_number,
                ),
            )
        )


def _highest_version() -> sa.ColumnElement[Any]:
    """A model's highest remaining version: what "latest" means once versions can be deleted
    (the ``latest_version`` column stays the counter, so numbers are never given out again)."""
    return (
        sa.select(sa.func.max(model_versions.c.version))
        .where(model_versions.c.model_id == models.c.id)
        .scalar_subquery()
        .label("highest_version")
    )


def _model(r: Any, aliases: dict[str, int]) -> Model:
    return Model(
        name=r.name,
        description=r.description,
        latest_version=r.highest_version or 0,
        aliases=aliases,
        created_at=r.created_at,
        updated_at=r.updated_at,
        archived=r.archived,
    )


def _version(r: Any, aliases: dict[str, int], review: ReviewSummary | None = None) -> ModelVersion:
    return ModelVersion(
        model=r.model_name,
        version=r.version,
        aliases=sorted(a for a, v in aliases.items() if v == r.version),
        artifact=r.artifact,
        artifact_size=r.artifact_size,
        flavor=r.flavor,
        library_versions=r.library_versions,
        signature=r.signature,
        metrics=r.metrics,
        params=r.params,
        tags=r.tags,
        description=r.description,
        created_by=r.created_by,
        created_at=r.created_at,
        lineage=Lineage(
            msg_id=r.lineage_msg_id,
            execution_id=r.execution_id,
            run_id=r.run_id,
            version_id=r.notebook_version_id,
            version_number=r.notebook_version_number,
            notebook=r.notebook,
            data_fingerprints=r.data_fingerprints,
        ),
        archived=r.archived,
        review=review or ReviewSummary(state="none", approvals=[]),
    )


def usages(conn: sa.Connection, model_id: int, number: int | None) -> list[str]:
    """What uses a model's version (``number``), or the model (None), in words: what must
    be moved or removed before it can be archived or deleted. Deployments add theirs here."""
    q = sa.select(model_aliases.c.alias, model_aliases.c.version).where(
        model_aliases.c.model_id == model_id
    )
    if number is not None:
        q = q.where(model_aliases.c.version == number)
    rows = conn.execute(q.order_by(model_aliases.c.alias))
    found = [f"alias {r.alias!r} (on v{r.version})" for r in rows]
    from ..serving.deployments import deployment_usages  # it imports this package

    return found + deployment_usages(conn, model_id, number)


def _refuse_if_used(
    conn: sa.Connection, name: str, model_id: int, number: int | None, action: str
) -> None:
    found = usages(conn, model_id, number)
    if not found:
        return
    what = f"model {name!r}" if number is None else f"model {name!r} version {number}"
    raise InUse(
        f"cannot {action} {what}: it is used by {', '.join(found)}; move or remove "
        f"{'it' if len(found) == 1 else 'them'} first",
        found,
    )


def _refuse_if_followed(conn: sa.Connection, name: str, model_id: int, alias: str) -> None:
    """An alias a deployment follows stays until the deployment is pinned or removed."""
    from ..serving.deployments import alias_followers

    found = alias_followers(conn, model_id, alias)
    if found:
        raise InUse(
            f"cannot remove alias {alias!r} of model {name!r}: {', '.join(found)} "
            "follows it; pin or delete the deployment first",
            found,
        )


def _unreferenced(conn: sa.Connection, shas: set[str]) -> set[str]:
    """Which of these artifacts no remaining version points at."""
    if not shas:
        return set()
    used = conn.scalars(
        sa.select(model_versions.c.artifact).where(model_versions.c.artifact.in_(shas)).distinct()
    )
    return shas - set(used)


def _check_lineage_owner(conn: sa.Connection, msg_id: str | None, owner: str | None) -> None:
    """Refuse a lineage naming another member's execution. One not stored yet (the kernel
    registers mid-cell, before its writer stores the row) is accepted: the version is bound to
    ``owner`` and resolves to it only once it is stored as theirs."""
    if owner is None or msg_id is None:
        return
    stored = conn.execute(sa.select(executions.c.owner).where(executions.c.msg_id == msg_id))
    row = stored.first()
    if row is not None and row.owner != owner:
        raise NotOwner(
            f"lineage.msg_id {msg_id!r} names an execution another member ran: a version's "
            "lineage may only name an execution of yours"
        )


def _check_json(what: str, value: Any) -> None:
    # PostgreSQL's JSON has no NaN or Infinity; refuse them here rather than fail in the store.
    try:
        json.dumps(value, allow_nan=False)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what} must be plain JSON without NaN or Infinity ({exc})") from None


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _version_by_key(conn: sa.Connection, model_id: int, key: str, digest: str | None) -> int | None:
    """The version number ``key`` registered; refused when it came from another body."""
    row = conn.execute(
        sa.select(model_versions.c.version, model_versions.c.request_digest).where(
            model_versions.c.model_id == model_id, model_versions.c.idempotency_key == key
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_digest != digest:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} already registered version {row.version} from a "
            "different request; use a new key for a new registration"
        )
    return int(row.version)
