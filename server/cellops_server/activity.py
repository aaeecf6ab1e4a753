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
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Literal

from .schemas import ActivityEvent, EventsReply

EventType = Literal["executions", "models", "settings", "comments", "reviews", "activity", "reset"]
KEEP = 1000  # events remembered for clients that come back late


class ActivityHub:
    """Numbered events and the clients waiting for them; used on the event loop only."""

    def __init__(self) -> None:
        self.last = 0
        self._events: deque[ActivityEvent] = deque(maxlen=KEEP)
        self._changed = asyncio.Event()

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
            self._emit(event.type, event.notebooks, event.models, event.at, event.users)

    def _emit(
        self,
        event_type: EventType,
        notebooks: list[str] | None = None,
        models: list[str] | None = None,
        at: datetime | None = None,
        users: list[str] | None = None,
    ) -> None:
        self.last += 1
        event = ActivityEvent(
            seq=self.last,
            type=event_type,
            notebooks=notebooks or [],
            models=models or [],
            users=users or [],
            at=at or datetime.now(timezone.utc),
        )
        self._events.append(event)
        # Wake every waiter; each then looks for what is newer than its own cursor.
        self._changed.set()
        self._changed = asyncio.Event()

    def since(self, after: int) -> list[ActivityEvent]:
        if after > self.last or (self._events and after < self._events[0].seq - 1):
            return [self._reset()]
        return [e for e in self._events if e.seq > after]

    async def wait(self, after: int | None, timeout: float) -> EventsReply:
        """Events after ``after``, waiting up to ``timeout`` seconds for the first one."""
        if after is None:
            return EventsReply(events=[], last=self.last)
        events = self.since(after)
        if not events:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
            events = self.since(after)
        return EventsReply(events=events, last=self.last)

    def _reset(self) -> ActivityEvent:
        return ActivityEvent(
            seq=self.last, type="reset", notebooks=[], at=datetime.now(timezone.utc)
        )
