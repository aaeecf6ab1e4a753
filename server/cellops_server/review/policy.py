"""Promotion policies: which aliases of a model are protected, and whether a version may
take one now (approvals from others than its creator, no outstanding "changes requested",
metric gates, not worse than the version holding the alias).

The registry calls ``check_move`` inside its alias write transaction, under the model
row's lock, which review writes take too: a verdict given concurrently is either seen by
the evaluation or waits until the alias has moved.

One function evaluates a rule (``evaluate_rules``): it answers every rule, passed or not,
which is what ``POST /models/{name}/promotions`` lists; refusals, the Models tab's checks
and the deployments' ``deploy_requires_alias`` gate derive what failed from it.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
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
    RuleResult,
)
from ..store import NotFound
from ..store.tables import model_aliases, model_policies, model_versions, models, users
from ..team.users import TeamUser
from . import signatures
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
    """A 409: the version may not take the protected alias. ``detail``: ``failed`` (the
    rules it fails), ``rules`` (every rule evaluated, passed or not) and ``moved`` false."""

    def __init__(
        self, alias: str, number: int, rules: list[RuleResult], previous: int | None = None
    ) -> None:
        self.alias, self.number, self.rules, self.previous = alias, number, rules, previous
        self.failed = failures(rules)
        summary = "; ".join(f.message for f in self.failed)
        super().__init__(
            f"version {number} may not take the protected alias {alias!r}: {summary} "
            "(an admin may override with a reason)"
        )
        self.detail = {
            "failed": [f.model_dump(mode="json") for f in self.failed],
            "rules": [r.model_dump(mode="json") for r in rules],
            "moved": False,
        }


@dataclass(frozen=True)
class MoveVerdict:
    """What an alias move evaluated: whether the alias is protected, the version it held
    before (None: unset) and every rule, passed or failed."""

    protected: bool
    previous: int | None
    rules: list[RuleResult]


class DeployRefused(Exception):
    """A 409: the model's policy lets deployments serve only versions holding an alias.
    ``detail`` has the shape of a PromotionRefused's (``failed``), marked ``refused:
    "deploy"``: no admin override exists for it."""

    def __init__(
        self,
        model: str,
        alias: str,
        holder: int | None,
        versions: list[int],
        followers: list[str] | None = None,
        moved: str | None = None,
    ) -> None:
        self.versions = versions
        held = f"version {holder} holds it now" if holder is not None else "no version holds it"
        failed = [
            FailedRule(
                rule="deploy_requires_alias",
                need=f"a version holding {alias!r}"
                + (f" (v{holder})" if holder is not None else ""),
                have=v,
                message=f"version {v} does not hold the alias {alias!r}",
            )
            for v in versions
        ]
        listed = ", ".join(str(v) for v in versions)
        because = f"{', '.join(followers)} follow the alias {moved!r}: " if followers else ""
        super().__init__(
            f"{because}model {model!r} may only be deployed at a version holding the alias "
            f"{alias!r} ({held}); not version {listed}. Promote it to {alias!r} first, or "
            f"deploy following the alias {alias!r}"
        )
        self.failed = failed
        self.detail = {
            "refused": "deploy",
            "alias": alias,
            "failed": [f.model_dump(mode="json") for f in failed],
            "deployments": followers or [],
        }


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
    required = policy.deploy_requires_alias
    if required is not None and required not in policy.protected_aliases:
        check_alias(required)
        raise ValueError(
            f"deploy_requires_alias {required!r} must be one of the protected aliases "
            "(an unprotected alias could be moved to any version by any editor)"
        )
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
                **_deploy_change(before, policy),
            },
        )
        return load_policy(conn, model_id)


def _deploy_change(before: PromotionPolicy, after: PromotionPolicy) -> dict[str, Any]:
    """The activity data of a change of the deploy rule (nothing when it stayed the same,
    so the record of a policy without one keeps its shape)."""
    if before.deploy_requires_alias == after.deploy_requires_alias:
        return {}
    return {"deploy_requires_alias": after.deploy_requires_alias}


def model_id_of(conn: sa.Connection, name: str) -> int:
    check_model_name(name)
    model_id = conn.scalar(sa.select(models.c.id).where(models.c.name == name))
    if model_id is None:
        raise NotFound(f"no model named {name!r}")
    return int(model_id)


# -- evaluation ------------------------------------------------------------------------------


def evaluate_rules(
    conn: sa.Connection,
    model_id: int,
    version: Any,
    rule: AliasRule,
    current: int | None,
) -> list[RuleResult]:
    """Every rule of ``rule``, passed or failed, for ``version`` (a model_versions row:
    version, created_by, metrics, signature) taking an alias held now by version
    ``current`` (None: unset)."""
    results = _review_rules(conn, model_id, version, rule)
    metrics: dict[str, float] = version.metrics or {}
    results += [_gate(gate.metric, gate.op, gate.value, metrics) for gate in rule.metric_gates]
    if rule.not_worse_than_current:
        compared = current is not None and current != version.version
        held = _metrics_of(conn, model_id, current) if compared else {}
        for cmp in rule.not_worse_than_current:
            results.append(
                _not_worse(cmp.metric, cmp.tolerance, cmp.higher_is_better, metrics, held, current)
                if compared and current is not None
                else _nothing_to_compare(f"not_worse_than_current:{cmp.metric}", current)
            )
    if rule.signature_compatible:
        results.append(_signature_rule(conn, model_id, version, current))
    return results


def evaluate(
    conn: sa.Connection,
    model_id: int,
    version: Any,
    rule: AliasRule,
    current: int | None,
) -> list[FailedRule]:
    """The rules of ``rule`` that ``version`` fails (``evaluate_rules``' failures)."""
    return failures(evaluate_rules(conn, model_id, version, rule, current))


def failures(results: list[RuleResult]) -> list[FailedRule]:
    return [
        FailedRule(rule=r.rule, need=r.need, have=r.have, message=r.message)
        for r in results
        if not r.passed
    ]


def _result(rule: str, passed: bool, need: Any, have: Any, message: str) -> RuleResult:
    return RuleResult(rule=rule, passed=passed, need=need, have=have, message=message)


def _nothing_to_compare(rule: str, current: int | None) -> RuleResult:
    why = "no version holds the alias" if current is None else "this version holds it already"
    return _result(rule, True, None, None, f"{why}: nothing to compare with")


def _review_rules(
    conn: sa.Connection, model_id: int, version: Any, rule: AliasRule
) -> list[RuleResult]:
    latest = latest_verdicts(conn, model_id, version.version)
    # Approvals by the version's creator never count (they cannot be given either), nor
    # those of members who no longer hold the approver role.
    approvals = _still_approvers(
        conn, [r for r, v in latest.items() if v == "approve" and r != version.created_by]
    )
    changes = sorted(r for r, v in latest.items() if v == "request_changes")
    missing = rule.min_approvals - len(approvals)
    if missing > 0:
        plural = "approval" if missing == 1 else "approvals"
        message = f"needs {missing} more {plural} (from someone other than its creator)"
    else:
        who = f" ({', '.join(approvals)})" if approvals else ""
        message = f"{len(approvals)} of {rule.min_approvals} approvals{who}"
    results = [_result("min_approvals", missing <= 0, rule.min_approvals, len(approvals), message)]
    if rule.block_on_changes_requested:
        message = (
            f"changes requested by {', '.join(changes)}" if changes else "no changes requested"
        )
        results.append(_result("changes_requested", not changes, [], changes, message))
    return results


def _still_approvers(conn: sa.Connection, reviewers: list[str]) -> list[str]:
    """The reviewers who may approve today. A team's users table decides (a member demoted
    or removed since approving no longer counts); an embedded store has no team users, and
    its one user is its admin."""
    if not reviewers or conn.scalar(sa.select(users.c.id).limit(1)) is None:
        return sorted(reviewers)
    rows = conn.execute(sa.select(users.c.name, users.c.role).where(users.c.name.in_(reviewers)))
    roles = {row.name: row.role for row in rows}
    return sorted(r for r in reviewers if r in roles and TeamUser(r, roles[r]).has_role("approver"))


def _gate(metric: str, op: str, value: float, metrics: dict[str, float]) -> RuleResult:
    rule = f"metric:{metric}{op}"
    need = f"{op} {value:g}"
    have = metrics.get(metric)
    if not _is_number(have):
        message = f"{metric} is not logged on this version (needs {op} {value:g})"
        return _result(rule, False, need, None, message)
    assert have is not None
    if OPS[op](have, value):
        return _result(rule, True, need, have, f"{metric} {have:g} {op} {value:g}")
    return _result(rule, False, need, have, f"{metric} {have:g} {NEGATED[op]} {value:g}")


def _not_worse(
    metric: str,
    tolerance: float,
    higher_is_better: bool,
    metrics: dict[str, float],
    held: dict[str, float],
    current: int,
) -> RuleResult:
    rule = f"not_worse_than_current:{metric}"
    reference = held.get(metric)
    if not _is_number(reference):
        # The current holder has no such metric: nothing to be worse than.
        message = f"v{current} has no {metric} logged: nothing to compare with"
        return _result(rule, True, None, metrics.get(metric), message)
    assert reference is not None
    bound = reference - tolerance if higher_is_better else reference + tolerance
    op = ">=" if higher_is_better else "<="
    need = f"{op} {bound:g} (v{current}: {reference:g}, tolerance {tolerance:g})"
    have = metrics.get(metric)
    if not _is_number(have):
        message = f"{metric} is not logged on this version (v{current} has {reference:g})"
        return _result(rule, False, need, None, message)
    assert have is not None
    if OPS[op](have, bound):
        message = f"{metric} {have:g} is not worse than v{current}'s {reference:g}"
        return _result(rule, True, need, have, message)
    message = f"{metric} {have:g} is worse than v{current}'s {reference:g}" + (
        f" by more than {tolerance:g}" if tolerance else ""
    )
    return _result(rule, False, need, have, message)


def _signature_rule(
    conn: sa.Connection, model_id: int, version: Any, current: int | None
) -> RuleResult:
    """``signature_compatible``: the version takes what the alias's holder takes now."""
    rule = "signature_compatible"
    if current is None or current == version.version:
        return _nothing_to_compare(rule, current)
    theirs = signatures.read(_signature_of(conn, model_id, current))
    ours = signatures.read(version.signature)
    if theirs is None:
        message = f"v{current} has no input signature with columns: nothing to compare with"
        return _result(rule, True, None, ours.summary() if ours else None, message)
    need = f"v{current}'s input: {theirs.summary()}"
    if ours is None:
        message = (
            f"this version has no input signature; v{current} has one "
            "(register it with an input example or fitted on a DataFrame)"
        )
        return _result(rule, False, need, "no input signature", message)
    found = signatures.problems(theirs, ours)
    if found:
        message = f"input not compatible with v{current}'s: {signatures.listed(found)}"
        return _result(rule, False, need, ours.summary(), message)
    return _result(rule, True, need, ours.summary(), f"takes the input v{current} takes")


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


def _signature_of(conn: sa.Connection, model_id: int, number: int) -> Any:
    return conn.scalar(
        sa.select(model_versions.c.signature).where(
            model_versions.c.model_id == model_id, model_versions.c.version == number
        )
    )


def _version_row(conn: sa.Connection, model_id: int, name: str, number: int) -> Any:
    mv = model_versions
    row = conn.execute(
        sa.select(mv.c.version, mv.c.created_by, mv.c.metrics, mv.c.signature).where(
            mv.c.model_id == model_id, mv.c.version == number
        )
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
) -> MoveVerdict:
    """Refuse moving ``alias`` to ``number`` if the policy protects it and rules fail,
    unless an admin overrides (recorded). Records every move ("alias.moved"). Answers what
    was evaluated: every rule, passed or failed ([] for an unprotected alias)."""
    if override is not None and not _is_admin(caller):
        raise NotAllowed("only an admin may override a protected alias's rules")
    if override is not None and not override.strip():
        raise ValueError("override needs a written reason (it is recorded in the activity feed)")
    actor = caller.name if caller else None
    before = _holders(conn, model_id).get(alias)
    policy = load_policy(conn, model_id)
    rule = policy.protected_aliases.get(alias)
    results: list[RuleResult] = []
    if rule is not None:
        version = _version_row(conn, model_id, name, number)
        results = evaluate_rules(conn, model_id, version, rule, before)
    failed = failures(results)
    if failed and override is None:
        raise PromotionRefused(alias, number, results, before)
    _check_followers(conn, model_id, name, alias, number, policy.deploy_requires_alias)
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
    return MoveVerdict(protected=rule is not None, previous=before, rules=results)


def would_move(
    conn: sa.Connection, model_id: int, name: str, alias: str, number: int
) -> MoveVerdict:
    """What ``check_move`` would evaluate now, moving and recording nothing (a dry run); a
    move the deploy rule would refuse (deployments follow the alias) fails one more rule."""
    before = _holders(conn, model_id).get(alias)
    policy = load_policy(conn, model_id)
    rule = policy.protected_aliases.get(alias)
    version = _version_row(conn, model_id, name, number)
    results = [] if rule is None else evaluate_rules(conn, model_id, version, rule, before)
    try:
        _check_followers(conn, model_id, name, alias, number, policy.deploy_requires_alias)
    except DeployRefused as refused:
        results += [RuleResult(**f.model_dump(), passed=False) for f in refused.failed]
    return MoveVerdict(protected=rule is not None, previous=before, rules=results)


def _check_followers(
    conn: sa.Connection, model_id: int, name: str, alias: str, number: int, required: str | None
) -> None:
    """A deployment following ``alias`` would serve ``number`` once it moves: under a deploy
    rule, the version must hold the required alias (DeployRefused, no override), or the
    rule checked when the deployment was made would be bypassed by moving the alias."""
    from ..serving.deployments import alias_followers  # it imports this module

    if required is None or alias == required:
        return
    holder = _holders(conn, model_id).get(required)
    if number == holder:
        return
    followers = alias_followers(conn, model_id, alias)
    if followers:
        raise DeployRefused(name, required, holder, [number], followers, alias)


# -- the deploy rule (called by serving/deployments.py under the model row's lock) -----------


def check_deploy(
    conn: sa.Connection, model_id: int, model: str, versions: list[int], follows: str | None
) -> None:
    """Refuse (DeployRefused) serving ``versions`` unless each holds the alias the model's
    policy requires of deployments; a deployment following that alias itself passes."""
    required = load_policy(conn, model_id).deploy_requires_alias
    if required is None or follows == required:
        return
    holder = _holders(conn, model_id).get(required)
    outside = sorted({v for v in versions if v != holder})
    if outside:
        raise DeployRefused(model, required, holder, outside)


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
