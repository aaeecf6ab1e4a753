"""The durable outbox: deliveries queued from the activity table, picked when due, and
every attempt recorded, all in the store, so a restart of the backend loses nothing.

- ``scan``: activity rows past each webhook's cursor become deliveries (one per webhook and
  event it wants, unique: a repeated scan adds none), and the cursor moves on, in one
  transaction. Ids of concurrent transactions may become visible out of order on
  PostgreSQL: the cursor stops before an id that is missing while the rows after it are
  younger than ``GAP_WAIT`` (a later commit fills it; an id of a rolled-back transaction
  never comes, and is skipped once that time has passed).
- ``cycle``: a scan, then the pending and retrying deliveries whose time has come, leased
  for the length of an attempt (``next_attempt_at`` moves past it): a process that dies mid-send
  leaves them due again once the lease ends, so a delivery is sent at least once.
- ``cycle`` also records attempts' outcomes (the attempts log), those made since the last
  look, in the same transaction, and the delivery's next state:
  2xx delivered; network errors, timeouts, 408, 429 and 5xx retried with exponential
  backoff until ``max_attempts``; a redirect (3xx, never followed), any other 4xx and a
  refused target fail at once. A delivery that fails for good adds a ``webhook.failed``
  activity row (at most one per webhook a minute), which is not itself a webhook event.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from ..store.engine import write_transaction
from ..store.tables import activity, webhook_attempts, webhook_deliveries, webhooks
from .events import EVENT_OF_ACTIVITY, WEBHOOK_FAILED, activity_types_of, encode, event_body
from .send import Outcome

BATCH = 1000  # activity rows examined per scan
GAP_WAIT = timedelta(seconds=5)
LEASE_SLACK = 5.0  # seconds a claimed delivery stays leased beyond the attempt's timeout
MAX_BACKOFF = 600.0
NOTICE_EVERY = timedelta(minutes=1)

DELIVERED, RETRYING, FAILED, PENDING = "delivered", "retrying", "failed", "pending"


@dataclass(frozen=True)
class Settings:
    """How deliveries are made (config.py ``webhook_*``; ``backoff``: seconds before the
    first retry, doubled for each next one)."""

    allow_private: bool = False
    max_attempts: int = 5
    timeout: float = 10.0
    backoff: float = 1.0


@dataclass(frozen=True)
class Due:
    id: int
    uuid: str
    webhook_id: int
    event: str
    body: str
    attempts: int
    url: str
    secret: str


def now() -> datetime:
    return datetime.now(timezone.utc)


# -- one look at the outbox --------------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    """What one look at the outbox found: deliveries leased to send now (None: no webhook
    exists), and whether a ``webhook.failed`` row was added to the feed."""

    due: list[Due] | None
    noticed: bool = False


def cycle(
    engine: sa.Engine,
    settings: Settings,
    limit: int,
    busy: set[int],
    done: Sequence[tuple[Due, Outcome]] = (),
) -> Look:
    """One look: record the outcomes of attempts made since the last (``done``), queue the
    deliveries of new activity, then lease up to ``limit`` due ones not in flight here
    (``busy``). Two small reads, and at most one write transaction of a few statements,
    only when there is something to write: this runs every poll, in the process that serves
    the team's requests, and on SQLite every write transaction waits for the others."""
    d = webhook_deliveries.c
    waiting = d.status.in_([PENDING, RETRYING])
    with engine.connect() as conn:
        hooks = conn.execute(
            sa.select(
                webhooks.c.id,
                webhooks.c.url,
                webhooks.c.secret,
                webhooks.c.events,
                webhooks.c.cursor,
            )
        ).all()
        if not hooks and not done:
            return Look(None)
        newest, soonest = conn.execute(
            sa.select(
                sa.select(sa.func.max(activity.c.id)).scalar_subquery(),
                sa.select(sa.func.min(d.next_attempt_at)).where(waiting).scalar_subquery(),
            )
        ).one()
    low = min((h.cursor for h in hooks), default=newest or 0)
    fresh = (newest or 0) > low
    due = limit > 0 and soonest is not None and soonest <= now()
    if not fresh and not due and not done:
        return Look([])
    with write_transaction(engine) as conn:
        noticed = _record(conn, list(done), settings) if done else False
        if fresh and _scan(conn, low, hooks):
            due = limit > 0
        leased = _lease(conn, hooks, settings, limit, busy) if due else []
    return Look(leased, noticed)


def scan(engine: sa.Engine) -> int:
    """Queue the deliveries of activity past the cursors; answer how many were queued."""
    with write_transaction(engine) as conn:
        hooks = conn.execute(sa.select(webhooks.c.id, webhooks.c.events, webhooks.c.cursor)).all()
        return _scan(conn, min(h.cursor for h in hooks), hooks) if hooks else 0


def _scan(conn: sa.Connection, low: int, hooks: list[Any]) -> int:
    """Deliveries of the activity rows after ``low`` for each webhook past its cursor; the
    cursors move to the horizon. Three statements, whatever the number of webhooks."""
    rows = conn.execute(
        sa.select(activity).where(activity.c.id > low).order_by(activity.c.id).limit(BATCH)
    ).all()
    horizon = _horizon(low, rows, now())
    if horizon <= low:
        return 0
    at = now()
    bodies: dict[int, str] = {}
    values = []
    for hook in hooks:
        wanted = set(activity_types_of(list(hook.events or [])))
        for r in rows:
            if hook.cursor < r.id <= horizon and r.type in wanted:
                if r.id not in bodies:
                    bodies[r.id] = encode(event_body(r))
                event = EVENT_OF_ACTIVITY[r.type]
                values.append(_delivery(hook.id, r.id, event, bodies[r.id], at))
    if values:
        conn.execute(sa.insert(webhook_deliveries), values)
    conn.execute(sa.update(webhooks).where(webhooks.c.cursor < horizon).values(cursor=horizon))
    return len(values)


def _horizon(low: int, seen: list[Any], at: datetime) -> int:
    """The last id up to which every activity row is visible (or its gap is old enough to
    be a rolled-back transaction's)."""
    horizon = low
    for row in seen:
        if row.id != horizon + 1 and at - row.at < GAP_WAIT:
            break  # an earlier id may still commit
        horizon = row.id
    return horizon


def _delivery(
    webhook_id: int, activity_id: int | None, event: str, body: str, at: datetime
) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()),
        "webhook_id": webhook_id,
        "activity_id": activity_id,
        "event": event,
        "body": body,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
    }


def queue(engine: sa.Engine, webhook_id: int, event: str, body: dict[str, Any]) -> str:
    """Queue one delivery outside the activity stream (a test ping); answer its id."""
    values = _delivery(webhook_id, None, event, encode(body), now())
    with write_transaction(engine) as conn:
        conn.execute(sa.insert(webhook_deliveries).values(**values))
    return str(values["uuid"])


def _lease(
    conn: sa.Connection, hooks: list[Any], settings: Settings, limit: int, busy: set[int]
) -> list[Due]:
    """Lease up to ``limit`` due deliveries (not in ``busy``) for one attempt, in one
    UPDATE … RETURNING."""
    d = webhook_deliveries.c
    at = now()
    picked = (
        sa.select(d.id)
        .where(d.status.in_([PENDING, RETRYING]), d.next_attempt_at <= at)
        .order_by(d.next_attempt_at, d.id)
        .limit(limit)
    )
    if busy:
        picked = picked.where(d.id.not_in(sorted(busy)))
    lease = at + timedelta(seconds=settings.timeout + LEASE_SLACK)
    rows = conn.execute(
        sa.update(webhook_deliveries)
        .where(d.id.in_(picked.scalar_subquery()))
        .values(next_attempt_at=lease)
        .returning(d.id, d.uuid, d.webhook_id, d.event, d.body, d.attempts)
    ).all()
    by_id = {h.id: h for h in hooks}
    return [
        Due(**r._asdict(), url=by_id[r.webhook_id].url, secret=by_id[r.webhook_id].secret)
        for r in rows
        if r.webhook_id in by_id  # registered meanwhile: picked up on the next look
    ]


# -- outcomes ---------------------------------------------------------------------------------


def verdict(outcome: Outcome) -> tuple[str, str | None]:
    """(delivered | retry | failed, error) of one attempt."""
    code = outcome.code
    if code is None:
        return ("failed" if outcome.refused else "retry"), outcome.error
    if 200 <= code < 300:
        return "delivered", None
    if 300 <= code < 400:
        where = f" to {outcome.location}" if outcome.location else ""
        return "failed", f"HTTP {code}: redirect{where} not followed"
    if code in (408, 429) or code >= 500:
        return "retry", f"HTTP {code}"
    return "failed", f"HTTP {code}"


def record(engine: sa.Engine, done: list[tuple[Due, Outcome]], settings: Settings) -> bool:
    """``_record`` in a transaction of its own (a dispatcher that stops)."""
    with write_transaction(engine) as conn:
        return _record(conn, done, settings)


def _record(conn: sa.Connection, done: list[tuple[Due, Outcome]], settings: Settings) -> bool:
    """Store attempts and their deliveries' next states in three statements (and a notice
    per delivery failed for good); True when a ``webhook.failed`` row was added to the
    feed."""
    at = now()
    attempts, states, failed = [], [], []
    for due, outcome in done:
        result, error = verdict(outcome)
        attempt = due.attempts + 1
        if result == "retry" and attempt >= settings.max_attempts:
            result = "failed"
        status = RETRYING if result == "retry" else result
        delay = min(settings.backoff * 2 ** (attempt - 1), MAX_BACKOFF)
        states.append(
            {
                "b_id": due.id,
                "b_status": status,
                "b_attempts": attempt,
                "b_next": at + timedelta(seconds=delay),
            }
        )
        attempts.append(
            {
                "delivery_id": due.id,
                "webhook_id": due.webhook_id,
                "attempt": attempt,
                "status": status,
                "response_code": outcome.code,
                "error": error,
                "at": at,
                "duration_ms": outcome.duration_ms,
            }
        )
        if status == FAILED:
            failed.append((due, error or "failed"))
    d = webhook_deliveries.c
    sent = {due.id: due.uuid for due, _ in done}
    # A deleted webhook's deliveries are gone: nothing to record. SQLite may have given a
    # new delivery the id of one deleted mid-send, so the uuid must match too: else the old
    # attempt's outcome would end the new delivery unsent.
    known = {
        row.id
        for row in conn.execute(sa.select(d.id, d.uuid).where(d.id.in_(list(sent))))
        if row.uuid == sent[row.id]
    }
    if not known:
        return False
    conn.execute(
        sa.update(webhook_deliveries)
        .where(d.id == sa.bindparam("b_id"))
        .values(
            status=sa.bindparam("b_status"),
            attempts=sa.bindparam("b_attempts"),
            next_attempt_at=sa.bindparam("b_next"),
        ),
        [s for s in states if s["b_id"] in known],
    )
    conn.execute(sa.insert(webhook_attempts), [a for a in attempts if a["delivery_id"] in known])
    notices = [_notice_failure(conn, due, e, at) for due, e in failed if due.id in known]
    return any(notices)


def _notice_failure(conn: sa.Connection, due: Due, error: str, at: datetime) -> bool:
    """A ``webhook.failed`` activity row, unless one was added for this webhook within the
    last minute (a receiver that is down fails every delivery: one line says so)."""
    done = conn.execute(
        sa.update(webhooks)
        .where(
            webhooks.c.id == due.webhook_id,
            sa.or_(
                webhooks.c.failure_noticed_at.is_(None),
                webhooks.c.failure_noticed_at <= at - NOTICE_EVERY,
            ),
        )
        .values(failure_noticed_at=at)
    )
    if done.rowcount != 1:
        return False
    from ..review.activity import record_activity  # review/ imports the store, which is ours

    record_activity(
        conn,
        WEBHOOK_FAILED,
        None,
        data={
            "webhook": due.webhook_id,
            "host": urlsplit(due.url).hostname or "",
            "event": due.event,
            "delivery": due.uuid,
            "error": error[:500],
        },
    )
    return True
