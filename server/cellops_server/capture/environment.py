"""What a run ran in: git state of the notebook's folder, read off the event loop."""

from __future__ import annotations

import subprocess
from typing import Any


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
