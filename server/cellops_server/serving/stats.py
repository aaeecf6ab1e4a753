"""Request outcomes per (deployment, version, minute), kept in memory by the router and
written to the store every few seconds by a thread of its own (metrics.add_minutes), so a
slow or unreachable store never delays a response."""

from __future__ import annotations

import bisect
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from .metrics import BUCKETS, MinuteRow, add_minutes

log = logging.getLogger("cellops.serving")

FLUSH_INTERVAL = 5.0
MAX_PENDING = 100_000  # rows kept while the store is unreachable; the oldest go first


class MinuteStats:
    def __init__(self, engine: sa.Engine, interval: float = FLUSH_INTERVAL) -> None:
        self.engine = engine
        self.interval = interval
        self.lock = threading.Lock()
        # (deployment, version, minute since the epoch) -> [requests, errors, latency_sum, *buckets]
        self.current: dict[tuple[str, int, int], list[Any]] = {}
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def add(self, deployment: str, version: int, seconds: float, failed: bool) -> None:
        key = (deployment, version, int(time.time() // 60))
        bucket = 3 + bisect.bisect_left(BUCKETS, seconds)
        with self.lock:
            row = self.current.get(key)
            if row is None:
                row = self.current[key] = [0, 0, 0.0] + [0] * (len(BUCKETS) + 1)
            row[0] += 1
            row[1] += failed
            row[2] += seconds
            row[bucket] += 1

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="cellops-minutes", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(10)
        self.flush()

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        with self.lock:
            taken, self.current = self.current, {}
        if not taken:
            return
        rows = [
            MinuteRow(
                deployment=name,
                version=version,
                minute=datetime.fromtimestamp(minute * 60, timezone.utc),
                requests=v[0],
                errors=v[1],
                latency_sum=v[2],
                buckets=v[3:],
            )
            for (name, version, minute), v in taken.items()
        ]
        try:
            add_minutes(self.engine, rows)
        except Exception as exc:  # keep them for the next flush (bounded)
            log.warning("cannot write serving metrics: %s", exc)
            with self.lock:
                for key, v in taken.items():
                    if len(self.current) >= MAX_PENDING:
                        break
                    mine = self.current.setdefault(key, [0, 0, 0.0] + [0] * (len(v) - 3))
                    for i, x in enumerate(v):
                        mine[i] += x
