"""Saving and loading models with skops, trusting only an explicit list of types.

skops (not pickle) because loading a pickle runs arbitrary code. skops lists the types
a file would construct; a model is accepted only when every one of them comes from a
library we trust, or was named by the user in ``trusted=``. skops/numpy are imported
here, inside the functions, so ``import cellops`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .client import CellopsError

ALLOWED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "collections.")
# Builtins are allowed one by one (plain data types only): a list of what to refuse would
# miss whatever hands code execution or file access to whoever crafted the file.
SAFE_BUILTINS = frozenset(
    f"builtins.{name}"
    for name in (
        "bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list",
        "object", "range", "set", "slice", "str", "tuple", "type",
    )
)  # fmt: skip


class UnsafeModelError(CellopsError):
    """The model cannot be saved or loaded without trusting code we cannot vouch for."""


def untrusted(types: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """The types among ``types`` that are neither allow-listed nor trusted by the user."""
    extra_set = set(extra)
    bad = []
    for name in types:
        if "<lambda>" in name or name.startswith("__main__."):
            bad.append(name)  # cannot be re-imported by anyone, even when trusted
        elif not (name in SAFE_BUILTINS or name in extra_set or name.startswith(ALLOWED_PREFIXES)):
            bad.append(name)
    return bad


def _advice(bad: list[str]) -> str:
    tips = []
    if any("<lambda>" in n for n in bad):
        tips.append(
            "replace the lambda with a function from numpy/scipy/scikit-learn (e.g. numpy.log1p), "
            "or with a named function defined in an importable module"
        )
    if any(n.startswith("__main__.") and "<lambda>" not in n for n in bad):
        tips.append(
            "functions and classes defined in the notebook cannot be loaded elsewhere: move them "
            "into an importable module"
        )
    tips.append(
        "types from your own modules can be allowed explicitly with "
        "trusted=['package.module.name'] in both register() and load()"
    )
    return "; ".join(tips)


def dumps(model: Any, trusted: Iterable[str] = ()) -> bytes:
    """The skops bytes of ``model``; UnsafeModelError when it could not be loaded safely."""
    import skops.io as sio

    try:
        data = sio.dumps(model)
    except Exception as err:
        raise UnsafeModelError(
            f"skops cannot save this {type(model).__name__} ({type(err).__name__}: {err}); "
            "it holds an object skops does not support (open files, generators, locks, …). "
            "Remove it from the model before registering."
        ) from None
    bad = untrusted(sio.get_untrusted_types(data=data), trusted)
    if bad:
        raise UnsafeModelError(
            f"this model contains {', '.join(bad)}, which cannot be loaded without trusting "
            f"arbitrary code, so it was not registered. To fix it: {_advice(bad)}."
        )
    return data


def loads(data: bytes, trusted: Iterable[str] = ()) -> Any:
    """Load skops bytes, passing skops exactly the types it asks for once all are allowed."""
    import skops.io as sio

    try:
        needed = sio.get_untrusted_types(data=data)
    except Exception as err:
        raise UnsafeModelError(f"this artifact is not a readable skops file: {err}") from None
    bad = untrusted(needed, trusted)
    if bad:
        raise UnsafeModelError(
            f"the model contains {', '.join(bad)}, which are not on the allow-list "
            f"({', '.join(ALLOWED_PREFIXES)} and plain builtins); it was not loaded. "
            f"{_advice(bad)}."
        )
    return sio.loads(data, trusted=needed)
