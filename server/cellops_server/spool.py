"""The durable local queue between the capture tap and the store.

Every record the tap emits is appended here first, as one JSON line, before the
message that caused it goes on to the browser. Appending is a buffered write and
a flush (it reaches the OS, so it survives the server process being killed); a
background writer reads from the last committed position, stores the batch, then
commits the position. If the store is down, records simply wait here, in order.

Files: ``spool-000001.jsonl`` … (a new segment every ``segment_bytes``), and
``spool.pos`` holding the committed ``[segment, offset]``. The appending process
(the Jupyter server) and the reading one (its writer process) share nothing else.
The folder is 0700 and its files 0600: records hold the cells' code and outputs.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import IO, Any

from .private import open_private, private_dir, write_private

log = logging.getLogger("cellops.spool")


class Spool:
    """One process appends (``reader=False``); one process, maybe another, reads and commits."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        segment_bytes: int = 16 * 1024 * 1024,
        *,
        reader: bool = False,
    ) -> None:
        self.folder = private_dir(folder)
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._pos_file = self.folder / "spool.pos"
        self.read_segment, self.read_offset = self._load_position()
        segments = self._segments()
        self._segment = max(segments[-1] if segments else 1, self.read_segment)
        self._out = None if reader else self._open_for_append(self._segment)

    # -- appending (event loop thread) -------------------------------------------------

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self._out is None:
                raise RuntimeError("this Spool was opened for reading only")
            self._out.write(line)
            self._out.flush()
            if self._out.tell() >= self.segment_bytes:
                self._out.close()
                self._segment += 1
                self._out = self._open_for_append(self._segment)

    def pending(self) -> int:
        """Records appended but not yet committed, whichever process commits them."""
        segment, offset = self._load_position()
        last, n = self._last_segment(), 0
        while segment <= last:
            try:
                with open(self._path(segment), "rb") as f:
                    f.seek(offset)
                    while chunk := f.read(1 << 20):
                        n += chunk.count(b"\n")
            except FileNotFoundError:
                pass
            segment, offset = segment + 1, 0
        return n

    # -- reading (writer thread) ---------------------------------------------------------

    def read_batch(self, max_records: int) -> tuple[list[dict[str, Any]], tuple[int, int]]:
        """Up to ``max_records`` complete records after the committed position."""
        records: list[dict[str, Any]] = []
        segment, offset = self.read_segment, self.read_offset
        last = self._last_segment()
        while len(records) < max_records:
            path = self._path(segment)
            if not path.exists():
                if segment < last:  # deleted by an earlier reader that got further
                    segment, offset = segment + 1, 0
                    continue
                break
            with open(path, "rb") as f:
                f.seek(offset)
                while len(records) < max_records:
                    line = f.readline()
                    if not line.endswith(b"\n"):
                        break  # nothing more, or a line still being written
                    offset += len(line)
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        log.warning("cellops spool: skipped a damaged line in %s", path.name)
            if len(records) >= max_records or segment >= last:
                break
            segment, offset = segment + 1, 0
        return records, (segment, offset)

    def commit(self, position: tuple[int, int]) -> None:
        segment, offset = position
        write_private(self._pos_file, json.dumps([segment, offset]))
        if segment != self.read_segment:
            for old in self._segments():
                if old < segment:
                    self._path(old).unlink(missing_ok=True)
        self.read_segment, self.read_offset = segment, offset

    def close(self) -> None:
        with self._lock:
            if self._out is not None:
                self._out.close()

    # -- files ------------------------------------------------------------------------------

    def _path(self, segment: int) -> Path:
        return self.folder / f"spool-{segment:06d}.jsonl"

    def _last_segment(self) -> int:
        return max(self._segments(), default=self._segment)

    def _segments(self) -> list[int]:
        found = []
        for p in self.folder.glob("spool-*.jsonl"):
            try:
                found.append(int(p.stem.split("-")[1]))
            except (IndexError, ValueError):
                continue
        return sorted(found)

    def _load_position(self) -> tuple[int, int]:
        try:
            segment, offset = json.loads(self._pos_file.read_text())
            return int(segment), int(offset)
        except (FileNotFoundError, ValueError, TypeError):
            return 1, 0

    def _open_for_append(self, segment: int) -> Any:
        path = self._path(segment)
        f = open_private(path, "a", encoding="utf-8")  # kept open for the process
        if f.tell() > 0:
            with open(path, "rb") as r:
                r.seek(-1, os.SEEK_END)
                if r.read(1) != b"\n":
                    f.write("\n")  # a line cut by a crash stays damaged, not glued to the next
                    f.flush()
        return f


# -- spool folders: one per recording process -------------------------------------------------

MAX_SLOTS = 64


class SpoolBusy(Exception):
    """Every spool folder of this cellops home is in use."""


def claim_slot(root: Path) -> tuple[Path, IO[Any]]:
    """The first spool folder ``root/<n>`` no running process holds, and the OS lock that
    holds it now (keep it open for the process's lifetime; a killed process releases it).
    A restarted Jupyter server takes a folder back and replays it, and so does whichever
    process claims it next (another server, or `cellops run`)."""
    for n in range(MAX_SLOTS):
        slot = root / str(n)
        private_dir(slot)
        lock = open_private(slot / "lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        return slot, lock
    raise SpoolBusy(f"every spool folder under {root} is in use")


def source_id(slot: Path) -> str:
    """The recording source of this spool folder: stable across restarts, so records
    replayed from it are owned by the source that wrote them."""
    path = slot / "source"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        source = uuid.uuid4().hex
        write_private(path, source)
        return source
