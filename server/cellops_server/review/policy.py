"""Promotion policies: which aliases of a model are protected, and whether a version may
take one now (approvals from others than its creator, no outstanding "changes requested",
metric gates, not worse than the version holding the alias).

The registry calls ``check_move`` inside its alias write transaction, under the model
row's lock, which review writes take too: a verdict given concurrently is either seen by
the evaluation or waits until the alias has moved.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ..registry.names import check_alias, check_model_name
from ..schemas import (
    AliasCheck,
    AliasRule,
    FailedRule,
    PromotionChecks,
    PromotionPolicy,
)
from ..store import NotFound
from ..store.tables import model_aliases, model_policies, model_versions, models, users
from ..team.users import TeamUser
from .activity import record_activity
from .reviews import NotAllowed, latest_verdicts, lock_model, write

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
NEGATED = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!="}


class PromotionRefused(Exception):
    """A 409: the version may not take the protected alias; ``detail`` lists each rule."""

    def __init__(self, alias: str, number: int, failed: list[FailedRule]) -> None:
        summary = "; ".join(f.message for f in failed)
        super().__init__(
            f"version {number} may not take the protected alias {alias!r}: {summary} "
            "(an admin may override with a reason)"
        )
        self.detail = {"failed": [f.model_dump(mode="json") for f in failed]}


# -- the policy document ---------------------------------------------------------------------


def load_policy(conn: sa.Connection, model_id: int) -> PromotionPolicy:
    row = conn.execute(
        sa.select(model_policies).where(model_policies.c.model_id == model_id)
    ).first()
    if row is None:
        return PromotionPolicy()
    return PromotionPolicy.model_validate(
        {**row.policy, "updated_by": row.updated_by, "updated_at": row.updated_at}
    )


def get_policy(engine: sa.Engine, name: str) -> PromotionPolicy:
    with engine.connect() as conn:
        return load_policy(conn, model_id_of(conn, name))


def set_policy(
    engine: sa.Engine, name: str, policy: PromotionPolicy, actor: str
) -> PromotionPolicy:
    """Replace the model's policy (the caller is an admin: auth_resource checked it)."""
    check_model_name(name)
    for alias in policy.protected_aliases:
        check_alias(alias)
    document = policy.model_dump(mode="json", exclude={"updated_by", "updated_at"})
    with write(engine) as conn:
        model_id = lock_model(conn, name)
        before = load_policy(conn, model_id)
        conn.execute(sa.delete(model_policies).where(model_policies.c.model_id == model_id))
        conn.execute(
            sa.insert(model_policies).values(
                model_id=model_id,
                policy=document,
                updated_by=actor,
                updated_at=datetime.now(timezone.utc),
            )
        )
        record_activity(
            conn,
            "policy.changed",
            actor,
            model=name,
            data={
                "protected_aliases": sorted(policy.protected_aliases),
                "before": sorted(before.protected_aliases),
            },
        )
        return load_policy(conn, model_id)


def model_id_of(conn: sa.Connection, name: str) -> int:
    check_model_name(name)
    model_id = conn.scalar(sa.select(models.c.id).where(models.c.name == name))
    if model_id is None:
        raise NotFound(f"no model named {name!r}")
    return int(model_id)


# -- evaluation ------------------------------------------------------------------------------


def evaluate(
    conn: sa.Connection,
    model_id: int,
    version: Any,
    rule: AliasRule,
    current: int | None,
) -> list[FailedRule]:
    """The rules of ``rule`` that ``version`` (a model_versions row: version, created_by,
    metrics) fails, if it took an alias held now by version ``current`` (None: unset)."""
    failed = _review_rules(conn, model_id, version, rule)
    metrics: dict[str, float] = version.metrics or {}
    failed += [
        f for gate in rule.metric_gates if (f := _gate(gate.metric, gate.op, gate.value, metrics))
    ]
    if rule.not_worse_than_current and current is not None and current != version.version:
        held = _metrics_of(conn, model_id, current)
        for cmp in rule.not_worse_than_current:
            if f := _not_worse(
                cmp.metric, cmp.tolerance, cmp.higher_is_better, metrics, held, current
            ):
                failed.append(f)
    return failed


def _review_rules(
    conn: sa.Connection, model_id: int, version: Any, rule: AliasRule
) -> list[FailedRule]:
    latest = latest_verdicts(conn, model_id, version.version)
    # Approvals by the version's creator never count (they cannot be given either), nor
    # those of members who no longer hold the approver role.
    approvals = _still_approvers(
        conn, [r for r, v in latest.items() if v == "approve" and r != version.created_by]
    )
    changes = sorted(r for r, v in latest.items() if v == "request_changes")
    failed: list[FailedRule] = []
    missing = rule.min_approvals - len(approvals)
    if missing > 0:
        plural = "approval" if missing == 1 else "approvals"
        failed.append(
            FailedRule(
                rule="min_approvals",
                need=rule.min_approvals,
                have=len(approvals),
                message=f"needs {missing} more {plural} (from someone other than its creator)",
            )
        )
    if rule.block_on_changes_requested and changes:
        failed.append(
            FailedRule(
                rule="changes_requested",
                need=[],
                have=changes,
                message=f"changes requested by {', '.join(changes)}",
            )
        )
    return failed


def _still_approvers(conn: sa.Connection, reviewers: list[str]) -> list[str]:
    """The reviewers who may approve today. A team's users table decides (a member demoted
    or removed since approving no longer counts); an embedded store has no team users, and
    its one user is its admin."""
    if not reviewers or conn.scalar(sa.select(users.c.id).limit(1)) is None:
        return sorted(reviewers)
    rows = conn.execute(sa.select(users.c.name, users.c.role).where(users.c.name.in_(reviewers)))
    roles = {row.name: row.role for row in rows}
    return sorted(r for r in reviewers if r in roles and TeamUser(r, roles[r]).has_role("approver"))


def _gate(metric: str, op: str, value: float, metrics: dict[str, float]) -> FailedRule | None:
    rule = f"metric:{metric}{op}"
    have = metrics.get(metric)
    if not _is_number(have):
        return FailedRule(
            rule=rule,
            need=f"{op} {value:g}",
            have=None,
            message=f"{metric} is not logged on this version (needs {op} {value:g})",
        )
    assert have is not None
    if OPS[op](have, value):
        return None
    return FailedRule(
        rule=rule,
        need=f"{op} {value:g}",
        have=have,
        message=f"{metric} {have:g} {NEGATED[op]} {value:g}",
    )


def _not_worse(
    metric: str,
    tolerance: float,
    higher_is_better: bool,
    metrics: dict[str, float],
    held: dict[str, float],
    current: int,
) -> FailedRule | None:
    rule = f"not_worse_than_current:{metric}"
    reference = held.get(metric)
    if not _is_number(reference):
        return None  # the current holder has no such metric: nothing to be worse than
    assert reference is not None
    bound = reference - tolerance if higher_is_better else reference + tolerance
    op = ">=" if higher_is_better else "<="
    need = f"{op} {bound:g} (v{current}: {reference:g}, tolerance {tolerance:g})"
    have = metrics.get(metric)
    if not _is_number(have):
        return FailedRule(
            rule=rule,
            need=need,
            have=None,
            message=f"{metric} is not logged on this version (v{current} has {reference:g})",
        )
    assert have is not None
    if OPS[op](have, bound):
        return None
    return FailedRule(
        rule=rule,
        need=need,
        have=have,
        message=f"{metric} {have:g} is worse than v{current}'s {reference:g}"
        + (f" by more than {tolerance:g}" if tolerance else ""),
    )


def _is_number(value: Any) -> bool:
    # Metrics are stored finite, but a policy must never pass on a value it cannot compare.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _metrics_of(conn: sa.Connection, model_id: int, number: int) -> dict[str, float]:
    metrics = conn.scalar(
        sa.select(model_versions.c.metrics).where(
            model_versions.c.model_id == model_id, model_versions.c.version == number
        )
    )
    return metrics or {}


def _version_row(conn: sa.Connection, model_id: int, name: str, number: int) -> Any:
    row = conn.execute(
        sa.select(
            model_versions.c.version, model_versions.c.created_by, model_versions.c.metrics
        ).where(model_versions.c.model_id == model_id, model_versions.c.version == number)
    ).first()
    if row is None:
        raise NotFound(f"model {name!r} has no version {number}")
    return row


def _holders(conn: sa.Connection, model_id: int) -> dict[str, int]:
    rows = conn.execute(
        sa.select(model_aliases.c.alias, model_aliases.c.version).where(
            model_aliases.c.model_id == model_id
        )
    )
    return {r.alias: r.version for r in rows}


def promotion_checks(engine: sa.Engine, name: str, number: int) -> PromotionChecks:
    """For each protected alias: may version ``number`` take it now, and what is missing."""
    with engine.connect() as conn:
        model_id = model_id_of(conn, name)
        version = _version_row(conn, model_id, name, number)
        policy = load_policy(conn, model_id)
        holders = _holders(conn, model_id)
        items = []
        for alias, rule in sorted(policy.protected_aliases.items()):
            failed = evaluate(conn, model_id, version, rule, holders.get(alias))
            items.append(AliasCheck(alias=alias, allowed=not failed, failed=failed))
    return PromotionChecks(items=items)


# -- enforcement (called by the registry inside its alias write transaction) -----------------


def check_move(
    conn: sa.Connection,
    model_id: int,
    name: str,
    alias: str,
    number: int,
    caller: TeamUser | None,
    override: str | None,
) -> None:
    """Refuse moving ``alias`` to ``number`` if the policy protects it and rules fail,
    unless an admin overrides (recorded). Records every move ("alias.moved")."""
    if override is not None and not _is_admin(caller):
        raise NotAllowed("only an admin may override a protected alias's rules")
    if override is not None and not override.strip():
        raise ValueError("override needs a written reason (it is recorded in the activity feed)")
    actor = caller.name if caller else None
    before = _holders(conn, model_id).get(alias)
    rule = load_policy(conn, model_id).protected_aliases.get(alias)
    if rule is not None:
        version = _version_row(conn, model_id, name, number)
        failed = evaluate(conn, model_id, version, rule, before)
        if failed and override is None:
            raise PromotionRefused(alias, number, failed)
        if failed:
            record_activity(
                conn,
                "alias.override",
                actor,
                model=name,
                version=number,
                data={
                    "alias": alias,
                    "from": before,
                    "to": number,
                    "reason": override,
                    "failed": [f.model_dump(mode="json") for f in failed],
                },
            )
    if before != number:
        record_moved(conn, actor, name, alias, before, number)


def check_removal(
    conn: sa.Connection, model_id: int, name: str, alias: str, caller: TeamUser | None
) -> None:
    """Only an admin removes a protected alias (it would take the version out of
    production without any rule applying); records the removal as a move to nothing."""
    if alias in load_policy(conn, model_id).protected_aliases and not _is_admin(caller):
        raise NotAllowed(
            f"the alias {alias!r} is protected by the model's policy: only an admin may "
            "remove it (move it to another version instead)"
        )


def record_moved(
    conn: sa.Connection,
    actor: str | None,
    name: str,
    alias: str,
    before: int | None,
    to: int | None,
) -> None:
    record_activity(
        conn,
        "alias.moved",
        actor,
        model=name,
        version=to,
        data={"alias": alias, "from": before, "to": to},
    )


def _is_admin(caller: TeamUser | None) -> bool:
    return caller is not None and caller.has_role("admin")
