"""Where a headless run's records go: the durable spool, then the store or a team backend.

The same path as JupyterLab's: the tracker appends to a spool folder under the cellops
home, and a writer (here a thread of this process, not a child process) moves the
records to the local store or, in team mode, POSTs them to the backend. The spool folder
is claimed like a Jupyter server claims one (the first free ``<home>/spool/<n>``, held by
an OS lock), so records a run could not send wait there and are sent by whichever comes
next and claims that folder: the next `cellops run` or a JupyterLab started with the same
cellops home.
"""

from __future__ import annotations

import fcntl
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..capture.tracker import now_iso
from ..private import open_private
from ..spool import Spool, source_id
from ..writer import RemoteSink, Sink, SinkUnavailable, StoreSink, Writer

DRAIN_WAIT = 10.0  # seconds the command waits for its records to be stored before it exits


@dataclass
class Recording:
    """One run's spool folder and the writer emptying it."""

    slot: Path
    sink: Sink
    target: str  # where records go, for messages: the store URL or the backend URL
    source: str = ""
    instance: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        self.source = source_id(self.slot)
        self.spool = Spool(self.slot)
        # One writer per folder: a writer process of a stopped Jupyter server may still
        # be finishing its batch (writer.py); wait for it.
        self._writer_lock = open_private(self.slot / "writer.lock", "w")
        fcntl.flock(self._writer_lock, fcntl.LOCK_EX)
        self.writer = Writer(Spool(self.slot, reader=True), self.sink, linger=0.05)
        # Whatever earlier processes of this folder left open is over (as at a server start).
        self.spool.append(
            {"kind": "recover", "source": self.source, "instance": self.instance, "at": now_iso()}
        )
        self.writer.start()

    def append(self, record: dict[str, Any]) -> None:
        self.spool.append(record)
        self.writer.notify()

    def finish(self, wait: float = DRAIN_WAIT) -> int:
        """Store what can be stored within ``wait`` seconds; answer how many records are
        left in the spool (0: everything landed)."""
        deadline = time.monotonic() + wait
        self.writer.stop_soon()
        self.writer.join(wait)
        if not self.writer.is_alive():
            self._last_tries(deadline)
        self.spool.close()
        left = self.spool.pending()
        self._writer_lock.close()
        return left

    def _last_tries(self, deadline: float) -> None:
        """The writer stops at once while its sink is down, maybe in the middle of a
        backoff: try again now, until the spool is empty, the sink fails or time is up."""
        while time.monotonic() < deadline:
            try:
                if not self.writer.drain_once():
                    return
            except SinkUnavailable as exc:
                self.writer.last_error = str(exc)
                return

    @property
    def last_error(self) -> str | None:
        return self.writer.last_error


def store_recording(slot: Path, store: Any) -> Recording:
    return Recording(slot, StoreSink(store), store.engine.url.render_as_string(hide_password=True))


def backend_recording(slot: Path, backend_url: str, token: str) -> Recording:
    return Recording(slot, RemoteSink(backend_url, token, timeout=10.0), backend_url)
