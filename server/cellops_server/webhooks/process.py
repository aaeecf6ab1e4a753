"""The webhook dispatcher's process, seen from the process that owns the store.

``DispatcherProcess`` starts ``python -m cellops_server.webhooks`` (webhooks/__main__.py)
and keeps it alive. The two talk through the child's standard streams:

- stdin, parent → child: one byte per wake-up (the parent's activity hub heard of an
  event), so a delivery leaves within milliseconds of its event instead of a poll later;
  EOF (the parent stopped, even by SIGKILL) makes the child finish and exit.
- stdout, child → parent: a line ``noticed`` when the child added a ``webhook.failed`` row,
  so the parent's activity feed is refreshed for waiting clients.

The child gets the database URL by environment, so no password shows in `ps`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import threading

from ..activity import ActivityHub
from .outbox import Settings

log = logging.getLogger("cellops.webhooks")

DB_ENV = "CELLOPS_WEBHOOKS_DB_URL"
WATCH_EVERY = 2.0  # seconds between checks that the child still runs
NOTICED = b"noticed"


def child_args(settings: Settings) -> list[str]:
    """The command line that gives the child ``settings``."""
    args = [
        "--max-attempts", str(settings.max_attempts),
        "--timeout", str(settings.timeout),
        "--backoff", str(settings.backoff),
    ]  # fmt: skip
    return args + (["--allow-private-targets"] if settings.allow_private else [])


class DispatcherProcess:
    """See the module's docstring. ``start``, ``wake`` and ``stop`` run on the event loop."""

    def __init__(self, db_url: str, hub: ActivityHub | None, settings: Settings) -> None:
        self.db_url = db_url
        self.hub = hub
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self._tasks: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._spawn()
        self._tasks.append(asyncio.ensure_future(self._keep_running()))
        if self.hub is not None:
            self._tasks.append(asyncio.ensure_future(self._follow(self.hub)))

    def _spawn(self) -> None:
        cmd = [sys.executable, "-m", "cellops_server.webhooks", *child_args(self.settings)]
        env = {**os.environ, DB_ENV: self.db_url}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert self.proc.stdin is not None
        # A wake-up never blocks the event loop: if the pipe is full the child has one pending.
        flags = fcntl.fcntl(self.proc.stdin, fcntl.F_GETFL)
        fcntl.fcntl(self.proc.stdin, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        threading.Thread(
            target=self._read_notices,
            args=(self.proc,),
            name="cellops-webhook-notices",
            daemon=True,
        ).start()

    def _read_notices(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends when the child exits
            if line.strip() == NOTICED and self.hub is not None and self._loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop has closed
                    self._loop.call_soon_threadsafe(self.hub.publish_activity)

    async def _keep_running(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            if self.proc is not None and self.proc.poll() is not None:
                log.warning(
                    "cellops: the webhook process exited (%s); starting it again",
                    self.proc.returncode,
                )
                self._spawn()

    async def _follow(self, hub: ActivityHub) -> None:
        """Wake the child whenever the hub hears of a change."""
        while True:
            reply = await hub.wait(hub.last, 60.0)
            if reply.events:
                self.wake()

    def wake(self) -> None:
        """Something was queued (a test delivery) or happened: the child looks now."""
        proc = self.proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            return
        with contextlib.suppress(BlockingIOError, BrokenPipeError, ValueError):
            proc.stdin.write(b".")
            proc.stdin.flush()

    async def stop(self, timeout: float = 15.0) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.close()  # EOF: the child records what it sent and exits
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await asyncio.to_thread(proc.wait)
