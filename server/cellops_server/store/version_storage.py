"""How notebook versions are stored: deltas against their parent, and now and then a snapshot.

A version is the ordered list of (cell id, code sha256) after an execution that changed it.
Storing that whole list per version made storage quadratic in a notebook's length (3,000
executions adding a cell each stored ~0.4 GB). Each version row now stores only what its
execution did (``delta_*`` columns: cells deleted, then one cell set in place or appended),
and some rows also a full snapshot (``cells_sha``: the list as JSON in ``texts``,
content-addressed, as every row of stores written before revision 0005 does).

A snapshot is taken once the deltas since the last one reach max(MIN_SNAPSHOT_INTERVAL,
half the notebook's cells). So rebuilding any version reads one snapshot plus fewer deltas
than the snapshot has cells (work proportional to the version's own size), and snapshots
add a constant number of bytes per version on average: storage grows linearly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .errors import NotOwner
from .tables import executions, notebooks, texts, versions

Cell = tuple[str, str]  # (cell id, code sha256)

# More cells than this in one notebook is not a notebook anyone edits: the execution that
# would add one more is set aside (deleting cells makes room again).
MAX_CELLS_PER_NOTEBOOK = 10_000
MIN_SNAPSHOT_INTERVAL = 64


@dataclass(frozen=True)
class Delta:
    """One execution's effect on its notebook's executed state."""

    deleted: tuple[str, ...] = ()  # cells removed, in the order they stood
    cell_id: str | None = None  # then this cell is set to code_sha (appended if new)
    code_sha: str | None = None


@dataclass
class VersionState:
    """The executed state of one notebook: ordered (cell id, code sha) pairs."""

    number: int
    cells: list[Cell] = field(default_factory=list)
    since_snapshot: int = 0  # deltas stored after the last snapshot
    _index: dict[str, int] = field(default_factory=dict, repr=False)  # cell id -> position

    def __post_init__(self) -> None:
        self._reindex()

    def would_outgrow(self, cell_id: str | None, deleted: Sequence[str]) -> bool:
        """Whether this execution would grow the notebook past MAX_CELLS_PER_NOTEBOOK."""
        if cell_id is None or cell_id in self._index:
            return False  # re-running a cell never adds one
        gone = {c for c in deleted if c in self._index}
        return len(self.cells) - len(gone) + 1 > MAX_CELLS_PER_NOTEBOOK

    def apply(self, cell_id: str | None, code_sha: str, deleted: Sequence[str]) -> Delta | None:
        """Apply one execution; answer what changed (None if nothing did)."""
        delta = self._delta(cell_id, code_sha, deleted)
        if delta is not None:
            self.apply_delta(delta)
        return delta

    def apply_delta(self, delta: Delta) -> None:
        if delta.deleted:
            gone = set(delta.deleted)
            self.cells = [c for c in self.cells if c[0] not in gone]
            self._reindex()
        if delta.cell_id is not None and delta.code_sha is not None:
            at = self._index.get(delta.cell_id)
            if at is None:
                self._index[delta.cell_id] = len(self.cells)
                self.cells.append((delta.cell_id, delta.code_sha))
            else:
                self.cells[at] = (delta.cell_id, delta.code_sha)

    def next_version(self) -> list[Cell] | None:
        """Number the change just applied as a new version; answer its full cell list when
        that version is to keep a snapshot."""
        self.number += 1
        self.since_snapshot += 1
        if self.since_snapshot < max(MIN_SNAPSHOT_INTERVAL, len(self.cells) // 2):
            return None
        self.since_snapshot = 0
        return list(self.cells)

    def _delta(self, cell_id: str | None, code_sha: str, deleted: Sequence[str]) -> Delta | None:
        wanted = set(deleted)
        gone = tuple(c for c, _ in self.cells if c in wanted) if wanted else ()
        sets = False
        if cell_id is not None:
            at = self._index.get(cell_id)
            sets = at is None or cell_id in wanted or self.cells[at][1] != code_sha
        if not gone and not sets:
            return None
        return Delta(gone, cell_id, code_sha) if sets else Delta(gone)

    def _reindex(self) -> None:
        self._index = {cid: i for i, (cid, _) in enumerate(self.cells)}


def snapshot_json(cells: Iterable[Cell]) -> str:
    return json.dumps(list(cells), separators=(",", ":"))


def delta_columns(delta: Delta) -> dict[str, object]:
    """The ``versions`` columns that hold ``delta``."""
    return {
        "delta_deleted": list(delta.deleted) or None,
        "delta_cell_id": delta.cell_id,
        "delta_code_sha": delta.code_sha,
    }


def load_state(
    conn: sa.Connection,
    notebook_id: int,
    number: int | None = None,
    unwritten_texts: Callable[[str], str | None] = lambda _sha: None,
) -> VersionState:
    """Version ``number`` of a notebook (its latest if None): one snapshot plus its deltas.

    ``unwritten_texts`` answers snapshot lists written in this transaction but not yet
    inserted into ``texts``."""
    mine = versions.c.notebook_id == notebook_id
    upto = mine if number is None else sa.and_(mine, versions.c.number <= number)
    snapshot = conn.execute(
        sa.select(versions.c.number, versions.c.cells_sha)
        .where(upto, versions.c.cells_sha.is_not(None))
        .order_by(versions.c.number.desc())
        .limit(1)
    ).first()
    state = VersionState(0)
    if snapshot is not None:
        body = unwritten_texts(snapshot.cells_sha) or conn.scalar(
            sa.select(texts.c.body).where(texts.c.sha256 == snapshot.cells_sha)
        )
        state = VersionState(snapshot.number, [(c, s) for c, s in json.loads(body or "[]")])
    rows = conn.execute(
        sa.select(
            versions.c.number,
            versions.c.delta_deleted,
            versions.c.delta_cell_id,
            versions.c.delta_code_sha,
        )
        .where(upto, versions.c.number > state.number)
        .order_by(versions.c.number)
    )
    for row in rows:
        state.apply_delta(
            Delta(tuple(row.delta_deleted or ()), row.delta_cell_id, row.delta_code_sha)
        )
        state.number = row.number
        state.since_snapshot += 1
    if number is not None and state.number != number:
        raise LookupError(f"notebook {notebook_id} has no version {number}")
    return state


@dataclass(frozen=True)
class VersionNotes:
    """What one version changed since the one before it, and the step it belongs to."""

    changed: int
    added: int
    removed: int
    step: int  # number of the first version of its step


def version_notes(
    conn: sa.Connection, notebook_id: int, lo: int, hi: int
) -> dict[int, VersionNotes]:
    """Notes of a notebook's versions numbered ``lo``..``hi`` (a page), in one query.

    The counts come from each row's delta and the cell counts of it and its parent (a delta
    sets at most one cell: the count grows by one for a new cell). A step groups consecutive
    versions of one run that each only added a cell, so that running a fresh notebook top
    to bottom reads as one step; a named or pinned version is always a step of its own. A
    step may reach back past ``lo``, so steps are computed over the notebook's versions up
    to ``hi`` by window functions in the database: one scan, no query per version.
    """
    v = versions.c
    by_number = {"order_by": v.number}
    parent_cells = sa.func.lag(v.cells_count, 1, 0).over(**by_number)
    rows = (
        sa.select(
            v.number,
            v.cells_count,
            v.delta_deleted,
            v.delta_cell_id,
            (v.cells_count - parent_cells).label("growth"),
            executions.c.run_id,
            sa.or_(v.name.is_not(None), v.pinned).label("marked"),
        )
        .select_from(versions)
        .outerjoin(executions, executions.c.id == v.execution_id)
        .where(v.notebook_id == notebook_id, v.number <= hi)
        .subquery("rows")
    )
    adds_only = sa.and_(rows.c.growth == 1, sa.not_(rows.c.marked))
    by_row_number = {"order_by": rows.c.number}
    as_int = sa.case((adds_only, 1), else_=0)
    with_parent = sa.select(
        rows,
        as_int.label("adds_only"),
        sa.func.lag(as_int, 1, 0).over(**by_row_number).label("parent_adds_only"),
        sa.func.lag(rows.c.run_id).over(**by_row_number).label("parent_run_id"),
    ).subquery("with_parent")
    w = with_parent.c
    continues = sa.and_(w.adds_only == 1, w.parent_adds_only == 1, w.run_id == w.parent_run_id)
    starts_at = sa.case((continues, None), else_=w.number)
    stepped = sa.select(
        with_parent, sa.func.max(starts_at).over(order_by=w.number).label("step")
    ).subquery("stepped")
    notes: dict[int, VersionNotes] = {}
    for row in conn.execute(sa.select(stepped).where(stepped.c.number >= lo)):
        notes[row.number] = _notes(row)
    return notes


def _notes(row: sa.Row[Any]) -> VersionNotes:
    removed = len(row.delta_deleted or ())
    legacy = row.delta_deleted is None and row.delta_cell_id is None  # stored before 0005
    if legacy:  # only the counts are known: say the least that explains them
        added, removed = max(row.growth, 0), max(-row.growth, 0)
        changed = 1 if row.growth == 0 and row.number > 1 else 0
    else:
        added = row.growth + removed
        changed = 1 if row.delta_cell_id is not None and added == 0 else 0
    return VersionNotes(changed=changed, added=added, removed=removed, step=row.step)


def set_marks(
    conn: sa.Connection, version_id: int, values: dict[str, object], caller: str | None
) -> bool:
    """Set a version's ``name`` and/or ``pinned``; False if there is no such version.

    In team mode (``caller`` set) only the member whose notebook it is may: a teammate's
    names would otherwise rewrite how someone else's history reads. A git notebook (no
    owner) is shared by everyone who works on the repository."""
    row = conn.execute(
        sa.select(notebooks.c.owner, notebooks.c.path, versions.c.number)
        .join(notebooks, notebooks.c.id == versions.c.notebook_id)
        .where(versions.c.id == version_id)
    ).first()
    if row is None:
        return False
    if caller is not None and row.owner is not None and row.owner != caller:
        raise NotOwner(
            f"version {row.number} of {row.path} is in {row.owner}'s notebook; "
            "only they can name or pin it"
        )
    if values:
        conn.execute(versions.update().where(versions.c.id == version_id).values(**values))
    return True
