"""Comments: threads on a cell (notebook + cell id), an execution, a run or a model version.

- A thread is a first comment and its replies; a reply to a reply joins the thread of its
  parent, so threads are one level deep and a page ordered by id never shows a reply
  before the comment it answers.
- A cell comment keeps the code sha of the cell's newest execution when it was written;
  it is *outdated* once the cell's newest execution has other code. A comment written
  before the cell ever ran has no code to compare with and is never outdated.
- Deleting a comment with replies leaves a tombstone (``deleted``, body emptied); one
  without replies is removed, and the thread's tombstone with it once its last reply goes.
  Either way the activity rows that quoted it keep only its id.
- ``@name`` mentions a known user (the team's users table; an embedded server has none,
  so nobody else to mention): they get an inbox entry, as the thread's first author does
  for a reply. The activity row and the inbox entries are written in the comment's own
  transaction.

Row locks (PostgreSQL; SQLite's write transactions are serialized whole): a reply locks
its thread's first comment, and a deletion the comment it deletes, so a reply never lands
on a comment deleted meanwhile, and a comment with a reply is never removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ..registry.names import check_model_name
from ..schemas import (
    CellCommentCount,
    CellTarget,
    Comment,
    CommentCreate,
    CommentTarget,
    ExecutionTarget,
    ModelVersionTarget,
    RunTarget,
)
from ..store import NotFound
from ..store.engine import write_transaction
from ..store.errors import NotOwner
from ..store.tables import (
    activity,
    comments,
    executions,
    model_versions,
    models,
    notebooks,
    reviews,
    runs,
    users,
)
from ..team.users import TeamUser
from .activity import record_activity
from .markdown import mention_candidates, render

MAX_LIST = 2000  # comments in one answer; the client asks for more with ?after=<last id>
MAX_MENTIONS = 20  # distinct users one comment may mention
MAX_CANDIDATES = 200  # @words looked up as user names, at most (bounds the lookup)
EXCERPT = 200  # characters of a body quoted in the activity feed


class NotAuthor(NotOwner):
    """A 403: editing (or deleting) a comment that is not the caller's."""


@dataclass(frozen=True)
class Anchor:
    """A resolved target: the comments columns that name it, and what events name."""

    kind: str
    notebook_id: int | None = None
    cell_id: str | None = None
    execution_id: int | None = None
    run_id: int | None = None
    model_id: int | None = None
    model_version: int | None = None
    notebook: str | None = None  # the notebook's path (events and the feed)
    model: str | None = None  # the model's name

    def columns(self) -> dict[str, Any]:
        return {
            "target_kind": self.kind,
            "notebook_id": self.notebook_id if self.kind == "cell" else None,
            "cell_id": self.cell_id,
            "execution_id": self.execution_id,
            "run_id": self.run_id,
            "model_id": self.model_id,
            "model_version": self.model_version,
        }

    def where(self) -> list[sa.ColumnElement[bool]]:
        """The condition on ``comments`` of this target (a cell of None: the whole
        notebook's cells)."""
        c = comments.c
        if self.kind == "cell":
            conds = [c.notebook_id == self.notebook_id, c.target_kind == "cell"]
            return conds + ([c.cell_id == self.cell_id] if self.cell_id is not None else [])
        if self.kind == "execution":
            return [c.execution_id == self.execution_id]
        if self.kind == "run":
            return [c.run_id == self.run_id]
        return [c.model_id == self.model_id, c.model_version == self.model_version]

    def same(self, row: Any) -> bool:
        """Whether a comments row is on this very target."""
        return all(row._mapping[k] == v for k, v in self.columns().items())


@dataclass(frozen=True)
class Change:
    """What a write did: the comment now (None once removed), its target, whose inbox grew."""

    comment: Comment | None
    anchor: Anchor
    notified: list[str] = field(default_factory=list)


# -- targets --------------------------------------------------------------------------------


def cell_anchor(
    conn: sa.Connection, notebook_id: int | None, path: str, cell: str | None
) -> Anchor:
    """A notebook's cell (or, with ``cell`` None, all its cells) by the notebook's id as
    Store.notebook_id resolved it; 404 for a notebook nothing was recorded for."""
    found = None
    if notebook_id is not None:
        found = conn.scalar(sa.select(notebooks.c.path).where(notebooks.c.id == notebook_id))
    if found is None:
        raise NotFound(
            f"no notebook {path[:200]!r} in the cellops store: run one of its cells first"
        )
    return Anchor("cell", notebook_id=notebook_id, cell_id=cell, notebook=found)


def execution_anchor(conn: sa.Connection, execution_id: int) -> Anchor:
    path = conn.scalar(
        sa.select(notebooks.c.path)
        .join(executions, executions.c.notebook_id == notebooks.c.id)
        .where(executions.c.id == execution_id)
    )
    if path is None:
        raise NotFound(f"no execution with id {execution_id}")
    return Anchor("execution", execution_id=execution_id, notebook=path)


def run_anchor(conn: sa.Connection, run_id: int) -> Anchor:
    path = conn.scalar(
        sa.select(notebooks.c.path)
        .join(runs, runs.c.notebook_id == notebooks.c.id)
        .where(runs.c.id == run_id)
    )
    if path is None:
        raise NotFound(f"no run with id {run_id}")
    return Anchor("run", run_id=run_id, notebook=path)


def model_version_anchor(conn: sa.Connection, name: str, number: int, *, lock: bool) -> Anchor:
    """A model version that exists now (a deleted one is a 404). With ``lock``, the model's
    row is share-locked until the transaction ends, so the version is not deleted under a
    comment being written (deleting takes that row's exclusive lock)."""
    check_model_name(name)
    q = sa.select(models.c.id).where(models.c.name == name)
    model_id = conn.scalar(q.with_for_update(read=True) if lock else q)
    if model_id is None:
        raise NotFound(f"no model named {name!r}")
    exists = conn.scalar(
        sa.select(model_versions.c.id).where(
            model_versions.c.model_id == model_id, model_versions.c.version == number
        )
    )
    if exists is None:
        raise NotFound(f"model {name!r} has no version {number}")
    return Anchor("model_version", model_id=model_id, model_version=number, model=name)


def anchor_for(
    conn: sa.Connection, target: CommentTarget, notebook_id: int | None, *, lock: bool = False
) -> Anchor:
    """The target a client sent, resolved (a 404 when it does not exist). A cell id the
    notebook never ran is accepted: people comment on a cell before running it."""
    if isinstance(target, CellTarget):
        return cell_anchor(conn, notebook_id, target.notebook, target.cell_id)
    if isinstance(target, ExecutionTarget):
        return execution_anchor(conn, target.id)
    if isinstance(target, RunTarget):
        return run_anchor(conn, target.id)
    return model_version_anchor(conn, target.model, target.version, lock=lock)


# -- writing --------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _checked_body(body: str) -> str:
    if not body.strip():
        raise ValueError("a comment needs some text: the body is empty or only whitespace")
    return body


def known_mentions(conn: sa.Connection, body: str) -> list[str]:
    """The known users ``body`` @mentions, in order (a 400 past MAX_MENTIONS)."""
    candidates = mention_candidates(body)[:MAX_CANDIDATES]
    if not candidates:
        return []
    known = set(conn.scalars(sa.select(users.c.name).where(users.c.name.in_(candidates))))
    found = [name for name in candidates if name in known]
    if len(found) > MAX_MENTIONS:
        raise ValueError(
            f"a comment may mention at most {MAX_MENTIONS} people; this one mentions {len(found)}"
        )
    return found


def _newest_code(conn: sa.Connection, notebook_id: int, cell_id: str) -> str | None:
    return conn.scalar(
        sa.select(executions.c.code_sha)
        .where(executions.c.notebook_id == notebook_id, executions.c.cell_id == cell_id)
        .order_by(executions.c.id.desc())
        .limit(1)
    )


def _locked(conn: sa.Connection, comment_id: int) -> Any:
    return conn.execute(
        sa.select(comments).where(comments.c.id == comment_id).with_for_update()
    ).first()


def _thread_root(conn: sa.Connection, anchor: Anchor, parent_id: int) -> Any:
    """The first comment of the thread ``parent_id`` is in, locked; it must be on
    ``anchor``."""
    parent = _locked(conn, parent_id)
    if parent is None:
        raise NotFound(f"no comment with id {parent_id} to reply to")
    if not anchor.same(parent):
        raise ValueError(
            f"comment {parent_id} is on another target: a reply must have its parent's target"
        )
    return parent if parent.parent_id is None else _locked(conn, parent.parent_id)


def create(
    engine: sa.Engine, target: CommentCreate, author: str, notebook_id: int | None = None
) -> Change:
    """Write a comment (or a reply) on a target; ``notebook_id`` is the notebook a cell
    target's path resolved to (Store.notebook_id, None when there is none)."""
    body = _checked_body(target.body)
    with write_transaction(engine) as conn:
        anchor = anchor_for(conn, target.target, notebook_id, lock=True)
        root = None if target.parent_id is None else _thread_root(conn, anchor, target.parent_id)
        mentions = known_mentions(conn, body)
        code_sha = None
        if anchor.kind == "cell" and anchor.notebook_id is not None and anchor.cell_id:
            # The code the commenter saw, when they say (a cell commenting on itself runs
            # before its execution is recorded); else the cell's newest recorded code.
            said = getattr(target.target, "code_sha", None)
            code_sha = said or _newest_code(conn, anchor.notebook_id, anchor.cell_id)
        comment_id = conn.execute(
            sa.insert(comments)
            .values(
                **anchor.columns(),
                parent_id=None if root is None else root.id,
                body=body,
                html=render(body, mentions),
                author=author,
                created_at=_now(),
                resolved=False,
                deleted=False,
                code_sha=code_sha,
                mentions=mentions,
            )
            .returning(comments.c.id)
        ).scalar_one()
        notify = [(name, "mention") for name in mentions]
        if root is not None and not root.deleted:
            notify.append((root.author, "reply"))
        _record(conn, "comment.created", author, anchor, comment_id, body, notify)
        comment = _read_one(conn, comment_id)
    return Change(comment, anchor, _notified(notify, author))


def update(
    engine: sa.Engine,
    comment_id: int,
    caller: TeamUser,
    body: str | None = None,
    resolved: bool | None = None,
) -> Change:
    """Edit a comment's body (its author only) and/or resolve or reopen its thread (anyone
    who may comment). Newly mentioned users are notified; the feed's quote follows."""
    if body is None and resolved is None:
        raise ValueError("send body (to edit) and/or resolved (to resolve or reopen)")
    with write_transaction(engine) as conn:
        row = _locked(conn, comment_id)
        if row is None:
            raise NotFound(f"no comment with id {comment_id}")
        anchor = _anchor_of(conn, row)
        notify: list[tuple[str, str]] = []
        if body is not None:
            notify = _edit(conn, row, anchor, caller, _checked_body(body))
        if resolved is not None:
            _resolve(conn, row, anchor, caller, resolved)
        comment = _read_one(conn, comment_id)
    return Change(comment, anchor, _notified(notify, caller.name))


def _edit(
    conn: sa.Connection, row: Any, anchor: Anchor, caller: TeamUser, body: str
) -> list[tuple[str, str]]:
    if row.deleted:
        raise NotFound(f"comment {row.id} was deleted")
    if row.author != caller.name:
        raise NotAuthor(f"only its author ({row.author}) may edit comment {row.id}")
    mentions = known_mentions(conn, body)
    conn.execute(
        sa.update(comments)
        .where(comments.c.id == row.id)
        .values(body=body, html=render(body, mentions), mentions=mentions, edited_at=_now())
    )
    # The feed quotes the body as it is now: an edit removes what it took out everywhere.
    _requote(conn, row.id, body)
    new = [(name, "mention") for name in mentions if name not in (row.mentions or [])]
    if new:
        _record(conn, "comment.edited", caller.name, anchor, row.id, body, new)
    return new


def _resolve(
    conn: sa.Connection, row: Any, anchor: Anchor, caller: TeamUser, resolved: bool
) -> None:
    if row.parent_id is not None:
        raise ValueError(
            f"comment {row.id} is a reply: resolve or reopen its thread, comment {row.parent_id}"
        )
    if bool(row.resolved) == resolved:
        return
    conn.execute(
        sa.update(comments)
        .where(comments.c.id == row.id)
        .values(resolved=resolved, resolved_by=caller.name if resolved else None)
    )
    kind = "comment.resolved" if resolved else "comment.reopened"
    _record(conn, kind, caller.name, anchor, row.id, None, ())


def delete(engine: sa.Engine, comment_id: int, caller: TeamUser) -> Change:
    """Delete a comment (its author, or an admin): a tombstone while it has replies."""
    with write_transaction(engine) as conn:
        row = _locked(conn, comment_id)
        if row is None:
            raise NotFound(f"no comment with id {comment_id}")
        if row.author != caller.name and not caller.has_role("admin"):
            raise NotAuthor(
                f"only its author ({row.author}) or an admin may delete comment {comment_id}"
            )
        anchor = _anchor_of(conn, row)
        if _has_replies(conn, row.id):
            if not row.deleted:
                conn.execute(
                    sa.update(comments)
                    .where(comments.c.id == row.id)
                    .values(body="", html="", mentions=[], deleted=True, edited_at=_now())
                )
                _forget(conn, row.id)
            return Change(_read_one(conn, row.id), anchor)
        _remove(conn, row.id)
        if row.parent_id is not None:
            parent = _locked(conn, row.parent_id)
            if parent is not None and parent.deleted and not _has_replies(conn, parent.id):
                _remove(conn, parent.id)  # the thread's tombstone, kept for no one now
    return Change(None, anchor)


def forget_model(conn: sa.Connection, model_id: int, version: int | None = None) -> None:
    """Remove the comments on a model's version (``version``) or on all its versions (None),
    in the registry's deleting transaction: comments.model_id references the model's row,
    so a model with comments could not be deleted otherwise."""
    q = sa.select(comments.c.id).where(comments.c.model_id == model_id)
    if version is not None:
        q = q.where(comments.c.model_version == version)
    ids = list(conn.scalars(q))
    if not ids:
        return
    conn.execute(sa.update(reviews).where(reviews.c.comment_id.in_(ids)).values(comment_id=None))
    conn.execute(sa.update(comments).where(comments.c.id.in_(ids)).values(parent_id=None))
    conn.execute(sa.delete(comments).where(comments.c.id.in_(ids)))
    conn.execute(
        sa.update(activity).where(activity.c.comment_id.in_(ids)).values(data={"deleted": True})
    )


def _has_replies(conn: sa.Connection, comment_id: int) -> bool:
    return (
        conn.scalar(sa.select(comments.c.id).where(comments.c.parent_id == comment_id).limit(1))
        is not None
    )


def _remove(conn: sa.Connection, comment_id: int) -> None:
    # A review's verdict may quote it (reviews.comment_id): the verdict stays, unquoted.
    conn.execute(
        sa.update(reviews).where(reviews.c.comment_id == comment_id).values(comment_id=None)
    )
    conn.execute(sa.delete(comments).where(comments.c.id == comment_id))
    _forget(conn, comment_id)


def _forget(conn: sa.Connection, comment_id: int) -> None:
    """The activity rows of a deleted comment keep its id only, never its words."""
    conn.execute(
        sa.update(activity)
        .where(activity.c.comment_id == comment_id)
        .values(data={"deleted": True})
    )


def _requote(conn: sa.Connection, comment_id: int, body: str) -> None:
    rows = conn.execute(
        sa.select(activity.c.id, activity.c.data).where(activity.c.comment_id == comment_id)
    ).all()
    for r in rows:
        data = dict(r.data or {})
        if "excerpt" in data:
            data["excerpt"] = _excerpt(body)
            conn.execute(sa.update(activity).where(activity.c.id == r.id).values(data=data))


def _excerpt(body: str) -> str:
    text = " ".join(body.split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def _record(
    conn: sa.Connection,
    kind: str,
    actor: str,
    anchor: Anchor,
    comment_id: int,
    body: str | None,
    notify: Any,
) -> None:
    data: dict[str, Any] = {"target": anchor.kind}
    if body is not None:
        data["excerpt"] = _excerpt(body)  # Markdown source: the feed shows it as text
    for key in ("cell_id", "execution_id", "run_id"):
        if getattr(anchor, key) is not None:
            data[key] = getattr(anchor, key)
    record_activity(
        conn,
        kind,
        actor,
        model=anchor.model,
        version=anchor.model_version,
        notebook=anchor.notebook,
        notebook_id=anchor.notebook_id,
        comment_id=comment_id,
        data=data,
        notify=notify,
    )


def _notified(notify: list[tuple[str, str]], actor: str) -> list[str]:
    return sorted({user for user, _ in notify if user != actor})


def _anchor_of(conn: sa.Connection, row: Any) -> Anchor:
    """A stored comment's target, with the notebook path or model name events need."""
    if row.target_kind == "cell":
        path = conn.scalar(sa.select(notebooks.c.path).where(notebooks.c.id == row.notebook_id))
        return Anchor("cell", notebook_id=row.notebook_id, cell_id=row.cell_id, notebook=path)
    if row.target_kind == "execution":
        return execution_anchor(conn, row.execution_id)
    if row.target_kind == "run":
        return run_anchor(conn, row.run_id)
    name = conn.scalar(sa.select(models.c.name).where(models.c.id == row.model_id))
    return Anchor(
        "model_version", model_id=row.model_id, model_version=row.model_version, model=name
    )


# -- reading --------------------------------------------------------------------------------


def _list_query() -> sa.Select[Any]:
    """Comments with what their wire form needs, including each cell comment's cell's
    newest code (one indexed lookup per row: ix_executions_cell), in one query."""
    newest = executions.alias("newest")
    current = (
        sa.select(newest.c.code_sha)
        .where(
            newest.c.notebook_id == comments.c.notebook_id, newest.c.cell_id == comments.c.cell_id
        )
        .order_by(newest.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.select(
        comments,
        notebooks.c.path.label("notebook_path"),
        notebooks.c.owner.label("notebook_owner"),
        models.c.name.label("model_name"),
        current.label("current_sha"),
    ).select_from(
        comments.outerjoin(notebooks, notebooks.c.id == comments.c.notebook_id).outerjoin(
            models, models.c.id == comments.c.model_id
        )
    )


def list_comments(
    engine: sa.Engine, anchor: Anchor, after: int | None = None, limit: int = MAX_LIST
) -> tuple[list[Comment], int | None]:
    """A target's comments oldest first (replies included), at most ``limit``, after the
    comment ``after``; answers them and the id to continue after (None: that was all)."""
    if not 1 <= limit <= MAX_LIST:
        raise ValueError(f"limit must be between 1 and {MAX_LIST}")
    q = _list_query().where(*anchor.where()).order_by(comments.c.id).limit(limit + 1)
    if after is not None:
        q = q.where(comments.c.id > after)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    items = [_comment(r) for r in rows[:limit]]
    return items, (items[-1].id if len(rows) > limit else None)


def _read_one(conn: sa.Connection, comment_id: int) -> Comment:
    return _comment(conn.execute(_list_query().where(comments.c.id == comment_id)).one())


def counts(engine: sa.Engine, notebook_id: int | None) -> list[CellCommentCount]:
    """Per cell of a notebook: its comments (tombstones not counted) and its unresolved
    threads, in one grouped query (ix_comments_cell)."""
    if notebook_id is None:
        return []
    c = comments.c
    q = (
        sa.select(
            c.cell_id,
            sa.func.sum(sa.case((c.deleted == sa.false(), 1), else_=0)).label("total"),
            sa.func.sum(
                sa.case((sa.and_(c.parent_id.is_(None), c.resolved == sa.false()), 1), else_=0)
            ).label("unresolved"),
        )
        .where(c.notebook_id == notebook_id, c.target_kind == "cell")
        .group_by(c.cell_id)
        .order_by(c.cell_id)
    )
    with engine.connect() as conn:
        return [
            CellCommentCount(cell_id=r.cell_id, total=int(r.total), unresolved=int(r.unresolved))
            for r in conn.execute(q)
        ]


def _target(r: Any) -> CommentTarget:
    if r.target_kind == "cell":
        return CellTarget(
            kind="cell",
            notebook=r.notebook_path,
            cell_id=r.cell_id,
            owner=r.notebook_owner,
            code_sha=r.code_sha,  # the code it was written on
        )
    if r.target_kind == "execution":
        return ExecutionTarget(kind="execution", id=r.execution_id)
    if r.target_kind == "run":
        return RunTarget(kind="run", id=r.run_id)
    return ModelVersionTarget(kind="model_version", model=r.model_name, version=r.model_version)


def _comment(r: Any) -> Comment:
    mentions = [] if r.deleted else list(r.mentions or [])
    body = "" if r.deleted else r.body
    return Comment(
        id=r.id,
        target=_target(r),
        body=body,
        # Rendered when written; rows written without it (none today) are rendered now.
        html=r.html if r.html is not None else render(body, mentions),
        author=r.author,
        created_at=r.created_at,
        edited_at=r.edited_at,
        parent_id=r.parent_id,
        resolved=bool(r.resolved),
        resolved_by=r.resolved_by,
        outdated=(
            r.target_kind == "cell"
            and not r.deleted
            and r.code_sha is not None
            and r.current_sha is not None
            and r.current_sha != r.code_sha
        ),
        deleted=bool(r.deleted),
        mentions=mentions,
    )
