"""Notebook parameters, as papermill passes them: ``-p name value`` and a parameters file.

The values go into a new cell tagged ``injected-parameters`` after the cell tagged
``parameters`` (or first), written by papermill's own parameterization (its translators
render each value as code of the notebook's language), so a notebook parameterized for
papermill runs the same here.
"""

from __future__ import annotations

import json
import keyword
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from nbformat import NotebookNode


class ParameterError(Exception):
    """A parameter or parameters file the user must fix (a usage error, exit 2)."""


def parse_value(text: str) -> Any:
    """int, float, bool, JSON (objects, lists, null, quoted strings), else the text itself."""
    for parse in (int, _finite_float):
        try:
            return parse(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return json.loads(text)
    except ValueError:
        return text


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # "nan", "inf": kept as text (JSON cannot hold them)
        raise ValueError(text)
    return value


def check_name(name: str) -> str:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ParameterError(
            f"parameter name {name!r} is not a valid variable name (letters, digits and _, "
            "not starting with a digit)"
        )
    return name


def from_pairs(pairs: list[list[str]] | None) -> dict[str, Any]:
    """``-p name value`` pairs, in order (a later one wins)."""
    return {check_name(name): parse_value(value) for name, value in pairs or []}


def from_file(path: str) -> dict[str, Any]:
    """A YAML or JSON mapping of parameter names to values."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"cannot read the parameters file {path}: {exc}") from None
    try:
        loaded = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if file.suffix.lower() == ".json" else "YAML"
        raise ParameterError(f"the parameters file {path} is not valid {kind}: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ParameterError(
            f"the parameters file {path} must hold a mapping of names to values, "
            f"not a {type(loaded).__name__}"
        )
    for name in loaded:
        check_name(str(name)) if isinstance(name, str) else _not_a_name(name, path)
    try:
        json.dumps(loaded, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"the parameters file {path} holds a value JSON cannot: {exc}"
        ) from None
    return loaded


def _not_a_name(name: Any, path: str) -> None:
    raise ParameterError(f"the parameters file {path} has a key {name!r} that is not a name")


def inject(nb: NotebookNode, parameters: dict[str, Any], kernel_name: str) -> NotebookNode:
    """``nb`` with the ``injected-parameters`` cell (none if there are no parameters)."""
    if not parameters:
        return nb
    from papermill.parameterize import parameterize_notebook

    nb.metadata.setdefault("papermill", {})  # where papermill notes the parameters
    language = (
        (nb.metadata.get("kernelspec") or {}).get("language")
        or (nb.metadata.get("language_info") or {}).get("name")
        or _kernel_language(kernel_name)
    )
    untagged = [c for c in nb.cells if "tags" not in c.metadata]
    for cell in untagged:  # papermill reads every cell's tags
        cell.metadata["tags"] = []
    try:
        return parameterize_notebook(nb, parameters, kernel_name=kernel_name, language=language)
    finally:
        for cell in untagged:  # the notebook's cells keep their metadata as they were
            if cell.metadata.get("tags") == []:
                del cell.metadata["tags"]


def _kernel_language(kernel_name: str) -> str | None:
    """The installed kernel's language, for a notebook whose metadata does not say it."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return str(KernelSpecManager().get_kernel_spec(kernel_name).language) or None
    except NoSuchKernel:
        return None  # papermill says it cannot tell; the run reports no such kernel anyway
