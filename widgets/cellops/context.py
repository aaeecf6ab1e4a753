"""The current execution: which execute_request (and cell) the running code belongs to.

The server records every execution by the msg_id of its execute_request, so that id
is what ties logs and model versions to the cell that produced them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Execution:
    msg_id: str | None
    cell_id: str | None


_last_cell_id: str | None = None
_hooked_shell: Any = None


def _shell() -> Any:
    # Only look for IPython if it is already loaded: importing it here would be slow and pointless.
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:
        return None


def _pre_run_cell(info: Any) -> None:
    global _last_cell_id
    _last_cell_id = getattr(info, "cell_id", None)


def install_hooks() -> None:
    """Follow ``pre_run_cell`` so the cell id is known even when the request has no metadata."""
    global _hooked_shell
    shell = _shell()
    if shell is None or shell is _hooked_shell:
        return
    try:
        shell.events.register("pre_run_cell", _pre_run_cell)
        _hooked_shell = shell
    except Exception:
        pass


def _request() -> dict[str, Any] | None:
    """The execute_request being run (header, metadata, content), or None."""
    shell = _shell()
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    parent: Any = None
    try:
        parent = kernel.get_parent()  # ipykernel >= 6: the request of this thread's context
    except Exception:
        parent = getattr(shell, "parent_header", None)
    if not isinstance(parent, dict):
        return None
    header = parent.get("header") or {}
    if header.get("msg_type") not in (None, "execute_request"):
        return None
    return parent


def current_code() -> str | None:
    """The code of the cell being run, as the kernel received it (what cellops records)."""
    parent = _request()
    code = ((parent or {}).get("content") or {}).get("code")
    return code if isinstance(code, str) else None


def current() -> Execution:
    """The execution being run, or (None, None) outside a kernel."""
    parent = _request()
    if parent is None:
        return Execution(None, None)
    header = parent.get("header") or {}
    metadata = parent.get("metadata") or {}
    cell_id = metadata.get("cellId") or _last_cell_id
    return Execution(header.get("msg_id") or None, cell_id)
