"""The background writer: moves spooled records into a sink, in order, in batches.

It runs in a process of its own (``python -m cellops_server.writer``, started and
watched by the Jupyter server extension), so validating and writing records never
competes with the Jupyter server's event loop for the GIL: the tap only appends to
the spool. ``Writer`` is also usable as a thread (tests, benchmarks).

Sinks are where records end: the local store (embedded mode) or a team backend
over HTTP. A sink that fails with ``SinkUnavailable`` is retried with backoff
while records wait in the spool; a batch the sink rejects as invalid is set
aside in ``spool-rejected.jsonl`` so one bad record never blocks the rest, and so are the
records a sink stored the rest of the batch without (it reports them by index).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from .private import open_private, write_private
from .schemas import IngestResult, RejectedRecord
from .spool import Spool
from .store import Store

log = logging.getLogger("cellops.writer")


class SinkUnavailable(Exception):
    """The sink cannot take records now; try again later."""


class SinkRejected(Exception):
    """The sink will never take these records."""


class Sink(Protocol):
    def write(self, records: list[dict[str, Any]]) -> list[RejectedRecord]:
        """Store ``records``; answer those set aside (the rest landed)."""
        ...


class StoreSink:
    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, records: list[dict[str, Any]]) -> list[RejectedRecord]:
        try:
            self.store.migrate()  # a database that was down at start-up is migrated when it returns
            return self.store.ingest_json(records).rejected
        except ValidationError as exc:
            raise SinkRejected(str(exc)) from exc
        except Exception as exc:  # database down, disk full, lock timeout (bad data is set aside)
            raise SinkUnavailable(f"{type(exc).__name__}: {exc}") from exc


class RemoteSink:
    """POSTs batches to a team backend's ``/cellops/api/v1/ingest``."""

    def __init__(self, backend_url: str, token: str, timeout: float = 30.0) -> None:
        self.url = backend_url.rstrip("/") + "/cellops/api/v1/ingest"
        self.token = token
        self.timeout = timeout

    def write(self, records: list[dict[str, Any]]) -> list[RejectedRecord]:
        body = json.dumps({"records": records}, default=str).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"token {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode(errors="replace")
            if exc.code in (400, 413, 422):
                raise SinkRejected(f"{exc.code}: {detail}") from exc
            raise SinkUnavailable(f"team backend answered {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise SinkUnavailable(f"team backend unreachable: {exc}") from exc
        try:
            return IngestResult.model_validate_json(answer).rejected
        except ValidationError:  # stored; an answer we cannot read lists nothing set aside
            return []


class Writer(threading.Thread):
    def __init__(
        self,
        spool: Spool,
        sink: Sink,
        batch_size: int = 1000,
        linger: float = 0.2,
        poll: float = 0.5,
        status_file: Path | None = None,
    ) -> None:
        super().__init__(name="cellops-writer", daemon=True)
        self.spool = spool
        self.sink = sink
        self.batch_size = batch_size
        # After a wake-up, wait this long so a burst of records lands in one transaction,
        # and the write runs after the cell that produced them has been answered.
        self.linger = linger
        self.poll = poll  # how often to look for records nobody told us about
        self.status_file = status_file  # where another process reads last_error
        self.on_written: Callable[[list[dict[str, Any]]], None] | None = None
        self.last_error: str | None = None
        self.written = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()  # not `_stop`: Thread uses that name

    def notify(self) -> None:
        self._wake.set()

    def stop_soon(self) -> None:
        """Finish what is in the spool (unless the sink is down), then return from run()."""
        self._stopping.set()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_soon()
        self.join(timeout)

    def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                moved = self.drain_once()
            except SinkUnavailable as exc:
                if self.last_error != str(exc):
                    log.warning("cellops: store unavailable, records kept in the spool (%s)", exc)
                    self._set_error(str(exc))
                if self._stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.2
            if moved:
                continue
            if self._stopping.is_set():
                return
            if self._wake.wait(self.poll):
                self._wake.clear()
                self._stopping.wait(self.linger)

    def drain_once(self) -> int:
        """Write one batch; answer how many records moved."""
        records, position = self.spool.read_batch(self.batch_size)
        if not records:
            return 0
        try:
            self._set_aside_rejected(self.sink.write(records), records)
        except SinkRejected:
            self._write_one_by_one(records)
        self.spool.commit(position)
        self.written += len(records)
        if self.on_written is not None:
            self.on_written(records)
        if self.last_error:
            log.info("cellops: store reachable again; writing the spool")
            self._set_error(None)
        return len(records)

    def _set_error(self, error: str | None) -> None:
        self.last_error = error
        if self.status_file is not None:
            write_status(self.status_file, {"last_error": error, "pid": os.getpid()})

    def _write_one_by_one(self, records: list[dict[str, Any]]) -> None:
        """Isolate the records a sink rejects, so the good ones of the batch still land."""
        for record in records:
            try:
                self._set_aside_rejected(self.sink.write([record]), [record])
            except SinkRejected as exc:
                self._set_aside([record], str(exc))

    def _set_aside_rejected(
        self, rejected: list[RejectedRecord] | None, records: list[dict[str, Any]]
    ) -> None:
        """The records the sink stored the rest of the batch without: never retried."""
        for r in rejected or ():  # a sink may report nothing
            if 0 <= r.index < len(records):
                self._set_aside([records[r.index]], f"set aside by the store: {r.reason}")

    def _set_aside(self, records: list[dict[str, Any]], reason: str) -> None:
        log.error(
            "cellops: %d records rejected by the store and set aside: %s",
            len(records),
            reason[:500],
        )
        with open_private(self.spool.folder / "spool-rejected.jsonl", "a", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps({"reason": reason[:2000], "record": r}, default=str) + "\n")


# -- the writer process ---------------------------------------------------------------------

STATUS_FILE = "writer-status.json"


def write_status(path: Path, status: dict[str, Any]) -> None:
    write_private(path, json.dumps(status))


def read_status(spool_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((spool_dir / STATUS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}


class WriterProcess:
    """Starts ``python -m cellops_server.writer`` for one spool folder and keeps it alive.

    The child reads its stdin until EOF: when this process ends, even by SIGKILL, the
    pipe closes and the child finishes its batch and exits.
    """

    def __init__(
        self,
        spool_dir: Path,
        args: list[str],
        env: dict[str, str],
        on_stored: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.spool_dir = spool_dir
        self.args = args
        self.env = env
        # Called (on a reader thread) with the notebook paths of each batch the child stored.
        self.on_stored = on_stored
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "cellops_server.writer",
            "--spool",
            str(self.spool_dir),
            *self.args,
        ]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.env
        )
        threading.Thread(
            target=self._read_notices, args=(self.proc,), name="cellops-writer-notices", daemon=True
        ).start()

    def _read_notices(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends when the child exits
            try:
                notebooks = json.loads(line)["stored"]
            except (ValueError, KeyError, TypeError):
                continue
            if self.on_stored is not None:
                self.on_stored(notebooks)

    def ensure_running(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            log.warning(
                "cellops: the writer process exited (%s); starting it again", self.proc.returncode
            )
            self.start()

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def last_error(self) -> str | None:
        if self.proc is not None and self.proc.poll() is not None:
            return f"the writer process exited with {self.proc.returncode}"
        return read_status(self.spool_dir).get("last_error")


def stored_notebooks(records: list[dict[str, Any]]) -> list[str]:
    paths = {r.get("notebook") for r in records} | {r.get("to_path") for r in records}
    return sorted(p for p in paths if isinstance(p, str))


def print_stored_notice(records: list[dict[str, Any]]) -> None:
    """Tell the Jupyter server (our stdout is its pipe) which notebooks just changed."""
    sys.stdout.write(json.dumps({"stored": stored_notebooks(records)}) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cellops writer: spool → store or team backend")
    parser.add_argument("--spool", required=True, type=Path)
    parser.add_argument(
        "--db",
        default=os.environ.get("CELLOPS_DB_URL"),
        help="store URL (default: $CELLOPS_DB_URL)",
    )
    parser.add_argument("--artifacts", help="blob folder of the store")
    parser.add_argument("--backend", help="team backend URL (the token comes from CELLOPS_TOKEN)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--interval", type=float, default=0.2, help="seconds between looks at the spool"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[cellops writer %(levelname)s] %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)

    # Background work: let the Jupyter server, the kernels and the browser have the CPU first.
    os.nice(10)
    # One writer per spool: a replacement waits here until its predecessor has exited.
    lock = open_private(args.spool / "writer.lock", "w")  # held until exit
    fcntl.flock(lock, fcntl.LOCK_EX)

    sink: Sink
    if args.backend:
        sink = RemoteSink(args.backend, os.environ.get("CELLOPS_TOKEN", ""))
    else:
        store = Store(args.db, args.artifacts, auto_migrate=False)
        sink = StoreSink(store)
    status_file = args.spool / STATUS_FILE
    write_status(status_file, {"last_error": None, "pid": os.getpid()})
    writer = Writer(
        Spool(args.spool, reader=True),
        sink,
        args.batch_size,
        poll=args.interval,
        status_file=status_file,
    )

    def watch_parent() -> None:
        sys.stdin.buffer.read()  # returns at EOF: the Jupyter server stopped or died
        writer.stop_soon()

    threading.Thread(target=watch_parent, daemon=True).start()
    writer.on_written = print_stored_notice
    writer.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
