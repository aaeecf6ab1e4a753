"""Saving and loading models with skops, accepting only what cellops can vouch for.

skops (not pickle) because loading a pickle runs arbitrary code. But skops, too, imports
and calls what a file names, so ``check`` inspects the file before anything is built:
every name must be on the allow-list (allowlist.py) or named by the user in ``trusted=``
(never a name that runs code or does I/O), and tree node storage must pass validation
(tree_storage.py). ``dumps``, ``loads`` and the registry server run the same ``check``;
a server that loads models (serving) calls ``check`` and then ``loads``. skops and numpy
are imported inside the functions, so ``import cellops`` stays fast.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .allowlist import is_allowed, is_denied, is_vetted_library
from .client import CellopsError


class UnsafeModelError(CellopsError):
    """The model cannot be saved or loaded without trusting code we cannot vouch for.

    ``refused``: the names not accepted; ``problems``: why its tree storage is invalid.
    """

    def __init__(
        self, message: str, refused: Iterable[str] = (), problems: Iterable[str] = ()
    ) -> None:
        super().__init__(message)
        self.refused = list(refused)
        self.problems = list(problems)


def untrusted(types: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """The names among ``types`` that are neither allow-listed nor trusted by the user."""
    extra_set = set(extra)
    bad = []
    for name in types:
        if "<lambda>" in name or name.startswith("__main__.") or is_denied(name):
            bad.append(name)  # cannot be re-imported, or too dangerous, even when trusted
        elif not (name in extra_set or is_allowed(name)):
            bad.append(name)
    return bad


def is_skops_file(source: bytes | Path) -> bool:
    """True for a zip archive with a skops schema (whatever flavor a client declared)."""
    try:
        with zipfile.ZipFile(
            io.BytesIO(source) if isinstance(source, bytes) else source
        ) as archive:
            return "schema.json" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def check(
    data: bytes | Path, trusted: Iterable[str] = (), *, defer_own_types: bool = False
) -> list[str]:
    """Inspect a skops file without building it; UnsafeModelError unless it is safe to load.

    ``data`` is the file's bytes or its path (read member by member, never whole).
    Answers the names skops must be told to trust (``skops.io.loads(data, trusted=...)``).
    ``defer_own_types``: accept names from packages other than numpy, scipy, scikit-learn
    and the standard library (the author's own code), as a registry does: it cannot vouch
    for them, and every loader must name them in ``trusted=`` anyway.
    """
    return _check(data, trusted, defer_own_types, "it was refused")


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
    _check(data, trusted, False, "so it was not registered")
    return data


def loads(data: bytes, trusted: Iterable[str] = ()) -> Any:
    """Load skops bytes once ``check`` accepts them, trusting skops with exactly those types."""
    import skops.io as sio

    return sio.loads(data, trusted=_check(data, trusted, False, "it was not loaded"))


def _check(
    data: bytes | Path, trusted: Iterable[str], defer_own_types: bool, outcome: str
) -> list[str]:
    import skops.io as sio

    from .skops_file import Malformed, read

    try:
        contents = read(data)
        needed = (
            sio.get_untrusted_types(data=data)
            if isinstance(data, bytes)
            else sio.get_untrusted_types(file=data)
        )
    except Malformed as err:
        raise UnsafeModelError(
            f"this artifact is not a skops file cellops can verify: {err}"
        ) from None
    except Exception as err:  # skops' own parsing of a damaged or hostile file
        raise UnsafeModelError(f"this artifact is not a readable skops file: {err}") from None
    names = contents.names | set(needed)
    extra = set(trusted)
    if defer_own_types:
        extra |= {name for name in names if not is_vetted_library(name)}
    bad = untrusted(sorted(names), extra)
    if bad or contents.problems:
        raise UnsafeModelError(_refusal(bad, contents.problems, outcome), bad, contents.problems)
    return needed


def _refusal(bad: list[str], problems: list[str], outcome: str) -> str:
    parts = []
    if bad:
        parts.append(
            f"this model contains {_some(bad, ', ')}, which cannot be loaded without trusting "
            f"code cellops cannot vouch for, so {outcome}. To fix it: {_advice(bad)}."
        )
    if problems:
        parts.append(
            f"its tree node storage is invalid ({_some(problems, '; ')}), so {outcome}: "
            "scikit-learn would read memory out of bounds when predicting with it. "
            "A tree trained by scikit-learn never looks like this: the file was altered."
        )
    return " ".join(parts)


def _some(items: list[str], sep: str, shown: int = 5) -> str:
    """The first few ``items``: a crafted file can hold thousands."""
    more = f"{sep}and {len(items) - shown} more" if len(items) > shown else ""
    return sep.join(items[:shown]) + more


def _advice(bad: list[str]) -> str:
    tips = []
    if denied := [n for n in bad if is_denied(n)]:
        tips.append(
            f"{_some(denied, ', ')} can run code, start processes or read and write files: "
            "no trusted= list makes it loadable, and a model that holds it may be malicious"
        )
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
    if any(is_vetted_library(n) and not is_denied(n) for n in bad):
        tips.append(
            "cellops accepts scikit-learn's estimators, plain numpy/scipy data and a vetted list "
            "of functions (numpy ufuncs such as numpy.log1p, scipy.special.expit, scikit-learn "
            "metrics); anything else from these libraries is refused by the registry"
        )
    tips.append(
        "types from your own modules can be allowed explicitly with "
        "trusted=['package.module.name'] in both register() and load()"
    )
    return "; ".join(tips)
