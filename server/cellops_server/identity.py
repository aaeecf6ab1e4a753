"""A notebook's identity: whose file it is, or which git repository's.

Two files are one notebook only when they really are the same notebook: the same member's
file at one path (in embedded mode, the store's one user), or the same path within the same
git repository (by its normalized remote URL), whoever opened it.
"""

from __future__ import annotations

import hashlib
import json
import re

_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>(?!//).+)$")
_URL = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:[^@/]*@)?(?P<host>[^/]*)(?P<path>/.*)?$"
)


def normalize_remote(url: str) -> str:
    """One spelling per repository: ``git@github.com:Org/x.git``, ``https://github.com/Org/x``
    and ``ssh://git@github.com/Org/x/`` all give ``github.com/Org/x`` (no credentials)."""
    url = url.strip()
    if m := _URL.match(url):
        if m["scheme"].lower() == "file":
            path = m["path"] or "/"
            return _strip_repo_suffix(path)
        host = m["host"].lower().rsplit(":", 1)[0] if m["host"] else ""
        return _strip_repo_suffix(f"{host}{m['path'] or ''}")
    if not url.startswith("/") and (m := _SCP_LIKE.match(url)):
        return _strip_repo_suffix(f"{m['host'].lower()}/{m['path'].lstrip('/')}")
    return _strip_repo_suffix(url)  # a local path remote


def _strip_repo_suffix(path: str) -> str:
    path = path.rstrip("/")
    return path[: -len(".git")] if path.endswith(".git") else path


def notebook_key(path: str, owner: str | None, repo: str | None, repo_path: str | None) -> str:
    """The stored identity (notebooks.key): a git notebook's, else its owner's file's."""
    if repo and repo_path:
        parts = ["git", normalize_remote(repo), repo_path.strip("/")]
    else:
        parts = ["member" if owner else "local", owner or "", path.strip("/")]
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()
