"""The team backend's base handler: personal tokens identify, roles authorize.

It gives resource handlers the same interface Jupyter does (``current_user``,
``authorizer.is_authorized``), so the very same ``@authorized`` handlers run in
both modes.
"""

from __future__ import annotations

import logging
from typing import Any

from tornado import web
from tornado.ioloop import IOLoop

from ..api.base import ApiError, ApiHandler
from ..store import Store
from .users import TeamUser, user_for_token

# What each action on a resource needs; anything not listed needs "editor" to write.
REQUIRED_ROLE = {"read": "viewer", "write": "editor", "execute": "editor"}
RESOURCE_ROLES: dict[tuple[str, str], str] = {
    ("cellops.comments", "write"): "commenter",
    ("cellops.review_requests", "write"): "editor",
    ("cellops.reviews", "write"): "approver",
    ("cellops.policies", "write"): "admin",
    ("cellops.inbox", "write"): "viewer",
    ("cellops.deployments", "write"): "editor",
    ("cellops.webhooks", "read"): "admin",  # a webhook's URL and deliveries: admin only
    ("cellops.webhooks", "write"): "admin",
}


class RoleAuthorizer:
    def is_authorized(self, handler: Any, user: TeamUser, action: str, resource: str) -> bool:
        needed = RESOURCE_ROLES.get((resource, action)) or REQUIRED_ROLE.get(action, "admin")
        if user.has_role(needed):
            return True
        handler.needed_role = needed  # the refusal names it (TeamApiHandler.write_error)
        return False


class TokenAuthentication(web.RequestHandler):
    """Identifies the caller by personal token. It comes after ApiHandler in the method
    order, as Jupyter's authentication does, so ApiHandler's prepare (a StreamingHandler)
    runs it before the body is read and answers its refusals like any other."""

    store: Store  # ApiHandler's

    async def prepare(self) -> None:  # type: ignore[override]
        token = self._token()
        if not token:
            raise ApiError(
                401,
                "send your personal token: `Authorization: token <token>` (see `cellops users add`)",
            )
        user = await IOLoop.current().run_in_executor(
            None, user_for_token, self.store.engine, token
        )
        if user is None:
            raise ApiError(401, "unknown token; ask an admin for one with `cellops users add NAME`")
        self.current_user = user

    def _token(self) -> str:
        auth = self.request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            return value.strip()
        return ""


class TeamApiHandler(ApiHandler, TokenAuthentication):
    authorizer = RoleAuthorizer()
    log = logging.getLogger("cellops.serve")
    refusal_reason: str | None = None  # why a request was refused, for its access-log line
    needed_role: str | None = None  # set by RoleAuthorizer when the caller's role is too low

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # A role refusal says which role it takes (Jupyter's decorator says only "not
        # authorized"; a handler's own refusal keeps its words).
        exc = kwargs.get("exc_info", (None, None, None))[1]
        user = self.team_user
        if status_code == 403 and self.needed_role and user and isinstance(exc, web.HTTPError):
            said = exc.message if isinstance(exc, ApiError) else "not authorized"
            refusal = ApiError(
                403,
                f"{said}: this needs the {self.needed_role} role; {user.name} is a {user.role}",
                {"needed": self.needed_role, "role": user.role},
            )
            kwargs["exc_info"] = (ApiError, refusal, None)
        super().write_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # An HTTPError (a refusal) is logged once, by the access log (serve.log_request),
        # with its reason; tornado would log it a second time here. Crashes keep their
        # traceback.
        if isinstance(value, web.HTTPError):
            message = value.log_message
            self.refusal_reason = message % value.args if message and value.args else message
            return
        super().log_exception(typ, value, tb)

    @property
    def team_user(self) -> TeamUser | None:
        return self.current_user
