"""cellops' own iopub subscription to a kernel, so capture does not need a browser.

The websocket tap sees a kernel's messages only while a browser is connected. When
the tab that sent a request closes before the cell finishes, Jupyter buffers what
follows for a reconnect that may never come. This watcher hears every iopub message
of the kernel, but decodes one only when the tracker has such orphaned executions,
so it costs nothing while the browser is there.
"""

from __future__ import annotations

import logging
from typing import Any

from .tracker import Tracker

log = logging.getLogger("cellops.capture")
WATCHED = {
    "status",
    "execute_input",
    "stream",
    "execute_result",
    "display_data",
    "error",
    "clear_output",
}


class IopubWatcher:
    def __init__(
        self, tracker: Tracker, multi_kernel_manager: Any, kernel_id: str, session: Any
    ) -> None:
        self.tracker = tracker
        self.kernel_id = kernel_id
        self.session = session
        self.stream = multi_kernel_manager.connect_iopub(kernel_id)
        self.stream.on_recv(self._on_message)

    def close(self) -> None:
        if not self.stream.closed():
            self.stream.on_recv(None)
            self.stream.close()

    def _on_message(self, parts: list[Any]) -> None:
        if not self.tracker.has_orphans(self.kernel_id):
            return
        try:
            _, fed = self.session.feed_identities(parts)
            header = self.session.unpack(fed[1])
            if header.get("msg_type") not in WATCHED:
                return
            parent = self.session.unpack(fed[2])
            pending = self.tracker.orphan(self.kernel_id, parent.get("msg_id", ""))
            if pending is not None:
                content = self.session.unpack(fed[4])
                self.tracker.on_kernel_message(
                    self.kernel_id, pending, header["msg_type"], content, watcher=True
                )
        except Exception:
            log.exception("cellops: failed to read a kernel message of %s", self.kernel_id)
