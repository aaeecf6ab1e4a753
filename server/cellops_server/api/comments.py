"""Comments: threads on cells, executions, runs and model versions (review/comments.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from jupyter_server.auth.decorator import authorized

from ..activity import ActivityHub
from ..bounds import MAX_INT
from ..review import comments as domain
from ..schemas import (
    CellTarget,
    Comment,
    CommentCounts,
    CommentCreate,
    CommentList,
    CommentUpdate,
)
from ..store import NotebookRef
from .base import ApiError, ApiHandler
from .openapi import NOTEBOOK_IDENTITY, Param, operation, query

INT = {"type": "integer", "minimum": 1, "maximum": MAX_INT}
COMMENT_FILTERS = [
    Param("notebook", "Comments on this notebook's cells (its path, as in GET /notebooks)."),
    Param("cell", "With notebook: only this cell's comments."),
    Param("execution", "Comments on this execution id.", schema=INT),
    Param("run", "Comments on this run id.", schema=INT),
    Param("model", "With version: comments on this model version."),
    Param("version", "With model: the version number.", schema=INT),
    Param("after", "The next page: the `next` of the previous answer.", schema=INT),
    Param(
        "limit",
        f"At most this many comments (default and maximum {domain.MAX_LIST}).",
        schema={"type": "integer", "minimum": 1, "maximum": domain.MAX_LIST},
    ),
    *NOTEBOOK_IDENTITY,
]
TARGET_FILTERS = ("notebook", "execution", "run", "model")
R = TypeVar("R")


class CommentsApi(ApiHandler):
    """What the comments endpoints share: resolving a notebook, telling open pages."""

    async def notebook_id(self, ref: NotebookRef) -> int | None:
        return await self.call(self.store.notebook_id, ref)

    async def cell_notebook(self, target: CellTarget) -> int | None:
        """The notebook a cell target means. A team client forwards ``?notebook=P`` with
        what it knows of the member's file (team/forward.py); else the body's path (and
        ``owner``) is looked up as any ``?notebook=`` is."""
        ref = await self.notebook_ref(required=False)
        if ref is not None and ref.path.strip("/") != target.notebook.strip("/"):
            raise ApiError(
                400,
                "?notebook= names another notebook than the target: send the target's path",
                {"query": ref.path[:200], "target": target.notebook[:200]},
            )
        if ref is None:
            team_user = getattr(self, "team_user", None)
            ref = NotebookRef(target.notebook, caller=team_user.name if team_user else None)
        if target.owner:
            ref = dataclasses.replace(ref, owner=target.owner, repo=None, repo_path=None)
        return await self.notebook_id(ref)

    def changed(self, change: domain.Change) -> None:
        """Wake the pages waiting on /events: open threads refetch, inboxes toast."""
        hub: ActivityHub | None = self.settings.get("cellops_activity")
        if hub is None:
            return
        anchor = change.anchor
        if anchor.model is not None:
            hub.publish_comments(models=[anchor.model])
        elif anchor.notebook is not None:
            hub.publish_comments(notebooks=[anchor.notebook])
        hub.publish_activity(users=change.notified)


class CommentsHandler(CommentsApi):
    auth_resource = "cellops.comments"  # writing needs the commenter role (team/auth.py)
    max_body = 64 * 1024  # a 10,000-character body, JSON-escaped, with room to spare

    @operation(
        "Comments on one target, oldest first, replies included (with parent_id): "
        "?notebook=P[&cell=ID], ?execution=N, ?run=N or ?model=M&version=V",
        CommentList,
        params=COMMENT_FILTERS,
    )
    @authorized
    async def get(self) -> None:
        anchor = await self.filter_anchor()
        after = self.query_int("after", None, 1, MAX_INT)
        limit = self.query_int("limit", domain.MAX_LIST, 1, domain.MAX_LIST)
        if anchor is None:  # a notebook nothing was recorded for: no comments yet
            self.write_json(CommentList(items=[]))
            return
        items, nxt = await self.call(domain.list_comments, self.store.engine, anchor, after, limit)
        self.write_json(CommentList(items=items, next=nxt))

    async def filter_anchor(self) -> domain.Anchor | None:
        given = [name for name in TARGET_FILTERS if self.get_query_argument(name, None)]
        if len(given) != 1:
            raise ApiError(
                400,
                "name exactly one target: ?notebook=P[&cell=ID], ?execution=N, ?run=N or "
                "?model=M&version=V",
                {"given": given},
            )
        if self.get_query_argument("cell", None) and given != ["notebook"]:
            raise ApiError(400, "cell is only meaningful with notebook: ?notebook=P&cell=ID")
        if (given == ["model"]) != bool(self.get_query_argument("version", None)):
            raise ApiError(400, "a model version is named by both: ?model=M&version=V")
        engine = self.store.engine
        if given == ["notebook"]:
            ref = await self.notebook_ref()
            assert ref is not None  # required
            nb = await self.notebook_id(ref)
            if nb is None:
                return None
            cell = self.get_query_argument("cell", None)
            return await self.call(_in_conn, engine, domain.cell_anchor, nb, ref.path, cell)
        if given == ["execution"]:
            n = self.query_int("execution", None, 1, MAX_INT)
            return await self.call(_in_conn, engine, domain.execution_anchor, n)
        if given == ["run"]:
            n = self.query_int("run", None, 1, MAX_INT)
            return await self.call(_in_conn, engine, domain.run_anchor, n)
        name = self.get_query_argument("model", "")
        number = self.query_int("version", None, 1, MAX_INT)
        return await self.call(
            _in_conn, engine, domain.model_version_anchor, name, number, lock=False
        )

    @operation(
        "Comment on a cell, an execution, a run or a model version, or reply to a comment "
        "(a reply to a reply joins its thread); @name mentions reach that user's inbox. "
        "For a cell, send ?notebook=P too (the target's path)",
        Comment,
        body=CommentCreate,
        status=201,
        params=[
            Param("notebook", "With a cell target: its notebook path again (team clients)."),
            *NOTEBOOK_IDENTITY,
        ],
    )
    @authorized
    async def post(self) -> None:
        body = await self.body_as(CommentCreate)
        notebook_id = None
        if isinstance(body.target, CellTarget):
            notebook_id = await self.cell_notebook(body.target)
        change = await self.call(
            domain.create, self.store.engine, body, self.caller().name, notebook_id
        )
        self.changed(change)
        self.write_json(change.comment, status=201)


class CommentCountsHandler(CommentsApi):
    auth_resource = "cellops.comments"

    @operation(
        "Comments per cell of a notebook, with how many threads are unresolved (the cell "
        "badges); deleted comments are not counted",
        CommentCounts,
        params=[query.notebook, *NOTEBOOK_IDENTITY],
    )
    @authorized
    async def get(self) -> None:
        ref = await self.notebook_ref()
        assert ref is not None  # required
        nb = await self.notebook_id(ref)
        items = await self.call(domain.counts, self.store.engine, nb)
        self.write_json(CommentCounts(items=items))


class CommentHandler(CommentsApi):
    auth_resource = "cellops.comments"
    max_body = 64 * 1024

    @operation(
        "Edit your comment's body, or resolve / reopen its thread (send it to the thread's "
        "first comment); newly @mentioned users are notified",
        Comment,
        body=CommentUpdate,
    )
    @authorized
    async def patch(self, comment_id: str) -> None:
        body = await self.body_as(CommentUpdate)
        change = await self.call(
            domain.update,
            self.store.engine,
            self.id_arg(comment_id, "comment id"),
            self.caller(),
            body.body,
            body.resolved,
        )
        self.changed(change)
        self.write_json(change.comment)

    @operation(
        "Delete your comment (an admin may delete any); one with replies leaves a tombstone",
        None,
        status=204,
    )
    @authorized
    async def delete(self, comment_id: str) -> None:
        change = await self.call(
            domain.delete, self.store.engine, self.id_arg(comment_id, "comment id"), self.caller()
        )
        self.changed(change)
        self.set_status(204)
        self.finish()


def _in_conn(engine: sa.Engine, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """``fn(conn, *args)`` on a connection of its own (run by ``call``, off the loop)."""
    with engine.connect() as conn:
        return fn(conn, *args, **kwargs)
