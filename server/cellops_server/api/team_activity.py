"""Who am I, the team's members, the activity feed and each user's inbox."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..schemas import ActivityItem, InboxPage, InboxRead, Me, Page, UserList
from .base import ApiError, ApiHandler
from .openapi import Param, operation, query

MINE = Param(
    "mine",
    "true: only what you did or what concerns you (your versions, your mentions).",
    schema={"type": "string", "enum": ["true", "false", "1", "0"]},
)


class MeHandler(ApiHandler):
    @operation("The caller's name and role (embedded mode: the Jupyter user, admin)", Me)
    @authorized
    async def get(self) -> None:
        raise ApiError(501, "not built yet")


class UsersHandler(ApiHandler):
    @operation("The team's members and roles (mentions, reviewers)", UserList)
    @authorized
    async def get(self) -> None:
        raise ApiError(501, "not built yet")


class ActivityHandler(ApiHandler):
    @operation(
        "The team's activity, newest first: runs started, versions registered, aliases "
        "moved (with overrides), comments, reviews, policy changes",
        Page[ActivityItem],
        params=[query.cursor, query.limit, MINE],
    )
    @authorized
    async def get(self) -> None:
        raise ApiError(501, "not built yet")


class InboxHandler(ApiHandler):
    @operation(
        "The caller's inbox, newest first: mentions, review requests, verdicts on their "
        "versions; kept until read",
        InboxPage,
        params=[query.limit],
    )
    @authorized
    async def get(self) -> None:
        raise ApiError(501, "not built yet")


class InboxReadHandler(ApiHandler):
    auth_resource = "cellops.inbox"  # any member marks their own inbox read

    @operation("Mark inbox items read (only the caller's own)", InboxPage, body=InboxRead)
    @authorized
    async def post(self) -> None:
        raise ApiError(501, "not built yet")
