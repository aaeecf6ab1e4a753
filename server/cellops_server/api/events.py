from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..activity import ActivityHub
from ..schemas import EventsReply
from .base import ApiError, ApiHandler
from .openapi import operation, query

MAX_WAIT = 25  # below the forwarding client's 30 s request timeout and common proxy limits


class EventsHandler(ApiHandler):
    @operation(
        "Long poll for activity: answers when records newer than ?after= are stored",
        EventsReply,
        params=[query.after, query.timeout],
    )
    @authorized
    async def get(self) -> None:
        hub: ActivityHub | None = self.settings.get("cellops_activity")
        if hub is None:
            raise ApiError(503, "activity events are not available on this server")
        after = self.query_int("after", None, 0, 2**62)
        timeout = self.query_int("timeout", MAX_WAIT, 0, MAX_WAIT)
        assert timeout is not None
        self.write_json(await hub.wait(after, timeout))
