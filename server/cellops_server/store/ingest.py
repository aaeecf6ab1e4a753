"""Writing a batch of tap records into the store, in one transaction.

Idempotent: executions are keyed by execute_request msg_id and runs by the tap's
run key, so replaying a spool or receiving the same record twice changes nothing.
Notebook versions are computed here, under a lock on the notebook row, so two
servers ingesting into one notebook never number a version twice.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ..identity import normalize_remote, notebook_key
from ..review.activity import record_activity
from .blobs import FileBlobStore, sha256_hex
from .records import (
    CopyRecord,
    ExecutionRecord,
    RecordLike,
    RecoverRecord,
    RenameRecord,
    RunRecord,
)
from .tables import executions, notebooks, runs, texts, versions
from .version_storage import (
    MAX_CELLS_PER_NOTEBOOK,
    Cell,
    Delta,
    VersionState,
    delta_columns,
    load_state,
    snapshot_json,
)

CHUNK = 500


@dataclass
class NewVersion:
    notebook_id: int
    msg_id: str  # of the execution that produced it
    number: int
    delta: Delta
    cells_count: int
    snapshot: list[Cell] | None  # the full cell list, on the versions that keep one
    at: datetime


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass
class Rejection:
    """A record the store will not keep, and why (the rest of its batch still lands)."""

    record: RecordLike
    reason: str


PLACEHOLDER_SOURCE = "unknown"  # of a run whose own record never arrived


@dataclass(frozen=True)
class NotebookIdentity:
    """Which notebook a run records into (identity.py): its owner's file, or a git file."""

    path: str
    owner: str | None
    repo: str | None = None
    repo_path: str | None = None

    @property
    def key(self) -> str:
        return notebook_key(self.path, self.owner, self.repo, self.repo_path)

    def row(self, at: datetime) -> dict[str, Any]:
        return {
            "key": self.key,
            "path": self.path,
            # A git notebook is its repository's, whoever opened it first.
            "owner": None if self.repo else self.owner,
            "repo": self.repo,
            "repo_path": self.repo_path,
            "created_at": at,
            "last_activity_at": at,
        }


@dataclass(frozen=True)
class Owner:
    """Whom a run or an execution belongs to: the member who first sent it (in embedded mode,
    the run's user, unchecked: one person uses the store) and the server that recorded it."""

    user: str | None
    source: str | None


class Ingestor:
    """One batch's worth of work; create one per transaction.

    ``sender`` is the team member whose token sent the batch (None in embedded mode): the
    runs and executions they first send are theirs, and only theirs to send again.
    """

    def __init__(
        self, conn: sa.Connection, blobs: FileBlobStore, sender: str | None = None
    ) -> None:
        self.conn = conn
        self.blobs = blobs
        self.sender = sender
        self.rejected: list[Rejection] = []  # set aside by reject(); the caller reports them
        self.notebook_ids: dict[str, int] = {}  # identity key → notebook id
        self.run_ids: dict[str, int] = {}
        self.run_notebooks: dict[str, int] = {}  # run key → its notebook's id
        self.run_owners: dict[str, Owner] = {}
        self.superseded: dict[int, list[ExecutionRecord]] = {}  # id(last record) → earlier ones
        self.new_texts: dict[str, str] = {}  # sha256 → text, written once per batch

    # -- entry point -----------------------------------------------------------

    def reject(self, record: RecordLike, reason: str) -> None:
        """Set ``record`` aside: it is not stored, and its reason is reported (so are the
        earlier records of its msg_id in the batch, which it replaced)."""
        self.rejected.append(Rejection(record, reason))
        for earlier in self.superseded.pop(id(record), []):
            self.rejected.append(Rejection(earlier, reason))

    def _refusal(self, what: str, owner: Owner, source: str | None) -> str | None:
        """Why the sender, recording from ``source``, may not write ``what``; None if it may."""
        if self.sender is not None and owner.user != self.sender:
            return f"{what} belongs to {owner.user or 'nobody known'}: only they can change it"
        if owner.source not in (source, PLACEHOLDER_SOURCE, None):
            return f"{what} was recorded by server {owner.source!r}, not by {source!r}"
        return None

    def ingest(self, records: Sequence[RecordLike]) -> int:
        # A rename or a recovery applies between the records before it and those after it.
        segment: list[RecordLike] = []
        for record in records:
            if isinstance(record, RenameRecord | RecoverRecord | CopyRecord):
                self._ingest_segment(segment)
                if isinstance(record, RenameRecord):
                    self._rename(record)
                elif isinstance(record, CopyRecord):
                    self._copy(record)
                else:
                    self._recover(record)
                segment = []
            else:
                segment.append(record)
        self._ingest_segment(segment)
        return len(records)

    def _ingest_segment(self, records: Sequence[RecordLike]) -> None:
        run_records = [r for r in records if isinstance(r, RunRecord)]
        exec_records = self._coalesce([r for r in records if isinstance(r, ExecutionRecord)])
        self._resolve_run_ids([r.key for r in run_records] + [r.run_key for r in exec_records])
        new_runs = {r.key: r for r in run_records if r.key not in self.run_ids}
        identities = {self.identity(r) for r in new_runs.values()}
        # Executions of a run the store never saw go to the sender's file at their path.
        identities |= {
            NotebookIdentity(r.notebook.strip("/"), self.sender)
            for r in exec_records
            if r.run_key not in self.run_ids and r.run_key not in new_runs
        }
        stored = {self.run_notebooks[k] for k in self.run_ids if k in self.run_notebooks}
        if identities or stored:
            self._lock_notebooks(identities, stored)
        self._upsert_runs(run_records)
        self._upsert_executions(exec_records)

    def _coalesce(self, records: list[ExecutionRecord]) -> list[ExecutionRecord]:
        """Keep the last record per msg_id, in order of first appearance."""
        last: dict[str, ExecutionRecord] = {}
        for r in records:
            if (before := last.get(r.msg_id)) is not None:
                self.superseded[id(r)] = [*self.superseded.pop(id(before), []), before]
            last[r.msg_id] = r
        return list(last.values())

    def identity(self, r: RunRecord) -> NotebookIdentity:
        """The notebook a new run records into: the git file if the run's notebook is in a
        repository with a remote, else the sender's own file at its path."""
        path = r.notebook.strip("/")
        if r.repo and r.repo_path:
            return NotebookIdentity(path, self.sender, normalize_remote(r.repo), r.repo_path)
        return NotebookIdentity(path, self.sender)

    def _own(self, where: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        """The sender's own (non-git) notebooks among those ``where`` selects."""
        return sa.and_(
            where, notebooks.c.owner.is_not_distinct_from(self.sender), notebooks.c.repo.is_(None)
        )

    def _rename(self, rec: RenameRecord) -> None:
        """Move the sender's notebook at ``from_path`` (or their notebooks under that folder).
        Other members' notebooks at the same paths are theirs: never moved."""
        source, target = rec.from_path.strip("/"), rec.to_path.strip("/")
        rows = self.conn.execute(
            sa.select(notebooks.c.id, notebooks.c.path).where(self._own(_at_or_under(source)))
        ).all()
        if not rows and self.sender is not None and self._others_at(source):
            self.reject(
                rec,
                f"{source!r} has runs by other members only: only your own notebooks "
                "can be renamed",
            )
            return
        for notebook_id, old in rows:
            new = target + old[len(source) :]
            moved = NotebookIdentity(new, self.sender)
            taken = self.conn.scalar(sa.select(notebooks.c.id).where(notebooks.c.key == moved.key))
            if taken is None:  # never merge two histories: an existing target keeps its own
                self.conn.execute(
                    notebooks.update()
                    .where(notebooks.c.id == notebook_id)
                    .values(path=new, key=moved.key)
                )
        self.notebook_ids.clear()

    def _others_at(self, path: str) -> bool:
        """Whether other members have notebooks at ``path`` or under it."""
        found = self.conn.scalar(
            sa.select(notebooks.c.id).where(
                _at_or_under(path), notebooks.c.owner.is_distinct_from(self.sender)
            )
        )
        return found is not None

    def _copy(self, rec: CopyRecord) -> None:
        """A copy of the sender's notebook starts its own (empty) history, linked to the
        original; a path that already has a history of the sender's keeps it."""
        source = self.conn.scalar(
            sa.select(notebooks.c.id).where(self._own(notebooks.c.path == rec.from_path.strip("/")))
        )
        if source is None:
            return  # the original was never recorded: nothing to link to
        copy = NotebookIdentity(rec.to_path.strip("/"), self.sender).row(rec.at)
        stmt = _insert(self.conn.dialect.name, notebooks).on_conflict_do_nothing(
            index_elements=["key"]
        )
        self.conn.execute(stmt, [{**copy, "copied_from": source}])

    # -- notebooks -------------------------------------------------------------

    def _lock_notebooks(self, identities: set[NotebookIdentity], ids: set[int]) -> None:
        """Create the notebooks new runs record into, and lock them and those of stored runs
        (in id order, so two batches never wait on each other)."""
        now = _now()
        stmt = _insert(self.conn.dialect.name, notebooks).on_conflict_do_nothing(
            index_elements=["key"]
        )
        ordered = sorted(identities, key=lambda i: i.key)
        for chunk in _chunks(ordered):
            self.conn.execute(stmt, [i.row(now) for i in chunk])
        keys = [i.key for i in ordered]
        wanted = sa.or_(notebooks.c.key.in_(keys), notebooks.c.id.in_(sorted(ids)))
        rows = self.conn.execute(
            sa.select(notebooks.c.id, notebooks.c.key)
            .where(wanted)
            .order_by(notebooks.c.id)
            .with_for_update()
        )
        self.notebook_ids.update({key: nid for nid, key in rows})

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
                # A headless run's fields; a placeholder stored before its record became one.
                "origin": sa.case(
                    (stmt.excluded.origin == "headless", stmt.excluded.origin),
                    else_=runs.c.origin,
                ),
                "parameters": sa.func.coalesce(stmt.excluded.parameters, runs.c.parameters),
                "ci": sa.func.coalesce(stmt.excluded.ci, runs.c.ci),
                "outcome": sa.func.coalesce(stmt.excluded.outcome, runs.c.outcome),
            },
            # A run another member stored since _own_runs looked is left alone (a race).
            where=runs.c.user_name == stmt.excluded.user_name if self.sender else None,
        )
        self._resolve_run_ids(latest)  # the runs already stored are not counted again
        latest = self._own_runs(records, latest)
        if not latest:
            return
        keys = list(latest)
        fresh = [r for r in latest.values() if r.key not in self.run_ids]
        finished = self._newly_finished(latest)
        rows = [
            {
                "key": r.key,
                # A stored run stays in its notebook (the upsert does not change it).
                "notebook_id": self.run_notebooks.get(r.key)
                or self.notebook_ids[self.identity(r).key],
                "kernel_id": r.kernel_id,
                "kernel_session": r.kernel_session,
                # In team mode a run is its sender's, whatever name the record carries.
                "user_name": self.sender or r.user,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "git": r.git,
                "kernel_spec": r.kernel_spec,
                "source": r.source,
                "instance": r.instance,
                "origin": r.origin,
                "parameters": r.parameters,
                "ci": r.ci.model_dump() if r.ci else None,
                "outcome": r.outcome,
            }
            for r in latest.values()
        ]
        self.conn.execute(stmt, rows)
        self._add_counts(
            "runs_count", Counter(self.notebook_ids[self.identity(r).key] for r in fresh)
        )
        self._resolve_run_ids(keys)
        self._record_started(fresh)
        self._record_finished(finished)

    def _newly_finished(self, latest: dict[str, RunRecord]) -> list[RunRecord]:
        """Headless runs whose end (outcome) this batch brings first: a replay adds nothing."""
        ending = [r for r in latest.values() if r.origin == "headless" and r.outcome]
        if not ending:
            return []
        known = dict(
            self.conn.execute(
                sa.select(runs.c.key, runs.c.outcome).where(runs.c.key.in_([r.key for r in ending]))
            ).all()
        )
        return [r for r in ending if known.get(r.key) is None]

    def _record_finished(self, finished: list[RunRecord]) -> None:
        """A headless run ended ("run.finished", for the feed and webhooks), in its
        transaction. Interactive runs never finish in this sense: a kernel just stops."""
        for r in finished:
            identity = self.identity(r)
            record_activity(
                self.conn,
                "run.finished",
                self.sender or r.user,
                notebook=identity.path,
                notebook_id=self.run_notebooks.get(r.key) or self.notebook_ids[identity.key],
                data={
                    "run_id": self.run_ids[r.key],
                    "source": "headless",
                    "outcome": r.outcome,
                    "parameters": r.parameters,
                    "ci": r.ci.model_dump() if r.ci else None,
                },
            )

    def _record_started(self, fresh: list[RunRecord]) -> None:
        """The team's feed shows each run first stored ("run.started"), in its transaction."""
        for r in fresh:
            identity = self.identity(r)
            record_activity(
                self.conn,
                "run.started",
                self.sender or r.user,
                notebook=identity.path,
                notebook_id=self.notebook_ids[identity.key],
                data={"run_id": self.run_ids[r.key]},
            )

    def _own_runs(
        self, records: list[RunRecord], latest: dict[str, RunRecord]
    ) -> dict[str, RunRecord]:
        """The runs of ``latest`` the sender may write: new ones, and stored ones of theirs."""
        refused = {
            key: reason
            for key, r in latest.items()
            if key in self.run_owners
            and (reason := self._refusal(f"run {key!r}", self.run_owners[key], r.source))
        }
        for r in records:
            if r.key in refused:
                self.reject(r, refused[r.key])
        return {key: r for key, r in latest.items() if key not in refused}

    def _resolve_run_ids(self, keys: Iterable[str]) -> None:
        missing = [k for k in set(keys) if k not in self.run_ids]
        for chunk in _chunks(missing):
            rows = self.conn.execute(
                sa.select(
                    runs.c.key, runs.c.id, runs.c.user_name, runs.c.source, runs.c.notebook_id
                ).where(runs.c.key.in_(chunk))
            )
            for key, run_id, user, source, notebook_id in rows:
                self.run_ids[key] = run_id
                self.run_owners[key] = Owner(user, source)
                self.run_notebooks[key] = notebook_id

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
                        source=PLACEHOLDER_SOURCE,
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
        owners: dict[str, Owner] = {}
        for chunk in _chunks([r.msg_id for r in records]):
            rows = self.conn.execute(
                sa.select(
                    executions.c.msg_id,
                    executions.c.id,
                    executions.c.status,
                    executions.c.owner,
                    executions.c.source,
                ).where(executions.c.msg_id.in_(chunk))
            )
            for msg_id, row_id, status, user, source in rows:
                existing[msg_id] = (row_id, status)
                owners[msg_id] = Owner(user, source)
        records = [r for r in records if self._may_write(r, owners.get(r.msg_id))]
        if not records:
            return
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

    def _may_write(self, r: ExecutionRecord, stored: Owner | None) -> bool:
        """Whether the sender may write ``r`` into its run (and over ``stored``'s execution);
        if not, ``r`` is set aside."""
        run = self.run_owners[r.run_key]
        reason = self._refusal(f"run {r.run_key!r}", run, run.source)
        if reason is None and stored is not None:
            reason = self._refusal(f"execution {r.msg_id!r}", stored, run.source)
        if reason is not None:
            self.reject(r, reason)
        return reason is None

    def _owner_columns(self, r: ExecutionRecord) -> dict[str, Any]:
        """A new execution belongs to its run's owner (the sender, checked by _may_write)."""
        run = self.run_owners[r.run_key]
        return {"owner": run.user, "source": run.source}

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
        first_cells: dict[int, str] = {}  # notebook with no version yet → its first cell id
        for r in records:
            nb = self.run_notebooks[r.run_key]  # an execution is in its run's notebook
            state = states.get(nb) or self._latest_version(nb)
            states[nb] = state
            if state.number == 0 and r.cell_id and nb not in first_cells:
                first_cells[nb] = r.cell_id
            if state.would_outgrow(r.cell_id, r.deleted_cells):
                self.reject(r, _too_many_cells(r.notebook, len(state.cells)))
                continue
            code_sha = self._text(r.code)
            delta = state.apply(r.cell_id, code_sha, r.deleted_cells)
            if delta is not None:
                snapshot = state.next_version()
                new_versions.append(
                    NewVersion(
                        nb, r.msg_id, state.number, delta, len(state.cells), snapshot, r.started_at
                    )
                )
            rows.append(
                {
                    "msg_id": r.msg_id,
                    "notebook_id": nb,
                    "seq": r.seq,
                    "cell_id": r.cell_id,
                    "code_sha": code_sha,
                    "version_number": state.number or None,
                    **self._owner_columns(r),
                    **self._mutable_fields(r),
                }
            )
        if not rows:
            return
        # A plain executemany (no RETURNING): psycopg pipelines it and parses it once.
        self.conn.execute(executions.insert(), rows)
        if new_versions:
            self._insert_versions(new_versions)
        self._write_texts()
        self._add_counts("executions_count", Counter(row["notebook_id"] for row in rows))
        self._link_copies(first_cells)

    def _link_copies(self, first_cells: dict[int, str]) -> None:
        """A new notebook whose first executed cell is a cell of another of the sender's
        notebooks was copied from it ("Save as", a copy made outside Jupyter, a restore: a
        copy keeps its cells' ids). It keeps its own history, linked to the original."""
        for notebook_id, cell_id in first_cells.items():
            other = notebooks.alias("other")
            has_cell = sa.exists().where(
                executions.c.notebook_id == other.c.id, executions.c.cell_id == cell_id
            )
            original = self.conn.scalar(
                sa.select(other.c.id)
                .where(
                    other.c.id != notebook_id,
                    other.c.owner.is_not_distinct_from(self.sender),
                    other.c.repo.is_(None),
                    has_cell,
                )
                .order_by(other.c.last_activity_at.desc(), other.c.id.desc())
                .limit(1)
            )
            if original is not None:
                self.conn.execute(
                    notebooks.update()
                    .where(
                        notebooks.c.id == notebook_id,
                        notebooks.c.copied_from.is_(None),
                        notebooks.c.repo.is_(None),
                    )
                    .values(copied_from=original)
                )

    def _insert_versions(self, new_versions: list[NewVersion]) -> None:
        # The executions were inserted without RETURNING (so psycopg pipelines them): each
        # version finds its execution's id by msg_id within the same statement.
        execution_id = (
            sa.select(executions.c.id)
            .where(executions.c.msg_id == sa.bindparam("msg_id"))
            .scalar_subquery()
        )
        self.conn.execute(
            versions.insert().values(execution_id=execution_id),
            [
                {
                    "notebook_id": v.notebook_id,
                    "number": v.number,
                    "created_at": v.at,
                    "msg_id": v.msg_id,
                    "cells_sha": self._snapshot_text(v.snapshot),
                    "cells_count": v.cells_count,
                    **delta_columns(v.delta),
                }
                for v in new_versions
            ],
        )
        self._add_counts("versions_count", Counter(v.notebook_id for v in new_versions))

    def _snapshot_text(self, cells: list[Cell] | None) -> str | None:
        return None if cells is None else self._text(snapshot_json(cells))

    def _latest_version(self, notebook_id: int) -> VersionState:
        """One snapshot and the deltas after it: never the notebook's whole history."""
        return load_state(self.conn, notebook_id, unwritten_texts=self.new_texts.get)

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
        if self.sender is not None:  # a member ends only their own runs
            earlier = sa.and_(earlier, runs.c.user_name == self.sender)
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
            nb = self.run_notebooks[r.run_key]
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


def _at_or_under(path: str) -> sa.ColumnElement[bool]:
    """Notebooks at ``path``, or under it as a folder."""
    return sa.or_(
        notebooks.c.path == path, notebooks.c.path.startswith(path + "/", autoescape=True)
    )


def _too_many_cells(notebook: str, cells: int) -> str:
    return (
        f"notebook {notebook!r} has {cells:,} cells and a notebook may have at most "
        f"{MAX_CELLS_PER_NOTEBOOK:,}: this execution adds a cell, so it is not recorded "
        "(delete cells, or split the notebook)"
    )


def _insert(dialect: str, table: sa.Table) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _now() -> datetime:
    return datetime.now(timezone.utc)
