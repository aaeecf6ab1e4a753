"""Whether a model version's input signature accepts what the version holding an alias
accepts now: the ``signature_compatible`` rule of a promotion policy.

Clients of an alias send the data the current holder takes. A new holder must take the same
columns (by name, in any order) with dtypes at least as wide. Signatures are stored as the
kernel library wrote them (widgets/cellops/registry.py ``signature``, autolog's
``input_signature``): ``{"type", "shape", "columns": [{"name", "dtype"}], "dtype"}``, any
of which may be missing; a signature is client data, so nothing here trusts its shape.

Kinds of dtypes and what each accepts (the holder's kind on the left: its clients send it):

============  ===========================  =====================================
holder        new version may take          not
============  ===========================  =====================================
bool          bool, int, float              text, datetime, category
int           int, float                    bool, text, …
float         float                         int (values would be cut), text, …
text          text                          numbers, category, …
datetime      datetime                      anything else
category      category                      anything else
unknown       unknown                       a known dtype (nothing to compare)
============  ===========================  =====================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# holder's kind → the kinds a new version may take in its place
ACCEPTS: dict[str, frozenset[str]] = {
    "bool": frozenset({"bool", "int", "float"}),
    "int": frozenset({"int", "float"}),
    "float": frozenset({"float"}),
    "text": frozenset({"text"}),
    "datetime": frozenset({"datetime"}),
    "category": frozenset({"category"}),
    "unknown": frozenset({"unknown"}),
}
# pandas spellings first ("Int64", "boolean", "string[python]"), then numpy's own codes
PREFIXES = (
    ("bool", "bool"),
    ("int", "int"),
    ("uint", "int"),
    ("float", "float"),
    ("string", "text"),
    ("datetime", "datetime"),
    ("category", "category"),
)
NUMPY_KINDS = {
    "b": "bool",
    "i": "int",
    "u": "int",
    "f": "float",
    "U": "text",
    "S": "text",
    "M": "datetime",
}
MAX_LISTED = 10  # problems (and columns of a summary) named before "… and N more"


@dataclass(frozen=True)
class Columns:
    """A signature read as columns: (name, dtype text, kind) in order; ``named`` False for
    an array (its columns are positions)."""

    items: tuple[tuple[str, str, str], ...]
    named: bool

    def summary(self) -> str:
        shown = [f"{name}: {dtype}" for name, dtype, _ in self.items[:MAX_LISTED]]
        more = len(self.items) - MAX_LISTED
        return ", ".join(shown) + (f", … and {more} more" if more > 0 else "") or "no columns"


def kind_of(dtype: Any) -> str:
    """The kind of a dtype as pandas or numpy spell it ("int64", "Float64", "object",
    "datetime64[ns, UTC]", "<U5"); "unknown" for None or anything not recognised."""
    if not isinstance(dtype, str) or not dtype.strip():
        return "unknown"
    text = dtype.strip().lower()
    for prefix, kind in PREFIXES:
        if text.startswith(prefix):
            return kind
    if text in ("object", "str", "unicode"):
        return "text"
    try:
        code = np.dtype(dtype.strip()).kind
    except (TypeError, ValueError):
        return "unknown"
    return NUMPY_KINDS.get(code, "unknown")


def read(signature: Any) -> Columns | None:
    """The columns of a stored signature, or None when it says nothing about them."""
    if not isinstance(signature, dict):
        return None
    listed = signature.get("columns")
    if isinstance(listed, list) and listed:
        items = []
        for i, column in enumerate(listed):
            if not isinstance(column, dict):
                return None
            name = column.get("name")
            dtype = column.get("dtype")
            text = str(dtype) if dtype is not None else "unknown"
            items.append((str(name) if name is not None else str(i), text, kind_of(dtype)))
        return Columns(tuple(items), named=True)
    shape = signature.get("shape")
    if isinstance(shape, list) and len(shape) == 2 and _count(shape[1]):
        dtype = signature.get("dtype")
        text = str(dtype) if dtype is not None else "unknown"
        kind = kind_of(dtype)
        return Columns(tuple((f"[{i}]", text, kind) for i in range(shape[1])), named=False)
    return None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 100_000


def problems(holder: Columns, candidate: Columns) -> list[str]:
    """What ``candidate`` would refuse or misread of the input ``holder`` takes ([]: none)."""
    if holder.named != candidate.named:
        what = {True: "named columns", False: "an array without column names"}
        return [f"the current version takes {what[holder.named]}, this one {what[candidate.named]}"]
    theirs = {name: (dtype, kind) for name, dtype, kind in holder.items}
    ours = {name: (dtype, kind) for name, dtype, kind in candidate.items}
    found = [f"missing column {name!r}" for name in theirs if name not in ours]
    found += [f"extra column {name!r}" for name in ours if name not in theirs]
    for name, (dtype, kind) in theirs.items():
        if name in ours and ours[name][1] not in ACCEPTS[kind]:
            found.append(f"{name!r} is {ours[name][0]}, the current version's is {dtype}")
    return found


def listed(found: list[str]) -> str:
    more = len(found) - MAX_LISTED
    return "; ".join(found[:MAX_LISTED]) + (f"; … and {more} more" if more > 0 else "")
