from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from .. import __version__
from ..schemas import Status
from .base import ApiError, ApiHandler
from .openapi import operation, query


class StatusHandler(ApiHandler):
    @operation(
        "Is tracking on, and how many records wait in the spool",
        Status,
        params=[query.status_notebook],
    )
    @authorized
    async def get(self) -> None:
        status = self.settings.get("cellops_status")
        if status is None:
            self.write_json(
                Status(version=__version__, mode="team-backend", tracking=False, spool_pending=0)
            )
            return
        self.write_json(status(self.get_query_argument("notebook", None)))


class NotFoundHandler(ApiHandler):
    """Any unknown path under the API: a JSON 404 (after authentication, like every route)."""

    @authorized
    async def get(self, *_: str) -> None:
        raise_not_found(self.request.path)

    post = put = patch = delete = get


def raise_not_found(path: str) -> None:
    raise ApiError(404, f"no such endpoint: {path}; see /cellops/api/v1/openapi.json")
