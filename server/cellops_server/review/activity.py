"""The team's activity record: one row per thing done, written in the same transaction as
the change it describes, so the feed never shows what did not happen (nor misses what did).

The inbox of a user is the activity rows that concern them (a mention, a review request,
a verdict on their version) until they mark them read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ..store.tables import activity, inbox


def record_activity(
    conn: sa.Connection,
    type: str,
    actor: str | None,
    *,
    model: str | None = None,
    version: int | None = None,
    notebook: str | None = None,
    notebook_id: int | None = None,
    comment_id: int | None = None,
    data: dict[str, Any] | None = None,
    notify: Iterable[tuple[str, str]] = (),
) -> int:
    """Add an activity row (and an inbox entry per ``(user, reason)`` in ``notify``, never
    for the actor themselves); answer its id. Call inside the change's transaction."""
    activity_id = conn.execute(
        sa.insert(activity)
        .values(
            at=datetime.now(timezone.utc),
            actor=actor,
            type=type,
            model=model,
            model_version=version,
            notebook=notebook,
            notebook_id=notebook_id,
            comment_id=comment_id,
            data=data or {},
        )
        .returning(activity.c.id)
    ).scalar_one()
    seen: set[str] = set()
    for user, reason in notify:
        if user == actor or user in seen:
            continue
        seen.add(user)
        conn.execute(
            sa.insert(inbox).values(user_name=user, activity_id=activity_id, reason=reason)
        )
    return activity_id
