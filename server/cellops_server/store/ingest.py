"""Writing a batch of tap records into the store, in one transaction.

Idempotent: executions are keyed by execute_request msg_id and runs by the tap's
run key, so replaying a spool or receiving the same record twice changes nothing.
Notebook versions are computed here, under a lock on the notebook row, so two
servers ingesting into one notebook never number a version twice.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from .blobs import FileBlobStore, sha256_hex
from .records import ExecutionRecord, RecordLike, RecoverRecord, RenameRecord, RunRecord
from .tables import executions, notebooks, runs, texts, versions

CHUNK = 500


@dataclass
class VersionState:
    """The executed state of one notebook: ordered (cell id, code sha) pairs."""

    number: int
    cells: list[tuple[str, str]] = field(default_factory=list)

    def apply(self, cell_id: str | None, code_sha: str, deleted: Sequence[str]) -> bool:
        """Apply one execution; answer whether the state changed."""
        changed = False
        if deleted:
            gone = set(deleted)
            kept = [c for c in self.cells if c[0] not in gone]
            changed = len(kept) != len(self.cells)
            self.cells = kept
        if cell_id is not None:
            for i, (cid, sha) in enumerate(self.cells):
                if cid == cell_id:
                    if sha != code_sha:
                        self.cells[i] = (cell_id, code_sha)
                        changed = True
                    break
            else:
                self.cells.append((cell_id, code_sha))
                changed = True
        return changed


@dataclass
class NewVersion:
    notebook_id: int
    msg_id: str  # of the execution that produced it
    number: int
    cells: list[tuple[str, str]]
    at: datetime


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass
class Rejection:
    """A record the store will not keep, and why (the rest of its batch still lands)."""

    record: RecordLike
    reason: str


class Ingestor:
    """One batch's worth of work; create one per transaction."""

    def __init__(self, conn: sa.Connection, blobs: FileBlobStore) -> None:
        self.conn = conn
        self.blobs = blobs
        self.rejected: list[Rejection] = []  # set aside by reject(); the caller reports them
        self.notebook_ids: dict[str, int] = {}
        self.run_ids: dict[str, int] = {}
        self.new_texts: dict[str, str] = {}  # sha256 → text, written once per batch

    # -- entry point -----------------------------------------------------------

    def reject(self, record: RecordLike, reason: str) -> None:
        """Set ``record`` aside: it is not stored, and its reason is reported."""
        self.rejected.append(Rejection(record, reason))

    def ingest(self, records: Sequence[RecordLike]) -> int:
        # A rename or a recovery applies between the records before it and those after it.
        segment: list[RecordLike] = []
        for record in records:
            if isinstance(record, RenameRecord | RecoverRecord):
                self._ingest_segment(segment)
                self._rename(record) if isinstance(record, RenameRecord) else self._recover(record)
                segment = []
            else:
                segment.append(record)
        self._ingest_segment(segment)
        return len(records)

    def _ingest_segment(self, records: Sequence[RecordLike]) -> None:
        run_records = [r for r in records if isinstance(r, RunRecord)]
        exec_records = _coalesce([r for r in records if isinstance(r, ExecutionRecord)])
        paths = {r.notebook for r in run_records} | {r.notebook for r in exec_records}
        if paths:
            self._lock_notebooks(sorted(paths))
        self._upsert_runs(run_records)
        self._upsert_executions(exec_records)

    def _rename(self, rec: RenameRecord) -> None:
        """Move the notebook at ``from_path`` (or every notebook under that folder)."""
        source, target = rec.from_path.strip("/"), rec.to_path.strip("/")
        moves = [(source, target)]
        under = self.conn.scalars(
            sa.select(notebooks.c.path).where(
                notebooks.c.path.startswith(source + "/", autoescape=True)
            )
        )
        moves += [(path, target + path[len(source) :]) for path in under]
        for old, new in moves:
            taken = self.conn.scalar(sa.select(notebooks.c.id).where(notebooks.c.path == new))
            if taken is None:  # never merge two histories: an existing target keeps its own
                self.conn.execute(
                    notebooks.update().where(notebooks.c.path == old).values(path=new)
                )
        self.notebook_ids.clear()

    # -- notebooks -------------------------------------------------------------

    def _lock_notebooks(self, paths: list[str]) -> None:
        now = _now()
        dialect = self.conn.dialect.name
        stmt = _insert(dialect, notebooks).on_conflict_do_nothing(index_elements=["path"])
        for chunk in _chunks(paths):
            self.conn.execute(
                stmt, [{"path": p, "created_at": now, "last_activity_at": now} for p in chunk]
            )
            rows = self.conn.execute(
                sa.select(notebooks.c.id, notebooks.c.path)
                .where(notebooks.c.path.in_(chunk))
                .order_by(notebooks.c.id)
                .with_for_update()
            )
            self.notebook_ids.update({path: nid for nid, path in rows})

    # -- runs --------------------------------------------------------------------

    def _upsert_runs(self, records: list[RunRecord]) -> None:
        if not records:
            return
        latest = {r.key: r for r in records}
        dialect = self.conn.dialect.name
        stmt = _insert(dialect, runs)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "kernel_session": sa.func.coalesce(
                    stmt.excluded.kernel_session, runs.c.kernel_session
                ),
                "ended_at": sa.func.coalesce(stmt.excluded.ended_at, runs.c.ended_at),
                "git": sa.func.coalesce(stmt.excluded.git, runs.c.git),
                "kernel_spec": sa.func.coalesce(stmt.excluded.kernel_spec, runs.c.kernel_spec),
            },
        )
        keys = list(latest)
        self._resolve_run_ids(keys)  # the runs already stored are not counted again
        fresh = [r for r in latest.values() if r.key not in self.run_ids]
        rows = [
            {
                "key": r.key,
                "notebook_id": self.notebook_ids[r.notebook],
                "kernel_id": r.kernel_id,
                "kernel_session": r.kernel_session,
                "user_name": r.user,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "git": r.git,
                "kernel_spec": r.kernel_spec,
                "source": r.source,
                "instance": r.instance,
            }
            for r in latest.values()
        ]
        self.conn.execute(stmt, rows)
        self._add_counts("runs_count", Counter(self.notebook_ids[r.notebook] for r in fresh))
        self._resolve_run_ids(keys)

    def _resolve_run_ids(self, keys: Iterable[str]) -> None:
        missing = [k for k in set(keys) if k not in self.run_ids]
        for chunk in _chunks(missing):
            rows = self.conn.execute(sa.select(runs.c.key, runs.c.id).where(runs.c.key.in_(chunk)))
            self.run_ids.update({k: i for k, i in rows})

    def _placeholder_runs(self, records: list[ExecutionRecord]) -> None:
        """A run the store never saw (its record was lost): keep its executions anyway."""
        self._resolve_run_ids(r.run_key for r in records)
        orphans = {r.run_key: r for r in records if r.run_key not in self.run_ids}
        if orphans:
            self._upsert_runs(
                [
                    RunRecord(
                        key=key,
                        notebook=r.notebook,
                        kernel_id="unknown",
                        started_at=r.started_at,
                        source="unknown",
                        instance="unknown",
                    )
                    for key, r in orphans.items()
                ]
            )

    # -- executions -----------------------------------------------------------------

    def _upsert_executions(self, records: list[ExecutionRecord]) -> None:
        if not records:
            return
        self._placeholder_runs(records)
        existing: dict[str, tuple[int, str]] = {}
        for chunk in _chunks([r.msg_id for r in records]):
            rows = self.conn.execute(
                sa.select(executions.c.msg_id, executions.c.id, executions.c.status).where(
                    executions.c.msg_id.in_(chunk)
                )
            )
            existing.update({m: (i, s) for m, i, s in rows})
        new = [r for r in records if r.msg_id not in existing]
        # A late "running" snapshot never overrides a finished execution.
        updates = [
            r
            for r in records
            if r.msg_id in existing
            and not (r.status == "running" and existing[r.msg_id][1] != "running")
        ]
        if new:
            self._insert_new(new)
        if updates:
            self.conn.execute(
                executions.update()
                .where(executions.c.id == sa.bindparam("_id"))
                .values(
                    run_id=sa.bindparam("run_id"),
                    status=sa.bindparam("status"),
                    started_at=sa.bindparam("started_at"),
                    finished_at=sa.bindparam("finished_at"),
                    duration_ms=sa.bindparam("duration_ms"),
                    execution_count=sa.bindparam("execution_count"),
                    error=sa.bindparam("error"),
                    outputs=sa.bindparam("outputs"),
                ),
                [{"_id": existing[r.msg_id][0], **self._mutable_fields(r)} for r in updates],
            )
        self._touch_notebooks(records)

    def _mutable_fields(self, r: ExecutionRecord) -> dict[str, Any]:
        duration = None
        if r.finished_at is not None:
            duration = round((r.finished_at - r.started_at).total_seconds() * 1000, 3)
        return {
            "run_id": self.run_ids[r.run_key],
            "status": r.status,
            "started_at": r.started_at,
            "finished_at": r.finished_at,
            "duration_ms": duration,
            "execution_count": r.execution_count,
            "error": r.error.model_dump() if r.error else None,
            "outputs": [self._store_output(o) for o in r.outputs],
        }

    def _insert_new(self, records: list[ExecutionRecord]) -> None:
        states: dict[int, VersionState] = {}
        rows: list[dict[str, Any]] = []
        new_versions: list[NewVersion] = []
        for r in records:
            nb = self.notebook_ids[r.notebook]
            code_sha = self._text(r.code)
            state = states.get(nb) or self._latest_version(nb)
            states[nb] = state
            if state.apply(r.cell_id, code_sha, r.deleted_cells):
                state.number += 1
                new_versions.append(
                    NewVersion(nb, r.msg_id, state.number, list(state.cells), r.started_at)
                )
            rows.append(
                {
                    "msg_id": r.msg_id,
                    "notebook_id": nb,
                    "seq": r.seq,
                    "cell_id": r.cell_id,
                    "code_sha": code_sha,
                    "version_number": state.number or None,
                    **self._mutable_fields(r),
                }
            )
        # A plain executemany (no RETURNING): psycopg pipelines it and parses it once.
        self.conn.execute(executions.insert(), rows)
        if new_versions:
            self._insert_versions(new_versions)
        self._write_texts()
        self._add_counts("executions_count", Counter(row["notebook_id"] for row in rows))

    def _insert_versions(self, new_versions: list[NewVersion]) -> None:
        ids: dict[str, int] = {}
        for chunk in _chunks([v.msg_id for v in new_versions]):
            found = self.conn.execute(
                sa.select(executions.c.msg_id, executions.c.id).where(
                    executions.c.msg_id.in_(chunk)
                )
            )
            ids.update({m: i for m, i in found})
        self.conn.execute(
            versions.insert(),
            [
                {
                    "notebook_id": v.notebook_id,
                    "number": v.number,
                    "created_at": v.at,
                    "execution_id": ids[v.msg_id],
                    "cells_sha": self._text(json.dumps(v.cells, separators=(",", ":"))),
                    "cells_count": len(v.cells),
                }
                for v in new_versions
            ],
        )
        self._add_counts("versions_count", Counter(v.notebook_id for v in new_versions))

    def _latest_version(self, notebook_id: int) -> VersionState:
        row = self.conn.execute(
            sa.select(versions.c.number, versions.c.cells_sha)
            .where(versions.c.notebook_id == notebook_id)
            .order_by(versions.c.number.desc())
            .limit(1)
        ).first()
        if row is None:
            return VersionState(0)
        body = self.new_texts.get(row.cells_sha) or self.conn.scalar(
            sa.select(texts.c.body).where(texts.c.sha256 == row.cells_sha)
        )
        return VersionState(row.number, [(c, s) for c, s in json.loads(body or "[]")])

    # -- content-addressed text -----------------------------------------------------------

    def _text(self, body: str) -> str:
        sha = sha256_hex(body.encode("utf-8"))
        self.new_texts[sha] = body
        return sha

    def _write_texts(self) -> None:
        if not self.new_texts:
            return
        stmt = _insert(self.conn.dialect.name, texts).on_conflict_do_nothing(
            index_elements=["sha256"]
        )
        self.conn.execute(stmt, [{"sha256": k, "body": v} for k, v in self.new_texts.items()])
        self.new_texts.clear()

    def _store_output(self, output: dict[str, Any]) -> dict[str, Any]:
        """Binary payloads (base64 in the record) become blob references."""
        data = output.get("data")
        if not isinstance(data, dict):
            return output
        stored: dict[str, Any] = {}
        for mime, value in data.items():
            if isinstance(value, dict) and "b64" in value:
                try:
                    raw = base64.b64decode(value["b64"], validate=False)
                except (binascii.Error, ValueError):
                    stored[mime] = {"omitted": "invalid base64"}
                    continue
                stored[mime] = {"blob": self.blobs.put(raw), "size": len(raw)}
            else:
                stored[mime] = value
        return {**output, "data": stored}

    # -- recovery and counters ------------------------------------------------------

    def _recover(self, rec: RecoverRecord) -> None:
        """Runs of the same server's earlier processes are over, and so is what they ran."""
        earlier = sa.and_(runs.c.source == rec.source, runs.c.instance != rec.instance)
        self.conn.execute(
            executions.update()
            .where(
                executions.c.status == "running",
                executions.c.run_id.in_(sa.select(runs.c.id).where(earlier)),
            )
            .values(
                status="aborted", finished_at=sa.func.coalesce(executions.c.finished_at, rec.at)
            )
        )
        self.conn.execute(
            runs.update().where(earlier, runs.c.ended_at.is_(None)).values(ended_at=rec.at)
        )

    def _add_counts(self, column: str, counts: Counter[int]) -> None:
        if not counts:
            return
        col = notebooks.c[column]
        self.conn.execute(
            notebooks.update()
            .where(notebooks.c.id == sa.bindparam("_id"))
            .values({column: col + sa.bindparam("_n")}),
            [{"_id": nb, "_n": n} for nb, n in counts.items()],
        )

    def _touch_notebooks(self, records: list[ExecutionRecord]) -> None:
        latest: dict[int, datetime] = {}
        for r in records:
            nb = self.notebook_ids[r.notebook]
            at = r.finished_at or r.started_at
            if nb not in latest or at > latest[nb]:
                latest[nb] = at
        self.conn.execute(
            notebooks.update()
            .where(
                notebooks.c.id == sa.bindparam("_id"),
                notebooks.c.last_activity_at < sa.bindparam("_at"),
            )
            .values(last_activity_at=sa.bindparam("_at")),
            [{"_id": nb, "_at": at} for nb, at in latest.items()],
        )


def _coalesce(records: list[ExecutionRecord]) -> list[ExecutionRecord]:
    """Keep the last record per msg_id, in order of first appearance."""
    last: dict[str, ExecutionRecord] = {}
    for r in records:
        last[r.msg_id] = r
    return list(last.values())


def _insert(dialect: str, table: sa.Table) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _now() -> datetime:
    return datetime.now(timezone.utc)
