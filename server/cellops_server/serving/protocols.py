"""Open Inference Protocol v2 and MLflow scoring: request bodies to model input, predictions
back to bodies, with the input checked against the version's signature.

``infer`` is the one entry point of the worker: it never raises for bad input (400 with an
error naming what to fix), answers 500 only when the model itself fails, and 415 for a
content type MLflow scoring does not take. The common case (a few rows of numbers for a
model trained on arrays) is decoded with json and numpy alone; pandas is imported only for
a model trained on a DataFrame (it gets a DataFrame with its columns, in its order).

What a model takes is read once per (model, signature) into a ``Spec``: column names and
which of them hold numbers, the shape of one row, and whether the model accepts missing
values (scikit-learn's ``allow_nan`` tag). ``null`` is a missing value (NaN), refused for a
model that cannot handle it; infinities are always refused.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

ROW_LIMIT = 10_000  # rows per request; more is refused with 413 (send several requests)
SAMPLE_ROWS = 100  # rows of a request kept for monitoring (bounds the sample's size)
_MAX_DIMS = 8
PREDICT, PROBA = "predict", "predict_proba"
MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")

V2_TYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}


@dataclass(frozen=True)
class InferenceRequest:
    protocol: Literal["v2", "mlflow"]
    body: bytes
    content_type: str
    deployment: str  # the deployment name (the v2 "model_name" in answers)
    version: int
    signature: dict[str, Any] | None
    # v2 binary tensor extension: the value of the Inference-Header-Content-Length header
    # (the JSON part's length; binary tensor data follows it), None when absent.
    header_length: int | None = None
    # Whether the result carries ``sample`` (the router samples a bounded share of requests).
    sample: bool = True


@dataclass(frozen=True)
class InferenceResult:
    status: int  # 200, 400/413/415 (bad input, body says what to fix), 500 (the model raised)
    body: bytes  # JSON
    rows: int  # rows predicted (0 on error)
    sample: tuple[list[Any], list[Any]] | None  # (input rows, predictions), first SAMPLE_ROWS


class BadInput(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# -- what a model takes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    columns: tuple[str, ...] | None  # names, in the model's order
    # per column: True numbers expected, False values kept as given (text, categories),
    # None unknown (no dtype recorded): numbers when they are numbers, else as given
    numeric: tuple[bool | None, ...] | None
    row_shape: tuple[int, ...] | None  # one row's shape: (n,) for n features; None: unknown
    frame: bool  # the model was fitted on a DataFrame: hand it one
    allow_nan: bool
    has_proba: bool

    @property
    def all_numeric(self) -> bool:
        return self.numeric is None or all(n is True for n in self.numeric)

    @property
    def width(self) -> int | None:
        return (
            self.row_shape[0] if self.row_shape is not None and len(self.row_shape) == 1 else None
        )


_specs: dict[tuple[int, int], tuple[Any, Any, Spec]] = {}


def spec_for(model: Any, signature: dict[str, Any] | None) -> Spec:
    """The Spec of ``model`` under ``signature`` (cached while both objects live)."""
    key = (id(model), id(signature))
    hit = _specs.get(key)
    if hit is not None and hit[0] is model and hit[1] is signature:
        return hit[2]
    spec = _derive(model, signature if isinstance(signature, dict) else {})
    if len(_specs) >= 64:
        _specs.clear()
    _specs[key] = (model, signature, spec)
    return spec


def _derive(model: Any, sig: dict[str, Any]) -> Spec:
    names = getattr(model, "feature_names_in_", None)
    columns: tuple[str, ...] | None = None
    numeric: tuple[bool | None, ...] | None = None
    listed = sig.get("columns")
    if isinstance(listed, list) and listed and all(isinstance(c, dict) for c in listed):
        columns = tuple(str(c.get("name")) for c in listed)
        numeric = tuple(_numeric_dtype(c.get("dtype")) for c in listed)
    elif names is not None:
        columns = tuple(str(n) for n in names)
    row_shape = _row_shape(sig, model, columns)
    if sig.get("type") == "ndarray" and _numeric_dtype(sig.get("dtype")) is False:
        numeric = (False,) * (row_shape[0] if row_shape and len(row_shape) == 1 else 1)
    return Spec(
        columns=columns,
        numeric=numeric,
        row_shape=row_shape,
        frame=names is not None and columns is not None,
        allow_nan=_allows_nan(model),
        has_proba=callable(getattr(model, PROBA, None)),
    )


def _row_shape(sig: dict[str, Any], model: Any, columns: tuple[str, ...] | None) -> Any:
    shape = sig.get("shape")
    if isinstance(shape, list) and len(shape) >= 1:
        rest = shape[1:]
        if all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in rest):
            return tuple(rest)
    if columns is not None:
        return (len(columns),)
    n = getattr(model, "n_features_in_", None)
    return (int(n),) if isinstance(n, (int, np.integer)) else None


def _numeric_dtype(dtype: Any) -> bool | None:
    """What a signature dtype says a column holds: True numbers ("float64", "Int64"), False
    text ("object", "str", "string"), None anything else or unknown ("category", none)."""
    if dtype is None:
        return None
    text = str(dtype).lower()
    if text.startswith(("int", "uint", "float", "bool")):
        return True
    if text in ("object", "str", "string") or text.startswith("string"):
        return False
    try:
        kind = np.dtype(str(dtype)).kind
    except TypeError:
        return None
    return True if kind in "biuf" else False if kind in "US" else None


def _allows_nan(model: Any) -> bool:
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(model).input_tags.allow_nan)
    except Exception:  # not a scikit-learn estimator, or an older scikit-learn
        return False


# -- the entry point ------------------------------------------------------------------------


def infer(model: Any, request: InferenceRequest) -> InferenceResult:
    """Decode ``request``, predict with ``model`` and encode the answer; never raises."""
    try:
        spec = spec_for(model, request.signature)
        if request.protocol == "v2":
            table, outputs, req_id = _decode_v2(spec, request)
        elif request.protocol == "mlflow":
            table, outputs, req_id = _decode_mlflow(spec, request), (PREDICT,), None
        else:
            raise BadInput(f"unknown protocol {request.protocol!r}")
        X = _model_input(spec, table)
    except BadInput as err:
        return _error(err.status, str(err))
    except RecursionError:
        return _error(400, "the body is nested too deeply; send rows of values")
    except MemoryError:
        return _error(413, "the request is too large to decode; send fewer rows per request")
    except ModuleNotFoundError as err:  # pandas, for a model fitted on a DataFrame
        return _error(500, f"the serving environment lacks {err.name}, which this model needs")
    except Exception as err:  # a bug here: say so rather than take the worker down
        return _error(500, f"could not decode the request ({type(err).__name__}: {_short(err)})")
    try:
        answers = {name: _predict(model, name, X) for name in outputs}
    except ValueError as err:  # scikit-learn's input validation: unknown categories, …
        return _error(400, f"the model rejected this input: {_short(err)}")
    except Exception as err:
        return _error(500, f"the model raised {type(err).__name__}: {_short(err)}")
    try:
        predictions = answers.get(PREDICT, next(iter(answers.values())))
        rows = int(predictions.shape[0]) if predictions.ndim else 1
        if request.protocol == "v2":
            body = _encode_v2(request, answers, req_id)
        else:
            body = _dumps({"predictions": _listed(predictions)})
        sample = (_sample_rows(spec, table), _sample_of(predictions)) if request.sample else None
    except Exception as err:  # predictions JSON cannot hold
        return _error(
            500, f"could not encode the predictions ({type(err).__name__}: {_short(err)})"
        )
    return InferenceResult(200, body, rows, sample)


def _predict(model: Any, name: str, X: Any) -> np.ndarray:
    y = np.asarray(getattr(model, name)(X))
    return y


def _error(status: int, message: str) -> InferenceResult:
    return InferenceResult(status, _dumps({"error": message}), 0, None)


def _short(err: BaseException, limit: int = 500) -> str:
    text = str(err)
    return text if len(text) <= limit else text[:limit] + "…"


def _dumps(obj: Any) -> bytes:
    try:
        return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()
    except ValueError:  # NaN or infinity in predictions: JSON has null for them
        return json.dumps(_finite(obj), separators=(",", ":")).encode()


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    return obj


# -- tables: what a request decodes to, before it becomes the model's input ------------------


@dataclass
class Table:
    """Either ``matrix`` ([rows, *row_shape]) or ``cols`` (the spec's columns, in order)."""

    rows: int
    matrix: np.ndarray | None = None
    cols: list[np.ndarray] | None = None


def _model_input(spec: Spec, table: Table) -> Any:
    if table.rows == 0:
        raise BadInput("the request has no rows")
    if table.matrix is not None:
        X = _checked_matrix(spec, table.matrix)
        if X.dtype.kind != "O" or X.ndim != 2 or spec.all_numeric:
            table.matrix = X
            return _frame(spec, None, X) if spec.frame else X
        # mixed numbers and text: check each column for what it should hold
        numeric = spec.numeric or (True,) * X.shape[1]
        table.matrix, table.cols = (
            None,
            [_values(X[:, i], _column_name(spec, i), num, spec) for i, num in enumerate(numeric)],
        )
    assert table.cols is not None
    if spec.frame:
        return _frame(spec, table.cols, None)
    if all(c.dtype.kind == "f" for c in table.cols):
        return np.column_stack(table.cols)
    return np.column_stack([c.astype(object) for c in table.cols])


def _frame(spec: Spec, cols: list[np.ndarray] | None, matrix: np.ndarray | None) -> Any:
    import pandas as pd  # only models fitted on a DataFrame get here

    assert spec.columns is not None
    if matrix is not None:
        return pd.DataFrame(matrix, columns=list(spec.columns), copy=False)
    assert cols is not None
    return pd.DataFrame(dict(zip(spec.columns, cols, strict=True)), copy=False)


def _checked_matrix(spec: Spec, X: np.ndarray) -> np.ndarray:
    """Rows of the expected shape; numbers (float64, finite) when the model takes only
    numbers, else an object array its columns are checked from."""
    if X.ndim == 1 and spec.row_shape == (1,):
        X = X.reshape(-1, 1)
    if spec.row_shape is not None and X.shape[1:] != spec.row_shape:
        raise BadInput(_shape_problem(spec, X.shape))
    if X.dtype.kind in "biu":
        return X.astype(np.float64)
    if X.dtype.kind == "f":
        _check_finite(spec, X, None)
        return X if X.dtype == np.float64 else X.astype(np.float64)
    if spec.all_numeric:
        return _numbers(X, "the input", spec)
    return X.astype(object)


def _shape_problem(spec: Spec, shape: tuple[int, ...]) -> str:
    assert spec.row_shape is not None
    want = list(spec.row_shape)
    if spec.width is not None and len(shape) == 2:
        return (
            f"each row must have {spec.width} features (the model's signature), "
            f"but the rows have {shape[1]}"
        )
    return (
        f"the input has shape {list(shape)}; this model takes [rows, {', '.join(map(str, want))}]"
    )


def _column_name(spec: Spec, i: int) -> str:
    return f"column {spec.columns[i]!r}" if spec.columns else f"feature {i}"


def _check_finite(spec: Spec, X: np.ndarray, what: str | None) -> None:
    if np.isfinite(X).all():
        return
    if np.isinf(X).any():
        raise BadInput(f"{what or _where(spec, np.isinf(X))} holds an infinite value")
    if not spec.allow_nan:
        raise BadInput(
            f"{what or _where(spec, np.isnan(X))} holds a missing value (null or NaN), "
            "which this model does not accept"
        )


def _where(spec: Spec, bad: np.ndarray) -> str:
    if bad.ndim != 2:
        return "the input"
    idx = np.flatnonzero(bad.any(axis=0))
    return ", ".join(_column_name(spec, int(i)) for i in idx[:10]) + (
        f" and {len(idx) - 10} more" if len(idx) > 10 else ""
    )


def _numbers(values: Any, what: str, spec: Spec) -> np.ndarray:
    """``values`` (a list or array) as float64; BadInput naming ``what`` otherwise."""
    arr = _array(values, what)
    kind = arr.dtype.kind
    if kind == "f":
        out = arr.astype(np.float64, copy=False)
    elif kind in "biu":
        out = arr.astype(np.float64)
    elif kind == "O":
        out = np.empty(arr.shape, dtype=np.float64)
        flat = out.reshape(-1)
        for i, v in enumerate(arr.reshape(-1)):
            if v is None:
                flat[i] = np.nan
            elif isinstance(v, (int, float, np.number)):
                flat[i] = v
            else:
                raise BadInput(f"{what} must hold numbers, not {_shown(v)}")
    else:
        raise BadInput(f"{what} must hold numbers, not text such as {_shown(arr.reshape(-1)[0])}")
    _check_finite(spec, out, what)
    return out


def _array(values: Any, what: str) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError) as err:
        raise BadInput(f"{what} is not a regular table of values ({_short(err, 200)})") from None
    if arr.ndim > _MAX_DIMS:
        raise BadInput(f"{what} is nested {arr.ndim} levels deep; send rows of values")
    return arr


def _numbers_or_nulls(arr: np.ndarray) -> bool:
    flat = arr.reshape(-1)
    return arr.dtype.kind == "O" and all(v is None or isinstance(v, (int, float)) for v in flat)


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, dict, list, bool)) else repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _values(values: Any, what: str, numeric: bool | None, spec: Spec) -> np.ndarray:
    """One column's values: float64 when numbers are expected, else kept as given."""
    if numeric:
        return _numbers(values, what, spec)
    arr = _array(values, what)
    if numeric is None and (arr.dtype.kind in "biuf" or _numbers_or_nulls(arr)):
        return _numbers(arr, what, spec)
    if arr.dtype.kind in "US":
        return arr.astype(object)
    if numeric is False:  # text: a number here would meet the model's categories unprepared
        bad = next((v for v in arr.reshape(-1) if v is not None and not isinstance(v, str)), None)
        if bad is not None or (arr.dtype.kind != "O" and arr.size):
            shown = _shown(bad if bad is not None else arr.reshape(-1)[0].item())
            raise BadInput(f"{what} must hold text, not {shown}")
        return arr.astype(object)
    if arr.dtype.kind == "O" and any(isinstance(v, (list, dict)) for v in arr.reshape(-1)):
        raise BadInput(f"{what} must hold single values, not lists or objects")
    return arr


def _rows_of(n: int) -> None:
    if n > ROW_LIMIT:
        raise BadInput(
            f"the request has {n} rows; at most {ROW_LIMIT} are predicted per request: "
            "split it into several requests",
            413,
        )


def _from_rows(spec: Spec, rows: Any, what: str) -> Table:
    if not isinstance(rows, list):
        raise BadInput(f"{what} must be a list of rows")
    _rows_of(len(rows))
    if rows and not isinstance(rows[0], list) and spec.row_shape not in ((1,), ()):
        width = spec.width if spec.width is not None else "n"
        raise BadInput(f"{what} must be a list of rows, each a list of {width} values")
    arr = _array(rows, what)
    if arr.dtype.kind == "O" and spec.all_numeric:
        arr = _numbers(arr, what, spec)
    return Table(len(rows), matrix=arr)


def _from_columns(spec: Spec, given: dict[str, Any], what: str) -> Table:
    """Named columns (any order) to the spec's columns, in its order."""
    if spec.columns is None:  # the model has no column names: take them as they come
        values = list(given.values())
        numeric: list[bool | None] = (
            [True] * len(values) if spec.numeric is None else list(spec.numeric)
        )
        if spec.width is not None and len(values) != spec.width:
            raise BadInput(f"{what} has {len(values)} columns; this model takes {spec.width}")
        names = list(given)
    else:
        _check_names(spec.columns, given)
        names = list(spec.columns)
        values = [given[name] for name in names]
        numeric = list(spec.numeric) if spec.numeric is not None else [True] * len(names)
    lengths = {len(v) if isinstance(v, (list, np.ndarray)) else -1 for v in values}
    if -1 in lengths:
        raise BadInput(f"each column of {what} must be a list of values")
    if len(lengths) > 1:
        raise BadInput(f"the columns of {what} differ in length ({sorted(lengths)})")
    rows = lengths.pop() if lengths else 0
    _rows_of(rows)
    cols = [
        _values(v, f"column {n!r}", num, spec).reshape(-1)
        for n, v, num in zip(names, values, numeric, strict=True)
    ]
    for name, col in zip(names, cols, strict=True):
        if col.size != rows:
            raise BadInput(f"column {name!r} must hold one value per row, not lists")
    return Table(rows, cols=cols)


def _check_names(expected: tuple[str, ...], given: Any) -> None:
    missing = [c for c in expected if c not in given]
    extra = [str(c) for c in given if c not in set(expected)]
    problems = []
    if missing:
        problems.append(f"missing column(s) {_names(missing)}")
    if extra:
        problems.append(f"unknown column(s) {_names(extra)}")
    if problems:
        raise BadInput(f"{'; '.join(problems)}; this model takes {_names(list(expected))}")


def _names(names: list[str], shown: int = 30) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(json.dumps(n) for n in names[:shown]) + more


# -- MLflow scoring -------------------------------------------------------------------------


def _decode_mlflow(spec: Spec, request: InferenceRequest) -> Table:
    kind = request.content_type.split(";", 1)[0].strip().lower()
    if kind == "text/csv":
        return _from_csv(spec, request.body)
    if kind != "application/json":
        raise BadInput(
            f"content type {request.content_type or '(none)'!r} is not supported; send "
            "application/json (dataframe_split, dataframe_records, instances or inputs) "
            "or text/csv with a header row",
            415,
        )
    obj = _json(request.body)
    if not isinstance(obj, dict):
        raise BadInput(f"the body must be a JSON object with one of {_names(list(MLFLOW_KEYS))}")
    keys = [k for k in MLFLOW_KEYS if k in obj]
    unknown = [k for k in obj if k not in MLFLOW_KEYS and k != "params"]
    if len(keys) != 1 or unknown:
        found = f"it has {_names([str(k) for k in obj])}" if obj else "it is empty"
        raise BadInput(f"the body must have exactly one of {_names(list(MLFLOW_KEYS))}; {found}")
    key = keys[0]
    value = obj[key]
    if key == "dataframe_split":
        return _split(spec, value)
    if key == "dataframe_records":
        return _records(spec, value, key)
    if key == "instances":
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return _records(spec, value, key)
        return _from_rows(spec, value, key)
    if isinstance(value, dict):
        return _from_columns(spec, value, key)
    return _from_rows(spec, value, key)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadInput(f"the body is not valid JSON ({_short(err, 200)})") from None


def _split(spec: Spec, value: Any) -> Table:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise BadInput('dataframe_split must be {"columns": [...], "data": [[...], ...]}')
    columns, data = value.get("columns"), value["data"]
    if columns is None:
        return _from_rows(spec, data, "dataframe_split.data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise BadInput("dataframe_split.columns must be a list of column names")
    if len(set(columns)) != len(columns):
        raise BadInput("dataframe_split.columns names a column twice")
    _rows_of(len(data))
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise BadInput(
                f"dataframe_split.data row {i} must be a list of {len(columns)} values, "
                "one per column"
            )
    transposed = [list(c) for c in zip(*data, strict=True)] if data else [[] for _ in columns]
    return _from_columns(spec, dict(zip(columns, transposed, strict=True)), "dataframe_split")


def _records(spec: Spec, value: Any, what: str) -> Table:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise BadInput(f"{what} must be a list of objects, one per row")
    _rows_of(len(value))
    if not value:
        raise BadInput("the request has no rows")
    names = list(value[0])
    for i, record in enumerate(value):
        if list(record) != names and set(record) != set(names):
            raise BadInput(f"{what} row {i} has other columns than row 0 ({_names(names)})")
    return _from_columns(spec, {n: [r[n] for r in value] for n in names}, what)


def _from_csv(spec: Spec, body: bytes) -> Table:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput("the CSV body is not UTF-8 text") from None
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as err:
        raise BadInput(f"the CSV body is malformed ({err})") from None
    lines = [line for line in lines if line]
    if not lines:
        raise BadInput("the CSV body is empty; send a header row, then one line per row")
    header, rows = lines[0], lines[1:]
    _rows_of(len(rows))
    if len(set(header)) != len(header):
        raise BadInput("the CSV header names a column twice")
    for i, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise BadInput(f"CSV line {i} has {len(row)} fields; the header has {len(header)}")
    numeric = _csv_numeric(spec, header)
    columns = {}
    for j, name in enumerate(header):
        raw = [row[j] for row in rows]
        columns[name] = _csv_column(raw, name, numeric.get(name, True))
    return _from_columns(spec, columns, "the CSV body")


def _csv_column(raw: list[str], name: str, numeric: bool | None) -> list[Any]:
    if numeric is False:
        return _csv_text(raw)
    try:
        return _csv_numbers(raw, name)
    except BadInput:
        if numeric is None:  # no dtype recorded: text it is
            return _csv_text(raw)
        raise


def _csv_numeric(spec: Spec, header: list[str]) -> dict[str, bool | None]:
    if spec.columns is None or spec.numeric is None:
        return {}
    return dict(zip(spec.columns, spec.numeric, strict=True))


def _csv_numbers(raw: list[str], name: str) -> list[float | None]:
    out: list[float | None] = []
    for i, cell in enumerate(raw, start=2):
        if cell.strip() == "":
            out.append(None)
            continue
        try:
            out.append(float(cell))
        except ValueError:
            raise BadInput(
                f"CSV column {name!r} line {i}: {_shown(cell)} is not a number"
            ) from None
    return out


def _csv_text(raw: list[str]) -> list[str | None]:
    return [cell if cell != "" else None for cell in raw]


# -- Open Inference Protocol v2 -------------------------------------------------------------


def _decode_v2(spec: Spec, request: InferenceRequest) -> tuple[Table, tuple[str, ...], Any]:
    body, binary = request.body, b""
    if request.header_length is not None:
        if not 0 < request.header_length <= len(body):
            raise BadInput(
                f"Inference-Header-Content-Length is {request.header_length}, "
                f"but the body has {len(body)} bytes"
            )
        body, binary = body[: request.header_length], body[request.header_length :]
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        hint = (
            "; binary tensor data needs the Inference-Header-Content-Length header"
            if request.header_length is None and b"binary_data_size" in body[:4096]
            else ""
        )
        raise BadInput(f"the body is not valid JSON ({_short(err, 200)}){hint}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("inputs"), list) or not obj["inputs"]:
        raise BadInput('the body must be {"inputs": [{"name", "shape", "datatype", "data"}, ...]}')
    outputs = _requested_outputs(spec, obj.get("outputs"))
    tensors = _tensors(obj["inputs"], binary)
    return _layout(spec, tensors), outputs, obj.get("id")


def _requested_outputs(spec: Spec, outputs: Any) -> tuple[str, ...]:
    if outputs is None:
        return (PREDICT,)
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise BadInput('"outputs" must be a list of {"name": ...}')
    available = [PREDICT, PROBA] if spec.has_proba else [PREDICT]
    names = tuple(dict.fromkeys(o["name"] for o in outputs))
    unknown = [n for n in names if n not in available]
    if unknown:
        raise BadInput(f"unknown output(s) {_names(unknown)}; this model has {_names(available)}")
    return names or (PREDICT,)


@dataclass
class Tensor:
    name: str
    datatype: str
    array: np.ndarray  # shaped


def _tensors(inputs: list[Any], binary: bytes) -> list[Tensor]:
    tensors, offset, names = [], 0, set()
    for i, spec in enumerate(inputs):
        if not isinstance(spec, dict):
            raise BadInput(f"input {i} must be an object with name, shape, datatype and data")
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise BadInput(f"input {i} needs a name")
        if name in names:
            raise BadInput(f"input {name!r} is given twice")
        names.add(name)
        shape = _shape(spec.get("shape"), name)
        datatype = spec.get("datatype")
        if not isinstance(datatype, str) or datatype not in V2_TYPES:
            raise BadInput(
                f"input {name!r} has datatype {_shown(datatype)}; use one of {', '.join(V2_TYPES)}"
            )
        parameters = spec.get("parameters")
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is not None:
            array, offset = _binary(name, datatype, shape, binary, offset, size)
        else:
            array = _data(name, datatype, shape, spec.get("data"))
        tensors.append(Tensor(name, datatype, array))
    if offset != len(binary):
        raise BadInput(
            f"the body has {len(binary) - offset} bytes of binary data no input's "
            "binary_data_size accounts for"
        )
    return tensors


def _shape(shape: Any, name: str) -> tuple[int, ...]:
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= _MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise BadInput(
            f"input {name!r} needs a shape: a list of 1 to {_MAX_DIMS} non-negative integers, "
            "e.g. [rows, features]"
        )
    _rows_of(shape[0])
    return tuple(shape)


def _data(name: str, datatype: str, shape: tuple[int, ...], data: Any) -> np.ndarray:
    what = f"input {name!r}"
    if data is None:
        raise BadInput(f"{what} has no data")
    if not isinstance(data, list):
        data = [data]
    if datatype == "BYTES":
        arr = _array(data, what).astype(object)
        if arr.dtype.kind == "O" and any(isinstance(v, (list, dict)) for v in arr.reshape(-1)):
            raise BadInput(f"{what} is not a regular table of values")
    else:
        arr = _typed(_array(data, what), datatype, what)
    return _reshaped(arr, shape, what)


def _typed(arr: np.ndarray, datatype: str, what: str) -> np.ndarray:
    """Values of a numeric datatype, checked: integers in range, booleans for BOOL."""
    kind, dtype = arr.dtype.kind, V2_TYPES[datatype]
    if datatype == "BOOL":
        if kind != "b":
            raise BadInput(f"{what} is BOOL: its data must be true or false")
        return arr
    if datatype.startswith(("INT", "UINT")):
        if kind not in "biu":
            raise BadInput(f"{what} is {datatype}: its data must be integers, not {_kind(arr)}")
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise BadInput(f"{what} holds a value outside the range of {datatype}")
        return arr.astype(dtype)
    if kind in "biuf":
        return arr.astype(dtype)
    if kind == "O":  # null (missing) among numbers
        flat = arr.reshape(-1)
        if all(v is None or isinstance(v, (int, float)) for v in flat):
            return np.array([np.nan if v is None else v for v in flat], dtype=dtype)
    raise BadInput(f"{what} is {datatype}: its data must be numbers, not {_kind(arr)}")


def _kind(arr: np.ndarray) -> str:
    return {"U": "text", "S": "text", "f": "fractions", "b": "booleans"}.get(
        arr.dtype.kind, "lists or objects"
    )


def _reshaped(arr: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    expected = math.prod(shape)
    if arr.size != expected:
        raise BadInput(
            f"{what} has shape {list(shape)} ({expected} values) but its data holds {arr.size}"
        )
    return arr.reshape(shape)


def _binary(
    name: str, datatype: str, shape: tuple[int, ...], binary: bytes, offset: int, size: Any
) -> tuple[np.ndarray, int]:
    what = f"input {name!r}"
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadInput(f"{what}: binary_data_size must be a non-negative integer")
    if offset + size > len(binary):
        raise BadInput(
            f"{what} declares {size} bytes of binary data, but only {len(binary) - offset} "
            "follow (is Inference-Header-Content-Length right?)"
        )
    raw = binary[offset : offset + size]
    if datatype == "BYTES":
        arr = _bytes_elements(raw, what)
    else:
        dtype = np.dtype(V2_TYPES[datatype]).newbyteorder("<")
        if size % dtype.itemsize:
            raise BadInput(f"{what}: {size} bytes is not a whole number of {datatype} values")
        arr = np.frombuffer(raw, dtype=dtype).astype(V2_TYPES[datatype])
    return _reshaped(arr, shape, what), offset + size


def _bytes_elements(raw: bytes, what: str) -> np.ndarray:
    """BYTES binary data: each element is a 4-byte little-endian length, then its bytes."""
    items, i = [], 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise BadInput(f"{what}: BYTES binary data ends inside an element's length")
        n = int.from_bytes(raw[i : i + 4], "little")
        if i + 4 + n > len(raw):
            raise BadInput(f"{what}: a BYTES element runs past the end of its data")
        chunk = raw[i + 4 : i + 4 + n]
        try:
            items.append(chunk.decode())
        except UnicodeDecodeError:
            items.append(chunk)
        i += 4 + n
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _layout(spec: Spec, tensors: list[Tensor]) -> Table:
    """One 2-D tensor [rows, features], or one [rows] / [rows, 1] tensor per column."""
    if len(tensors) == 1 and not _per_column(spec, tensors[0]):
        t = tensors[0]
        if t.datatype == "BYTES" and spec.all_numeric:
            raise BadInput(
                f"input {t.name!r} is BYTES, but this model expects numbers: "
                "send FP64 (or another numeric datatype)"
            )
        arr = t.array
        if arr.ndim == 1 and spec.row_shape not in ((1,), ()):
            raise BadInput(
                f"input {t.name!r} has shape {list(arr.shape)}; send one tensor of shape "
                f"[rows, {spec.width if spec.width is not None else 'features'}] or one "
                "[rows] tensor per column"
            )
        return Table(arr.shape[0], matrix=arr)
    for t in tensors:
        if not (t.array.ndim == 1 or (t.array.ndim == 2 and t.array.shape[1] == 1)):
            raise BadInput(
                f"input {t.name!r} has shape {list(t.array.shape)}: with one input per "
                "column, each must be [rows] or [rows, 1]"
            )
    if spec.columns is None:
        raise BadInput(
            "this model's signature has no column names, so inputs cannot be matched to "
            "features by name: send one tensor of shape [rows, features]"
        )
    by_name = {t.name: t for t in tensors}
    _check_names(spec.columns, by_name)
    numeric = spec.numeric or (True,) * len(spec.columns)
    for name, num in zip(spec.columns, numeric, strict=True):
        if num and by_name[name].datatype == "BYTES":
            raise BadInput(
                f"input {name!r} is BYTES, but this model expects numbers for it: send FP64"
            )
    rows = {t.array.shape[0] for t in tensors}
    if len(rows) > 1:
        raise BadInput(f"the inputs differ in their number of rows ({sorted(rows)})")
    cols = [
        _values(by_name[n].array.reshape(-1), f"input {n!r}", num, spec)
        for n, num in zip(spec.columns, numeric, strict=True)
    ]
    return Table(rows.pop(), cols=cols)


def _per_column(spec: Spec, t: Tensor) -> bool:
    """A lone tensor is one column when it is named like one and is not [rows, features]."""
    if spec.columns is None or t.name not in spec.columns:
        return False
    return not (
        t.array.ndim == 2 and spec.width not in (None, 1) and t.array.shape[1] == spec.width
    )


def _encode_v2(request: InferenceRequest, answers: dict[str, np.ndarray], req_id: Any) -> bytes:
    out: dict[str, Any] = {
        "model_name": request.deployment,
        "model_version": str(request.version),
    }
    if isinstance(req_id, str):
        out["id"] = req_id
    out["outputs"] = [
        {
            "name": name,
            "datatype": _v2_datatype(y.dtype),
            "shape": list(y.shape),
            "data": _flat(y),
        }
        for name, y in answers.items()
    ]
    return _dumps(out)


def _v2_datatype(dtype: np.dtype) -> str:
    kind = dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iuf":
        return {"i": "INT", "u": "UINT", "f": "FP"}[kind] + str(dtype.itemsize * 8)
    return "BYTES"


def _flat(y: np.ndarray) -> list[Any]:
    if y.dtype.kind in "biuf":
        return y.reshape(-1).tolist()
    return [v if isinstance(v, (str, int, float, bool)) else str(v) for v in y.reshape(-1).tolist()]


def _listed(y: np.ndarray) -> list[Any]:
    if y.dtype.kind in "biuf":
        return y.tolist()
    return _flat(y) if y.ndim == 1 else [_listed(r) for r in y]


# -- monitoring samples ---------------------------------------------------------------------


def _sample_rows(spec: Spec, table: Table) -> list[Any]:
    if table.matrix is not None:
        rows = table.matrix[:SAMPLE_ROWS].tolist()
    else:
        assert table.cols is not None
        rows = [list(r) for r in zip(*(c[:SAMPLE_ROWS].tolist() for c in table.cols), strict=True)]
    return _finite(rows) if spec.allow_nan else rows


def _sample_of(y: np.ndarray) -> list[Any]:
    return _finite(_listed(y[:SAMPLE_ROWS]))


# -- metadata and the smoke check's input ---------------------------------------------------


def metadata_v2(
    deployment: str, versions: list[int], signature: dict[str, Any] | None, model: Any = None
) -> dict[str, Any]:
    """``GET /v2/models/{name}``: inputs from the signature; outputs from ``model`` if given
    (the type of its predictions; predict_proba when it has one)."""
    sig = signature if isinstance(signature, dict) else {}
    inputs: list[dict[str, Any]] = []
    columns = sig.get("columns")
    if isinstance(columns, list) and columns:
        inputs = [
            {
                "name": str(c.get("name")),
                "datatype": _sig_datatype(c.get("dtype")),
                "shape": [-1, 1],
            }
            for c in columns
            if isinstance(c, dict)
        ]
    elif isinstance(sig.get("shape"), list):
        shape = [-1 if d is None else d for d in sig["shape"]]
        inputs = [{"name": "input-0", "datatype": _sig_datatype(sig.get("dtype")), "shape": shape}]
    outputs: list[dict[str, Any]] = [
        {"name": PREDICT, "datatype": _predict_datatype(model), "shape": [-1]}
    ]
    if model is None or callable(getattr(model, PROBA, None)):
        classes = getattr(model, "classes_", None)
        width = len(classes) if classes is not None and np.ndim(classes) == 1 else -1
        outputs.append({"name": PROBA, "datatype": "FP64", "shape": [-1, width]})
    return {
        "name": deployment,
        "versions": [str(v) for v in versions],
        "platform": "sklearn",
        "inputs": inputs,
        "outputs": outputs,
    }


def _sig_datatype(dtype: Any) -> str:
    if dtype is None:
        return "FP64"
    try:
        return _v2_datatype(np.dtype(str(dtype)))
    except TypeError:
        return "BYTES" if _numeric_dtype(dtype) is False else "FP64"


def _predict_datatype(model: Any) -> str:
    classes = getattr(model, "classes_", None)
    if classes is not None:
        return _v2_datatype(np.asarray(classes).dtype)
    return "FP64"


def example_body(model: Any, signature: dict[str, Any] | None) -> bytes | None:
    """An MLflow scoring body for the smoke check: the signature's example rows, else one
    row of zeros of its shape; None when neither says what an input looks like."""
    sig = signature if isinstance(signature, dict) else {}
    spec = spec_for(model, signature)
    example = sig.get("example")
    if isinstance(example, list) and example:
        if spec.columns is not None and all(isinstance(r, list) for r in example):
            split = {"columns": list(spec.columns), "data": example}
            return _dumps({"dataframe_split": split})
        return _dumps({"instances": example})
    if spec.row_shape is None or not spec.all_numeric:
        return None  # zeros are no valid text or category
    zeros = np.zeros((1, *spec.row_shape)).tolist()
    if spec.columns is not None and len(spec.row_shape) == 1:
        return _dumps({"dataframe_split": {"columns": list(spec.columns), "data": zeros}})
    return _dumps({"instances": zeros})
