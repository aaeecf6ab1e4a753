"""The team's notebooks browser: who tracks what, and any notebook's cells, read-only.

Reads are team-wide (any member with the viewer role); nothing here touches a member's
disk. Each listing is one query on both stores: the counts and the last activity are kept
on the notebooks row by ingest, so no per-notebook lookups are needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..schemas import Notebook, NotebookCell, NotebookCells, Page
from .pagination import BY_TIME_AND_ID, after_time_and_id, decode_cursor, encode_cursor
from .store import MAX_LIMIT, NotFound, Store
from .tables import executions, notebooks, texts
from .version_storage import load_state

MAX_OUTPUT_TEXT = 300  # characters of a cell's first text output
_CHUNK = 500  # values per IN (...) list


@dataclass(frozen=True)
class NotebookFilter:
    """Which notebooks to list: ``owner`` (a member's name; None for everyone's) and a
    case-insensitive substring of the path."""

    owner: str | None = None
    search: str | None = None


def list_team_notebooks(
    store: Store, where: NotebookFilter, cursor: str | None = None, limit: int = 50
) -> Page[Notebook]:
    """Tracked notebooks, most recently active first, one page at a time."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    q = _notebook_query().order_by(notebooks.c.last_activity_at.desc(), notebooks.c.id.desc())
    if where.owner is not None:
        q = q.where(notebooks.c.owner == where.owner)
    if where.search:
        q = q.where(notebooks.c.path.ilike(f"%{_like_escape(where.search)}%", escape="\\"))
    key = decode_cursor(cursor, BY_TIME_AND_ID)
    if key:
        q = q.where(after_time_and_id(notebooks.c.last_activity_at, notebooks.c.id, key))
    with store.engine.connect() as conn:
        rows = list(conn.execute(q.limit(limit + 1)))
    page = rows[:limit]
    nxt = None
    if len(rows) > limit:
        nxt = encode_cursor([page[-1].last_activity_at.isoformat(), page[-1].id])
    return Page[Notebook](items=[_notebook(r) for r in page], next=nxt)


def notebook_cells(store: Store, notebook_id: int, number: int | None = None) -> NotebookCells:
    """Version ``number`` (the latest if None) of a notebook: its cells' code in order, each
    with a summary of its latest execution."""
    with store.engine.connect() as conn:
        row = conn.execute(_notebook_query().where(notebooks.c.id == notebook_id)).first()
        if row is None:
            raise NotFound(f"no notebook with id {notebook_id}")
        notebook = _notebook(row)
        if notebook.versions == 0 and number is None:
            return NotebookCells(notebook=notebook, version=None, cells=[])
        try:
            state = load_state(conn, notebook_id, number)
        except LookupError:
            raise NotFound(
                f"notebook {notebook_id} has no version {number}; it has {notebook.versions}"
            ) from None
        codes = _texts(conn, {sha for _, sha in state.cells})
        latest = _latest_executions(conn, notebook_id)
    cells = [_cell(cid, codes.get(sha, ""), latest.get(cid)) for cid, sha in state.cells]
    return NotebookCells(notebook=notebook, version=state.number or None, cells=cells)


def _notebook_query() -> sa.Select[Any]:
    original = notebooks.alias("original")
    return sa.select(notebooks, original.c.path.label("copied_from_path")).outerjoin(
        original, original.c.id == notebooks.c.copied_from
    )


def _notebook(r: Any) -> Notebook:
    return Notebook(
        id=r.id,
        path=r.path,
        owner=r.owner,
        repo=r.repo,
        repo_path=r.repo_path,
        copied_from=r.copied_from_path,
        runs=r.runs_count,
        executions=r.executions_count,
        versions=r.versions_count,
        created_at=r.created_at,
        last_activity_at=r.last_activity_at,
    )


def _like_escape(text: str) -> str:
    """``text`` matched literally by LIKE (``%`` and ``_`` are not wildcards here)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _texts(conn: sa.Connection, shas: Iterable[str]) -> dict[str, str]:
    wanted = list(shas)
    found: dict[str, str] = {}
    for i in range(0, len(wanted), _CHUNK):
        rows = conn.execute(
            sa.select(texts.c.sha256, texts.c.body).where(
                texts.c.sha256.in_(wanted[i : i + _CHUNK])
            )
        )
        found.update({sha: body for sha, body in rows})
    return found


def _latest_executions(conn: sa.Connection, notebook_id: int) -> dict[str, Any]:
    """Each cell's latest execution (one query, on the (notebook, cell, id) index)."""
    newest = (
        sa.select(sa.func.max(executions.c.id))
        .where(executions.c.notebook_id == notebook_id, executions.c.cell_id.is_not(None))
        .group_by(executions.c.cell_id)
    )
    rows = conn.execute(
        sa.select(
            executions.c.id,
            executions.c.cell_id,
            executions.c.status,
            executions.c.execution_count,
            executions.c.finished_at,
            executions.c.error,
            executions.c.outputs,
        ).where(executions.c.id.in_(newest))
    )
    return {r.cell_id: r for r in rows}


def _cell(cell_id: str, code: str, run: Any | None) -> NotebookCell:
    if run is None:
        return NotebookCell(
            cell_id=cell_id,
            code=code,
            status=None,
            execution_id=None,
            execution_count=None,
            finished_at=None,
            error=None,
            output_types=[],
            output_text=None,
        )
    outputs = [o for o in run.outputs or [] if isinstance(o, dict)]
    return NotebookCell(
        cell_id=cell_id,
        code=code,
        status=run.status,
        execution_id=run.id,
        execution_count=run.execution_count,
        finished_at=run.finished_at,
        error=_error_line(run.error),
        output_types=_output_types(outputs),
        output_text=_first_text(outputs),
    )


def _error_line(error: Any) -> str | None:
    if not isinstance(error, dict):
        return None
    return f"{error.get('ename', 'Error')}: {error.get('evalue', '')}"[:MAX_OUTPUT_TEXT]


def _output_types(outputs: list[dict[str, Any]]) -> list[str]:
    kinds: list[str] = []
    for o in outputs:
        data = o.get("data")
        names = list(data) if isinstance(data, dict) else [str(o.get("output_type", "output"))]
        kinds += [n for n in names if n not in kinds]
    return kinds


def _first_text(outputs: list[dict[str, Any]]) -> str | None:
    for o in outputs:
        text = o.get("text")
        data = o.get("data")
        if text is None and isinstance(data, dict):
            text = data.get("text/plain")
        if isinstance(text, list):
            text = "".join(str(t) for t in text)
        if isinstance(text, str) and text:
            return text[:MAX_OUTPUT_TEXT]
    return None
