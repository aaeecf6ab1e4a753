"""The lineage notebook of a model version: the cells that produced it, full or minimal.

The pure part works on lists of cell sources: removing the calls to ``cellops`` (a
headless re-run must not need a server) and the backward slice that keeps only the
cells the registered model depends on. The slice is conservative: a cell it cannot
read (a magic that is not a whole line, a syntax error) is kept, and a cell is kept
when it defines *or may mutate* a needed name (``model.fit(X, y)``, ``df["a"] = 1``).
``lineage_notebook`` reads the executions from the store and builds the nbformat 4
notebook.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..store import NotFound, Store
from ..store.tables import executions, texts
from .store import Registry

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# Calls that set a global random state: kept whatever they are called on, since the
# training code reads that state without naming it.
SEED_CALLS = {"seed", "manual_seed", "set_seed", "manual_seed_all", "set_random_seed"}
# Library configuration set through a module (sklearn.set_config, pd.set_option): global
# state like a seed, so kept too (calls on modules otherwise count as reads, see below).
CONFIG_CALLS = {"set_config", "set_option", "use_deterministic_algorithms"}


class NotYetRecorded(Exception):
    """The registering execution is not stored yet (the writer lags behind the kernel)."""


# -- parsing -------------------------------------------------------------------------------


def _parse(code: str) -> ast.Module | None:
    """The cell's AST, with IPython magic / shell lines blanked (line numbers unchanged)."""
    lines = code.split("\n")
    blanked = ["" if line.lstrip().startswith(("%", "!")) else line for line in lines]
    try:
        return ast.parse("\n".join(blanked))
    # Code nested past the parser's depth raises RecursionError, or MemoryError ("parser
    # stack overflow"), not SyntaxError: it is a cell that cannot be read, kept whole.
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _cellops_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Names bound to the cellops module, and names imported from it (``from cellops import x``)."""
    modules, functions = {"cellops"}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "cellops" or alias.name.startswith("cellops."):
                    modules.add(alias.asname or "cellops")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "cellops":
            functions.update(a.asname or a.name for a in node.names)
    return modules, functions


def _is_cellops_call(node: ast.AST, modules: set[str], functions: set[str]) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in functions
    while isinstance(func, ast.Attribute):
        func = func.value
    return isinstance(func, ast.Name) and func.id in modules and func is not node.func


def _is_cellops_import(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Import):
        return all(a.name == "cellops" or a.name.startswith("cellops.") for a in stmt.names)
    if isinstance(stmt, ast.ImportFrom):
        return (stmt.module or "").split(".")[0] == "cellops" and stmt.level == 0
    return False


def _calls_cellops(stmt: ast.stmt, modules: set[str], functions: set[str]) -> bool:
    """A simple statement (not a block) that calls into cellops anywhere in its expression."""
    return any(_is_cellops_call(n, modules, functions) for n in ast.walk(stmt))


_BLOCK_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")


def _reads(stmt: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _is_block(stmt: ast.stmt) -> bool:
    return any(isinstance(getattr(stmt, f, None), list) for f in _BLOCK_FIELDS) and not isinstance(
        stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    )


# -- removing cellops calls ----------------------------------------------------------------


RegisterNote = Callable[[ast.Call], str]


def strip_cellops(
    code: str, modules: set[str] | None = None, register_note: RegisterNote | None = None
) -> str:
    """The cell without ``import cellops`` and statements calling ``cellops.*``.

    Statements are cut by their source span, so the rest of the cell (comments,
    formatting, magics) stays as written; a block left empty gets ``pass``. With
    ``register_note``, a statement calling ``cellops.register`` becomes a comment with
    the note (what it registered) instead of vanishing.
    """
    tree = _parse(code)
    if tree is None:
        return code
    mods, funcs = _cellops_names(tree)
    if modules:
        mods |= modules
    cuts: list[tuple[ast.stmt, str]] = []  # (statement, what replaces it)
    # Names bound by removed statements (``mv = cellops.register(...)``): what reads them
    # would fail in a re-run without the server, so it is removed too.
    tainted: set[str] = set()

    def visit(body: list[ast.stmt], top: bool) -> None:
        removed: list[tuple[ast.stmt, str]] = []
        for stmt in body:
            if _is_block(stmt):
                for f in _BLOCK_FIELDS:
                    inner = getattr(stmt, f, None)
                    if isinstance(inner, list):
                        for part in inner if f in ("handlers", "cases") else [stmt]:
                            visit(part.body if f in ("handlers", "cases") else inner, False)
            elif isinstance(stmt, ast.Import) and not _is_cellops_import(stmt):
                others = [a for a in stmt.names if a.name.split(".")[0] != "cellops"]
                if len(others) < len(stmt.names):  # import os, cellops -> import os
                    cuts.append((stmt, ast.unparse(ast.Import(names=others))))
            elif (
                _is_cellops_import(stmt)
                or _calls_cellops(stmt, mods, funcs)
                or _reads(stmt) & tainted
            ):
                call = _register_call(stmt, mods, funcs) if register_note else None
                note = f"# {register_note(call)}" if register_note and call else ""
                removed.append((stmt, note))
                tainted.update(_effects(stmt).defines - mods)
        if removed and len(removed) == len(body) and not top:
            # A block may not be left empty.
            last, note = removed[-1]
            removed[-1] = (last, f"pass  {note}" if note else "pass")
        cuts.extend(removed)

    visit(tree.body, True)
    if not cuts:
        return code
    lines = code.split("\n")
    # Cut from the end so the earlier spans' offsets stay valid.
    for stmt, replacement in sorted(
        cuts, key=lambda c: (c[0].lineno, c[0].col_offset), reverse=True
    ):
        lines = _cut(lines, stmt, replacement)
    out = "\n".join(lines)
    return out.strip("\n") if out.strip() else ""


def _cut(lines: list[str], stmt: ast.stmt, replacement: str) -> list[str]:
    # A comment goes last on its line, so it never comments out what follows the cut.
    comment = ""
    if replacement.startswith("#") or "  # " in replacement:
        replacement, _, comment = replacement.partition("#")
        replacement, comment = replacement.strip(), f"#{comment}"
    start, end = stmt.lineno - 1, (stmt.end_lineno or stmt.lineno) - 1
    col, end_col = stmt.col_offset, stmt.end_col_offset or len(lines[end])
    # ast offsets are in UTF-8 bytes.
    head = lines[start].encode()[:col].decode(errors="ignore")
    tail = lines[end].encode()[end_col:].decode(errors="ignore")
    if tail.lstrip().startswith(";"):
        tail = tail.lstrip()[1:]
    tail = tail.strip()
    if not head.strip():
        # At the start of its line: keep the indentation for what follows on the line.
        parts = [p for p in (replacement, tail) if p]
        line = "; ".join(parts)
    else:
        # Another statement before it on the line: drop the ";" that joined them.
        head = head.rstrip()
        head = head[:-1].rstrip() if head.endswith(";") else head
        line = "; ".join(p for p in (head.strip(), replacement, tail) if p)
    indent = head[: len(head) - len(head.lstrip())]
    if comment:
        line = f"{line}  {comment}" if line else comment
    new = [indent + line] if line else []
    return lines[:start] + new + lines[end + 1 :]


def _is_register_call(node: ast.AST, modules: set[str], functions: set[str]) -> bool:
    """Whether ``node`` is a ``cellops.register(...)`` call."""
    if not _is_cellops_call(node, modules, functions):
        return False
    assert isinstance(node, ast.Call)
    func = node.func
    return (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) == "register"


def _register_call(stmt: ast.stmt, modules: set[str], functions: set[str]) -> ast.Call | None:
    """The ``cellops.register(...)`` call in a statement, if any."""
    for node in ast.walk(stmt):
        if _is_register_call(node, modules, functions):
            assert isinstance(node, ast.Call)
            return node
    return None


def registered_names(code: str) -> set[str]:
    """The names the cell's ``cellops.register(...)`` calls read for the model they register
    (``models[0]`` reads ``models``): what a re-run must define before that point."""
    tree = _parse(code)
    if tree is None:
        return set()
    modules, functions = _cellops_names(tree)
    names: set[str] = set()
    for stmt in ast.walk(tree):
        if isinstance(stmt, ast.stmt) and not _is_block(stmt):
            call = _register_call(stmt, modules, functions)
            model = _register_arg(call, 0, "model") if call else None
            if model is not None:
                names |= {n.id for n in ast.walk(model) if isinstance(n, ast.Name)}
    return names


def _register_arg(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def registered_model_name(call: ast.Call) -> str | None:
    """The model name a ``cellops.register(model, "name")`` call gives, when a literal."""
    name = _register_arg(call, 1, "name")
    return name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else None


def model_variable(code: str) -> str | None:
    """The first argument of the cell's ``cellops.register(...)`` call, if a plain name."""
    tree = _parse(code)
    if tree is None:
        return None
    modules, functions = _cellops_names(tree)
    for node in ast.walk(tree):
        if not _is_register_call(node, modules, functions):
            continue
        assert isinstance(node, ast.Call)
        if node.args and isinstance(node.args[0], ast.Name):
            return node.args[0].id
    return None


# -- the backward slice --------------------------------------------------------------------


@dataclass
class _Effects:
    defines: set[str] = field(default_factory=set)  # names bound anywhere in the statement
    mutates: set[str] = field(default_factory=set)  # bases of method calls / item assignments
    uses: set[str] = field(default_factory=set)  # names read
    kills: set[str] = field(default_factory=set)  # names surely rebound (earlier values unused)
    seeds: bool = False  # sets a global random state


def _base_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _effects(stmt: ast.stmt) -> _Effects:
    e = _Effects()
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name):
            (e.uses if isinstance(node.ctx, ast.Load) else e.defines).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    e.defines.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or (
            isinstance(node, ast.ExceptHandler) and node.name
        ):
            e.defines.add(node.name)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            e.uses.add(node.target.id)  # x += 1 reads x
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(
            node.ctx, (ast.Store, ast.Del)
        ):
            base = _base_name(node.value)
            if base:
                e.mutates.add(base)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = _base_name(node.func.value)
            if base:
                e.mutates.add(base)
            if node.func.attr in SEED_CALLS | CONFIG_CALLS:
                e.seeds = True
        elif isinstance(node, ast.Delete):
            e.defines.update(t.id for t in node.targets if isinstance(t, ast.Name))
    # Only top-level, unconditional bindings hide earlier definitions.
    if isinstance(stmt, ast.Assign):
        for target in stmt.targets:
            elts = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
            e.kills.update(t.id for t in elts if isinstance(t, ast.Name))
    elif isinstance(stmt, ast.AnnAssign) and stmt.value and isinstance(stmt.target, ast.Name):
        e.kills.add(stmt.target.id)
    elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
        e.kills.update(n for n in e.defines if n != "*")
    elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        e.kills.add(stmt.name)
        # Decorators, defaults and bases run now; the body only when called, but what
        # it reads must exist then: count the body's names as used, not as kills.
    e.kills -= e.uses
    return e


def _needed_before(tree: ast.Module, needed: set[str]) -> set[str]:
    """Names needed before the cell, if all of it runs, given those needed after it."""
    needed = set(needed)
    for stmt in reversed(tree.body):
        e = _effects(stmt)
        needed = (needed - e.kills) | e.uses
    return needed


def _imported_only(trees: list[ast.Module | None]) -> set[str]:
    """Names every cell binds only by ``import`` (modules, imported functions and classes)."""
    imported: set[str] = set()
    bound: set[str] = set()
    for tree in trees:
        for stmt in tree.body if tree is not None else []:
            (imported if isinstance(stmt, (ast.Import, ast.ImportFrom)) else bound).update(
                _effects(stmt).defines
            )
    return imported - bound


def minimal_cells(
    cells: list[str],
    ignore: frozenset[str] = frozenset({"cellops"}),
    needed_after: frozenset[str] = frozenset(),
) -> list[int]:
    """Indices of the cells the last cell depends on (the last cell included), in order.

    Walking back from the last cell, a cell is kept if it defines or may mutate a name
    still needed, or sets a global random seed; the names it reads become needed.
    ``needed_after`` are names needed once the last cell has run (the registered model).
    Cells that do not parse are kept (their effects are unknown) and add no names.
    """
    if not cells:
        return []
    trees = [_parse(c) for c in cells]
    # ``json.dumps(x)``, ``np.mean(x)``, ``RandomForestClassifier(...).fit(X)`` read the
    # imported name; counted as mutating it, every cell printing with json would be pulled
    # into any slice that needs json. Module state set by a call is a seed/config call.
    imported = _imported_only(trees)
    last = trees[-1]
    needed = (_needed_before(last, set(needed_after)) if last is not None else set()) - ignore
    kept = [len(cells) - 1]
    for i in range(len(cells) - 2, -1, -1):
        tree = trees[i]
        if tree is None:
            kept.append(i)
            continue
        effects = [_effects(s) for s in tree.body]
        touched = (
            set().union(*(e.defines | (e.mutates - imported) for e in effects))
            if effects
            else set()
        )
        if touched & needed or any(e.seeds for e in effects):
            kept.append(i)
            needed = _needed_before(tree, needed) - ignore
    return sorted(kept)


# -- the notebook --------------------------------------------------------------------------


def lineage_notebook(store: Store, name: str, number: int, minimal: bool) -> dict[str, Any]:
    """The nbformat 4 notebook of the cells that produced a model version."""
    version = Registry(store).get_version(name, number)
    lineage = version.lineage
    if lineage.msg_id is None:
        raise NotFound(
            f"model {name!r} version {number} has no lineage: it was not registered from a cell"
        )
    if lineage.execution_id is None or lineage.run_id is None:
        raise NotYetRecorded(
            f"the execution that registered model {name!r} version {number} is not recorded "
            "yet; retry in a moment"
        )
    with store.engine.connect() as conn:
        target_seq = conn.scalar(
            sa.select(executions.c.seq).where(executions.c.id == lineage.execution_id)
        )
        rows = list(
            conn.execute(
                sa.select(
                    executions.c.id,
                    executions.c.seq,
                    executions.c.status,
                    executions.c.cell_id,
                    texts.c.body.label("code"),
                )
                .join(texts, texts.c.sha256 == executions.c.code_sha)
                .where(executions.c.run_id == lineage.run_id, executions.c.seq <= target_seq)
                .order_by(executions.c.seq)
            )
        )
    if not rows or rows[-1].id != lineage.execution_id:
        raise NotYetRecorded(f"the registering execution {lineage.execution_id} is not complete")
    # The registering cell is in whatever its status: it is usually still "running" when
    # read (it registered mid-cell), and what matters of it is the register call.
    ok = [r for r in rows if r.status == "ok" or r.id == lineage.execution_id]
    skipped = [
        {"execution_id": r.id, "seq": r.seq, "status": r.status}
        for r in rows
        if r.status != "ok" and r.id != lineage.execution_id
    ]
    codes = [r.code or "" for r in ok]
    registering = codes[-1]
    # What a re-run executes; the slice is taken over it, since a removed call (and what
    # reads its result) has no effect there.
    sources = [strip_cellops(c) for c in codes[:-1]]
    sources.append(strip_cellops(registering, register_note=_note_for(name, number)))
    indices = (
        minimal_cells(sources, needed_after=frozenset(registered_names(registering)))
        if minimal
        else list(range(len(codes)))
    )
    cells = [(ok[i], sources[i]) for i in indices]
    return _build(
        cells,
        {
            "model": name,
            "version": number,
            "execution_id": lineage.execution_id,
            "run_id": lineage.run_id,
            "notebook": lineage.notebook,
            "minimal": minimal,
            "model_variable": model_variable(registering),
            "skipped_failed_cells": skipped,
            "note": (
                "cells that errored or were interrupted are left out (they would stop a "
                "headless run); calls to cellops are removed (a re-run needs no server)"
            ),
        },
    )


def _note_for(name: str, number: int) -> RegisterNote:
    """The comment that replaces a register call in the registering cell."""

    def note(call: ast.Call) -> str:
        other = registered_model_name(call)
        if other is not None and other != name:
            return f"registered model {other!r} here (call removed: re-runs need no server)"
        return (
            f"registered here as model {name!r} version {number} "
            "(call removed: re-runs need no server)"
        )

    return note


def _build(cells: list[tuple[Any, str]], metadata: dict[str, Any]) -> dict[str, Any]:
    # nbformat pulls in jsonschema (slow to import): load it only when a notebook is built.
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(
        cells=[
            new_code_cell(
                source=source,
                id=f"exec-{row.id}",
                metadata={"cellops": {"execution_id": row.id, "seq": row.seq}},
            )
            for row, source in cells
        ],
        metadata={
            "kernelspec": dict(KERNELSPEC),
            "language_info": {"name": "python"},
            "cellops": metadata,
        },
    )
    nbformat.validate(nb)
    return dict(nb)
