"""The store: the one domain object the API handlers talk to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import TypeAdapter

from ..identity import notebook_key
from ..schemas import (
    Execution,
    ExecutionError,
    IngestResult,
    Notebook,
    Page,
    Run,
    Version,
    VersionDiff,
    VersionUpdate,
)
from ..versions import build_notebook, clean_name, described, diff_cells
from . import run_queries
from .blobs import FileBlobStore
from .engine import create_engine, migrate
from .pagination import (
    BY_ID,
    BY_NUMBER,
    BY_SEQ_AND_ID,
    decode_cursor,
    encode_cursor,
)
from .records import Record, RecordLike
from .run_queries import RunQuery
from .set_aside import ingest_batch
from .tables import executions, notebooks, runs, texts, versions
from .version_storage import load_state, set_marks, version_notes

MAX_LIMIT = 500
P = TypeVar("P", bound=Page[Any])
_records = TypeAdapter(list[Record])


class NotFound(LookupError):
    """No such object; the message names what was looked for."""


@dataclass(frozen=True)
class NotebookRef:
    """Which notebook ``?notebook=path`` means, for whom (see ``Store.notebook_id``)."""

    path: str
    caller: str | None = None  # the team member asking; None in embedded mode
    owner: str | None = None  # asked for explicitly: that member's notebook at ``path``
    repo: str | None = None  # the caller's file is in this git repository…
    repo_path: str | None = None  # …at this path within it
    own: bool = False  # the file is on the caller's disk: their notebook, never a teammate's


NotebookArg = str | NotebookRef
MAX_LISTED_OWNERS = 10


class Store:
    """Tracked notebooks, runs, executions and versions in SQL plus a blob store."""

    def __init__(self, db_url: str, artifacts_dir: str, *, auto_migrate: bool = True) -> None:
        self.engine = create_engine(db_url)
        self.blobs = FileBlobStore(artifacts_dir)
        self.migrated = False
        if auto_migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the schema up to date (once per process)."""
        if not self.migrated:
            migrate(self.engine)
            self.migrated = True

    def close(self) -> None:
        self.engine.dispose()

    # -- writing -------------------------------------------------------------------

    def ingest(self, records: Sequence[RecordLike], sender: str | None = None) -> IngestResult:
        """Store ``records`` (sent by the team member ``sender``; None in embedded mode).
        Those the store will not keep are set aside and reported; the rest land."""
        return ingest_batch(self.engine, self.blobs, records, sender)

    def ingest_json(self, raw: list[dict[str, Any]], sender: str | None = None) -> IngestResult:
        """Validate raw records (from the spool or over HTTP) and ingest them."""
        return self.ingest(_records.validate_python(raw), sender)

    # -- notebooks and runs -------------------------------------------------------------

    def list_notebooks(self, cursor: str | None = None, limit: int = 50) -> Page[Notebook]:
        """Every tracked notebook, most recently active first (notebook_queries.py)."""
        from .notebook_queries import NotebookFilter, list_team_notebooks  # imports this module

        return list_team_notebooks(self, NotebookFilter(), cursor, limit)

    def list_runs(
        self,
        notebook: NotebookArg | None = None,
        cursor: str | None = None,
        limit: int = 50,
        query: RunQuery | None = None,
    ) -> Page[Run]:
        """Runs newest first (or as ``query`` filters and sorts them): store/run_queries.py."""
        return run_queries.list_runs(self, notebook, cursor, limit, query)

    def get_run(self, run_id: int) -> Run:
        found = run_queries.describe_runs(self, [run_id])
        if not found:
            raise NotFound(f"no run with id {run_id}")
        return found[0]

    def _run_rows(self, run_ids: list[int]) -> dict[int, Any]:
        """Run rows (with their notebook's path) by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(runs, notebooks.c.path)
                .join(notebooks, notebooks.c.id == runs.c.notebook_id)
                .where(runs.c.id.in_(run_ids))
            )
            return {r.id: r for r in rows}

    def _run(self, r: Any, counts: tuple[int, int]) -> Run:
        return Run(
            id=r.id,
            notebook=r.path,
            kernel_id=r.kernel_id,
            user=r.user_name,
            started_at=r.started_at,
            ended_at=r.ended_at,
            git=r.git,
            kernel_spec=r.kernel_spec,
            executions=counts[0],
            errors=counts[1],
        )

    def _run_counts(self, run_ids: list[int]) -> dict[int, tuple[int, int]]:
        if not run_ids:
            return {}
        q = (
            sa.select(
                executions.c.run_id,
                sa.func.count(),
                sa.func.sum(sa.case((executions.c.status == "error", 1), else_=0)),
            )
            .where(executions.c.run_id.in_(run_ids))
            .group_by(executions.c.run_id)
        )
        with self.engine.connect() as conn:
            return {rid: (n, int(e or 0)) for rid, n, e in conn.execute(q)}

    # -- executions ----------------------------------------------------------------------

    def list_executions(
        self, run_id: int, cursor: str | None = None, limit: int = 100
    ) -> Page[Execution]:
        self.get_run(run_id)  # 404 for an unknown run rather than an empty list
        q = (
            self._execution_query()
            .where(executions.c.run_id == run_id)
            .order_by(executions.c.seq, executions.c.id)
        )
        key = decode_cursor(cursor, BY_SEQ_AND_ID)
        if key:
            q = q.where(
                sa.or_(
                    executions.c.seq > key[0],
                    sa.and_(executions.c.seq == key[0], executions.c.id > key[1]),
                )
            )
        return self._page(Page[Execution], q, limit, self._execution, lambda r: [r.seq, r.id])

    def list_notebook_executions(
        self,
        notebook: NotebookArg,
        cursor: str | None = None,
        limit: int = 100,
        cell: str | None = None,
    ) -> Page[Execution]:
        """Newest first across all runs of a notebook (only those of ``cell`` if given)."""
        nb = self.notebook_id(notebook)
        if nb is None:
            return Page[Execution](items=[], next=None)
        q = (
            self._execution_query()
            .where(executions.c.notebook_id == nb)
            # (notebook_id, id) order matches ix_executions_notebook, so PostgreSQL walks that
            # index instead of scanning the newest rows of every notebook.
            .order_by(executions.c.notebook_id.desc(), executions.c.id.desc())
        )
        if cell is not None:
            q = q.where(executions.c.cell_id == cell)
        key = decode_cursor(cursor, BY_ID)
        if key:
            q = q.where(executions.c.id < key[0])
        return self._page(Page[Execution], q, limit, self._execution, lambda r: [r.id])

    def get_execution(self, execution_id: int) -> Execution:
        with self.engine.connect() as conn:
            row = conn.execute(
                self._execution_query().where(executions.c.id == execution_id)
            ).first()
        if row is None:
            raise NotFound(f"no execution with id {execution_id}")
        return self._execution(row)

    def _execution_query(self) -> sa.Select[Any]:
        return (
            sa.select(executions, notebooks.c.path, texts.c.body.label("code"))
            .join(notebooks, notebooks.c.id == executions.c.notebook_id)
            .join(texts, texts.c.sha256 == executions.c.code_sha)
        )

    def _execution(self, r: Any) -> Execution:
        outputs = r.outputs or []
        mimes: list[str] = []
        for o in outputs:
            for m in o.get("data", {}) if isinstance(o.get("data"), dict) else []:
                if m not in mimes:
                    mimes.append(m)
            if o.get("output_type") == "stream" and "text/plain" not in mimes:
                mimes.append("text/plain")
        return Execution(
            id=r.id,
            run_id=r.run_id,
            notebook=r.path,
            seq=r.seq,
            msg_id=r.msg_id,
            cell_id=r.cell_id,
            code=r.code,
            status=r.status,
            started_at=r.started_at,
            finished_at=r.finished_at,
            duration_ms=r.duration_ms,
            execution_count=r.execution_count,
            outputs=outputs,
            mime_types=mimes,
            error=ExecutionError(**r.error) if r.error else None,
            version=r.version_number,
        )

    # -- versions ----------------------------------------------------------------------------

    def list_versions(
        self, notebook: NotebookArg, cursor: str | None = None, limit: int = 50
    ) -> Page[Version]:
        nb = self.notebook_id(notebook)
        if nb is None:
            return Page[Version](items=[], next=None)
        q = (
            self._version_query()
            .where(versions.c.notebook_id == nb)
            .order_by(versions.c.number.desc())
        )
        key = decode_cursor(cursor, BY_NUMBER)
        if key:
            q = q.where(versions.c.number < key[0])
        page = self._page(Page[Version], q, limit, self._version, lambda r: [r.number])
        return page.model_copy(update={"items": self._described(nb, page.items)})

    def get_version(self, version_id: int) -> Version:
        row = self._version_row(version_id)
        return self._described(row.notebook_id, [self._version(row)])[0]

    def update_version(
        self, version_id: int, update: VersionUpdate, caller: str | None = None
    ) -> Version:
        """Name and/or pin a version (``caller``: the team member asking; None embedded)."""
        values: dict[str, object] = {}
        if "name" in update.model_fields_set:
            values["name"] = clean_name(update.name)
        if update.pinned is not None:
            values["pinned"] = update.pinned
        with self.engine.begin() as conn:
            if not set_marks(conn, version_id, values, caller):
                raise NotFound(f"no version with id {version_id}")
        return self.get_version(version_id)

    def _described(self, notebook_id: int, items: list[Version]) -> list[Version]:
        """Versions of one notebook with what each changed and its step (one query)."""
        if not items:
            return items
        numbers = [v.number for v in items]
        with self.engine.connect() as conn:
            notes = version_notes(conn, notebook_id, min(numbers), max(numbers))
        return [described(v, notes.get(v.number)) for v in items]

    def version_notebook(self, version_id: int) -> dict[str, Any]:
        """The version as an nbformat 4 notebook (a JSON-able dict)."""
        row = self._version_row(version_id)
        return build_notebook(
            self._cells(row),
            kernel_spec=self._latest_kernel_spec(row.notebook_id),
            metadata={"notebook": row.path, "version": row.number, "version_id": row.id},
        )

    def diff_versions(self, a: int, b: int) -> VersionDiff:
        ra, rb = self._version_row(a), self._version_row(b)
        if ra.notebook_id != rb.notebook_id:
            raise ValueError(
                f"versions {a} and {b} belong to different notebooks ({ra.path}, {rb.path})"
            )
        added, removed, changed, unchanged = diff_cells(self._cells(ra), self._cells(rb))
        va, vb = self._described(ra.notebook_id, [self._version(ra), self._version(rb)])
        return VersionDiff(
            notebook=ra.path,
            from_version=va,
            to_version=vb,
            added=added,
            removed=removed,
            changed=changed,
            unchanged=unchanged,
        )

    def _version_query(self) -> sa.Select[Any]:
        return sa.select(versions, notebooks.c.path).join(
            notebooks, notebooks.c.id == versions.c.notebook_id
        )

    def _version_row(self, version_id: int) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(self._version_query().where(versions.c.id == version_id)).first()
        if row is None:
            raise NotFound(f"no version with id {version_id}")
        return row

    def _version(self, r: Any) -> Version:
        return Version(
            id=r.id,
            notebook=r.path,
            number=r.number,
            created_at=r.created_at,
            execution_id=r.execution_id,
            cells=r.cells_count,
            name=r.name,
            pinned=bool(r.pinned),
        )

    def _cells(self, version: Any) -> list[tuple[str, str]]:
        """A version's (cell id, code) pairs: one snapshot, the deltas after it, the code."""
        with self.engine.connect() as conn:
            pairs = load_state(conn, version.notebook_id, version.number).cells
            codes: dict[str, str] = {}
            shas = list({sha for _, sha in pairs})
            for i in range(0, len(shas), 500):
                rows = conn.execute(
                    sa.select(texts.c.sha256, texts.c.body).where(
                        texts.c.sha256.in_(shas[i : i + 500])
                    )
                )
                codes.update({k: v for k, v in rows})
        return [(cid, codes[sha]) for cid, sha in pairs]

    def _latest_kernel_spec(self, notebook_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            return conn.scalar(
                sa.select(runs.c.kernel_spec)
                .where(runs.c.notebook_id == notebook_id, runs.c.kernel_spec.is_not(None))
                .order_by(runs.c.id.desc())
                .limit(1)
            )

    # -- helpers -------------------------------------------------------------------------------

    def notebook_id(self, notebook: NotebookArg) -> int | None:
        """The notebook ``notebook`` means: the git notebook when the caller's file is in a
        repository, else the caller's own file at the path (an explicit ``owner``'s if given),
        else the one notebook at that path if there is only one (a teammate's, read by someone
        who has no file there). None for a notebook nothing was recorded for yet: its lists
        are empty, not 404 (the sidebar asks for them as soon as a new notebook opens)."""
        ref = NotebookRef(notebook) if isinstance(notebook, str) else notebook
        path = ref.path.strip("/")
        with self.engine.connect() as conn:

            def by_key(key: str) -> int | None:
                return conn.scalar(sa.select(notebooks.c.id).where(notebooks.c.key == key))

            if ref.repo and ref.repo_path:
                found = by_key(notebook_key(path, None, ref.repo, ref.repo_path))
                if found is not None:
                    return found
            if ref.owner:
                return by_key(notebook_key(path, ref.owner, None, None))
            own = by_key(notebook_key(path, ref.caller, None, None))
            if own is not None or ref.own:
                return own
            return _only_one(conn, path)

    def _page(
        self,
        page_type: type[P],
        q: sa.Select[Any],
        limit: int,
        item: Callable[[Any], Any],
        cursor_of: Callable[[Any], list[Any]],
    ) -> P:
        """One page of ``q`` (already filtered past the cursor) and the cursor after it."""
        rows = self._fetch(q, limit)
        page = rows[:limit]
        nxt = encode_cursor(cursor_of(page[-1])) if len(rows) > limit else None
        return page_type(items=[item(r) for r in page], next=nxt)

    def _fetch(self, q: sa.Select[Any], limit: int) -> list[Any]:
        """One more row than asked, to know whether there is a next page."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
        with self.engine.connect() as conn:
            return list(conn.execute(q.limit(limit + 1)))


def _only_one(conn: sa.Connection, path: str) -> int | None:
    """The one notebook at ``path``; a 400 naming their owners when there are several."""
    rows = conn.execute(
        sa.select(notebooks.c.id, notebooks.c.owner, notebooks.c.repo)
        .where(notebooks.c.path == path)
        .order_by(notebooks.c.id)
        .limit(MAX_LISTED_OWNERS + 1)
    ).all()
    if len(rows) <= 1:
        return rows[0].id if rows else None
    whose = sorted({r.owner or (f"git {r.repo}" if r.repo else "nobody") for r in rows})
    raise AmbiguousNotebook(
        f"{len(rows)} notebooks are at {path!r} ({', '.join(whose)}): "
        "add owner=NAME to the query to choose one",
        {"owners": [r.owner for r in rows if r.owner]},
    )


class AmbiguousNotebook(ValueError):
    """Several members' notebooks share a path and the caller has none there."""

    def __init__(self, message: str, detail: Any) -> None:
        super().__init__(message)
        self.detail = detail
