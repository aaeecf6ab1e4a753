"""Reading a skops file as data: what it names, and its tree storage, without building anything.

A skops file is a zip archive: ``schema.json`` describes every object as a node
(``__loader__``, ``__module__``, ``__class__``, ``content``) and arrays are ``.npy``
members. This reads the schema as plain JSON and the arrays with ``allow_pickle=False``,
so no name in the file is imported and no object is constructed.

skops resolves an object that appears twice by its ``__id__`` (the occurrence built
second is replaced by the first). Every occurrence of an id must therefore describe the same
object: the same JSON, apart from the ids of what it holds and the names of array members
with the same bytes (a shared object's ``__getstate__`` builds new dicts and arrays each time
it is saved). Otherwise what is checked here could differ from what skops builds.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .allowlist import TREE, TREE_PREDICTOR
from .tree_storage import predictor_problems, tree_problems

SCHEMA = "schema.json"
# skops writes members uncompressed; numbers compress little. Far more is a zip bomb, which
# would exhaust the memory of whoever reads it (the registry server first).
MAX_EXPANSION = 20
# The loader that builds each validated type; any other way of building it skips the checks.
_VALIDATED_LOADER = {TREE: "TreeNode", TREE_PREDICTOR: "ObjectNode"}
# Ensembles that read their trees' nodes in their own compiled code (predict_stages), with
# input checked against their own n_features_in_ rather than the trees'.
_READS_TREES_DIRECTLY = ("sklearn.ensemble._gb.",)


class Malformed(ValueError):
    """The file is not a skops file this module can vouch for."""


@dataclass(frozen=True)
class Scope:
    """What the models around a node say about their input (the bounds its indices keep)."""

    input_features: int | None = None  # the innermost model's n_features_in_
    ensemble_features: int | None = None  # of an enclosing ensemble reading trees directly
    categorical: Any = None  # the innermost model's bin mapper's is_categorical_ (ndarray)

    def width(self) -> int | None:
        known = [n for n in (self.input_features, self.ensemble_features) if n is not None]
        return min(known) if known else None


@dataclass
class Contents:
    names: set[str] = field(default_factory=set)  # every module.name the file would import
    problems: list[str] = field(default_factory=list)  # why its tree storage is refused


def read(source: bytes | Path) -> Contents:
    """The names and tree-storage problems of a skops file (Malformed if it is not one).

    ``source`` is the file's bytes or its path; a path is read member by member, so a
    registry checks a large artifact without holding it in memory.
    """
    size = len(source) if isinstance(source, bytes) else source.stat().st_size
    try:
        with zipfile.ZipFile(
            io.BytesIO(source) if isinstance(source, bytes) else source
        ) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
            if expanded > MAX_EXPANSION * size + (1 << 20):
                raise Malformed(f"it expands to {expanded} bytes from {size}")
            schema = json.loads(archive.read(SCHEMA))
            return _Reader(archive).read(schema)
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError) as err:
        raise Malformed(f"not a skops file ({type(err).__name__}: {err})") from None
    except RecursionError:
        raise Malformed("its schema is nested too deeply") from None
    except ValueError as err:  # json and numpy decoding errors
        raise Malformed(str(err)) from None


class _Reader:
    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.by_id: dict[Any, dict[str, Any]] = {}
        self.digests: dict[str, bytes] = {}
        self.contents = Contents()

    def read(self, schema: Any) -> Contents:
        if not isinstance(schema, dict) or "__loader__" not in schema:
            raise Malformed("schema.json does not describe an object")
        for state, scope in self._nodes(schema):
            self._visit(state, scope)
        return self.contents

    def _nodes(self, root: Any) -> Iterator[tuple[dict[str, Any], Scope]]:
        """Every node of the schema with the scope it sits in (iterative: files can be deep)."""
        stack: list[tuple[Any, Scope]] = [(root, Scope())]
        while stack:
            value, scope = stack.pop()
            if isinstance(value, dict):
                if "__loader__" in value:
                    scope = self._scope(value, scope)
                    yield value, scope
                stack.extend((v, scope) for v in value.values())
            elif isinstance(value, list):
                stack.extend((v, scope) for v in value)

    def _visit(self, state: dict[str, Any], scope: Scope) -> None:
        loader, name = state["__loader__"], _name(state)
        self._remember(state)
        if loader == "CachedNode":
            # skops' writer never emits it; it would build a node checked elsewhere, in
            # another scope.
            raise Malformed("the file refers to objects by reference (CachedNode)")
        if loader == "TreeNode":
            name = TREE  # skops builds a Tree whatever the node claims to be
        elif loader == "MethodNode":
            self.contents.names.add(f"{name}.{_get(state, 'content', 'func')}")
        self.contents.names.add(name)
        if name in _VALIDATED_LOADER:
            if loader != _VALIDATED_LOADER[name]:
                self._problem(name, f"built by {loader} instead of {_VALIDATED_LOADER[name]}")
            else:
                self._check_storage(name, state, scope)

    def _remember(self, state: dict[str, Any]) -> None:
        if "__id__" not in state:
            return
        key = state["__id__"]
        if not isinstance(key, (int, str)) or isinstance(key, bool):
            raise Malformed(f"object id {key!r} is not a number")
        seen = self.by_id.setdefault(key, state)
        if seen is not state and not self._same(seen, state):
            raise Malformed(f"object id {key} names two different objects")

    def _same(self, a: Any, b: Any) -> bool:
        """Describing the same object: equal JSON, nested ids and array member names aside."""
        if isinstance(a, dict) and isinstance(b, dict):
            keys = a.keys() - {"__id__"}
            if keys != b.keys() - {"__id__"}:
                return False
            if isinstance(a.get("file"), str) and isinstance(b.get("file"), str):
                keys -= {"file"}
                if self._digest(a["file"]) != self._digest(b["file"]):
                    return False
            return all(self._same(a[k], b[k]) for k in keys)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(map(self._same, a, b))
        return type(a) is type(b) and a == b

    def _digest(self, member: str) -> bytes:
        if member not in self.digests:
            self.digests[member] = hashlib.sha256(self.archive.read(member)).digest()
        return self.digests[member]

    def _problem(self, name: str, problem: str) -> None:
        self.contents.problems.append(f"{name}: {problem}")

    # -- tree storage ---------------------------------------------------------------------

    def _check_storage(self, name: str, state: dict[str, Any], scope: Scope) -> None:
        try:
            found = self._tree(state, scope) if name == TREE else self._predictor(state, scope)
        except (Malformed, ValueError, KeyError, TypeError) as err:
            found = [f"cannot be verified ({err})"]
        for problem in found:
            self._problem(name, problem)

    def _tree(self, state: dict[str, Any], scope: Scope) -> list[str]:
        args = _items(_node(_get(state, "__reduce__", "args"), "TupleNode"))
        if len(args) != 3:
            raise Malformed("Tree takes (n_features, n_classes, n_outputs)")
        attrs = self._attrs(_get(state, "content"))
        return tree_problems(
            n_features=self._int(args[0]),
            n_classes=self._array(args[1]),
            n_outputs=self._int(args[2]),
            max_depth=self._int(attrs["max_depth"]),
            node_count=self._int(attrs["node_count"]),
            nodes=self._array(attrs["nodes"]),
            values=self._array(attrs["values"]),
            input_features=scope.width(),
        )

    def _predictor(self, state: dict[str, Any], scope: Scope) -> list[str]:
        attrs = self._attrs(_get(state, "content"))
        return predictor_problems(
            nodes=self._array(attrs["nodes"]),
            binned_bitsets=self._array(attrs["binned_left_cat_bitsets"]),
            raw_bitsets=self._array(attrs["raw_left_cat_bitsets"]),
            input_features=scope.width(),
            categorical=scope.categorical,
        )

    def _scope(self, state: dict[str, Any], outer: Scope) -> Scope:
        """The scope inside a model: its n_features_in_ and its bin mapper's categories."""
        if state["__loader__"] != "ObjectNode" or "content" not in state:
            return outer
        try:
            attrs = self._attrs(state["content"])
        except Malformed:
            return outer  # not a plain attribute dict: no bounds from it
        if "n_features_in_" not in attrs:
            return outer
        try:
            width = self._int(attrs["n_features_in_"])
            categorical = self._categorical(attrs.get("_bin_mapper"))
        except (Malformed, ValueError, KeyError, TypeError):
            width, categorical = 0, None  # unreadable bounds: nothing inside can pass
        ensemble = outer.ensemble_features
        if _name(state).startswith(_READS_TREES_DIRECTLY):
            ensemble = width if ensemble is None else min(ensemble, width)
        return Scope(width, ensemble, categorical)

    def _categorical(self, bin_mapper: Any) -> Any:
        if bin_mapper is None:
            return None
        flags = self._attrs(_get(bin_mapper, "content")).get("is_categorical_")
        if flags is None or flags.get("__loader__") == "JsonNode":
            return None  # no categorical features
        return self._array(flags)

    # -- values -----------------------------------------------------------------------------

    def _attrs(self, state: Any) -> dict[str, Any]:
        """The attribute states of a DictNode (the ``__dict__`` skops restores)."""
        content = _node(state, "DictNode").get("content")
        if not isinstance(content, dict):
            raise Malformed("an attribute dict without content")
        return content

    def _int(self, state: Any) -> int:
        value = json.loads(_node(state, "JsonNode")["content"])
        if isinstance(value, bool) or not isinstance(value, int):
            raise Malformed(f"expected an integer, found {value!r}")
        return value

    def _array(self, state: Any) -> Any:
        import numpy as np

        node = _node(state, "NdArrayNode")
        if node.get("type") != "numpy" or _name(node) != "numpy.ndarray":
            raise Malformed("tree storage must be plain numpy arrays")
        member = node.get("file")
        if not isinstance(member, str):
            raise Malformed("an array without its file")
        # The same member skops reads, parsed as skops does: never with pickle.
        return np.load(io.BytesIO(self.archive.read(member)), allow_pickle=False)


def _name(state: dict[str, Any]) -> str:
    module, cls = state.get("__module__"), state.get("__class__")
    if not isinstance(module, str) or not isinstance(cls, str):
        raise Malformed("a node without a module and class name")
    return f"{module}.{cls}"


def _node(state: Any, loader: str) -> dict[str, Any]:
    if not isinstance(state, dict) or state.get("__loader__") != loader:
        found = state.get("__loader__") if isinstance(state, dict) else type(state).__name__
        raise Malformed(f"expected a {loader}, found {found}")
    return state


def _items(state: dict[str, Any]) -> list[Any]:
    content = state.get("content")
    if not isinstance(content, list):
        raise Malformed("a tuple without content")
    return content


def _get(state: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(state, dict) or key not in state:
            raise Malformed(f"missing {key!r}")
        state = state[key]
    return state
