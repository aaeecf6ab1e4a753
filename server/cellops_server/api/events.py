from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_server.auth.decorator import authorized

from ..activity import ActivityHub
from ..schemas import EventsReply
from .base import ApiError, ApiHandler
from .openapi import operation, query

if TYPE_CHECKING:
    from ..team.relay import EventRelay

MAX_WAIT = 25  # below common proxy limits (and the team client's relay waits this long upstream)


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
        relay: EventRelay | None = self.settings.get("cellops_relay")
        if relay is not None:  # a team client: the hub holds the backend's events
            await relay.follow()
        self.write_json(await hub.wait(after, timeout))
