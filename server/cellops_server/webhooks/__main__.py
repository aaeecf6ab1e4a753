"""``python -m cellops_server.webhooks``: the webhook dispatcher in a process of its own
(webhooks/process.py starts it; the database URL comes by environment)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from typing import Any

import sqlalchemy as sa

from ..store import create_engine
from .dispatcher import WebhookDispatcher
from .outbox import Settings
from .process import DB_ENV, NOTICED


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m cellops_server.webhooks")
    parser.add_argument("--allow-private-targets", action="store_true")
    parser.add_argument("--max-attempts", type=int, default=Settings.max_attempts)
    parser.add_argument("--timeout", type=float, default=Settings.timeout)
    parser.add_argument("--backoff", type=float, default=Settings.backoff)
    args = parser.parse_args(argv)
    return Settings(args.allow_private_targets, args.max_attempts, args.timeout, args.backoff)


def notice() -> None:
    sys.stdout.buffer.write(NOTICED + b"\n")
    sys.stdout.buffer.flush()


def outbox_engine(url: str) -> sa.Engine:
    """The store, for the outbox's bookkeeping. On PostgreSQL its commits do not wait for
    the disk (``synchronous_commit = off``): they stay atomic, and what a database crash
    could lose (the last few ms of queued deliveries, attempts, cursors) only makes a
    delivery be sent again, which at-least-once allows; the team's own commits then do not
    queue behind these for the disk."""
    engine = create_engine(url)
    if engine.dialect.name == "postgresql":

        @sa.event.listens_for(engine, "connect")
        def _no_wait_for_disk(dbapi_connection: Any, _: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO off")
            dbapi_connection.commit()

    return engine


async def run(settings: Settings) -> None:
    engine = outbox_engine(os.environ[DB_ENV])
    dispatcher = WebhookDispatcher(engine, settings, on_noticed=notice)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def read_wakes() -> None:
        """Each byte from the parent is a wake-up; EOF means the parent is gone."""
        while sys.stdin.buffer.read1(4096):
            loop.call_soon_threadsafe(dispatcher.wake)
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=read_wakes, name="cellops-webhook-wakes", daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    dispatcher.start()
    try:
        await done.wait()
    finally:
        await dispatcher.stop()
        engine.dispose()


NICENESS = 10  # background work: when CPU is short, the team's requests go first


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[cellops webhooks %(levelname)s] %(message)s")
    os.nice(NICENESS)
    asyncio.run(run(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
