"""Drift checked on its own, and deployment changes the serving router writes, told to the
sidebars.

Runs in the process that owns the store and the activity hub (the Jupyter server extension
in embedded mode, `cellops serve` in team mode), while deployments exist: started at
start-up and by every deploy, it stops after a poll that finds none.

- Every ``poll`` seconds (about 1 s) it reads each deployment's (state, error, updated_at)
  and its latest drift verdict, one cheap query, and publishes ``deployments`` events for
  those that changed: the router is another process and cannot publish, and its
  starting → ready/failed must reach open Deployments tabs within a second.
- Every ``interval`` seconds it runs ``check_deployment`` for each deployment (window and
  thresholds from the settings). A change of verdict is recorded there (once, under a row
  lock, whichever replica checks); the poll right after sees it and publishes the
  deployment and, when it started drifting, the activity feed.

Database work runs in executor threads, never on the event loop.

Replicas of the team backend on PostgreSQL share their events (team/notify.py: the hub's
``sink``); there only the replica holding an advisory lock watches, so every change is
told once. Without a sink (embedded mode, SQLite) each process's hub serves only its own
clients, so each watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..activity import ActivityHub
from ..store import NotFound
from ..store.tables import deployment_events, deployments
from ..tasks import cancel_and_wait
from .drift import DRIFT_CHANGED, Thresholds, check_deployment

log = logging.getLogger("cellops.monitoring")

POLL = 1.0
LOCK_KEY = 0x63656C6C6F7064  # "cellopd": held by the one watching replica (PostgreSQL)


@dataclass(frozen=True)
class DriftSettings:
    """How often drift is checked, over how many minutes, against which thresholds."""

    interval: float = 60.0
    window: int = 60
    thresholds: Thresholds = field(default_factory=Thresholds)

    @classmethod
    def from_config(cls, config: Any) -> DriftSettings:
        return cls(config.drift_check_interval, config.drift_window, Thresholds.from_config(config))


@dataclass(frozen=True)
class Seen:
    """What is polled of a deployment; any difference is news for its sidebars."""

    state: str
    error: str | None
    updated_at: datetime
    drift_event: int | None  # id of its latest drift_changed event
    drifted: bool | None  # that event's verdict


def snapshot(engine: sa.Engine) -> dict[str, Seen]:
    """Every deployment's state and latest drift verdict, in one query."""
    d = deployments.c
    latest = deployment_events.alias("latest")
    last_drift = (
        sa.select(sa.func.max(latest.c.id))
        .where(
            latest.c.deployment == d.name,
            latest.c.type == DRIFT_CHANGED,
            latest.c.at >= d.created_at,  # not a deleted namesake's
        )
        .correlate(deployments)
        .scalar_subquery()
    )
    e = deployment_events.c
    q = sa.select(d.name, d.state, d.error, d.updated_at, e.id, e.data).select_from(
        deployments.outerjoin(deployment_events, e.id == last_drift)
    )
    with engine.connect() as conn:
        return {
            r.name: Seen(
                r.state,
                r.error,
                r.updated_at,
                r.id,
                None if r.data is None else bool(r.data.get("drifted")),
            )
            for r in conn.execute(q)
        }


class Leadership:
    """The one watching replica: it holds a session advisory lock on a connection kept for
    it. A replica that dies drops that connection, and with it the lock: another takes over
    on its next poll."""

    def __init__(self, engine: sa.Engine, key: int = LOCK_KEY) -> None:
        self.engine = engine
        self.key = key  # one lock per background duty (drift watching, webhooks)
        self.conn: sa.Connection | None = None

    def held(self) -> bool:
        if self.conn is not None:
            try:
                self.conn.exec_driver_sql("SELECT 1")
                return True
            except sa.exc.SQLAlchemyError:
                self.release()
        try:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except sa.exc.SQLAlchemyError:
            return False
        try:
            got = conn.scalar(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
        except sa.exc.SQLAlchemyError:
            got = False
        if got:
            self.conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                conn.invalidate()  # the session ends, the lock with it (never back to the pool)
                conn.close()


class DeploymentWatcher:
    """See the module's docstring. ``start`` and ``stop`` are called on the event loop."""

    def __init__(
        self,
        engine: sa.Engine,
        hub: ActivityHub,
        settings: DriftSettings = DriftSettings(),
        poll: float = POLL,
    ) -> None:
        self.engine = engine
        self.hub = hub
        self.settings = settings
        self.poll = poll
        self.leadership: Leadership | None = None
        if hub.sink is not None and engine.dialect.name == "postgresql":
            self.leadership = Leadership(engine)
        self._seen: dict[str, Seen] | None = None
        self._next_check = 0.0
        self._task: asyncio.Future[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start watching unless it does (a deploy calls it)."""
        if not self.running:
            self._seen = None
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._in_thread(self._release)

    async def _run(self) -> None:
        while await self._tick():
            await asyncio.sleep(self.poll)
        await self._in_thread(self._release)  # nothing to watch: another replica may

    async def _tick(self) -> bool:
        """One poll (and a drift check when due); False when there is nothing to watch."""
        try:
            if self.leadership is not None and not await self._in_thread(self.leadership.held):
                self._seen = None  # another replica watches; start afresh on taking over
                return True
            seen = await self._in_thread(snapshot, self.engine)
            self._tell(seen)
            if not seen:
                return False
            if time.monotonic() >= self._next_check:
                self._next_check = time.monotonic() + self.settings.interval
                await self._in_thread(self._check, sorted(seen))
                self._tell(await self._in_thread(snapshot, self.engine))
        except Exception as exc:  # the store is down: try again on the next poll
            log.warning("cellops: cannot watch deployments: %s", exc)
        return True

    def _tell(self, seen: dict[str, Seen]) -> None:
        """Publish what changed since the last poll (nothing on the first)."""
        before, self._seen = self._seen, seen
        if before is None:
            return
        changed = [n for n in seen.keys() | before.keys() if seen.get(n) != before.get(n)]
        if changed:
            self.hub.publish_deployments(changed)
        started = [
            n
            for n, s in seen.items()
            if s.drifted and s.drift_event != getattr(before.get(n), "drift_event", None)
        ]
        if started:
            self.hub.publish_activity()  # the feed shows deployment.drift_started

    def _check(self, names: list[str]) -> None:
        s = self.settings
        for name in names:
            try:
                check_deployment(self.engine, name, s.window, s.thresholds)
            except NotFound:
                continue  # deleted meanwhile
            except Exception:
                log.exception("cellops: the drift check of %s failed", name)

    def _release(self) -> None:
        if self.leadership is not None:
            self.leadership.release()

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
