"""Who am I, the team's members, the activity feed and each user's inbox."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..activity import ActivityHub
from ..review.feed import activity_page, inbox_page, mark_read
from ..schemas import ActivityItem, InboxPage, InboxRead, Me, Page, UserItem, UserList
from ..team.users import list_users
from .base import ApiError, ApiHandler
from .openapi import Param, operation, query

MINE = Param(
    "mine",
    "true: only what you did or what concerns you (your versions, your mentions).",
    schema={"type": "string", "enum": ["true", "false", "1", "0"]},
)


INBOX_LIMIT = 50


class MeHandler(ApiHandler):
    @operation("The caller's name and role (embedded mode: the Jupyter user, admin)", Me)
    @authorized
    async def get(self) -> None:
        me = self.caller()
        self.write_json(Me(name=me.name, role=me.role))  # type: ignore[arg-type]


class UsersHandler(ApiHandler):
    @operation("The team's members and roles (mentions, reviewers)", UserList)
    @authorized
    async def get(self) -> None:
        if getattr(self, "team_user", None) is None:  # embedded: one user, the admin
            members = [self.caller()]
        else:
            members = await self.call(list_users, self.store.engine)
        items = [UserItem(name=m.name, role=m.role) for m in members]  # type: ignore[arg-type]
        self.write_json(UserList(items=items))


class ActivityHandler(ApiHandler):
    @operation(
        "The team's activity, newest first: runs started, versions registered, aliases "
        "moved (with overrides), comments, reviews, policy changes",
        Page[ActivityItem],
        params=[query.cursor, query.limit, MINE],
    )
    @authorized
    async def get(self) -> None:
        mine = self.get_query_argument("mine", "false").lower()
        if mine not in ("true", "false", "1", "0"):
            raise ApiError(400, f"mine must be true or false, not {mine[:30]!r}")
        page = await self.call(
            activity_page,
            self.store.engine,
            self.caller().name,
            mine=mine in ("true", "1"),
            cursor=self.get_query_argument("cursor", None),
            limit=self.query_limit(),
        )
        self.write_json(page)


class InboxHandler(ApiHandler):
    @operation(
        "The caller's inbox, newest first: mentions, review requests, verdicts on their "
        "versions; kept until read",
        InboxPage,
        params=[query.limit],
    )
    @authorized
    async def get(self) -> None:
        limit = self.query_limit(INBOX_LIMIT)
        self.write_json(await self.call(inbox_page, self.store.engine, self.caller().name, limit))


class InboxReadHandler(ApiHandler):
    auth_resource = "cellops.inbox"  # any member marks their own inbox read

    @operation(
        "Mark inbox items read (only the caller's own; other ids are ignored); answers the "
        "inbox as it is now",
        InboxPage,
        body=InboxRead,
    )
    @authorized
    async def post(self) -> None:
        body = await self.body_as(InboxRead)
        me = self.caller().name
        if await self.call(mark_read, self.store.engine, me, body.ids):
            hub: ActivityHub | None = self.settings.get("cellops_activity")
            if hub is not None:  # the caller's other tabs update their unread count
                hub.publish_activity(users=[me])
        self.write_json(await self.call(inbox_page, self.store.engine, me, INBOX_LIMIT))
