"""Comments: threads on cells, executions, runs and model versions (review/comments.py)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..schemas import Comment, CommentCounts, CommentCreate, CommentList, CommentUpdate
from .base import ApiError, ApiHandler
from .openapi import NOTEBOOK_IDENTITY, Param, operation, query

COMMENT_FILTERS = [
    query.notebook_optional,
    Param("cell", "With notebook: only this cell's comments."),
    Param("execution", "Comments on this execution id.", schema={"type": "integer"}),
    Param("run", "Comments on this run id.", schema={"type": "integer"}),
    Param("model", "With version: comments on this model version."),
    Param("version", "With model: the version number.", schema={"type": "integer"}),
    *NOTEBOOK_IDENTITY,
]


class CommentsHandler(ApiHandler):
    auth_resource = "cellops.comments"  # writing needs the commenter role (team/auth.py)

    @operation(
        "Comments on one target, oldest first, replies included (with parent_id): "
        "?notebook=P[&cell=ID], ?execution=N, ?run=N or ?model=M&version=V",
        CommentList,
        params=COMMENT_FILTERS,
    )
    @authorized
    async def get(self) -> None:
        raise ApiError(501, "not built yet")

    @operation(
        "Comment on a cell, an execution, a run or a model version, or reply to a comment; "
        "@name mentions reach that user's inbox",
        Comment,
        body=CommentCreate,
        status=201,
        params=NOTEBOOK_IDENTITY,
    )
    @authorized
    async def post(self) -> None:
        raise ApiError(501, "not built yet")


class CommentCountsHandler(ApiHandler):
    auth_resource = "cellops.comments"

    @operation(
        "Comments per cell of a notebook, with how many are unresolved (the cell badges)",
        CommentCounts,
        params=[query.notebook, *NOTEBOOK_IDENTITY],
    )
    @authorized
    async def get(self) -> None:
        raise ApiError(501, "not built yet")


class CommentHandler(ApiHandler):
    auth_resource = "cellops.comments"

    @operation(
        "Edit your comment's body, or resolve / reopen its thread",
        Comment,
        body=CommentUpdate,
    )
    @authorized
    async def patch(self, comment_id: str) -> None:
        raise ApiError(501, "not built yet")

    @operation(
        "Delete your comment (an admin may delete any); one with replies leaves a tombstone",
        None,
        status=204,
    )
    @authorized
    async def delete(self, comment_id: str) -> None:
        raise ApiError(501, "not built yet")
