"""cellops' own iopub subscription to a kernel, for when no browser is left to listen.

The websocket tap sees a kernel's messages only while a browser is connected. When
the tab that sent a request closes before the cell finishes, Jupyter buffers what
follows for a reconnect that may never come. Then, and only then (an always-on
subscription would cost every cell its decoding), cellops subscribes to the
kernel's iopub itself and finishes those orphaned executions. A subscription
misses what was published before it connected, so an orphan the kernel is
plainly done with (idle for two checks in a row, by Jupyter's own activity
tracking) is finished with what was seen.
"""

from __future__ import annotations

import logging
from typing import Any

from tornado.ioloop import PeriodicCallback

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
CHECK_MS = 1000


class IopubWatcher:
    def __init__(
        self, tracker: Tracker, multi_kernel_manager: Any, kernel_id: str, session: Any
    ) -> None:
        self.tracker = tracker
        self.kernel_manager = multi_kernel_manager
        self.kernel_id = kernel_id
        self.session = session
        self.idle_checks = 0
        self.stream = multi_kernel_manager.connect_iopub(kernel_id)
        self.stream.on_recv(self._on_message)
        self.timer = PeriodicCallback(self._check, CHECK_MS)
        self.timer.start()

    @classmethod
    def ensure(
        cls, tracker: Tracker, multi_kernel_manager: Any, kernel_id: str, session: Any
    ) -> None:
        """Watch the kernel if a closed connection left executions unfinished."""
        if kernel_id not in tracker.watchers and tracker.has_orphans(kernel_id):
            tracker.watchers[kernel_id] = cls(tracker, multi_kernel_manager, kernel_id, session)

    def close(self) -> None:
        self.timer.stop()
        if not self.stream.closed():
            self.stream.on_recv(None)
            self.stream.close()
        if self.tracker.watchers.get(self.kernel_id) is self:
            del self.tracker.watchers[self.kernel_id]

    def _check(self) -> None:
        if not self.tracker.has_orphans(self.kernel_id):
            self.close()
            return
        try:
            state = self.kernel_manager.get_kernel(self.kernel_id).execution_state
        except KeyError:  # the kernel is gone
            self.tracker.finish_orphans(self.kernel_id, kernel_gone=True)
            self.close()
            return
        self.idle_checks = self.idle_checks + 1 if state == "idle" else 0
        if self.idle_checks >= 2:
            self.tracker.finish_orphans(self.kernel_id)

    def _on_message(self, parts: list[Any]) -> None:
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
