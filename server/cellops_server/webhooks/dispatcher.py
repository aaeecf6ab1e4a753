"""The loop that delivers webhooks. It runs in a process of its own
(``python -m cellops_server.webhooks``, started and kept alive by webhooks/process.py from
the process that owns the store: the Jupyter server extension in embedded mode,
`cellops serve` in team mode), so signing, sending and recording deliveries never compete
with the API's requests for the GIL: an action that causes events is not slowed by them.

The action only wrote its activity row; everything here happens later: store work on a
small thread pool, network I/O as coroutines (send.py), each attempt under its own deadline.

It takes a look when ``wake`` is called (the parent passes on every event its activity hub
hears of: its own requests, the writer process, other replicas), else every ``poll``
seconds (200 ms while webhooks exist), and never more often than every ``GAP`` (50 ms;
100 ms on SQLite). A look (outbox.cycle) records the outcomes of the attempts made since
the last, queues deliveries from new activity rows, and sends those due: a burst of events
costs the store one write transaction per look, not one per delivery (on SQLite the team's
own writes wait for each).

Replicas of the team backend on one PostgreSQL: only the one holding an advisory lock
(monitoring/watch.py Leadership, with a key of its own) delivers; when it dies its
connection drops the lock and another takes over, and the leases of what it had in flight
run out, so those are sent again (at least once). On SQLite one process delivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa

from ..monitoring.watch import Leadership
from ..tasks import cancel_and_wait
from . import outbox
from .outbox import Due, Settings
from .send import Outcome, post
from .signing import headers

log = logging.getLogger("cellops.webhooks")

LOCK_KEY = 0x63656C6C6F7768  # "cellowh": held by the one delivering replica (PostgreSQL)
POLL = 0.2  # seconds between looks at the outbox while webhooks exist, if nothing wakes it
GAP = 0.05  # seconds at least between two looks: a burst of events shares them
# On SQLite a look's write transaction holds the one write lock the team's requests need:
# look half as often there (deliveries still leave well within 100 ms of their event).
GAP_SQLITE = 0.1
IDLE = 0.5  # ... while none do
CONCURRENCY = 64  # attempts in flight at once


class WebhookDispatcher:
    """See the module's docstring. ``start``, ``stop`` and ``wake`` run on the event loop."""

    def __init__(
        self,
        engine: sa.Engine,
        settings: Settings | None = None,
        poll: float = POLL,
        on_noticed: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        # Called when a look added a ``webhook.failed`` row: the parent's feed shows it.
        self.on_noticed = on_noticed
        self.settings = settings or Settings()
        self.poll = poll
        self.gap = GAP_SQLITE if engine.dialect.name == "sqlite" else GAP
        self.leadership: Leadership | None = None
        if engine.dialect.name == "postgresql":
            self.leadership = Leadership(engine, LOCK_KEY)
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="cellops-webhooks")
        self._busy: set[int] = set()
        self._sends: set[asyncio.Task[None]] = set()
        self._done: list[tuple[Due, Outcome]] = []  # attempts made, not yet recorded
        self._wake = asyncio.Event()
        self._task: asyncio.Future[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def wake(self) -> None:
        """Something was queued or changed in this process: look now."""
        self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        for send in list(self._sends):  # their leases run out: sent again after a restart
            send.cancel()
        await asyncio.gather(*self._sends, return_exceptions=True)
        if self._done:  # what was sent is logged, not sent again
            with contextlib.suppress(Exception):
                await self._in_thread(outbox.record, self.engine, self._done, self.settings)
        if self.leadership is not None:
            await self._in_thread(self.leadership.release)
        self._pool.shutdown(wait=False)

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            busy = await self._tick()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll if busy else IDLE)
            self._wake.clear()
            await asyncio.sleep(max(0.0, started + self.gap - time.monotonic()))

    async def _tick(self) -> bool:
        """One look at the outbox; False when there is nothing to deliver to."""
        done, self._done = self._done, []
        try:
            if self.leadership is not None and not await self._in_thread(self.leadership.held):
                for due, _ in done:  # lost the lead mid-send: the leader sends it again
                    self._busy.discard(due.id)
                return False  # another replica delivers
            room = CONCURRENCY - len(self._busy) + len(done)
            look = await self._in_thread(
                outbox.cycle, self.engine, self.settings, room, set(self._busy), done
            )
        except Exception as exc:  # the store is down: try again on the next poll
            self._done = done + self._done
            log.warning("cellops: cannot deliver webhooks now: %s", exc)
            return True
        for due, _ in done:
            self._busy.discard(due.id)
        if look.noticed and self.on_noticed is not None:
            self.on_noticed()  # the feed shows webhook.failed
        for d in look.due or []:
            self._busy.add(d.id)
            task = asyncio.ensure_future(self._deliver(d))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
        return look.due is not None or bool(self._busy)

    async def _deliver(self, due: Due) -> None:
        """One attempt; its outcome is recorded by the next look (one write for many)."""
        stamp = int(time.time())
        sent = headers(due.secret, due.event, due.uuid, stamp, due.body)
        s = self.settings
        outcome = await post(
            due.url, due.body, sent, allow_private=s.allow_private, timeout=s.timeout
        )
        self._done.append((due, outcome))

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
