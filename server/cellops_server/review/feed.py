"""Reading the team's activity record: the feed (newest first, keyset pages, "mine") and
each member's inbox (what concerns them, with the number still unread).

An inbox row is its user's only: every query here is scoped to the caller's name, so no
id sent by a client reaches another member's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ..bounds import MAX_INT
from ..schemas import ActivityItem, InboxItem, InboxPage, Page
from ..store.engine import write_transaction
from ..store.pagination import BY_ID, decode_cursor, encode_cursor
from ..store.tables import activity, inbox

FEED_COLUMNS = (
    activity.c.id,
    activity.c.at,
    activity.c.actor,
    activity.c.type,
    activity.c.model,
    activity.c.model_version,
    activity.c.notebook,
    activity.c.comment_id,
    activity.c.data,
)


def activity_page(
    engine: sa.Engine, caller: str, *, mine: bool, cursor: str | None, limit: int
) -> Page[ActivityItem]:
    """The feed, newest first by id (ids follow commit order closely; times of different
    replicas need not). ``mine``: what the caller did or what reached their inbox."""
    key = decode_cursor(cursor, BY_ID)
    q = sa.select(*FEED_COLUMNS).order_by(activity.c.id.desc()).limit(limit + 1)
    if key is not None:
        q = q.where(activity.c.id < key[0])
    if mine:
        concerns_caller = (
            sa.select(inbox.c.id)
            .where(inbox.c.activity_id == activity.c.id, inbox.c.user_name == caller)
            .exists()
        )
        q = q.where(sa.or_(activity.c.actor == caller, concerns_caller))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    items = [item_of(row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(items=items, next=encode_cursor([items[-1].id]) if more else None)


def inbox_page(engine: sa.Engine, user: str, limit: int) -> InboxPage:
    """The ``limit`` newest items of ``user``'s inbox (read ones flagged), and how many of
    all their items are unread."""
    q = (
        sa.select(inbox.c.id.label("inbox_id"), inbox.c.reason, inbox.c.read_at, *FEED_COLUMNS)
        .join(activity, activity.c.id == inbox.c.activity_id)
        .where(inbox.c.user_name == user)
        .order_by(inbox.c.id.desc())
        .limit(limit)
    )
    unread = (
        sa.select(sa.func.count())
        .select_from(inbox)
        .where(inbox.c.user_name == user, inbox.c.read_at.is_(None))
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
        count = conn.execute(unread).scalar_one()
    items = [
        InboxItem(id=r.inbox_id, reason=r.reason, read=r.read_at is not None, activity=item_of(r))
        for r in rows
    ]
    return InboxPage(items=items, unread=count)


def mark_read(engine: sa.Engine, user: str, ids: Sequence[int]) -> int:
    """Mark ``user``'s own items among ``ids`` read; answer how many changed. Ids of other
    members' items (or of none) are ignored: saying which exist would tell what others got."""
    ids = sorted({i for i in ids if i <= MAX_INT})  # a larger one is no row's id
    if not ids:
        return 0
    with write_transaction(engine) as conn:
        done = conn.execute(
            sa.update(inbox)
            .where(
                inbox.c.id.in_(ids),
                inbox.c.user_name == user,
                inbox.c.read_at.is_(None),
            )
            .values(read_at=datetime.now(timezone.utc))
        )
    return done.rowcount


def item_of(row: Any) -> ActivityItem:
    return ActivityItem(
        id=row.id,
        at=row.at,
        actor=row.actor,
        type=row.type,
        model=row.model,
        version=row.model_version,
        notebook=row.notebook,
        comment_id=row.comment_id,
        data=row.data or {},
    )
