"""Notebook versions: rebuild one as .ipynb, diff two, name a restored copy.

A version is the executed state of a notebook: its cells in the order they were
first run, each with the code it last ran. (The browser does not tell the server
where an unsaved cell sits in the notebook, so execution order is the order
cellops can prove.)
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Callable
from typing import Any, Protocol

from .schemas import CellChange, CellCode, LineChange, Version, VersionChanges

MAX_NAME = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CELL_ID_OK = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # fullmatch: "$" accepts a final "\n"


def _nb_cell_id(cell_id: str, used: set[str]) -> str:
    """nbformat 4.5 ids are 1-64 chars of [a-zA-Z0-9-_] and unique."""
    cid = (
        cell_id
        if _CELL_ID_OK.fullmatch(cell_id)
        else re.sub(r"[^a-zA-Z0-9_-]", "-", cell_id)[:64] or "cell"
    )
    base, n = cid, 1
    while cid in used:
        n += 1
        cid = f"{base[:58]}-{n}"
    used.add(cid)
    return cid


def build_notebook(
    cells: list[tuple[str, str]], *, kernel_spec: dict[str, Any] | None, metadata: dict[str, Any]
) -> dict[str, Any]:
    # nbformat pulls in jsonschema (seconds to import): load it only when a notebook is built.
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    used: set[str] = set()
    nb = new_notebook(
        cells=[new_code_cell(source=code, id=_nb_cell_id(cid, used)) for cid, code in cells],
        metadata={"cellops": metadata},
    )
    if kernel_spec and kernel_spec.get("name"):
        nb.metadata["kernelspec"] = {
            "name": kernel_spec["name"],
            "display_name": kernel_spec.get("display_name") or kernel_spec["name"],
            "language": kernel_spec.get("language") or "",
        }
    nbformat.validate(nb)
    return dict(nb)


def diff_cells(
    old: list[tuple[str, str]], new: list[tuple[str, str]]
) -> tuple[list[CellCode], list[CellCode], list[CellChange], int]:
    """Cells added, removed and changed (with a per-line diff) between two versions."""
    old_map, new_map = dict(old), dict(new)
    added = [CellCode(cell_id=c, code=code) for c, code in new if c not in old_map]
    removed = [CellCode(cell_id=c, code=code) for c, code in old if c not in new_map]
    changed = [
        _cell_change(c, old_map[c], code) for c, code in new if c in old_map and old_map[c] != code
    ]
    unchanged = sum(1 for c, code in new if old_map.get(c) == code)
    return added, removed, changed, unchanged


def _cell_change(cell_id: str, old: str, new: str) -> CellChange:
    a, b = old.splitlines(), new.splitlines()
    lines: list[LineChange] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            lines += [LineChange(op="equal", text=t) for t in a[i1:i2]]
            continue
        lines += [LineChange(op="delete", text=t) for t in a[i1:i2]]
        lines += [LineChange(op="insert", text=t) for t in b[j1:j2]]
    unified = "\n".join(difflib.unified_diff(a, b, "before", "after", lineterm=""))
    return CellChange(cell_id=cell_id, old=old, new=new, lines=lines, unified=unified)


def restored_path(original: str, number: int, exists: Callable[[str], bool]) -> str:
    """``dir/name-v3.ipynb`` beside the original, never overwriting a file."""
    folder, name = posixpath.split(original.strip("/"))
    stem = name[:-6] if name.endswith(".ipynb") else name or "notebook"
    candidate = posixpath.join(folder, f"{stem}-v{number}.ipynb")
    n = 1
    while exists(candidate):
        n += 1
        candidate = posixpath.join(folder, f"{stem}-v{number}-{n}.ipynb")
    return candidate


class Notes(Protocol):
    """What a version changed and its step (store/version_storage.py VersionNotes)."""

    changed: int
    added: int
    removed: int
    step: int


def described(version: Version, notes: Notes | None) -> Version:
    """``version`` with its changes, their summary and its step filled in."""
    if notes is None:
        return version
    changes = VersionChanges(changed=notes.changed, added=notes.added, removed=notes.removed)
    return version.model_copy(
        update={
            "changes": changes,
            "summary": summary(version.number, version.cells, changes),
            "step": notes.step,
        }
    )


def summary(number: int, cells: int, changes: VersionChanges) -> str:
    """ "2 cells changed, 1 added"; "first version, 3 cells" for the first."""
    if number == 1:
        return f"first version, {_cells(cells)}"
    counts = [
        (changes.changed, "changed"),
        (changes.added, "added"),
        (changes.removed, "removed"),
    ]
    parts = [(n, what) for n, what in counts if n]
    if not parts:
        return "no code changed"
    (first, what), rest = parts[0], parts[1:]
    return ", ".join([f"{_cells(first)} {what}", *(f"{n} {w}" for n, w in rest)])


def _cells(n: int) -> str:
    return f"{n} cell" if n == 1 else f"{n} cells"


def clean_name(raw: str | None) -> str | None:
    """A version's name as stored: trimmed, null when blank; ValueError saying what to fix."""
    name = (raw or "").strip()
    if not name:
        return None
    if len(name) > MAX_NAME:
        raise ValueError(f"name must be at most {MAX_NAME} characters; got {len(name)}")
    if _CONTROL.search(name):
        raise ValueError("name must be one line of text without control characters")
    return name
