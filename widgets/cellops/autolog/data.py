"""Fingerprints of training data, remembered per fitted model (without touching the model).

A fingerprint is what lineage needs to say "this model was trained on that data":
shape, column names and dtypes, and a content hash. It is kept in a weak map keyed by
the estimator, so the model object is unchanged (skops does not serialize it) and the
entry goes away with the model. The training X itself is remembered only by a weak
reference (``training_data``): register() summarizes it as the drift reference while the
notebook still holds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import threading
import weakref
from typing import Any

MAX_HASH_BYTES = 512 * 1024 * 1024  # hashing more would add seconds to a fit

_by_model: weakref.WeakKeyDictionary[Any, list[dict[str, Any]]] = weakref.WeakKeyDictionary()
_data_by_model: weakref.WeakKeyDictionary[Any, weakref.ref[Any]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def remember(model: Any, prints: list[dict[str, Any]]) -> None:
    # TypeError: not weak-referenceable or unhashable, so nothing to remember it by
    with _lock, contextlib.suppress(TypeError):
        _by_model[model] = prints


def remember_data(model: Any, X: Any) -> None:
    """Remember the training X of ``model`` by a weak reference: register() summarizes it as
    the drift reference if it is still alive (and unchanged) then; it is never kept alive."""
    try:
        ref = weakref.ref(X)
    except TypeError:  # lists and tuples cannot be weakly referenced: no reference from them
        return
    with _lock, contextlib.suppress(TypeError):
        _data_by_model[model] = ref


def training_data(model: Any) -> Any:
    """The X ``model`` was last fitted on, if it is still alive and its content hash is the
    one recorded at the fit (None otherwise)."""
    with _lock:
        try:
            ref = _data_by_model.get(model)
        except TypeError:
            return None
    data = ref() if ref is not None else None
    if data is None:
        return None
    recorded = next((p for p in fingerprints(model) if p.get("role") == "X"), None)
    if recorded is None or recorded.get("hash") is None:
        return data  # too big to hash at the fit: trusted as is
    return data if fingerprint(data, "X").get("hash") == recorded["hash"] else None


def fingerprints(model: Any) -> list[dict[str, Any]]:
    """Fingerprints of the data ``model`` was last fitted on (``[]`` if autolog did not see it)."""
    with _lock:
        try:
            return [dict(p) for p in _by_model.get(model, [])]
        except TypeError:
            return []


def input_signature(model: Any) -> dict[str, Any] | None:
    """The input signature derived from the training X autolog saw, or None."""
    x = next((p for p in fingerprints(model) if p.get("role") == "X"), None)
    if x is None or not x.get("shape"):
        return None
    sig: dict[str, Any] = {"type": x["type"], "shape": [None, *x["shape"][1:]]}
    if x.get("columns") is not None:
        sig["columns"] = x["columns"]
    if x.get("dtype") is not None:
        sig["dtype"] = x["dtype"]
    return sig


def _sha(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return "sha256:" + h.hexdigest()


def fingerprint(data: Any, role: str) -> dict[str, Any]:
    """shape, columns/dtypes and a content hash of X or y (hash None when too big or opaque)."""
    pandas = sys.modules.get("pandas")  # a DataFrame can only exist if pandas is imported
    if pandas is not None and isinstance(data, (pandas.DataFrame, pandas.Series)):
        return _pandas(pandas, data, role)
    scipy_sparse = sys.modules.get("scipy.sparse")
    if scipy_sparse is not None and scipy_sparse.issparse(data):
        csr = data.tocsr()
        parts = [csr.data, csr.indices, csr.indptr]
        big = sum(p.nbytes for p in parts) > MAX_HASH_BYTES
        return {
            "role": role,
            "type": "sparse",
            "shape": [int(d) for d in csr.shape],
            "dtype": str(csr.dtype),
            "hash": None if big else _sha(str(csr.shape).encode(), *(p.tobytes() for p in parts)),
        }
    import numpy as np

    array = np.asarray(data)
    print_: dict[str, Any] = {
        "role": role,
        "type": "ndarray",
        "shape": [int(d) for d in array.shape],
        "dtype": str(array.dtype),
        "hash": None,
    }
    if array.dtype.hasobject:  # bytes would be pointers; hash the values through pandas
        if pandas is not None and array.ndim in (1, 2):
            frame = pandas.DataFrame(array) if array.ndim == 2 else pandas.Series(array)
            hashed = pandas.util.hash_pandas_object(frame, index=False).to_numpy()
            print_["hash"] = _sha(str(array.shape).encode(), hashed.tobytes())
    elif array.nbytes <= MAX_HASH_BYTES:
        header = f"{array.dtype.str}{array.shape}".encode()
        print_["hash"] = _sha(header, np.ascontiguousarray(array).tobytes())
    return print_


def _pandas(pandas: Any, data: Any, role: str) -> dict[str, Any]:
    frame = data.to_frame() if isinstance(data, pandas.Series) else data
    columns = [{"name": str(c), "dtype": str(t)} for c, t in frame.dtypes.items()]
    hashed = pandas.util.hash_pandas_object(frame, index=True).to_numpy()
    header = repr([(c["name"], c["dtype"]) for c in columns]).encode()
    return {
        "role": role,
        "type": "dataframe" if isinstance(data, pandas.DataFrame) else "series",
        "shape": [int(d) for d in data.shape],
        "columns": columns,
        "hash": _sha(header, hashed.tobytes()),
    }
