"""Which activity rows are webhook events, and the body a receiver gets for one.

The activity table is the outbox (review/activity.py): every event was written in the same
transaction as the change it describes, so a webhook can neither announce what did not
happen nor miss what did. This module is the one place that maps activity types to the
public event types; anything not mapped here (``webhook.failed`` above all, or it would
loop) is never delivered.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

# Activity type → webhook event type.
EVENT_OF_ACTIVITY: dict[str, str] = {
    "run.finished": "run.finished",
    "model_version.created": "model_version.created",
    "alias.moved": "alias.moved",
    "alias.override": "alias.moved",
    "review.submitted": "review.submitted",
    "comment.created": "comment.created",  # replies are comments created too
    "deployment.created": "deployment.changed",
    "deployment.changed": "deployment.changed",
    "deployment.deleted": "deployment.changed",
    "deployment.drift_started": "drift.detected",
}

EVENT_TYPES: tuple[str, ...] = (
    "run.finished",
    "model_version.created",
    "alias.moved",
    "review.submitted",
    "comment.created",
    "deployment.changed",
    "drift.detected",
)
PING = "ping"  # a test delivery (POST /webhooks/{id}/test); every webhook gets it

# The activity type of a delivery that failed for good (shown in the feed, never delivered).
WEBHOOK_FAILED = "webhook.failed"

assert set(EVENT_OF_ACTIVITY.values()) == set(EVENT_TYPES)
assert WEBHOOK_FAILED not in EVENT_OF_ACTIVITY


def activity_types_of(events: list[str]) -> list[str]:
    """The activity types that make up these webhook events."""
    wanted = set(events)
    return sorted(a for a, e in EVENT_OF_ACTIVITY.items() if e in wanted)


def event_body(row: Any) -> dict[str, Any]:
    """The body of the event an activity row is: ``{"id", "type", "at", "actor", "data"}``.
    ``id`` names the event (the activity id), the same in every delivery of it."""
    data: dict[str, Any] = {}
    if row.model is not None:
        data["model"] = row.model
    if row.model_version is not None:
        data["version"] = row.model_version
    if row.notebook is not None:
        data["notebook"] = row.notebook
    if row.comment_id is not None:
        data["comment_id"] = row.comment_id
    if row.type != EVENT_OF_ACTIVITY[row.type]:
        data["activity"] = row.type  # e.g. alias.override within alias.moved
    data.update(row.data or {})
    return {
        "id": str(row.id),
        "type": EVENT_OF_ACTIVITY[row.type],
        "at": _iso(row.at),
        "actor": row.actor,
        "data": data,
    }


def ping_body(event_id: str, at: datetime, actor: str | None, webhook_id: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": PING,
        "at": _iso(at),
        "actor": actor,
        "data": {"webhook": webhook_id},
    }


def encode(body: dict[str, Any]) -> str:
    """The exact bytes signed and sent (frozen in the delivery: every attempt sends them)."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
