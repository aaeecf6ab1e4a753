"""The background writer: moves spooled records into a sink, in order, in batches.

Sinks are where records end: the local store (embedded mode) or a team backend
over HTTP. A sink that fails with ``SinkUnavailable`` is retried with backoff
while records wait in the spool; a batch the sink rejects as invalid is set
aside in ``spool-rejected.jsonl`` so one bad record never blocks the rest.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from typing import Any, Protocol

from pydantic import ValidationError

from .spool import Spool
from .store import Store

log = logging.getLogger("cellops.writer")


class SinkUnavailable(Exception):
    """The sink cannot take records now; try again later."""


class SinkRejected(Exception):
    """The sink will never take these records."""


class Sink(Protocol):
    def write(self, records: list[dict[str, Any]]) -> None: ...


class StoreSink:
    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, records: list[dict[str, Any]]) -> None:
        try:
            self.store.migrate()  # a database that was down at start-up is migrated when it returns
            self.store.ingest_json(records)
        except ValidationError as exc:
            raise SinkRejected(str(exc)) from exc
        except Exception as exc:  # database down, disk full, lock timeout…
            raise SinkUnavailable(f"{type(exc).__name__}: {exc}") from exc


class RemoteSink:
    """POSTs batches to a team backend's ``/cellops/api/v1/ingest``."""

    def __init__(self, backend_url: str, token: str, timeout: float = 30.0) -> None:
        self.url = backend_url.rstrip("/") + "/cellops/api/v1/ingest"
        self.token = token
        self.timeout = timeout

    def write(self, records: list[dict[str, Any]]) -> None:
        body = json.dumps({"records": records}, default=str).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"token {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode(errors="replace")
            if exc.code in (400, 413, 422):
                raise SinkRejected(f"{exc.code}: {detail}") from exc
            raise SinkUnavailable(f"team backend answered {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise SinkUnavailable(f"team backend unreachable: {exc}") from exc


class Writer(threading.Thread):
    def __init__(
        self, spool: Spool, sink: Sink, batch_size: int = 1000, linger: float = 0.2
    ) -> None:
        super().__init__(name="cellops-writer", daemon=True)
        self.spool = spool
        self.sink = sink
        self.batch_size = batch_size
        # After a wake-up, wait this long so a burst of records lands in one transaction,
        # and the write runs after the cell that produced them has been answered.
        self.linger = linger
        self.last_error: str | None = None
        self.written = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()  # not `_stop`: Thread uses that name

    def notify(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        self.join(timeout)

    def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                moved = self.drain_once()
            except SinkUnavailable as exc:
                if self.last_error != str(exc):
                    log.warning("cellops: store unavailable, records kept in the spool (%s)", exc)
                self.last_error = str(exc)
                if self._stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.2
            if moved:
                continue
            if self._stopping.is_set():
                return
            if self._wake.wait(0.5):
                self._wake.clear()
                self._stopping.wait(self.linger)

    def drain_once(self) -> int:
        """Write one batch; answer how many records moved."""
        records, position = self.spool.read_batch(self.batch_size)
        if not records:
            return 0
        try:
            self.sink.write(records)
        except SinkRejected:
            self._write_one_by_one(records)
        self.spool.commit(position, len(records))
        self.written += len(records)
        if self.last_error:
            log.info("cellops: store reachable again; spool drained")
        self.last_error = None
        return len(records)

    def _write_one_by_one(self, records: list[dict[str, Any]]) -> None:
        """Isolate the records a sink rejects, so the good ones of the batch still land."""
        for record in records:
            try:
                self.sink.write([record])
            except SinkRejected as exc:
                self._set_aside([record], str(exc))

    def _set_aside(self, records: list[dict[str, Any]], reason: str) -> None:
        log.error(
            "cellops: %d records rejected by the store and set aside: %s",
            len(records),
            reason[:500],
        )
        with open(self.spool.folder / "spool-rejected.jsonl", "a", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps({"reason": reason[:2000], "record": r}, default=str) + "\n")
