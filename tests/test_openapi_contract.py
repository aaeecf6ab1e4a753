"""The committed API contract: extension/openapi.json and the TypeScript types made from it.

The frontend's wire types are generated from the committed document, so it must be
exactly what the server builds, and the server's answers must be what it promises.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cellops_server.api.openapi import dump
from cellops_server.api.routes import ROUTES, openapi_document
from jsonschema import Draft202012Validator

from .support import JupyterServer

EXTENSION = Path(__file__).resolve().parents[1] / "extension"
COMMITTED = EXTENSION / "openapi.json"
GENERATED = EXTENSION / "src" / "generated" / "openapi.ts"
REGENERATE = (
    "regenerate with `python -m cellops_server.api.openapi --write extension/openapi.json "
    "&& (cd extension && jlpm build:api)` and commit both files"
)
VERBS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    srv = JupyterServer(tmp_path_factory.mktemp("contract")).start()
    client = srv.connect(srv.new_session("contract.ipynb"))
    client.execute("x = 1", cell_id="cell-a")
    client.execute("x = 2\nprint(x)", cell_id="cell-a")
    client.close()
    srv.api.wait_for("versions", lambda b: len(b["items"]) == 2, notebook="contract.ipynb")
    yield srv
    srv.stop()


def test_committed_openapi_json_is_what_the_server_builds() -> None:
    same = COMMITTED.read_text(encoding="utf-8") == dump(openapi_document())  # no 100 KB diff
    assert same, f"extension/openapi.json differs from the server's models: {REGENERATE}"


def test_generated_typescript_is_made_from_the_committed_document(tmp_path: Path) -> None:
    tools = EXTENSION / "node_modules" / ".bin"
    if not (tools / "openapi-typescript").exists() or shutil.which("node") is None:
        pytest.skip("needs Node and `jlpm install` in extension/ (openapi-typescript)")
    # Run package.json's own build:api, writing elsewhere, so its options are the ones tested.
    script = json.loads((EXTENSION / "package.json").read_text())["scripts"]["build:api"]
    relative = str(GENERATED.relative_to(EXTENSION))
    assert relative in script, f"build:api no longer writes {relative}: {script}"
    out = tmp_path / "openapi.ts"
    subprocess.run(
        shlex.split(script.replace(relative, str(out))),
        cwd=EXTENSION,
        env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"},
        check=True,
        capture_output=True,
        timeout=120,
    )
    same = GENERATED.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    assert same, f"extension/src/generated/openapi.ts is stale: {REGENERATE}"


def test_every_route_and_method_is_in_the_document() -> None:
    doc = openapi_document()
    documented = {(path, verb) for path, ops in doc["paths"].items() for verb in ops}
    undeclared, missing = [], []
    for pattern, handler in ROUTES:
        for verb in VERBS:
            if verb not in handler.__dict__:
                continue
            if not hasattr(handler.__dict__[verb], "__cellops_operation__"):
                undeclared.append(f"{verb.upper()} {pattern} ({handler.__name__})")
            elif not any(v == verb and _matches(pattern, p) for p, v in documented):
                missing.append(f"{verb.upper()} {pattern}")
    assert not undeclared, f"add @operation(...) to: {undeclared}"
    assert not missing, f"not in the document: {missing}"
    assert len(documented) == sum(v in h.__dict__ for _, h in ROUTES for v in VERBS)


def _matches(pattern: str, template: str) -> bool:
    """Whether a documented path template is that route pattern (same literal segments)."""
    return re.sub(r"\([^)]*\)", "{}", pattern) == re.sub(r"\{[^}]*\}", "{}", template)


def test_the_server_serves_the_committed_document(server: JupyterServer) -> None:
    same = dump(server.api.cellops("openapi.json")) == COMMITTED.read_text(encoding="utf-8")
    assert same, f"the served document is not the committed one: {REGENERATE}"


def test_answers_carry_every_field_the_document_requires(server: JupyterServer) -> None:
    # The generated types say a response field is always there; a real answer must agree.
    doc = server.api.cellops("openapi.json")
    nb = {"notebook": "contract.ipynb"}
    run = server.api.cellops("runs", **nb)["items"][0]
    execution = server.api.cellops("executions", **nb)["items"][0]
    old, new = (v["id"] for v in reversed(server.api.cellops("versions", **nb)["items"]))
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("/status", "status", nb),
        ("/settings", "settings", {}),
        ("/events", "events", {}),
        ("/notebooks", "notebooks", {}),
        ("/runs", "runs", nb),
        ("/runs/{run_id}", f"runs/{run['id']}", {}),
        ("/runs/{run_id}/executions", f"runs/{run['id']}/executions", {}),
        ("/executions", "executions", nb),
        ("/executions/{execution_id}", f"executions/{execution['id']}", {}),
        ("/executions/{execution_id}/logs", f"executions/{execution['id']}/logs", {}),
        ("/versions", "versions", nb),
        ("/versions/{version_id}", f"versions/{new}", {}),
        ("/versions/{a}/diff/{b}", f"versions/{old}/diff/{new}", {}),
        ("/models", "models", {}),
    ]
    checked = []
    for template, path, params in calls:
        if template not in doc["paths"]:  # a renamed route fails the route test above
            continue
        content = doc["paths"][template]["get"]["responses"]["200"]["content"]
        schema = {**content["application/json"]["schema"], "components": doc["components"]}
        errors = [
            f"{e.json_path}: {e.message}"
            for e in Draft202012Validator(schema).iter_errors(server.api.cellops(path, **params))
        ]
        assert not errors, f"GET {path} does not match its documented schema: {errors}"
        checked.append(template)
    assert len(checked) >= 12, checked
