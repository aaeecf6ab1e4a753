"""Finding runs: filters by what their cells logged (metrics, params, tags), sorting by a
metric, and what a run's label and comparison need (its number, its latest values).

A run's value of a metric, param or tag is the latest one any of its cells logged (the
highest ``execution_logs.id``, i.e. insertion order, as ``ExecutionLogStore`` reads them).
Values are JSON in the store; comparisons are written per dialect so SQLite and PostgreSQL
answer the same.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import Field

from ..schemas import CiInfo, Page, Run
from .pagination import BY_ID, CursorKey, decode_cursor, encode_cursor
from .tables import execution_logs, executions, runs

if TYPE_CHECKING:
    from .store import NotebookArg, Store

MAX_FILTERS = 20  # of each kind per request
MAX_NAME = 250  # a logged key's longest name (schemas.LogKey)
MetricOp = Literal[">", ">=", "<", "<=", "="]
_METRIC_EXPR = re.compile(r"^(?P<name>.*?)(?P<op>>=|<=|>|<|=)(?P<value>[^<>=]*)$", re.DOTALL)

_Flag = Annotated[int, Field(strict=True, ge=0, le=1)]
_Float = Annotated[float, Field(allow_inf_nan=False)]
_Id = Annotated[int, Field(strict=True, ge=0, le=2**63 - 1)]
# A metric sort's key: (run has no such metric, its value, run id).
BY_METRIC_AND_ID = CursorKey(_Flag, _Float, _Id)


class InvalidRunQuery(ValueError):
    """A filter or sort the client wrote wrongly; the message says how to write it."""


@dataclass(frozen=True)
class MetricFilter:
    name: str
    op: MetricOp
    value: float


@dataclass(frozen=True)
class ParamFilter:
    name: str
    value: Any  # str, int, float, bool or None, as cellops.log_params took it


@dataclass(frozen=True)
class TagFilter:
    name: str  # with no value: a tag of this name, or any tag with this value
    value: str | None = None


@dataclass(frozen=True)
class RunQuery:
    metrics: tuple[MetricFilter, ...] = ()
    params: tuple[ParamFilter, ...] = ()
    tags: tuple[TagFilter, ...] = ()
    sort_metric: str | None = None  # None: by start (run id)
    descending: bool = True


# -- parsing ----------------------------------------------------------------------------------


def parse_run_query(
    metric: list[str], param: list[str], tag: list[str], sort: str | None
) -> RunQuery:
    """The query ``?metric=…&param=…&tag=…&sort=…`` states; InvalidRunQuery naming the
    first expression that is wrong and how to write it."""
    for name, values in (("metric", metric), ("param", param), ("tag", tag)):
        if len(values) > MAX_FILTERS:
            raise InvalidRunQuery(f"at most {MAX_FILTERS} {name} filters, not {len(values)}")
    sort_metric, descending = _parse_sort(sort)
    return RunQuery(
        metrics=tuple(_parse_metric(m) for m in metric),
        params=tuple(_parse_param(p) for p in param),
        tags=tuple(_parse_tag(t) for t in tag),
        sort_metric=sort_metric,
        descending=descending,
    )


def _name(name: str, expr: str, kind: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidRunQuery(f"{kind} filter {expr!r} names no {kind}")
    if len(name) > MAX_NAME:
        raise InvalidRunQuery(f"{kind} names are at most {MAX_NAME} characters")
    return name


def _parse_metric(expr: str) -> MetricFilter:
    found = _METRIC_EXPR.match(expr)
    if found is None:
        raise InvalidRunQuery(
            f"metric filter {expr[:100]!r} is not NAME OP NUMBER with OP one of > >= < <= = "
            "(e.g. metric=accuracy>0.9)"
        )
    raw = found["value"].strip()
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidRunQuery(
            f"metric filter {expr[:100]!r}: {raw[:50]!r} is not a finite number "
            "(e.g. metric=accuracy>0.9)"
        )
    op: MetricOp = found["op"]  # type: ignore[assignment]  # the regex allows only these
    return MetricFilter(_name(found["name"], expr[:100], "metric"), op, value)


def _parse_param(expr: str) -> ParamFilter:
    name, sep, raw = expr.partition("=")
    if not sep:
        raise InvalidRunQuery(
            f"param filter {expr[:100]!r} is not NAME=VALUE (e.g. param=alpha=0.1)"
        )
    return ParamFilter(_name(name, expr[:100], "param"), param_value(raw.strip()))


def param_value(raw: str) -> Any:
    """What a typed value means, as Python would read it: 0.1 a number, True/true a
    boolean, None/null None, 'text' or "text" (quoted) and anything else a string."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    words: dict[str, Any] = {"true": True, "false": False, "none": None, "null": None}
    if raw.lower() in words:
        return words[raw.lower()]
    try:
        number = float(raw)
    except ValueError:
        return raw
    if not math.isfinite(number):
        return raw
    return (
        int(number) if number.is_integer() and "." not in raw and "e" not in raw.lower() else number
    )


def _parse_tag(expr: str) -> TagFilter:
    name, sep, value = expr.partition("=")
    return TagFilter(_name(name, expr[:100], "tag"), value.strip() if sep else None)


def _parse_sort(sort: str | None) -> tuple[str | None, bool]:
    if sort in (None, "", "-started"):
        return None, True
    if sort == "started":
        return None, False
    descending = sort.startswith("-")
    kind, sep, name = sort.lstrip("-").partition(":")
    if kind != "metric" or not sep or not name.strip():
        raise InvalidRunQuery(
            f"sort {sort[:100]!r} is not one of started, -started, metric:NAME, -metric:NAME "
            "(- sorts descending)"
        )
    return _name(name, sort[:100], "sort metric"), descending


# -- SQL on JSON values, the same answers on both stores -------------------------------------


class _Json:
    """Type and scalar text of a JSON value column, per dialect."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def kind(self, v: Any) -> Any:
        """'number', 'string', 'boolean', 'null' (or another JSON type)."""
        if self.postgres:
            return sa.func.jsonb_typeof(v)
        t = sa.func.json_type(v)
        return sa.case(
            (t.in_(["integer", "real"]), "number"),
            (t == "text", "string"),
            (t.in_(["true", "false"]), "boolean"),
            else_=t,
        )

    def text(self, v: Any) -> Any:
        """A string's text; 'true'/'false' for booleans; a number's digits."""
        if self.postgres:
            return v.op("#>>")(sa.literal_column("'{}'"))
        t = sa.func.json_type(v)
        return sa.case(
            (t.in_(["true", "false"]), t),
            else_=sa.cast(sa.func.json_extract(v, "$"), sa.Text),
        )

    def number(self, v: Any) -> Any:
        """The value as a float when it is a JSON number, else NULL (never a cast error)."""
        return sa.case((self.kind(v) == "number", sa.cast(self.text(v), sa.Float)))

    def equals(self, v: Any, wanted: Any) -> Any:
        if wanted is None:
            return self.kind(v) == "null"
        if isinstance(wanted, bool):
            return sa.and_(self.kind(v) == "boolean", self.text(v) == str(wanted).lower())
        if isinstance(wanted, (int, float)):
            return self.number(v) == float(wanted)
        return sa.and_(self.kind(v) == "string", self.text(v) == wanted)


def _latest(kind: str, name: str | None, notebook_id: int | None) -> sa.Subquery:
    """(run_id, key, value): each run's latest logged ``kind`` value of ``name`` (of every
    key when ``name`` is None)."""
    newest = sa.select(
        executions.c.run_id,
        execution_logs.c.key,
        sa.func.max(execution_logs.c.id).label("log_id"),
    ).join(executions, executions.c.msg_id == execution_logs.c.msg_id)
    newest = newest.where(execution_logs.c.kind == kind)
    if name is not None:
        newest = newest.where(execution_logs.c.key == name)
    if notebook_id is not None:
        newest = newest.where(executions.c.notebook_id == notebook_id)
    inner = newest.group_by(executions.c.run_id, execution_logs.c.key).subquery()
    return (
        sa.select(inner.c.run_id, inner.c.key, execution_logs.c.value)
        .join(execution_logs, execution_logs.c.id == inner.c.log_id)
        .subquery()
    )


_OPS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
}


def _filters(q: RunQuery, js: _Json, notebook_id: int | None) -> list[Any]:
    """One ``runs.id IN (…)`` condition per filter."""
    conds: list[Any] = []
    for m in q.metrics:
        sub = _latest("metric", m.name, notebook_id)
        conds.append(
            runs.c.id.in_(
                sa.select(sub.c.run_id).where(_OPS[m.op](js.number(sub.c.value), m.value))
            )
        )
    for p in q.params:
        sub = _latest("param", p.name, notebook_id)
        conds.append(runs.c.id.in_(sa.select(sub.c.run_id).where(js.equals(sub.c.value, p.value))))
    for t in q.tags:
        sub = _latest("tag", t.name if t.value is not None else None, notebook_id)
        if t.value is not None:
            match = js.equals(sub.c.value, t.value)
        else:  # a tag named so, or any tag with that value
            match = sa.or_(sub.c.key == t.name, js.equals(sub.c.value, t.name))
        conds.append(runs.c.id.in_(sa.select(sub.c.run_id).where(match)))
    return conds


# -- listing -------------------------------------------------------------------------------------


def list_runs(
    store: Store,
    notebook: NotebookArg | None,
    cursor: str | None,
    limit: int,
    q: RunQuery | None = None,
) -> Page[Run]:
    """Runs (of ``notebook`` if given) matching ``q``, newest first or by a metric; runs
    without the sort metric come last. Keyset-paginated like every list."""
    q = q or RunQuery()
    base = sa.select(runs)
    nb: int | None = None
    if notebook is not None:
        nb = store.notebook_id(notebook)
        if nb is None:
            return Page[Run](items=[], next=None)
        base = base.where(runs.c.notebook_id == nb)
    js = _Json(store.engine.dialect.name)
    for cond in _filters(q, js, nb):
        base = base.where(cond)
    if q.sort_metric is None:
        rows, nxt = _by_start(store, base, cursor, limit, q.descending)
    else:
        rows, nxt = _by_metric(store, base, cursor, limit, q, js, nb)
    return Page[Run](items=describe_runs(store, [r.id for r in rows]), next=nxt)


def _by_start(
    store: Store, base: sa.Select[Any], cursor: str | None, limit: int, descending: bool
) -> tuple[list[Any], str | None]:
    base = base.order_by(runs.c.id.desc() if descending else runs.c.id.asc())
    key = decode_cursor(cursor, BY_ID)
    if key:
        base = base.where(runs.c.id < key[0] if descending else runs.c.id > key[0])
    rows = store._fetch(base, limit)
    nxt = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return rows[:limit], nxt


def _by_metric(
    store: Store,
    base: sa.Select[Any],
    cursor: str | None,
    limit: int,
    q: RunQuery,
    js: _Json,
    nb: int | None,
) -> tuple[list[Any], str | None]:
    assert q.sort_metric is not None
    sub = _latest("metric", q.sort_metric, nb)
    value = js.number(sub.c.value).label("sort_value")
    missing = sa.case((value.is_(None), 1), else_=0)
    qry = (
        base.add_columns(value)
        .outerjoin(sub, sub.c.run_id == runs.c.id)
        .order_by(missing, value.desc() if q.descending else value.asc(), runs.c.id.desc())
    )
    key = decode_cursor(cursor, BY_METRIC_AND_ID)
    if key:
        flag, last, run_id = key
        if flag:
            qry = qry.where(value.is_(None), runs.c.id < run_id)
        else:
            beyond = value < last if q.descending else value > last
            qry = qry.where(
                sa.or_(value.is_(None), beyond, sa.and_(value == last, runs.c.id < run_id))
            )
    rows = store._fetch(qry, limit)
    nxt = None
    if len(rows) > limit:
        last_row = rows[limit - 1]
        v = last_row.sort_value
        nxt = encode_cursor([1 if v is None else 0, 0.0 if v is None else float(v), last_row.id])
    return rows[:limit], nxt


# -- what a run shows ------------------------------------------------------------------------------


def describe_runs(store: Store, run_ids: list[int]) -> list[Run]:
    """The runs ``run_ids`` in that order (those that exist), with their number, counts
    and latest values."""
    rows = store._run_rows(run_ids) if run_ids else {}
    run_ids = [rid for rid in run_ids if rid in rows]
    if not run_ids:
        return []
    counts = store._run_counts(run_ids)
    numbers = _numbers(store, run_ids)
    values = _latest_values(store, run_ids)
    out = []
    for rid in run_ids:
        run = store._run(rows[rid], counts.get(rid, (0, 0)))
        logged = values.get(rid, {})
        out.append(
            run.model_copy(
                update={
                    "number": numbers.get(rid, 0),
                    "metrics": logged.get("metric", {}),
                    "params": logged.get("param", {}),
                    "tags": logged.get("tag", {}),
                    **_origin(rows[rid]),
                }
            )
        )
    return out


def _origin(row: Any) -> dict[str, Any]:
    """Where a run came from: JupyterLab, or `cellops run` with its parameters, CI job and
    outcome (migration 0012)."""
    return {
        "source": row.origin or "interactive",
        "parameters": row.parameters,
        "ci": CiInfo.model_validate(row.ci) if row.ci else None,
        "outcome": row.outcome,
    }


def _numbers(store: Store, run_ids: list[int]) -> dict[int, int]:
    """Each run's place among its notebook's runs in start order (1-based)."""
    earlier = runs.alias("earlier")
    q = (
        sa.select(runs.c.id, sa.func.count(earlier.c.id))
        .join(
            earlier,
            sa.and_(
                earlier.c.notebook_id == runs.c.notebook_id,
                sa.or_(
                    earlier.c.started_at < runs.c.started_at,
                    sa.and_(earlier.c.started_at == runs.c.started_at, earlier.c.id <= runs.c.id),
                ),
            ),
        )
        .where(runs.c.id.in_(run_ids))
        .group_by(runs.c.id)
    )
    with store.engine.connect() as conn:
        return {rid: n for rid, n in conn.execute(q)}


def _latest_values(store: Store, run_ids: list[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """run id → kind (metric/param/tag) → key → latest value."""
    newest = (
        sa.select(sa.func.max(execution_logs.c.id).label("log_id"))
        .join(executions, executions.c.msg_id == execution_logs.c.msg_id)
        .where(executions.c.run_id.in_(run_ids))
        .group_by(executions.c.run_id, execution_logs.c.kind, execution_logs.c.key)
        .subquery()
    )
    q = (
        sa.select(
            executions.c.run_id, execution_logs.c.kind, execution_logs.c.key, execution_logs.c.value
        )
        .join(executions, executions.c.msg_id == execution_logs.c.msg_id)
        .where(execution_logs.c.id.in_(sa.select(newest.c.log_id)))
    )
    out: dict[int, dict[str, dict[str, Any]]] = {}
    with store.engine.connect() as conn:
        for rid, kind, key, value in conn.execute(q):
            out.setdefault(rid, {}).setdefault(kind, {})[key] = value
    return out
