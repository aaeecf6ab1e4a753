"""The frontend's pure logic (extension/test/*.test.mjs), run by node's own test runner on
the TypeScript compiled by package.json's ``test`` script: a failing case fails here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parents[1] / "extension"


def test_frontend_unit_tests_pass() -> None:
    tools = EXTENSION / "node_modules" / ".bin"
    if not (tools / "tsc").exists() or shutil.which("node") is None:
        pytest.skip("needs Node and `jlpm install` in extension/ (TypeScript)")
    done = subprocess.run(
        ["jlpm", "test"],
        cwd=EXTENSION,
        env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"jlpm test failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout, done.stdout[-2000:]
