"""nbclient executes the notebook; every message of it feeds the capture Tracker.

The tracker is the one JupyterLab's kernel-websocket tap feeds (capture/tap.py), called
the same way: ``attach`` when the kernel is ready, ``on_execute_request`` for each request
sent, ``kernel_session_seen`` and ``on_kernel_message`` for each kernel message of it
(iopub and the shell reply), ``shutdown`` at the end. So a headless run's records have
exactly the shape of an interactive run's. Like JupyterLab, the request carries the
cell's id in its metadata (``cellId``), which nbclient itself does not send.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbformat import NotebookNode

from ..capture.tap import TRACKED_REPLIES
from ..capture.tracker import Tracker

CONNECTION = 1  # the tracker's connection number: one client, nbclient, asks for everything


class TrackedKernelClient(AsyncKernelClient):
    """The kernel client nbclient uses, which also tells who listens of each request."""

    on_request: Callable[[dict[str, Any]], None] | None = None
    cell_id: str | None = None  # of the cell nbclient is about to run

    def execute(  # type: ignore[override]
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
    ) -> str:
        content = {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": user_expressions or {},
            "allow_stdin": self.allow_stdin if allow_stdin is None else allow_stdin,
            "stop_on_error": stop_on_error,
        }
        msg = self.session.msg("execute_request", content)
        if self.cell_id:  # as JupyterLab sends it
            msg["metadata"].update(cellId=self.cell_id, deletedCells=[])
        if self.on_request is not None:
            self.on_request(msg)
        self.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])


class TrackedNotebookClient(NotebookClient):
    """A NotebookClient whose kernel messages are also told to ``tracker``."""

    def __init__(
        self,
        nb: NotebookNode,
        tracker: Tracker,
        *,
        notebook: str,
        user: str | None,
        folder: str | None,
        repo: dict[str, str] | None,
        headless: dict[str, Any],
        **kw: Any,
    ) -> None:
        super().__init__(nb, **kw)
        self.tracker = tracker
        self.notebook_path = notebook
        self.user = user
        self.folder = folder
        self.repo = repo
        self.headless = headless
        self.kernel_id: str | None = None
        self.on_cell_execute = self._before_cell
        self.on_cell_executed = self._replied

    # -- the kernel --------------------------------------------------------------------

    def create_kernel_manager(self) -> KernelManager:
        km = super().create_kernel_manager()
        km.client_factory = TrackedKernelClient
        return km

    async def async_start_new_kernel_client(self) -> AsyncKernelClient:
        kc = await super().async_start_new_kernel_client()
        assert self.km is not None and isinstance(kc, TrackedKernelClient)
        self.kernel_id = str(self.km.kernel_id)
        self.tracker.attach(
            self.kernel_id,
            self.notebook_path,
            self.user,
            kernel_spec(self.km),
            self.folder,
            self.repo,
            headless=self.headless,
        )
        kc.on_request = self._requested
        return kc

    # -- messages ----------------------------------------------------------------------

    def _before_cell(self, cell: NotebookNode, cell_index: int) -> None:
        if isinstance(self.kc, TrackedKernelClient):
            self.kc.cell_id = cell.get("id")

    def _requested(self, msg: dict[str, Any]) -> None:
        assert self.kernel_id is not None
        self.tracker.on_execute_request(
            self.kernel_id, CONNECTION, msg["header"], msg["metadata"], msg["content"], self.user
        )

    def process_message(
        self, msg: dict[str, Any], cell: NotebookNode, cell_index: int
    ) -> NotebookNode | None:
        self._observe(msg)  # before nbclient, which raises on idle
        return super().process_message(msg, cell, cell_index)

    def _replied(self, cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any]) -> None:
        self._observe(execute_reply)

    def _observe(self, msg: dict[str, Any]) -> None:
        """One kernel message (iopub, or the shell reply), as the tap reads it."""
        if self.kernel_id is None:
            return
        header = msg.get("header") or {}
        self.tracker.kernel_session_seen(self.kernel_id, header.get("session", ""))
        msg_type = header.get("msg_type") or msg.get("msg_type")
        if msg_type not in TRACKED_REPLIES:
            return
        parent = (msg.get("parent_header") or {}).get("msg_id", "")
        pending = self.tracker.wants(self.kernel_id, parent, CONNECTION)
        if pending is not None:
            self.tracker.on_kernel_message(self.kernel_id, pending, msg_type, msg["content"])

    def end(self, outcome: str) -> None:
        """The run is over: its end and outcome are recorded (a cell still running, after a
        timeout, is recorded as aborted)."""
        if self.kernel_id is not None:
            self.tracker.shutdown(self.kernel_id, outcome)


def kernel_spec(km: KernelManager) -> dict[str, Any]:
    """What the tap records of a kernel: its name, display name and language."""
    try:
        spec = km.kernel_spec
        return {
            "name": km.kernel_name,
            "display_name": spec.display_name,
            "language": spec.language,
        }
    except Exception:  # a spec that cannot be read: its name is still known
        return {"name": km.kernel_name}
