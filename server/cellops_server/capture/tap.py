"""The kernel-websocket tap: observes every message between browser and kernel.

Configured as ``ServerApp.kernel_websocket_connection_class``. It only reads
messages and hands what it needs to the Tracker; it never changes, delays or
drops a message, and any error inside it is logged, not raised.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from typing import Any

from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
)
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

from ..author import server_user
from .environment import local_notebook_file, repo_identity
from .tracker import Tracker
from .watcher import IopubWatcher

V1 = "v1.kernel.websocket.jupyter.org"
_connection_numbers = itertools.count(1)
TRACKED_REPLIES = {
    "status",
    "execute_input",
    "execute_reply",
    "stream",
    "execute_result",
    "display_data",
    "update_display_data",
    "error",
    "clear_output",
}


class TrackingKernelWebsocketConnection(ZMQChannelsWebsocketConnection):
    """The standard ZMQ websocket connection, plus a read-only tap for cellops."""

    @property
    def cellops_id(self) -> int:
        """This connection's number: unlike id(), never reused by a later connection."""
        if "_cellops_id" not in self.__dict__:
            self.__dict__["_cellops_id"] = next(_connection_numbers)
        return self.__dict__["_cellops_id"]

    @property
    def tracker(self) -> Tracker | None:
        return self.websocket_handler.settings.get("cellops_tracker")

    async def prepare(self) -> None:
        await super().prepare()
        try:
            await self._attach()
        except Exception:
            self.log.exception(
                "cellops: could not identify the notebook of kernel %s", self.kernel_id
            )

    def disconnect(self) -> None:
        tracker = self.tracker
        if tracker is not None:
            tracker.connection_closed(self.cellops_id)
            try:
                IopubWatcher.ensure(
                    tracker, self.multi_kernel_manager, self.kernel_id, self.session
                )
            except Exception:
                self.log.exception("cellops: could not watch kernel %s", self.kernel_id)
        super().disconnect()

    def handle_incoming_message(self, incoming_msg: Any) -> None:
        tracker = self.tracker
        if tracker is not None and tracker.enabled:
            try:
                self._observe_incoming(tracker, incoming_msg)
            except Exception:
                self.log.exception("cellops: failed to read an incoming kernel message")
        super().handle_incoming_message(incoming_msg)

    def handle_outgoing_message(self, stream: Any, outgoing_msg: list[Any]) -> None:
        tracker = self.tracker
        if tracker is not None:
            try:
                self._observe_outgoing(tracker, stream, outgoing_msg)
            except Exception:
                self.log.exception("cellops: failed to read an outgoing kernel message")
        super().handle_outgoing_message(stream, outgoing_msg)

    # -- decoding ---------------------------------------------------------------------

    def _observe_incoming(self, tracker: Tracker, ws_msg: Any) -> None:
        if self.subprotocol == V1:
            channel, parts = deserialize_msg_from_ws_v1(ws_msg)
            if channel != "shell" or len(parts) < 4:
                return
            header = self.session.unpack(parts[0])
            if header.get("msg_type") != "execute_request":
                return
            metadata = self.session.unpack(parts[2])
            content = self.session.unpack(parts[3])
        else:
            msg = (
                deserialize_binary_message(ws_msg)
                if isinstance(ws_msg, bytes)
                else json.loads(ws_msg)
            )
            header = msg.get("header") or {}
            if (
                msg.get("channel", "shell") != "shell"
                or header.get("msg_type") != "execute_request"
            ):
                return
            metadata, content = msg.get("metadata") or {}, msg.get("content") or {}
        tracker.on_execute_request(
            self.kernel_id, self.cellops_id, header, metadata, content, self._username()
        )

    def _observe_outgoing(self, tracker: Tracker, stream: Any, outgoing_msg: list[Any]) -> None:
        channel = stream if isinstance(stream, str) else getattr(stream, "channel", None)
        if channel not in ("iopub", "shell"):
            return
        _, fed = self.session.feed_identities(outgoing_msg)
        if len(fed) < 5:
            return
        header = self.session.unpack(fed[1])
        tracker.kernel_session_seen(self.kernel_id, header.get("session", ""))
        msg_type = header.get("msg_type")
        if msg_type not in TRACKED_REPLIES:
            return
        parent = self.session.unpack(fed[2])
        pending = tracker.wants(self.kernel_id, parent.get("msg_id", ""), self.cellops_id)
        if pending is None:
            return
        tracker.on_kernel_message(self.kernel_id, pending, msg_type, self.session.unpack(fed[4]))

    # -- who and what ------------------------------------------------------------------------

    def _username(self) -> str | None:
        return server_user(self.websocket_handler)

    async def _attach(self) -> None:
        tracker = self.tracker
        if tracker is None:
            return
        settings = self.websocket_handler.settings
        path = None
        session_manager = settings.get("session_manager")
        if session_manager is not None:
            for s in await session_manager.list_sessions():
                if (s.get("kernel") or {}).get("id") == self.kernel_id:
                    path = s.get("path") or (s.get("notebook") or {}).get("path")
                    break
        km = self.kernel_manager
        spec = None
        try:
            ks = km.kernel_spec
            spec = {
                "name": km.kernel_name,
                "display_name": ks.display_name,
                "language": ks.language,
            }
        except Exception:
            spec = {"name": getattr(km, "kernel_name", None)}
        tracker.attach(
            self.kernel_id,
            path or f"kernel-{self.kernel_id}",
            self._username(),
            spec,
            _notebook_folder(settings.get("server_root_dir"), path),
            await _repo_of(settings.get("server_root_dir"), path),
        )


async def _repo_of(root: str | None, path: str | None) -> dict[str, str] | None:
    """The notebook's git identity, read on a worker thread while the websocket opens (once
    per connection, before any cell runs on it: never on the message path)."""
    file = local_notebook_file(root, path)
    if file is None:
        return None
    return await asyncio.get_running_loop().run_in_executor(None, repo_identity, file)


def _notebook_folder(root: str | None, path: str | None) -> str | None:
    """The notebook's folder on disk, only if it lies inside the server's root."""
    if not root or not path:
        return None
    root_real = os.path.realpath(os.path.expanduser(root))
    folder = os.path.realpath(os.path.join(root_real, os.path.dirname(path.lstrip("/"))))
    if os.path.commonpath([root_real, folder]) != root_real or not os.path.isdir(folder):
        return None
    return folder
