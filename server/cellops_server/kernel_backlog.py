"""What the kernels of this Jupyter server keep because the backend did not take it.

The kernel library buffers logged values in memory while its POSTs fail and reports its
backlog (``POST /status/kernels``) instead of printing into the notebook; ``GET /status`` adds it
up so the status bar can say "backend unreachable, N records waiting". Reports live in
memory only: a kernel re-reports on each retry, so a stale one (a kernel that died) ages out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

STALE_AFTER = 120.0  # seconds; a kernel backing off retries at least every 30 s
MAX_KERNELS = 1000  # reports kept; the oldest go first


@dataclass
class _Report:
    pending: int
    error: str | None
    at: float


class KernelBacklogs:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._reports: dict[str, _Report] = {}
        self._clock = clock

    def report(self, kernel: str, pending: int, error: str | None) -> None:
        self._reports.pop(kernel, None)
        if pending > 0:
            self._reports[kernel] = _Report(pending, error, self._clock())
            while len(self._reports) > MAX_KERNELS:
                del self._reports[next(iter(self._reports))]

    def summary(self) -> tuple[int, str | None]:
        """Records waiting in all kernels, and the latest reason given."""
        now = self._clock()
        for kernel in [k for k, r in self._reports.items() if now - r.at > STALE_AFTER]:
            del self._reports[kernel]
        latest = max(self._reports.values(), key=lambda r: r.at, default=None)
        pending = sum(r.pending for r in self._reports.values())
        return pending, latest.error if latest else None
