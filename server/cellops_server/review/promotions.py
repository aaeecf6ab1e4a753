"""Promotion as a pipeline asks for it: move an alias to a version through the policy,
and answer every rule evaluated, passed or failed (``POST /models/{name}/promotions`` and
``cellops promote``).

A promotion is the sidebar's alias move, not a second implementation: it moves through
``Registry.move_alias``, which evaluates ``policy.check_move`` under the model row's lock.
A dry run evaluates the same rules (``policy.would_move``) and writes nothing.

A refused promotion leaves a trace: its transaction rolled back, so a ``promotion.refused``
activity row is written in one of its own afterwards, and the team's feed shows who tried
to promote what and which rules said no. (An allowed one is the ``alias.moved`` row the
move itself writes.)
"""

from __future__ import annotations

import sqlalchemy as sa

from ..registry.names import check_alias, check_model_name
from ..registry.store import InUse, Registry
from ..schemas import FailedRule, PromotionResult
from ..store import NotFound, Store
from ..store.engine import write_transaction
from ..store.tables import model_versions
from ..team.users import TeamUser
from .activity import record_activity
from .policy import (
    DeployRefused,
    MoveVerdict,
    PromotionRefused,
    failures,
    model_id_of,
    would_move,
)

REFUSED = "promotion.refused"  # the activity type of a refused (not dry-run) promotion


def promote(
    store: Store, name: str, number: int, alias: str, caller: TeamUser, dry_run: bool = False
) -> PromotionResult:
    """Move ``alias`` of model ``name`` to version ``number`` if the policy allows it (a dry
    run only evaluates). Raises PromotionRefused (409) when the policy says no, after
    recording the attempt; NotFound for an unknown model or version; ValueError for a bad
    name or alias."""
    check_model_name(name)
    check_alias(alias)
    if dry_run:
        verdict = _evaluate(store.engine, name, alias, number)
        return _result(name, alias, number, verdict, moved=False, dry_run=True)
    actor = caller.name or None
    try:
        verdict = Registry(store).move_alias(name, alias, number, caller, None)
    except PromotionRefused as refused:
        failed = failures(refused.rules)
        record_refusal(store.engine, name, alias, number, refused.previous, failed, actor)
        raise
    except DeployRefused as refused:  # deployments follow the alias: see policy.py
        record_refusal(store.engine, name, alias, number, None, refused.failed, actor)
        raise
    return _result(name, alias, number, verdict, moved=True, dry_run=False)


def record_refusal(
    engine: sa.Engine,
    name: str,
    alias: str,
    number: int,
    previous: int | None,
    failed: list[FailedRule],
    actor: str | None,
) -> None:
    """The ``promotion.refused`` activity row (data: alias, version, from, failed, summary),
    in a transaction of its own: the refused move's rolled back."""
    with write_transaction(engine) as conn:
        record_activity(
            conn,
            REFUSED,
            actor,
            model=name,
            version=number,
            data={
                "alias": alias,
                "version": number,
                "from": previous,
                "failed": [f.model_dump(mode="json") for f in failed],
                "summary": "; ".join(f.message for f in failed),
            },
        )


def _evaluate(engine: sa.Engine, name: str, alias: str, number: int) -> MoveVerdict:
    with engine.connect() as conn:
        model_id = model_id_of(conn, name)
        archived = conn.scalar(
            sa.select(model_versions.c.archived).where(
                model_versions.c.model_id == model_id, model_versions.c.version == number
            )
        )
        if archived is None:
            raise NotFound(f"model {name!r} has no version {number}")
        if archived:  # the move itself refuses it the same way (registry set_alias)
            raise InUse(
                f"model {name!r} version {number} is archived: unarchive it before "
                f"pointing the alias {alias!r} at it",
                [],
            )
        return would_move(conn, model_id, name, alias, number)


def _result(
    name: str, alias: str, number: int, verdict: MoveVerdict, *, moved: bool, dry_run: bool
) -> PromotionResult:
    return PromotionResult(
        moved=moved,
        allowed=all(r.passed for r in verdict.rules),
        dry_run=dry_run,
        protected=verdict.protected,
        model=name,
        alias=alias,
        version=number,
        previous=verdict.previous,
        rules=verdict.rules,
    )
