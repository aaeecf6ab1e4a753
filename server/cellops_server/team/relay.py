"""A team client's live updates: one long poll to the backend, fanned out locally.

Every open sidebar (every browser tab) holds a long poll on ``GET /events``. Forwarded one
by one, each held a connection of the forwarding client, and a hundred of them starved
every other forwarded request. Instead this server follows the backend with ONE long poll
and re-publishes its events on the local ActivityHub, where local polls wait: the same
replies, numbered by this server. Started by the first local poll, stopped with the server.
When the backend goes away and comes back, what happened meanwhile is unknown, so local
clients get a ``reset`` event (reload everything).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pydantic import ValidationError

from ..activity import ActivityHub
from ..api.base import ApiError
from ..api.events import MAX_WAIT
from ..schemas import EventsReply
from ..tasks import cancel_and_wait
from .forward import BackendClient

log = logging.getLogger("cellops.relay")

RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)  # seconds before each new attempt to reach the backend
FIRST_SYNC_WAIT = 5.0  # seconds a first local poll waits for the relay to reach the backend


class EventRelay:
    def __init__(
        self,
        backend: BackendClient,
        hub: ActivityHub,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self.backend = backend
        self.hub = hub
        self.retry_delays = retry_delays
        self._problem: ApiError | None = None
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()

    async def follow(self) -> None:
        """Follow the backend from now on (started once), and raise why it cannot be reached
        if it cannot. The first call waits for the first answer, so no event that comes after
        a local client learned ``last`` is missed."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), FIRST_SYNC_WAIT)
        if self._problem is not None:
            problem = self._problem  # a fresh exception per request: they are raised concurrently
            raise ApiError(problem.status_code, problem.message, problem.detail)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _follow(self) -> None:
        cursor: int | None = None  # the backend's last event relayed; None: not in step with it
        failures = 0
        while True:
            try:
                reply = await self._poll(cursor)
            except Exception as exc:  # whatever it is, keep following: sidebars depend on it
                self._problem, cursor = _as_api_error(exc), None
                self._first_attempt.set()
                await asyncio.sleep(self.retry_delays[min(failures, len(self.retry_delays) - 1)])
                failures += 1
                continue
            if cursor is not None:
                self.hub.relay(reply.events)
            elif failures:
                self.hub.publish_reset()  # back after a gap: events may have been missed
            self._problem, failures, cursor = None, 0, reply.last
            self._first_attempt.set()

    async def _poll(self, after: int | None) -> EventsReply:
        """The backend's events after ``after`` (waiting for one), or just its ``last``."""
        if after is None:
            body = await self.backend.get_json("events")
        else:
            path = f"events?after={after}&timeout={MAX_WAIT}"
            body = await self.backend.get_json(path, timeout=MAX_WAIT + 10)
        try:
            return EventsReply.model_validate(body)
        except ValidationError:
            raise ApiError(502, "the team backend's /events answered something else") from None


def _as_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    log.exception("cellops: the events relay failed")
    return ApiError(502, f"following the team backend's events failed: {type(exc).__name__}")
