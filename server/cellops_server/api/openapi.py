"""The OpenAPI 3.1 document, generated from the route table and the pydantic models.

Handlers declare each operation with ``@operation``; ``build_document`` walks the
route table and turns those declarations and the models' JSON schemas into the
document served at ``/cellops/api/v1/openapi.json``.

``python -m cellops_server.api.openapi --write extension/openapi.json`` writes it to the
file the frontend's types are generated from (``jlpm build:api``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from pydantic_core import core_schema

from .. import __version__
from ..bounds import MAX_INT
from ..registry.names import ALIAS_RULE, MODEL_NAME_RULE, anchored
from ..schemas import ErrorBody
from ..store.pagination import CURSOR_PATTERN
from .base import ApiHandler

REF = "#/components/schemas/{model}"


@dataclass
class Param:
    name: str
    description: str
    required: bool = False
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    location: str = "query"  # or "header"


query = SimpleNamespace(
    cursor=Param(
        "cursor",
        "Opaque cursor from a previous page's `next` (base64url, unpadded).",
        schema={"type": "string", "pattern": CURSOR_PATTERN, "format": "base64url"},
    ),
    limit=Param(
        "limit", "Page size (1-500).", schema={"type": "integer", "minimum": 1, "maximum": 500}
    ),
    notebook=Param("notebook", "Notebook path, as in GET /notebooks.", required=True),
    notebook_optional=Param("notebook", "Only runs of this notebook path."),
    owner=Param("owner", "With notebook: that member's notebook at the path (team mode)."),
    repo=Param("repo", "With notebook: the git remote URL of the caller's file (team mode)."),
    repo_path=Param("repo_path", "With repo: the file's path within the repository."),
    own=Param(
        "own",
        "With notebook: 1 when the file is on the caller's disk (never a teammate's then).",
        schema={"type": "string", "enum": ["0", "1", "true", "false"]},
    ),
    cell=Param("cell", "Only executions of this cell id (JupyterLab's cell model id)."),
    status_notebook=Param("notebook", "Also say whether this notebook path is recorded."),
    after=Param(
        "after",
        "Last event seq seen; without it the answer is immediate and only gives `last`.",
        schema={"type": "integer", "minimum": 0},
    ),
    timeout=Param(
        "timeout",
        "Seconds to wait for an event (0-25, default 25).",
        schema={"type": "integer", "minimum": 0, "maximum": 25},
    ),
)

# How ?notebook=path is told apart when members' notebooks share a path (store.notebook_id).
NOTEBOOK_IDENTITY = [query.owner, query.repo, query.repo_path, query.own]


@dataclass
class Operation:
    summary: str
    response: type[BaseModel] | None
    params: list[Param]
    body: type[BaseModel] | None
    status: int
    binary: bool
    notebook: bool
    raw_body: bool
    document: str | None


def operation(
    summary: str,
    response: type[BaseModel] | None,
    *,
    params: list[Param] | None = None,
    body: type[BaseModel] | None = None,
    status: int = 200,
    binary: bool = False,
    notebook: bool = False,
    raw_body: bool = False,
    document: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def attach(method: Callable[..., Any]) -> Callable[..., Any]:
        method.__cellops_operation__ = Operation(  # type: ignore[attr-defined]
            summary, response, params or [], body, status, binary, notebook, raw_body, document
        )
        return method

    return attach


# Path parameters named by what they hold; the rest are numeric ids (routes match digits).
PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "pattern": anchored(MODEL_NAME_RULE)},
    "alias": {"type": "string", "pattern": anchored(ALIAS_RULE)},
    "sha": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "version": {"type": "integer", "minimum": 1, "maximum": 999_999_999},  # routes: 1-9 digits
}
ID_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_INT}


def _path_template(pattern: str, method: Callable[..., Any]) -> tuple[str, list[str]]:
    names = [n for n in method.__code__.co_varnames[1 : method.__code__.co_argcount]]
    groups = iter(names)
    path = re.sub(r"\([^)]*\)", lambda _: "{" + next(groups, "id") + "}", pattern)
    return path, names


def _path_parameter(name: str) -> dict[str, Any]:
    schema = PATH_SCHEMAS.get(name, ID_SCHEMA)
    return {"name": name, "in": "path", "required": True, "schema": schema}


class _WireSchema(GenerateJsonSchema):
    """Responses list every field as required: the server writes them all (defaults included).

    A model both sent and answered (a PUT echoing its body) thus gets two schemas,
    ``Name-Input`` and ``Name-Output``.
    """

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        if self.mode == "serialization":
            return not field.get("serialization_exclude")
        return super().field_is_required(field, total)


# (model, mode) -> the $ref objects pointing at its schema; filled once all are known.
_Refs = dict[tuple[type[BaseModel], JsonSchemaMode], list[dict[str, str]]]


def build_document(routes: list[tuple[str, type[ApiHandler]]]) -> dict[str, Any]:
    refs: _Refs = {}
    paths: dict[str, Any] = {}
    for pattern, handler in routes:
        for verb in ("get", "post", "put", "patch", "delete"):
            method = getattr(handler, verb, None)
            op: Operation | None = getattr(method, "__cellops_operation__", None)
            if method is None or op is None:
                continue
            target = getattr(method, "__wrapped__", method)
            path, names = _path_template(pattern, target)
            paths.setdefault(path, {})[verb] = _operation(op, names, refs)
    keys = list(refs)
    resolved, defs = models_json_schema(keys, ref_template=REF, schema_generator=_WireSchema)
    for key in keys:
        for ref in refs[key]:
            ref.update(resolved[key])
    return {
        "openapi": "3.1.0",
        "info": {"title": "cellops API", "version": __version__},
        "servers": [{"url": "/cellops/api/v1"}],
        "components": {
            "schemas": dict(sorted(defs.get("$defs", {}).items())),
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization"}
            },
        },
        "security": [{"token": []}],
        "paths": paths,
    }


def _ref(model: type[BaseModel], mode: JsonSchemaMode, refs: _Refs) -> dict[str, str]:
    ref: dict[str, str] = {}
    refs.setdefault((model, mode), []).append(ref)
    return ref


def _operation(op: Operation, path_params: list[str], refs: _Refs) -> dict[str, Any]:
    error = {"application/json": {"schema": _ref(ErrorBody, "serialization", refs)}}
    if op.binary:
        ok = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    elif op.notebook or op.document:
        # A JSON object defined elsewhere (nbformat, OpenAPI), not by a model here.
        what = op.document or "nbformat 4 notebook"
        ok = {"application/json": {"schema": {"type": "object", "description": what}}}
    elif op.response is not None:
        ok = {"application/json": {"schema": _ref(op.response, "serialization", refs)}}
    else:
        ok = {}
    spec: dict[str, Any] = {
        "summary": op.summary,
        "parameters": [_path_parameter(n) for n in path_params]
        + [
            {
                "name": p.name,
                "in": p.location,
                "required": p.required,
                "description": p.description,
                "schema": p.schema,
            }
            for p in op.params
        ],
        "responses": {
            str(op.status): {"description": "OK", "content": ok},
            "400": {"description": "Bad input", "content": error},
            "401": {"description": "No or unknown token", "content": error},
            "403": {"description": "Not allowed", "content": error},
            "404": {"description": "Not found", "content": error},
        },
    }
    if op.body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body, "validation", refs)}},
        }
    elif op.raw_body:
        spec["requestBody"] = {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    return spec


class OpenApiHandler(ApiHandler):
    @operation("This document", None, document="OpenAPI 3.1 document")
    @authorized
    async def get(self) -> None:
        self.write_json(self.settings["cellops_openapi"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m cellops_server.api.openapi",
        description="Print the OpenAPI document of /cellops/api/v1, or write it to a file.",
    )
    parser.add_argument("--write", metavar="PATH", help="write it here instead of stdout")
    args = parser.parse_args(argv)
    from .routes import openapi_document  # routes imports this module

    text = dump(openapi_document())
    if args.write:
        with open(args.write, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def dump(document: dict[str, Any]) -> str:
    """The committed file's form: stable, diffable, one trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    main()
