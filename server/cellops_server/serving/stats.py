"""What the router learns from requests, kept in memory and written to the store every few
seconds by a thread of its own, so a slow or unreachable store never delays a response:
outcomes per (deployment, version, minute) (metrics.add_minutes) and sampled requests' input
rows with their predictions, for drift (monitoring.samples.add_samples)."""

from __future__ import annotations

import bisect
import logging
import random
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter

from .metrics import BUCKETS, MinuteRow, add_minutes

log = logging.getLogger("cellops.serving")

FLUSH_INTERVAL = 5.0
SAMPLE_INTERVAL = 2.0  # samples are written sooner: drift checks wait on them
MAX_PENDING = 100_000  # rows kept while the store is unreachable; the oldest go first
MAX_SAMPLED = 2_000  # sampled requests kept unwritten (each up to 100 rows); the oldest go first


class Flusher:
    """A daemon thread calling ``flush`` every ``interval`` seconds, and once more at stop."""

    name = "cellops-flush"

    def __init__(self, engine: sa.Engine, interval: float) -> None:
        self.engine = engine
        self.interval = interval
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
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
        raise NotImplementedError


class MinuteStats(Flusher):
    name = "cellops-minutes"

    def __init__(self, engine: sa.Engine, interval: float = FLUSH_INTERVAL) -> None:
        super().__init__(engine, interval)
        # (deployment, version, minute since the epoch) -> [requests, errors, latency_sum, *buckets]
        self.current: dict[tuple[str, int, int], list[Any]] = {}

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


Sampled = tuple[str, int, list[Any], list[Any]]  # deployment, version, input rows, predictions


class SamplePicker:
    """Which requests a worker samples, per request on its event loop: a ``rate`` share, at
    most ``per_second`` per deployment and second. Requests not picked cost nothing more."""

    def __init__(self, rate: float, per_second: int) -> None:
        self.rate = rate
        self.per_second = per_second
        self._second: dict[str, tuple[int, int]] = {}  # deployment -> (second, taken in it)

    def wants(self, deployment: str) -> bool:
        if self.rate <= 0 or self.per_second <= 0:
            return False
        if self.rate < 1 and random.random() >= self.rate:
            return False
        return _take(self._second, deployment, self.per_second)


def _take(seconds: dict[str, tuple[int, int]], deployment: str, per_second: int) -> bool:
    """Count one more for ``deployment`` in the current second, unless ``per_second`` are."""
    now = int(time.monotonic())
    second, taken = seconds.get(deployment, (now, 0))
    if second != now:
        taken = 0
    if taken >= per_second:
        return False
    seconds[deployment] = (now, taken + 1)
    return True


class Samples(Flusher):
    """The sampled requests the workers send, until they are written. Each worker picks at
    most ``per_second`` per deployment; the router keeps at most that many across workers.
    Those lost to a full buffer are counted in ``registry`` (the router's ``/metrics``)."""

    name = "cellops-samples"

    def __init__(
        self,
        engine: sa.Engine,
        per_second: int,
        interval: float = SAMPLE_INTERVAL,
        limit: int = MAX_SAMPLED,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(engine, interval)
        self.per_second = per_second
        self.pending: deque[Sampled] = deque()
        self.limit = limit
        self.dropped = 0  # sampled requests lost to a full buffer (the store was unreachable)
        self.dropped_metric = Counter(
            "cellops_samples_dropped",
            "Sampled requests lost before reaching the store: the buffer was full while the "
            "store could not take them.",
            registry=registry,
        )
        self._reported = 0
        self._second: dict[str, tuple[int, int]] = {}

    def add(self, deployment: str, version: int, rows: list[Any], predictions: list[Any]) -> None:
        if not _take(self._second, deployment, self.per_second):
            return
        with self.lock:
            self._keep([(deployment, version, rows, predictions)])

    def _keep(self, items: list[Sampled]) -> None:
        """Append ``items`` (the lock held), dropping the oldest beyond ``limit``."""
        self.pending.extend(items)
        while len(self.pending) > self.limit:
            self.pending.popleft()
            self.dropped += 1
            self.dropped_metric.inc()

    def flush(self) -> None:
        from ..monitoring.samples import add_samples

        with self.lock:
            taken, self.pending = list(self.pending), deque()
        if not taken:
            return
        grouped: dict[tuple[str, int], list[tuple[Any, Any]]] = {}
        for deployment, version, rows, predictions in taken:
            pairs = grouped.setdefault((deployment, version), [])
            pairs.extend(zip(rows, predictions, strict=False))
        try:
            for (deployment, version), pairs in list(grouped.items()):
                add_samples(self.engine, deployment, version, pairs)
                del grouped[(deployment, version)]
        except Exception as exc:  # kept for the next flush (bounded); written ones are not
            log.warning("cannot write request samples: %s", exc)
            left = [item for item in taken if (item[0], item[1]) in grouped]
            with self.lock:
                newer, self.pending = list(self.pending), deque()
                self._keep(left + newer)
        if self.dropped > self._reported:
            log.warning("%d sampled requests dropped so far: the store could not take them",
                        self.dropped)  # fmt: skip
            self._reported = self.dropped
