"""Activity events: "records of these notebooks were stored" or "these models changed",
pushed to waiting clients.

The sidebar long-polls ``GET /events?after=<seq>``: the request is answered as soon as
an event newer than ``seq`` exists, or empty after a timeout. A long poll works the
same in every mode (embedded, team backend, and a team client, whose one relay follows
the backend for all its local polls: team/relay.py) through the one route table and its
authentication, which a websocket would not.

Events live in memory only: they say *that* something changed, never *what*, so a
client that missed some (server restarted, fell behind) is told to ``reset`` and
reloads from the store, where the state is.

Numbering: alone (embedded, SQLite) a hub numbers its events itself. Replicas of the team
backend on one PostgreSQL share one numbering instead: a hub with a ``sink``
(team/notify.py) hands every event to it, and PostgreSQL numbers it and brings it back to
every replica's hub through ``deliver``, so a client's ``after`` means the same on each.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Literal

from .schemas import ActivityEvent, EventsReply

EventType = Literal[
    "executions", "models", "settings", "comments", "reviews", "activity", "deployments", "reset"
]
KEEP = 1000  # events remembered for clients that come back late
# How long a poll whose ``after`` is ahead of this replica waits for it to catch up: the
# client saw that event on another replica a moment before this one was told of it.
CATCH_UP = 2.0


class ActivityHub:
    """Numbered events and the clients waiting for them; used on the event loop only."""

    def __init__(self) -> None:
        self.last = 0
        # Every event numbered above this one is known (while kept): a client whose cursor
        # is older missed some and must reset.
        self.known_from = 0
        self._events: deque[ActivityEvent] = deque()
        self._changed = asyncio.Event()
        # Set by team/notify.py on a team backend on PostgreSQL: events are numbered there
        # and come back through ``deliver``.
        self.sink: Callable[[ActivityEvent], None] | None = None

    def publish(self, notebooks: Iterable[str]) -> None:
        paths = sorted({p for p in notebooks if p})
        if not paths:
            return  # e.g. a server start's recovery: clients reload on their own then
        self._emit("executions", notebooks=paths)

    def publish_models(self, names: Iterable[str]) -> None:
        """Models were registered or changed (versions, aliases): they are team-wide, so
        the event names the models, not a notebook."""
        models = sorted({n for n in names if n})
        if models:
            self._emit("models", models=models)

    def publish_comments(self, notebooks: Iterable[str] = (), models: Iterable[str] = ()) -> None:
        """Comments on these notebooks (paths) or models changed: open threads refetch."""
        self._emit("comments", notebooks=sorted(set(notebooks)), models=sorted(set(models)))

    def publish_reviews(self, models: Iterable[str]) -> None:
        """Review requests or verdicts of these models changed."""
        self._emit("reviews", models=sorted(set(models)))

    def publish_activity(self, users: Iterable[str] = ()) -> None:
        """The team's feed grew; ``users`` have something new in their inbox (a toast)."""
        self._emit("activity", users=sorted(set(users)))

    def publish_deployments(self, names: Iterable[str]) -> None:
        """These deployments changed (state, traffic, events, drift verdict): open
        Deployments tabs refetch them."""
        deployments = sorted({n for n in names if n})
        if deployments:
            self._emit("deployments", deployments=deployments)

    def publish_settings(self) -> None:
        """The tracking settings changed: open pages reload them (GET /settings)."""
        self._emit("settings")

    def publish_reset(self) -> None:
        """Tell every client to reload everything: events may have been lost (e.g. a team
        client's relay was cut off from the backend for a while)."""
        self._emit("reset")

    def relay(self, events: Iterable[ActivityEvent]) -> None:
        """Publish another hub's events (the team backend's) under this hub's numbers."""
        for event in events:
            self._emit(
                event.type,
                event.notebooks,
                event.models,
                event.at,
                event.users,
                event.deployments,
            )

    def _emit(
        self,
        event_type: EventType,
        notebooks: list[str] | None = None,
        models: list[str] | None = None,
        at: datetime | None = None,
        users: list[str] | None = None,
        deployments: list[str] | None = None,
    ) -> None:
        event = ActivityEvent(
            seq=0,  # numbered below, or by PostgreSQL (sink)
            type=event_type,
            notebooks=notebooks or [],
            models=models or [],
            users=users or [],
            deployments=deployments or [],
            at=at or datetime.now(timezone.utc),
        )
        if self.sink is not None:
            self.sink(event)
            return
        self._append(event.model_copy(update={"seq": self.last + 1}))

    def deliver(self, event: ActivityEvent) -> None:
        """An event numbered elsewhere (PostgreSQL): kept in order, a repeat ignored."""
        if event.seq > self.last:
            self._append(event)

    def resume_at(self, seq: int) -> None:
        """Every event after ``seq`` will be delivered from now on (a listener (re)connected).
        What came between this hub's last event and ``seq`` was missed: clients whose cursor
        is older are told to reset."""
        if seq > self.last:
            self.known_from = self.last = seq
            self._wake()

    def _append(self, event: ActivityEvent) -> None:
        self._events.append(event)
        self.last = event.seq
        while len(self._events) > KEEP:
            self.known_from = self._events.popleft().seq
        self._wake()

    def _wake(self) -> None:
        # Wake every waiter; each then looks for what is newer than its own cursor.
        self._changed.set()
        self._changed = asyncio.Event()

    def since(self, after: int) -> list[ActivityEvent]:
        if after > self.last or after < self.known_from:
            return [self._reset()]
        return [e for e in self._events if e.seq > after]

    async def wait(self, after: int | None, timeout: float) -> EventsReply:
        """Events after ``after``, waiting up to ``timeout`` seconds for the first one."""
        if after is None:
            return EventsReply(events=[], last=self.last)
        if self.sink is not None and after > self.last:
            await self._catch_up(after, min(timeout, CATCH_UP))
        events = self.since(after)
        if not events:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
            events = self.since(after)
        return EventsReply(events=events, last=self.last)

    async def _catch_up(self, seq: int, timeout: float) -> None:
        """Wait until this replica has heard of event ``seq`` (or ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        while self.last < seq and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def _reset(self) -> ActivityEvent:
        return ActivityEvent(
            seq=self.last, type="reset", notebooks=[], at=datetime.now(timezone.utc)
        )
