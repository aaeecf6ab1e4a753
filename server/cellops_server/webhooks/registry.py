"""What the webhooks API does (api/webhooks.py is the thin handler over it): register,
list, change, delete, queue a test ping, read the deliveries log.

A webhook's secret is stored to sign with and never returned. A new webhook's cursor
starts at the newest activity row, so it gets what happens from now on, not history.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ..schemas import (
    Webhook,
    WebhookAttempt,
    WebhookCreate,
    WebhookLastDelivery,
    WebhookPatch,
)
from ..store import NotFound
from ..store.engine import write_transaction
from ..store.tables import activity, webhook_attempts, webhook_deliveries, webhooks
from . import outbox
from .events import EVENT_TYPES, PING, ping_body
from .targets import TargetRefused, check_registration

MAX_SECRET = 256


class InvalidWebhook(ValueError):
    """A 400 saying what to fix."""


def validate(body: WebhookCreate, allow_private: bool) -> list[str]:
    """The request's events (deduplicated, in the documented order), or InvalidWebhook."""
    _check_url(body.url, allow_private)
    _check_secret(body.secret)
    return _checked_events(body.events)


def _check_url(url: str, allow_private: bool) -> None:
    try:
        check_registration(url, allow_private)
    except TargetRefused as exc:
        raise InvalidWebhook(f"url: {exc}") from None


def _checked_events(events: list[str]) -> list[str]:
    if not events:
        raise InvalidWebhook(f"events: name at least one of {', '.join(EVENT_TYPES)}")
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise InvalidWebhook(
            f"events: unknown event type {unknown[0][:64]!r}; the types are "
            + ", ".join(EVENT_TYPES)
        )
    return [e for e in EVENT_TYPES if e in set(events)]


def _check_secret(secret: str) -> None:
    if not secret:
        raise InvalidWebhook("secret: give a non-empty secret to sign deliveries with")
    if len(secret) > MAX_SECRET:
        raise InvalidWebhook(f"secret: at most {MAX_SECRET} characters")


def create(
    engine: sa.Engine, body: WebhookCreate, actor: str | None, allow_private: bool
) -> Webhook:
    events = validate(body, allow_private)
    at = datetime.now(timezone.utc)
    with write_transaction(engine) as conn:
        newest = conn.scalar(sa.select(sa.func.max(activity.c.id))) or 0
        webhook_id = conn.execute(
            sa.insert(webhooks)
            .values(
                url=body.url,
                events=events,
                secret=body.secret,
                created_by=actor,
                created_at=at,
                cursor=newest,
            )
            .returning(webhooks.c.id)
        ).scalar_one()
    return Webhook(id=webhook_id, url=body.url, events=events, created_by=actor, created_at=at)


def update(engine: sa.Engine, webhook_id: int, patch: WebhookPatch, allow_private: bool) -> Webhook:
    """Change what ``patch`` gives (url, events, secret) and keep the rest. Deliveries not yet
    sent go to the new URL, signed with the new secret; the new events apply to what happens
    from now on."""
    values: dict[str, Any] = {}
    if patch.url is not None:
        _check_url(patch.url, allow_private)
        values["url"] = patch.url
    if patch.events is not None:
        values["events"] = _checked_events(patch.events)
    if patch.secret is not None:
        _check_secret(patch.secret)
        values["secret"] = patch.secret
    if not values:
        raise InvalidWebhook("give at least one of url, events and secret to change")
    with write_transaction(engine) as conn:
        _exists(conn, webhook_id)
        conn.execute(sa.update(webhooks).where(webhooks.c.id == webhook_id).values(**values))
    (changed,) = list_all(engine, only=webhook_id)
    return changed


def list_all(engine: sa.Engine, only: int | None = None) -> list[Webhook]:
    """Every webhook (or the one numbered ``only``) with its latest delivery attempt."""
    a = webhook_attempts.c
    inner = webhook_attempts.alias("latest")
    latest = (
        sa.select(sa.func.max(inner.c.id))
        .where(inner.c.webhook_id == webhooks.c.id)
        .correlate(webhooks)
        .scalar_subquery()
    )
    q = (
        sa.select(
            webhooks.c.id,
            webhooks.c.url,
            webhooks.c.events,
            webhooks.c.created_by,
            webhooks.c.created_at,
            a.status,
            a.at,
            a.response_code,
        )
        .select_from(webhooks.outerjoin(webhook_attempts, a.id == latest))
        .order_by(webhooks.c.id)
    )
    if only is not None:
        q = q.where(webhooks.c.id == only)
    with engine.connect() as conn:
        return [_webhook(r) for r in conn.execute(q)]


def _webhook(r: Any) -> Webhook:
    last = (
        WebhookLastDelivery(status=r.status, at=r.at, response_code=r.response_code)
        if r.status is not None
        else None
    )
    return Webhook(
        id=r.id,
        url=r.url,
        events=list(r.events or []),
        created_by=r.created_by,
        created_at=r.created_at,
        last_delivery=last,
    )


def delete(engine: sa.Engine, webhook_id: int) -> None:
    """Remove the webhook, its queued deliveries and its log."""
    with write_transaction(engine) as conn:
        _exists(conn, webhook_id)
        conn.execute(sa.delete(webhook_attempts).where(webhook_attempts.c.webhook_id == webhook_id))
        conn.execute(
            sa.delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id)
        )
        conn.execute(sa.delete(webhooks).where(webhooks.c.id == webhook_id))


def test(engine: sa.Engine, webhook_id: int, actor: str | None) -> str:
    """Queue a ``ping`` delivery through the outbox; answer its delivery id."""
    with engine.connect() as conn:
        _exists(conn, webhook_id)
    body = ping_body(str(uuid.uuid4()), datetime.now(timezone.utc), actor, webhook_id)
    return outbox.queue(engine, webhook_id, PING, body)


def attempts(engine: sa.Engine, webhook_id: int, limit: int) -> list[WebhookAttempt]:
    """The deliveries log of a webhook: its attempts, newest first."""
    a, d = webhook_attempts.c, webhook_deliveries.c
    q = (
        sa.select(
            d.uuid, d.event, a.attempt, a.status, a.response_code, a.error, a.at, a.duration_ms
        )
        .join(webhook_deliveries, d.id == a.delivery_id)
        .where(a.webhook_id == webhook_id)
        .order_by(a.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        _exists(conn, webhook_id)
        rows = conn.execute(q).all()
    return [
        WebhookAttempt(
            id=r.uuid,
            event=r.event,
            attempt=r.attempt,
            status=r.status,
            response_code=r.response_code,
            error=r.error,
            at=r.at,
            duration_ms=r.duration_ms,
        )
        for r in rows
    ]


def _exists(conn: sa.Connection, webhook_id: int) -> None:
    if conn.scalar(sa.select(webhooks.c.id).where(webhooks.c.id == webhook_id)) is None:
        raise NotFound(f"no webhook with id {webhook_id}")
