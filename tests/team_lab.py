"""Members of a team working in clones of one git repository (browser tests, benchmarks).

Two clones of one remote hold the same notebook at the same path, so cellops resolves both
members' files to ONE notebook (identity.py): a comment alice writes on a cell shows on
bob's copy of it. Imported by ui-tests and by benchmarks (which put tests/ on sys.path), so
it imports nothing from the test package.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path

import nbformat


def git(*args: str | Path, cwd: Path | None = None) -> None:
    subprocess.run(
        ["git", "-c", "user.name=team", "-c", "user.email=team@example.org",
         "-c", "init.defaultBranch=main", *map(str, args)],
        cwd=cwd, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def shared_repository(tmp: Path, notebook: str, cells: Iterable[tuple[str, str]]) -> Path:
    """A bare 'origin' holding ``notebook`` with these (cell id, code) cells; answers it."""
    origin = tmp / "origin.git"
    git("init", "-q", "--bare", origin)
    seed = tmp / "seed"
    git("clone", "-q", origin, seed)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for cell_id, code in cells:
        cell = nbformat.v4.new_code_cell(code)
        cell["id"] = cell_id
        nb.cells.append(cell)
    nbformat.write(nb, seed / notebook)
    git("add", notebook, cwd=seed)
    git("commit", "-q", "-m", "analysis", cwd=seed)
    git("push", "-q", "origin", "HEAD:main", cwd=seed)
    return origin


def member_home(home: Path, origin: Path) -> dict[str, str]:
    """A member's home: their clone as ``home/root`` and JupyterLab settings of their own;
    answers the environment their ``jupyter lab`` needs for those settings."""
    git("clone", "-q", origin, home / "root")
    settings = home / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No "get Jupyter news?" toast (and no request to the internet): only cellops' toasts.
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    return {
        "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }
