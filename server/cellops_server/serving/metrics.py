"""Request metrics of deployments: stored per minute (this section) and counted in memory by
the router (the section below it).

# -- storage: per deployment, version and minute (deployment_metrics) ----------------------

The router adds what it counted into one row per (deployment, version, minute); the
latency histogram is kept as counts per bucket, from which p50/p95 are estimated the way
Prometheus's ``histogram_quantile`` does (linear within the bucket).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from ..schemas import DeploymentMinute
from ..store.engine import write_transaction
from ..store.tables import deployment_metrics

# Upper bounds (seconds) of the latency histogram's buckets, as Prometheus ``le`` values.
# ``MinuteRow.buckets`` holds one count per bound (requests slower than the previous bound,
# at most this one) and a last count for requests slower than the last bound.
BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
N_COUNTS = len(BUCKETS) + 1


@dataclass
class MinuteRow:
    deployment: str
    version: int
    minute: datetime  # the minute's start (UTC; seconds are dropped when stored)
    requests: int
    errors: int
    latency_sum: float  # seconds
    buckets: list[int] = field(default_factory=lambda: [0] * N_COUNTS)


def minute_of(at: datetime) -> datetime:
    """The start of the minute ``at`` falls in, in UTC."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).replace(second=0, microsecond=0)


def add_minutes(engine: sa.Engine, rows: Iterable[MinuteRow]) -> None:
    """Add the counts into the stored rows of the same (deployment, version, minute), in one
    transaction. Each row is created empty if missing, then locked and added to, so several
    routers (team replicas) writing the same minute never lose a count."""
    merged = _merge(rows)
    if not merged:
        return
    m = deployment_metrics
    with write_transaction(engine) as conn:
        insert = _insert(conn)
        for (name, version, minute), row in sorted(merged.items()):
            key = (m.c.deployment == name, m.c.version == version, m.c.minute == minute)
            conn.execute(
                insert(m)
                .values(
                    deployment=name,
                    version=version,
                    minute=minute,
                    requests=0,
                    errors=0,
                    latency_sum=0.0,
                    buckets=[0] * N_COUNTS,
                )
                .on_conflict_do_nothing(index_elements=["deployment", "version", "minute"])
            )
            stored = conn.execute(sa.select(m.c.buckets).where(*key).with_for_update()).scalar_one()
            conn.execute(
                sa.update(m)
                .where(*key)
                .values(
                    requests=m.c.requests + row.requests,
                    errors=m.c.errors + row.errors,
                    latency_sum=m.c.latency_sum + row.latency_sum,
                    buckets=_add(stored, row.buckets),
                )
            )


def read_minutes(engine: sa.Engine, name: str, window_minutes: int) -> list[DeploymentMinute]:
    """The deployment's minutes within the last ``window_minutes`` (the current one
    included), oldest first, one per version that served in it."""
    since = minute_of(datetime.now(timezone.utc)) - timedelta(minutes=window_minutes - 1)
    m = deployment_metrics
    q = (
        sa.select(m)
        .where(m.c.deployment == name, m.c.minute >= since)
        .order_by(m.c.minute, m.c.version)
    )
    with engine.connect() as conn:
        rows = list(conn.execute(q))
    return [
        DeploymentMinute(
            minute=r.minute,
            version=r.version,
            requests=r.requests,
            errors=r.errors,
            p50=quantile(r.buckets, 0.5),
            p95=quantile(r.buckets, 0.95),
        )
        for r in rows
    ]


def quantile(counts: list[int], q: float) -> float | None:
    """The ``q`` quantile of latencies from per-bucket counts, linear within its bucket
    (the first bucket starts at 0; past the last bound, the last bound is answered)."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            if i >= len(BUCKETS):
                return BUCKETS[-1]
            lower = BUCKETS[i - 1] if i > 0 else 0.0
            return lower + (BUCKETS[i] - lower) * (rank - seen) / count
        seen += count
    return BUCKETS[-1]


def _merge(rows: Iterable[MinuteRow]) -> dict[tuple[str, int, datetime], MinuteRow]:
    """Rows of the same key added together (one write per key), each checked."""
    out: dict[tuple[str, int, datetime], MinuteRow] = {}
    for row in rows:
        if len(row.buckets) != N_COUNTS:
            raise ValueError(f"buckets must hold {N_COUNTS} counts, not {len(row.buckets)}")
        key = (row.deployment, row.version, minute_of(row.minute))
        have = out.get(key)
        if have is None:
            out[key] = MinuteRow(*key, row.requests, row.errors, row.latency_sum, list(row.buckets))
        else:
            have.requests += row.requests
            have.errors += row.errors
            have.latency_sum += row.latency_sum
            have.buckets = _add(have.buckets, row.buckets)
    return out


def _add(a: list[int], b: list[int]) -> list[int]:
    if len(a) != len(b):  # stored under other BUCKETS: keep the new counts' shape
        a = [0] * len(b)
    return [x + y for x, y in zip(a, b, strict=True)]


def _insert(conn: sa.Connection):  # type: ignore[no-untyped-def]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


# -- in memory: the router's counters and Prometheus /metrics (serving/router.py) -----------
