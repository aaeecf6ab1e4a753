"""Params, metrics and tags a cell logged, stored by its execute_request msg_id."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ..schemas import ExecutionLogs, LogBatch, MetricPoint
from ..store import NotFound, Store
from ..store.engine import write_transaction
from ..store.errors import NotOwner
from ..store.tables import execution_logs, executions


class ExecutionLogStore:
    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def add(self, batch: LogBatch, sender: str | None = None) -> int:
        """Store what a cell logged. ``sender`` (the team member; None in embedded mode) may
        only log to executions of their own: another member's stay as they recorded them."""
        # The kernel's logging time: a batch buffered while the server was down keeps it.
        at = batch.at or datetime.now(timezone.utc)
        rows: list[dict[str, Any]] = [
            {"kind": "param", "key": k, "value": v, "step": None} for k, v in batch.params.items()
        ]
        rows += [
            {"kind": "metric", "key": k, "value": v, "step": batch.step}
            for k, v in batch.metrics.items()
        ]
        rows += [{"kind": "tag", "key": k, "value": v, "step": None} for k, v in batch.tags.items()]
        if not rows:
            return 0
        for row in rows:
            row.update(msg_id=batch.msg_id, at=at)
        with write_transaction(self.engine) as conn:
            if sender is not None:
                _check_owner(conn, batch.msg_id, sender)
            conn.execute(sa.insert(execution_logs), rows)
        return len(rows)

    def for_execution(self, execution_id: int) -> ExecutionLogs:
        with self.engine.connect() as conn:
            msg_id = conn.scalar(
                sa.select(executions.c.msg_id).where(executions.c.id == execution_id)
            )
            if msg_id is None:
                raise NotFound(f"no execution with id {execution_id}")
            return self.for_msg_id(msg_id, conn)

    def for_msg_id(self, msg_id: str, conn: sa.Connection | None = None) -> ExecutionLogs:
        q = (
            sa.select(execution_logs)
            .where(execution_logs.c.msg_id == msg_id)
            .order_by(execution_logs.c.id)
        )
        if conn is None:
            with self.engine.connect() as own:
                rows = list(own.execute(q))
        else:
            rows = list(conn.execute(q))
        logs = ExecutionLogs(params={}, metrics={}, tags={})
        for r in rows:  # in insertion order, so the latest param or tag wins
            if r.kind == "param":
                logs.params[r.key] = r.value
            elif r.kind == "tag":
                logs.tags[r.key] = r.value
            else:
                logs.metrics.setdefault(r.key, []).append(
                    MetricPoint(value=r.value, step=r.step, at=r.at)
                )
        return logs


def _check_owner(conn: sa.Connection, msg_id: str, sender: str) -> None:
    owner = conn.scalar(sa.select(executions.c.owner).where(executions.c.msg_id == msg_id))
    if owner is not None and owner != sender:
        raise NotOwner(f"execution {msg_id} was recorded by {owner}; only they can log to it")
