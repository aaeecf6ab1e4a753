"""A compact summary of training data per feature, what drift is measured against.

``summarize(X)`` runs in the kernel at registration (the server stores the summary with
the version and validates it with ``check``). It is JSON, and bounded in size whatever the
data: at most ``MAX_FEATURES`` features, a per-feature budget of quantile points and
categories that shrinks as features grow, category labels cut to ``MAX_LABEL`` characters.

- numeric feature: ``count``, ``missing``, ``mean``, ``std``, ``min``, ``max``; ``edges``
  (up to 9 distinct deciles) and ``fractions`` of rows per bin (``len(edges) + 1`` bins, bin
  ``i`` is ``[edges[i-1], edges[i])``, see ``bin_index``); ``quantiles``: up to 200 sorted
  values at evenly spaced probabilities, a deterministic stand-in for a subsample (KS,
  Wasserstein).
- categorical feature (object, string, bool, category dtypes): ``count``, ``missing`` and
  ``frequencies`` of the most common values (top 50, labels as strings) plus ``other``.

numpy is imported at module import; pandas only when a DataFrame is given.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from collections import Counter
from typing import Any

import numpy as np

VERSION = 1
MAX_FEATURES = 1000
MAX_BINS = 10
MAX_POINTS = 200  # quantile points per numeric feature
MIN_POINTS = 20
POINT_BUDGET = 20_000  # quantile points over all numeric features
MAX_CATEGORIES = 50
MIN_CATEGORIES = 5
CATEGORY_BUDGET = 5_000  # categories over all categorical features
MAX_LABEL = 64
MAX_NAME = 256
ROW_SAMPLE = 200_000  # quantiles and bins of larger data are read from this many rows
MAX_BYTES = 1_000_000  # a summary's JSON, as the server accepts it
OTHER = "other"
SOURCES = ("training", "input_example")


def summarize(
    X: Any, columns: list[str] | None = None, *, source: str = "training"
) -> dict[str, Any]:
    """The summary of ``X`` (a DataFrame, 2-D array or list of rows) per feature.

    ``columns`` names the features of an array (default: the DataFrame's columns, or
    ``"0"``, ``"1"``, …). ``source`` says what the data was: ``"training"`` data or only the
    registration's ``"input_example"``.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}; got {source!r}")
    table = _Table(X, columns)
    kept = table.names[:MAX_FEATURES]
    numeric = [j for j in range(len(kept)) if table.numeric[j]]
    points = _clamp(POINT_BUDGET // max(len(numeric), 1), MIN_POINTS, MAX_POINTS)
    n_cat = len(kept) - len(numeric)
    top = _clamp(CATEGORY_BUDGET // max(n_cat, 1), MIN_CATEGORIES, MAX_CATEGORIES)
    features: dict[str, Any] = {}
    for j, summary in zip(numeric, _numeric(table, numeric, points), strict=True):
        features[kept[j]] = summary
    for j in range(len(kept)):
        if not table.numeric[j]:
            features[kept[j]] = _categorical(table.objects(j), top)
    return {
        "version": VERSION,
        "source": source,
        "rows": table.n,
        "columns": kept,
        "omitted_columns": len(table.names) - len(kept),
        "features": {name: features[name] for name in kept},
    }


def bin_index(values: np.ndarray, edges: list[float] | np.ndarray) -> np.ndarray:
    """The bin of each value: ``0`` below ``edges[0]``, ``i`` in ``[edges[i-1], edges[i])``."""
    return np.searchsorted(np.asarray(edges, dtype=float), values, side="right")


# -- the data as columns ------------------------------------------------------------------


class _Table:
    """A DataFrame or 2-D array read by row chunks (numeric features) or by column."""

    def __init__(self, X: Any, columns: list[str] | None) -> None:
        pandas = sys.modules.get("pandas")  # a DataFrame can only exist if pandas is imported
        if pandas is not None and isinstance(X, pandas.Series):
            X = X.to_frame()
        self.frame = X if pandas is not None and isinstance(X, pandas.DataFrame) else None
        if self.frame is not None:
            types = pandas.api.types
            self.names = _names(columns, [str(c) for c in self.frame.columns])
            self.numeric = [
                types.is_numeric_dtype(t) and not types.is_bool_dtype(t) for t in self.frame.dtypes
            ]
            self.n = len(self.frame)
            return
        array = np.asarray(X)
        if array.ndim == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2:
            raise ValueError(f"reference data must be a table of rows (2-D); got {array.ndim}-D")
        self.n = int(array.shape[0])
        self.names = _names(columns, [str(j) for j in range(array.shape[1])])
        self.array: np.ndarray | list[np.ndarray] = array
        if array.dtype.kind == "O":  # mixed rows: per column, floats where all are numbers
            self.array = _split_objects(array)
            self.numeric = [_is_numeric_dtype(c.dtype) for c in self.array]
        else:
            self.numeric = [_is_numeric_dtype(array.dtype)] * array.shape[1]

    def floats(self, rows: slice | np.ndarray, cols: list[int]) -> np.ndarray:
        """The rows by ``cols`` as float64 (missing values NaN)."""
        if self.frame is not None:
            part = self.frame.iloc[rows, cols]
            return part.to_numpy(dtype=float, na_value=np.nan)
        if isinstance(self.array, list):
            return np.stack([self.array[j][rows] for j in cols], axis=1).astype(float)
        part = self.array[rows]
        if cols != list(range(part.shape[1])):  # no fancy-index copy of all columns
            part = part[:, cols]
        return np.asarray(part, dtype=float)

    def objects(self, j: int) -> np.ndarray:
        if self.frame is not None:
            return self.frame.iloc[:, j].to_numpy(dtype=object)
        column = self.array[j] if isinstance(self.array, list) else self.array[:, j]
        return np.asarray(column, dtype=object)


def _is_numeric_dtype(dtype: np.dtype) -> bool:
    return dtype.kind in "iuf"


def _split_objects(array: np.ndarray) -> list[np.ndarray]:
    """An object array's columns: floats where every present value is a number."""
    out = []
    for j in range(array.shape[1]):
        column = array[:, j]
        if all(_is_number(v) for v in column):
            out.append(np.array([np.nan if v is None else v for v in column], dtype=float))
        else:
            out.append(column)
    return out


def _is_number(value: Any) -> bool:
    return value is None or (
        isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    )


def _names(given: list[str] | None, default: list[str]) -> list[str]:
    if given is None:
        names = default
    else:
        names = [str(c) for c in given]
        if len(names) != len(default):
            raise ValueError(f"columns names {len(names)} features; the data has {len(default)}")
    names = [n[:MAX_NAME] for n in names]
    if len(set(names)) != len(names):
        raise ValueError("reference columns must have distinct names")
    return names


# -- numeric features ---------------------------------------------------------------------

CHUNK_VALUES = 4_000_000  # values per row chunk for the moments (32 MB of float64)
SAMPLE_VALUES = 10_000_000  # values of the row sample sorted for quantiles (80 MB)


def _numeric(table: _Table, cols: list[int], points: int) -> list[dict[str, Any]]:
    if not cols:
        return []
    moments = _Moments(len(cols))
    step = max(1, CHUNK_VALUES // len(cols))
    for r0 in range(0, table.n, step):
        moments.add(table.floats(slice(r0, r0 + step), cols))
    limit = min(ROW_SAMPLE, max(20_000, SAMPLE_VALUES // len(cols)))
    rows: slice | np.ndarray = slice(None)
    if table.n > limit:  # quantiles of a row sample: exact enough, far cheaper
        rows = np.sort(np.random.default_rng(0).choice(table.n, limit, replace=False))
    sample = np.sort(table.floats(rows, cols), axis=0)  # NaN sorts last
    finite = np.isfinite(sample).sum(axis=0)
    return [_numeric_feature(moments, i, sample[: finite[i], i], points) for i in range(len(cols))]


class _Moments:
    """Count, mean, variance (Chan's pairwise update, stable for large means), min, max."""

    def __init__(self, width: int) -> None:
        self.count = np.zeros(width)
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)
        self.min = np.full(width, np.inf)
        self.max = np.full(width, -np.inf)
        self.missing = np.zeros(width)

    def add(self, chunk: np.ndarray) -> None:
        finite = np.isfinite(chunk)
        if finite.all():  # the common case: four passes, no masks
            n = np.full(chunk.shape[1], float(chunk.shape[0]))
            mean = chunk.mean(axis=0)
            m2 = ((chunk - mean) ** 2).sum(axis=0)
            low, high = chunk.min(axis=0), chunk.max(axis=0)
        else:
            n = finite.sum(axis=0).astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(n > 0, np.where(finite, chunk, 0.0).sum(axis=0) / n, 0.0)
            m2 = (np.where(finite, chunk - mean, 0.0) ** 2).sum(axis=0)
            low = np.where(finite, chunk, np.inf).min(axis=0)
            high = np.where(finite, chunk, -np.inf).max(axis=0)
        self.missing += chunk.shape[0] - n
        total = self.count + n
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = mean - self.mean
            self.mean = np.where(total > 0, self.mean + delta * n / total, 0.0)
            self.m2 = self.m2 + m2 + np.where(total > 0, delta**2 * self.count * n / total, 0.0)
        self.count = total
        self.min = np.minimum(self.min, low)
        self.max = np.maximum(self.max, high)


def _numeric_feature(m: _Moments, i: int, ordered: np.ndarray, points: int) -> dict[str, Any]:
    count = int(m.count[i])
    summary: dict[str, Any] = {"kind": "numeric", "count": count, "missing": int(m.missing[i])}
    if count == 0 or ordered.size == 0:
        return {**summary, "mean": None, "std": None, "min": None, "max": None, "edges": [],
                "fractions": [1.0], "quantiles": []}  # fmt: skip
    edges = np.unique(_round(_quantiles(ordered, np.arange(1, MAX_BINS) / MAX_BINS)))
    below = np.searchsorted(ordered, edges, side="left")  # sorted: bin counts by bisection
    counts = np.diff(np.concatenate([[0], below, [ordered.size]]))
    k = min(points, ordered.size)
    return {
        **summary,
        "mean": _num(m.mean[i]),
        "std": _num(np.sqrt(m.m2[i] / count)),
        "min": _num(m.min[i]),
        "max": _num(m.max[i]),
        "edges": [float(e) for e in edges],
        "fractions": [_num(c / ordered.size) for c in counts],
        "quantiles": [float(q) for q in _round(_quantiles(ordered, (np.arange(k) + 0.5) / k))],
    }


def _quantiles(ordered: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Values of sorted data at ``probs`` (the inverse of the empirical CDF: data values)."""
    index = np.clip(np.ceil(probs * ordered.size).astype(int) - 1, 0, ordered.size - 1)
    return ordered[index]


# -- categorical features -----------------------------------------------------------------


def _categorical(values: np.ndarray, top: int) -> dict[str, Any]:
    counter = Counter(v if _hashable(v) else repr(v) for v in values.tolist())
    missing = sum(c for v, c in counter.items() if _missing(v))
    present = len(values) - missing
    # Only the most common raw values are labelled: 1, 1.0 and "1" may merge into one label.
    merged: Counter[str] = Counter()
    for value, c in counter.most_common(top * 3 + 1):
        name = None if _missing(value) else _label(value)
        if name is not None:
            merged[name] += c
    kept = merged.most_common(top)
    total = max(present, 1)
    frequencies = {name: _num(c / total) for name, c in kept}
    frequencies[OTHER] = _num((present - sum(c for _, c in kept)) / total)
    return {"kind": "categorical", "count": present, "missing": missing,
            "frequencies": frequencies}  # fmt: skip


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN
    except (TypeError, ValueError):
        return True  # pandas.NA: comparisons are themselves missing


def label(value: Any) -> str | None:
    """A categorical value as the summary names it (None: missing)."""
    return _label(value)


def _label(value: Any) -> str | None:
    if _missing(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1.0 in a JSON request and 1 in training name the same category
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = text[:MAX_LABEL]
    return "other " if text == OTHER else text  # never merged with the bucket of the rest


def _round(values: np.ndarray) -> np.ndarray:
    """7 significant digits: a third of the JSON of a float64's repr, far below bin widths."""
    with np.errstate(all="ignore"):
        out = np.array([float(f"{v:.7g}") for v in values], dtype=float)
    return out


def _num(value: Any) -> float:
    return float(f"{float(value):.7g}")


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


# -- validation (the server runs this on what a client sent) ------------------------------


def check(summary: Any) -> None:
    """Raise ValueError saying what to fix unless ``summary`` is a summary ``drift`` can use."""
    if not isinstance(summary, dict):
        raise ValueError("reference must be an object made by cellops.reference.summarize")
    try:
        size = len(json.dumps(summary, allow_nan=False, separators=(",", ":")))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"reference must be plain JSON without NaN or Infinity ({exc})") from None
    if size > MAX_BYTES:
        raise ValueError(
            f"reference is {size:,} bytes of JSON; at most {MAX_BYTES:,} are accepted "
            "(summarize fewer columns)"
        )
    if summary.get("version") != VERSION:
        raise ValueError(f"reference.version must be {VERSION}")
    if summary.get("source") not in SOURCES:
        raise ValueError(f"reference.source must be one of {list(SOURCES)}")
    features = summary.get("features")
    columns = summary.get("columns")
    if not isinstance(features, dict) or not features:
        raise ValueError("reference.features must be a non-empty object of features")
    if len(features) > MAX_FEATURES:
        raise ValueError(f"reference has {len(features)} features; at most {MAX_FEATURES}")
    if not isinstance(columns, list) or sorted(map(str, columns)) != sorted(features):
        raise ValueError("reference.columns must list exactly the features' names, in order")
    for name, feature in features.items():
        try:
            _check_feature(feature)
        except ValueError as exc:
            raise ValueError(f"reference.features[{name[:MAX_NAME]!r}]: {exc}") from None


def _check_feature(feature: Any) -> None:
    if not isinstance(feature, dict):
        raise ValueError("must be an object")
    count = feature.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("count must be a non-negative integer")
    if feature.get("kind") == "numeric":
        _check_numeric(feature)
    elif feature.get("kind") == "categorical":
        freqs = feature.get("frequencies")
        if not isinstance(freqs, dict) or not freqs or len(freqs) > MAX_CATEGORIES + 1:
            raise ValueError(f"frequencies must hold 1-{MAX_CATEGORIES + 1} categories")
        if not all(_fraction(v) for v in freqs.values()):
            raise ValueError("frequencies must be fractions between 0 and 1")
    else:
        raise ValueError('kind must be "numeric" or "categorical"')


def _check_numeric(feature: dict[str, Any]) -> None:
    edges, fractions = feature.get("edges"), feature.get("fractions")
    quantiles = feature.get("quantiles")
    for what, values, most in (
        ("edges", edges, MAX_BINS),
        ("fractions", fractions, MAX_BINS + 1),
        ("quantiles", quantiles, MAX_POINTS),
    ):
        if not isinstance(values, list) or len(values) > most:
            raise ValueError(f"{what} must be a list of at most {most} numbers")
        if not all(_finite(v) for v in values):
            raise ValueError(f"{what} must hold finite numbers")
    assert isinstance(edges, list) and isinstance(fractions, list) and isinstance(quantiles, list)
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError("edges must be strictly increasing")
    if any(b < a for a, b in itertools.pairwise(quantiles)):
        raise ValueError("quantiles must be sorted")
    if len(fractions) != len(edges) + 1 or not all(_fraction(f) for f in fractions):
        raise ValueError("fractions must be len(edges) + 1 fractions between 0 and 1")
    if feature["count"] > 0 and not quantiles:
        raise ValueError("quantiles must not be empty when count > 0")
    for key in ("mean", "std", "min", "max"):
        value = feature.get(key)
        if value is not None and not _finite(value):
            raise ValueError(f"{key} must be a finite number or null")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fraction(value: Any) -> bool:
    return _finite(value) and 0.0 <= value <= 1.0
