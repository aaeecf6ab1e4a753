"""Live events across replicas of the team backend, through PostgreSQL LISTEN/NOTIFY.

Several `cellops serve` processes on one PostgreSQL each hold their sidebars' long polls.
An event published on one replica's hub goes to PostgreSQL (NOTIFY on ``cellops_events``)
and every replica, the sender included, LISTENs and delivers it into its own hub. So a
comment written through replica A wakes the long polls held by replica B.

Numbering: the event's number comes from a PostgreSQL sequence, taken in the same
statement as the NOTIFY under a transaction-scoped advisory lock, so notifications are
delivered (in commit order) in the order of their numbers, and a client's ``after`` cursor
means the same on every replica behind a load balancer.

A lost listening connection is reopened; what was published meanwhile is unknown, so the
hub then tells clients that are behind to reset (ActivityHub.resume_at).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime

import psycopg
import sqlalchemy as sa

from ..activity import ActivityHub
from ..schemas import ActivityEvent
from ..tasks import cancel_and_wait

log = logging.getLogger("cellops.notify")

CHANNEL = "cellops_events"
SEQUENCE = "cellops_event_seq"
LOCK_KEY = 0x63656C6C6F7073  # "cellops": the advisory lock serializing event numbers
MAX_PAYLOAD = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
MAX_QUEUED = 10_000  # events waiting for the database; past it they collapse into a reset
HEARTBEAT = 15.0  # seconds of silence after which the listening connection is checked
RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)
# Half-open TCP connections (a cable pulled, a NAT timeout) are noticed by keepalives.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3, "connect_timeout": 10}  # fmt: skip

# One statement: the lock is taken before the number, and both last until its implicit
# transaction commits, which is when PostgreSQL queues the notification.
PUBLISH = f"""
WITH locked AS (SELECT pg_advisory_xact_lock({LOCK_KEY})),
     numbered AS (SELECT nextval('{SEQUENCE}') AS seq FROM locked)
SELECT seq, pg_notify('{CHANNEL}', seq::text || ':' || %s) FROM numbered
"""


def postgres_dsn(engine: sa.Engine) -> str | None:
    """The libpq URL of the store's database; None when it is not PostgreSQL."""
    if engine.dialect.name != "postgresql":
        return None
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def encode(event: ActivityEvent) -> str:
    """The payload of ``event`` without its number (PostgreSQL prefixes it). One too large
    for a notification becomes a reset: clients reload everything, which is always safe."""
    body = event.model_dump_json(exclude={"seq"})
    if len(body.encode()) <= MAX_PAYLOAD:
        return body
    return reset_of(event.at).model_dump_json(exclude={"seq"})


def decode(payload: str) -> ActivityEvent | None:
    seq, _, body = payload.partition(":")
    try:
        return ActivityEvent.model_validate({**json.loads(body), "seq": int(seq)})
    except ValueError:  # not ours (someone else NOTIFYing on the channel): ignored
        log.warning("cellops: ignored a notification on %s that is not an event", CHANNEL)
        return None


def reset_of(at: datetime) -> ActivityEvent:
    return ActivityEvent(seq=0, type="reset", notebooks=[], at=at)


class ReplicaEvents:
    """Connects one replica's hub to the others: it becomes the hub's sink, and delivers
    what every replica publishes. Used on the event loop only."""

    def __init__(self, dsn: str, hub: ActivityHub) -> None:
        self.dsn = dsn
        self.hub = hub
        self._queue: asyncio.Queue[ActivityEvent] = asyncio.Queue()
        self._overflowed = False
        self._listener: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Listen before serving: the first clients' ``last`` is then already shared."""
        self._listener = await self._listen()
        self.hub.sink = self.send
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow()), loop.create_task(self._send_all())]

    async def stop(self) -> None:
        self.hub.sink = None
        await cancel_and_wait(*self._tasks)
        if self._listener is not None:
            await self._listener.close()

    # -- publishing --------------------------------------------------------------------------

    def send(self, event: ActivityEvent) -> None:
        """The hub's sink: queue ``event`` for every replica (the caller does not wait)."""
        if self._queue.qsize() >= MAX_QUEUED:
            self._overflowed = True  # the database is away: one reset replaces them all
            return
        self._queue.put_nowait(event)

    async def _send_all(self) -> None:
        conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        failures = 0
        while True:
            event = await self._queue.get()
            if self._overflowed:
                self._overflowed, event = False, reset_of(event.at)
            while True:  # an event is not dropped while the database is away
                try:
                    if conn is None or conn.closed:
                        conn = await self._connect("publisher")
                    await conn.execute(PUBLISH, (encode(event),))
                    failures = 0
                    break
                except psycopg.OperationalError as exc:
                    log.warning("cellops: cannot publish an event to other replicas: %s", exc)
                    conn = await _closed(conn)
                    await asyncio.sleep(RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)])
                    failures += 1

    # -- listening ---------------------------------------------------------------------------

    async def _connect(self, role: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
        return await psycopg.AsyncConnection.connect(
            self.dsn, autocommit=True, application_name=f"cellops events {role}", **KEEPALIVES
        )

    async def _listen(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        """A new listening connection; the hub learns from which number on it hears all."""
        conn = await self._connect("listener")
        try:
            await _create_sequence(conn)
            await conn.execute(f"LISTEN {CHANNEL}")
            # Under the lock no event is between its number and its notification: every
            # event numbered above ``last`` is committed after LISTEN, so it reaches us.
            async with conn.transaction():
                await conn.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
                cur = await conn.execute(f"SELECT last_value, is_called FROM {SEQUENCE}")
                row = await cur.fetchone()
        except BaseException:
            await conn.close()
            raise
        assert row is not None
        last, called = row
        self.hub.resume_at(int(str(last)) if called else 0)
        return conn

    async def _follow(self) -> None:
        failures = 0
        while True:
            try:
                if self._listener is None or self._listener.closed:
                    self._listener = await self._listen()
                    log.info("cellops: listening to the other replicas' events again")
                failures = 0
                async for notify in self._listener.notifies(timeout=HEARTBEAT):
                    event = decode(notify.payload)
                    if event is not None:
                        self.hub.deliver(event)
                await self._listener.execute("SELECT 1")  # quiet: is the connection alive?
            except psycopg.Error as exc:
                log.warning("cellops: lost the other replicas' events (%s); reconnecting", exc)
                self._listener = await _closed(self._listener)
                await asyncio.sleep(RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)])
                failures += 1


async def _create_sequence(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    """The shared event numbers (runtime state, not a table: no migration). Replicas that
    start together take the lock first: CREATE ... IF NOT EXISTS is not race-free."""
    async with conn.transaction():
        await conn.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
        await conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} AS bigint")


async def _closed(
    conn: psycopg.AsyncConnection[tuple[object, ...]] | None,
) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            await conn.close()
    return None
