"""Reviews of model versions: who was asked, who approved or requested changes, and the
version's review state.

The latest verdict of each reviewer counts. The state is ``changes_requested`` if any
latest verdict requests changes, else ``approved`` if any approves, else ``requested``
while someone asked has not answered since, else ``none``.

Writes lock the model's row (as the registry's alias moves do), so a promotion evaluated
under that lock never misses a verdict committed meanwhile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import sqlalchemy as sa

from ..registry.names import check_model_name
from ..schemas import Review, ReviewState, ReviewSummary, VersionReviews
from ..store import NotFound
from ..store.engine import write_transaction
from ..store.tables import (
    comments,
    model_policies,
    model_versions,
    models,
    review_requests,
    reviews,
    users,
)
from .activity import record_activity
from .markdown import render

Verdict = Literal["approve", "request_changes"]


class NotAllowed(Exception):
    """A 403: the caller's role or relation to the version forbids this."""


class SelfReview(NotAllowed):
    """Nobody approves (or requests changes on) their own version."""


class UnknownReviewers(ValueError):
    """A 400 naming the reviewers that are no known user (or the version's own author)."""

    def __init__(self, message: str, names: list[str]) -> None:
        super().__init__(message)
        self.detail = {"reviewers": names}


@dataclass(frozen=True)
class Outcome:
    """What a review write changed: the version's reviews now, and whose inbox grew."""

    reviews: VersionReviews
    notified: list[str]


# -- transactions and locks ------------------------------------------------------------------


@contextmanager
def write(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction (SQLite: BEGIN IMMEDIATE, so it waits for the lock up front)."""
    with write_transaction(engine) as conn:
        yield conn


def lock_model(conn: sa.Connection, name: str) -> int:
    """The model's id, its row locked until the transaction ends (404 if there is none)."""
    check_model_name(name)
    model_id = conn.scalar(sa.select(models.c.id).where(models.c.name == name).with_for_update())
    if model_id is None:
        raise NotFound(f"no model named {name!r}")
    return int(model_id)


def _version(conn: sa.Connection, model_id: int, name: str, number: int) -> Any:
    row = conn.execute(
        sa.select(model_versions.c.version, model_versions.c.created_by).where(
            model_versions.c.model_id == model_id, model_versions.c.version == number
        )
    ).first()
    if row is None:
        raise NotFound(f"model {name!r} has no version {number}")
    return row


# -- writing ---------------------------------------------------------------------------------


def request_review(
    engine: sa.Engine, name: str, number: int, reviewers: Iterable[str], requested_by: str
) -> Outcome:
    """Ask ``reviewers`` (known users, not the version's author) to review the version.
    Asking again renews the request (a reviewer who answered is asked anew)."""
    wanted = list(dict.fromkeys(reviewers))  # once each, in the order given
    now = datetime.now(timezone.utc)
    with write(engine) as conn:
        model_id = lock_model(conn, name)
        version = _version(conn, model_id, name, number)
        _check_reviewers(conn, wanted, version.created_by, requested_by)
        for reviewer in wanted:
            _upsert_request(conn, model_id, number, reviewer, requested_by, now)
        record_activity(
            conn,
            "review.requested",
            requested_by,
            model=name,
            version=number,
            data={"reviewers": wanted},
            notify=[(r, "review_request") for r in wanted],
        )
        state = _version_reviews(conn, model_id, number)
    return Outcome(state, [r for r in wanted if r != requested_by])


def submit_review(
    engine: sa.Engine, name: str, number: int, reviewer: str, verdict: Verdict, body: str | None
) -> Outcome:
    """Record a verdict (the approver role was checked by the route); its body, if any,
    becomes a comment on the version. Nobody reviews their own version."""
    if body is not None and not body.strip():
        raise ValueError("body must not be blank: leave it out, or say what to change")
    now = datetime.now(timezone.utc)
    with write(engine) as conn:
        model_id = lock_model(conn, name)
        version = _version(conn, model_id, name, number)
        if version.created_by is not None and version.created_by == reviewer:
            raise SelfReview(
                f"you created {name!r} version {number}: nobody approves or requests changes "
                "on their own version; ask someone else to review it"
            )
        comment_id = _comment(conn, model_id, number, reviewer, body, now) if body else None
        conn.execute(
            sa.insert(reviews).values(
                model_id=model_id,
                model_version=number,
                reviewer=reviewer,
                verdict=verdict,
                comment_id=comment_id,
                created_at=now,
            )
        )
        author = version.created_by
        record_activity(
            conn,
            "review.submitted",
            reviewer,
            model=name,
            version=number,
            comment_id=comment_id,
            data={"verdict": verdict},
            notify=[(author, "review")] if author else [],
        )
        state = _version_reviews(conn, model_id, number)
    return Outcome(state, [author] if author and author != reviewer else [])


def _check_reviewers(
    conn: sa.Connection, wanted: list[str], author: str | None, requested_by: str
) -> None:
    if author is not None and author in wanted:
        raise UnknownReviewers(
            f"{author!r} created this version and cannot review it: ask someone else",
            [author],
        )
    known = set(conn.scalars(sa.select(users.c.name).where(users.c.name.in_(wanted))))
    known.add(requested_by)  # embedded mode has no users table rows: its one user is known
    unknown = [r for r in wanted if r not in known]
    if unknown:
        listed = ", ".join(repr(r[:64]) for r in unknown[:10])
        raise UnknownReviewers(
            f"unknown reviewer{'s' if len(unknown) > 1 else ''} {listed}: ask for members of "
            "the team (GET /users lists them)",
            unknown,
        )


def _upsert_request(
    conn: sa.Connection, model_id: int, number: int, reviewer: str, by: str, now: datetime
) -> None:
    # Under the model's lock nobody else writes this version's requests: update, else insert.
    renewed = conn.execute(
        sa.update(review_requests)
        .where(
            review_requests.c.model_id == model_id,
            review_requests.c.model_version == number,
            review_requests.c.reviewer == reviewer,
        )
        .values(requested_by=by, requested_at=now)
    ).rowcount
    if not renewed:
        conn.execute(
            sa.insert(review_requests).values(
                model_id=model_id,
                model_version=number,
                reviewer=reviewer,
                requested_by=by,
                requested_at=now,
            )
        )


def _comment(
    conn: sa.Connection, model_id: int, number: int, author: str, body: str, now: datetime
) -> int:
    """The verdict's body as a comment on the version (the columns review/comments.py
    writes), so it shows in the version's thread."""
    return int(
        conn.execute(
            sa.insert(comments)
            .values(
                target_kind="model_version",
                model_id=model_id,
                model_version=number,
                body=body,
                html=render(body),
                author=author,
                created_at=now,
                resolved=False,
                deleted=False,
                code_sha=None,
                mentions=[],
            )
            .returning(comments.c.id)
        ).scalar_one()
    )


# -- reading ---------------------------------------------------------------------------------


def version_reviews(engine: sa.Engine, name: str, number: int) -> VersionReviews:
    with engine.connect() as conn:
        check_model_name(name)
        model_id = conn.scalar(sa.select(models.c.id).where(models.c.name == name))
        if model_id is None:
            raise NotFound(f"no model named {name!r}")
        _version(conn, model_id, name, number)
        return _version_reviews(conn, model_id, number)


def latest_verdicts(conn: sa.Connection, model_id: int, number: int) -> dict[str, str]:
    """Each reviewer's latest verdict on the version."""
    rows = conn.execute(
        sa.select(reviews.c.reviewer, reviews.c.verdict)
        .where(reviews.c.model_id == model_id, reviews.c.model_version == number)
        .order_by(reviews.c.id)
    )
    return {r.reviewer: r.verdict for r in rows}


def summaries(conn: sa.Connection, model_id: int, numbers: list[int]) -> dict[int, ReviewSummary]:
    """The review summary of each of these versions, in two queries (a versions page)."""
    if not numbers:
        return {}
    verdicts = conn.execute(
        sa.select(
            reviews.c.model_version, reviews.c.reviewer, reviews.c.verdict, reviews.c.created_at
        )
        .where(reviews.c.model_id == model_id, reviews.c.model_version.in_(numbers))
        .order_by(reviews.c.id)
    ).all()
    requests = conn.execute(
        sa.select(
            review_requests.c.model_version,
            review_requests.c.reviewer,
            review_requests.c.requested_at,
        ).where(
            review_requests.c.model_id == model_id, review_requests.c.model_version.in_(numbers)
        )
    ).all()
    by_version: dict[int, list[Any]] = defaultdict(list)
    asked: dict[int, list[Any]] = defaultdict(list)
    for v in verdicts:
        by_version[v.model_version].append(v)
    for r in requests:
        asked[r.model_version].append(r)
    out = {}
    for number in numbers:
        latest = {v.reviewer: v.verdict for v in by_version[number]}
        state = _state(latest, _outstanding(asked[number], by_version[number]))
        out[number] = ReviewSummary(state=state, approvals=_with(latest, "approve"))
    return out


def _version_reviews(conn: sa.Connection, model_id: int, number: int) -> VersionReviews:
    verdicts = conn.execute(
        sa.select(
            reviews.c.id,
            reviews.c.reviewer,
            reviews.c.verdict,
            reviews.c.comment_id,
            reviews.c.created_at,
            comments.c.body,
            comments.c.deleted,
        )
        .select_from(reviews.outerjoin(comments, comments.c.id == reviews.c.comment_id))
        .where(reviews.c.model_id == model_id, reviews.c.model_version == number)
        .order_by(reviews.c.id)
    ).all()
    asked = conn.execute(
        sa.select(review_requests.c.reviewer, review_requests.c.requested_at)
        .where(review_requests.c.model_id == model_id, review_requests.c.model_version == number)
        .order_by(review_requests.c.requested_at, review_requests.c.id)
    ).all()
    latest = {v.reviewer: v.verdict for v in verdicts}
    outstanding = _outstanding(asked, verdicts)
    return VersionReviews(
        state=_state(latest, outstanding),
        approvals=_with(latest, "approve"),
        changes_requested=_with(latest, "request_changes"),
        requested=outstanding,
        items=[
            Review(
                id=v.id,
                reviewer=v.reviewer,
                verdict=v.verdict,
                comment_id=v.comment_id,
                # A deleted comment (a tombstone, or removed) no longer speaks for the verdict.
                body=None if v.deleted or v.body is None else v.body,
                created_at=v.created_at,
            )
            for v in verdicts
        ],
    )


def _outstanding(asked: Iterable[Any], verdicts: Iterable[Any]) -> list[str]:
    """Reviewers asked who have given no verdict since they were (last) asked."""
    answered: dict[str, datetime] = {}
    for v in verdicts:
        answered[v.reviewer] = max(v.created_at, answered.get(v.reviewer, v.created_at))
    return [
        r.reviewer
        for r in asked
        if r.reviewer not in answered or answered[r.reviewer] < r.requested_at
    ]


def _with(latest: dict[str, str], verdict: str) -> list[str]:
    return sorted(r for r, v in latest.items() if v == verdict)


def _state(latest: dict[str, str], outstanding: list[str]) -> ReviewState:
    if "request_changes" in latest.values():
        return "changes_requested"
    if "approve" in latest.values():
        return "approved"
    return "requested" if outstanding else "none"


def forget_model(conn: sa.Connection, model_id: int, version: int | None = None) -> None:
    """Remove what the team said about a model's version (``version``) or about the whole
    model (None: its policy too), in the registry's deleting transaction: these rows
    reference the model's row. The activity feed keeps its record of what happened."""
    from .comments import forget_model as forget_comments

    forget_comments(conn, model_id, version)
    for table in (reviews, review_requests):
        q = sa.delete(table).where(table.c.model_id == model_id)
        if version is not None:
            q = q.where(table.c.model_version == version)
        conn.execute(q)
    if version is None:
        conn.execute(sa.delete(model_policies).where(model_policies.c.model_id == model_id))
