"""What a run ran in: git state of the notebook's folder, read off the event loop."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from ..identity import normalize_remote


def _git(folder: str, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", folder, *args], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(folder: str) -> dict[str, Any] | None:
    """commit, branch and dirty flag of the repository holding ``folder``, or None."""
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return None
    branch = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "branch": branch, "dirty": bool(status)}


def repo_identity(notebook_file: str) -> dict[str, str] | None:
    """The notebook's git identity: its repository's normalized remote URL (``origin``, else
    the first remote) and its path within the repository; None outside a repository with a
    remote (then the notebook is its owner's file alone)."""
    folder = os.path.dirname(notebook_file)
    top = _git(folder, "rev-parse", "--show-toplevel")
    if not top:
        return None
    remotes = (_git(folder, "remote") or "").split()
    if not remotes:
        return None
    remote = "origin" if "origin" in remotes else remotes[0]
    url = _git(folder, "remote", "get-url", remote)
    if not url:
        return None
    inside = os.path.relpath(os.path.realpath(notebook_file), os.path.realpath(top))
    if inside.startswith(".."):
        return None
    return {"repo": normalize_remote(url), "repo_path": inside.replace(os.sep, "/")}


def local_notebook_file(root: str | None, path: str | None) -> str | None:
    """The notebook's file on disk, only if it lies inside the server's root and exists."""
    if not root or not path:
        return None
    root_real = os.path.realpath(os.path.expanduser(root))
    file = os.path.realpath(os.path.join(root_real, path.lstrip("/")))
    if os.path.commonpath([root_real, file]) != root_real or not os.path.isfile(file):
        return None
    return file


@dataclass(frozen=True)
class LocalNotebook:
    """What this Jupyter server knows of a notebook path: whether the file is on its disk,
    and its git identity (``{"repo", "repo_path"}``) if it is in a repository with a remote."""

    exists: bool
    repo: dict[str, str] | None = None


class LocalNotebooks:
    """Looks notebook paths up on this server's disk (git runs on a worker thread); answers
    are kept a few seconds, since the sidebar asks about one notebook several times a load."""

    def __init__(self, root: str | None, ttl: float = 10.0) -> None:
        self.root = root
        self.ttl = ttl
        self._cache: dict[str, tuple[float, LocalNotebook]] = {}

    async def look_up(self, path: str) -> LocalNotebook:
        now = time.monotonic()
        hit = self._cache.get(path)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        file = local_notebook_file(self.root, path)
        found = LocalNotebook(False)
        if file is not None:
            repo = await asyncio.get_running_loop().run_in_executor(None, repo_identity, file)
            found = LocalNotebook(True, repo)
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[path] = (now, found)
        return found
