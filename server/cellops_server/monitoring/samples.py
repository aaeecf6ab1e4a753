"""Samples of served requests: inputs with their predictions, bounded per deployment.

One stored row per sampled input row (``inputs``: a list of feature values in the
signature's order, or ``{column: value}``; ``predictions``: its prediction). The serving
router calls ``add_samples`` off the request path; the oldest rows beyond ``keep`` per
deployment are deleted in the same transaction, so the table stays bounded on disk.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from ..store.tables import deployment_samples

KEEP = 10_000
MAX_ROW_BYTES = 64 * 1024  # a larger input row is not kept (it would crowd out the rest)
MAX_WINDOW = 7 * 24 * 60  # minutes


@dataclass(frozen=True)
class Sample:
    version: int
    at: datetime
    inputs: list[Any] | dict[str, Any]
    prediction: Any


def add_samples(
    engine: sa.Engine,
    deployment: str,
    version: int,
    rows: Iterable[tuple[Any, Any]],
    keep: int = KEEP,
    at: datetime | None = None,
) -> int:
    """Store ``rows`` of (inputs row, prediction) served by ``deployment`` at ``version``, and
    delete its oldest samples beyond ``keep``. Answers how many rows were stored (rows
    over MAX_ROW_BYTES of JSON, or neither a list nor an object, are skipped)."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    when = at or datetime.now(timezone.utc)
    values = [
        {
            "deployment": deployment,
            "version": int(version),
            "at": when,
            "inputs": inputs,
            "predictions": prediction,
        }
        for inputs, prediction in (_clean(row) for row in rows)
        if inputs is not None
    ]
    with engine.begin() as conn:
        if values:
            conn.execute(sa.insert(deployment_samples), values)
        _prune(conn, deployment, keep)
    return len(values)


def recent_samples(
    engine: sa.Engine, deployment: str, window_minutes: int, limit: int = KEEP
) -> list[Sample]:
    """The deployment's samples of the last ``window_minutes``, newest first (at most
    ``limit``)."""
    if not 1 <= window_minutes <= MAX_WINDOW:
        raise ValueError(f"window must be between 1 and {MAX_WINDOW} minutes")
    since = datetime.now(timezone.utc) - timedelta(minutes=window_minutes)
    t = deployment_samples.c
    q = (
        sa.select(t.version, t.at, t.inputs, t.predictions)
        .where(t.deployment == deployment, t.at >= since)
        .order_by(t.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [Sample(r.version, r.at, r.inputs, r.predictions) for r in conn.execute(q)]


def forget_samples(conn: sa.Connection, deployment: str) -> None:
    """Remove a deleted deployment's samples (in its deleting transaction)."""
    conn.execute(sa.delete(deployment_samples).where(deployment_samples.c.deployment == deployment))


def _prune(conn: sa.Connection, deployment: str, keep: int) -> None:
    t = deployment_samples.c
    # The id of the newest row beyond ``keep`` (the index on (deployment, id) finds it).
    cutoff = conn.scalar(
        sa.select(t.id)
        .where(t.deployment == deployment)
        .order_by(t.id.desc())
        .offset(keep)
        .limit(1)
    )
    if cutoff is not None:
        conn.execute(
            sa.delete(deployment_samples).where(t.deployment == deployment, t.id <= cutoff)
        )


def _clean(row: Sequence[Any]) -> tuple[Any, Any]:
    """(inputs, prediction) as plain JSON (NaN and Infinity as null: PostgreSQL's JSON has
    neither); (None, None) for a row that is not kept."""
    try:
        inputs, prediction = row
    except (TypeError, ValueError):
        return None, None
    inputs, prediction = _plain(inputs), _plain(prediction)
    if not isinstance(inputs, (list, dict)):
        return None, None
    try:
        size = len(json.dumps([inputs, prediction], allow_nan=False))
    except (TypeError, ValueError):
        return None, None
    return (inputs, prediction) if size <= MAX_ROW_BYTES else (None, None)


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()  # numpy arrays and scalars
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    return str(value)
