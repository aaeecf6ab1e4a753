"""When a version that kills its worker process has failed.

A version that crashes its worker while loading (a native fault in the model's code, an
allocation the machine cannot give) or while predicting (a request that segfaults) must stop
taking traffic with a reason a person can act on; a crash that is not its fault must not.
Workers die together when something outside kills them (an operator's ``kill`` of every
worker, the kernel's OOM killer, a container limit): the deaths of several workers within
INCIDENT seconds are one incident and count once, so the version is not blamed once per
worker that happened to be loading or predicting with it at that moment. A model that really
crashes every worker that loads it crashes the freshly started ones too, seconds later: a
second incident, and it fails then.
"""

from __future__ import annotations

from .endpoints import Key

LOAD_CRASHES = 2  # incidents while loading after which a version has failed
SERVE_CRASHES = 3  # ... or while predicting, within WINDOW seconds
WINDOW = 60.0
INCIDENT = 1.0  # seconds within which deaths are one incident


class CrashBook:
    """Counts each version's crashes by incident; says when one has failed, and why."""

    def __init__(self) -> None:
        self._loading: dict[Key, list[float]] = {}  # incidents since its last good load
        self._serving: dict[Key, list[float]] = {}  # incidents, the recent ones kept

    def loaded(self, key: Key) -> None:
        """A good load: earlier load crashes were not the version's fault."""
        self._loading.pop(key, None)

    def note(self, key: Key, op: str, code: int | None, now: float) -> str | None:
        """Record that a worker died at ``now`` while loading (op "load") or predicting with
        ``key``; the reason it has failed, or None while it may go on."""
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if op == "load":
            times = _add_incident(self._loading.get(key, []), now)
            self._loading[key] = times
            if len(times) >= LOAD_CRASHES:
                return f"version {key[1]} crashes its worker process while loading ({how})"
            return None
        times = _add_incident([t for t in self._serving.get(key, []) if now - t < WINDOW], now)
        self._serving[key] = times
        if len(times) >= SERVE_CRASHES:
            return (
                f"version {key[1]} crashed its worker process {len(times)} times in a minute "
                f"while predicting ({how}); roll back or deploy another version"
            )
        return None


def _add_incident(times: list[float], now: float) -> list[float]:
    if times and now - times[-1] < INCIDENT:
        return times  # another worker of the same incident
    return [*times, now]
