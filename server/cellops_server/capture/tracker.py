"""Turns kernel messages into run and execution records.

One Tracker serves the whole server; the websocket tap feeds it from the event
loop. It keeps only what is needed to assemble executions in flight and emits
plain JSON-able records (see ``store/records.py``) through ``emit``, which
appends them to the durable spool. An execution is emitted when requested
(status ``running``, after ``RUNNING_AFTER`` if it is not answered by then), when its reply arrives (before the reply reaches the
browser), and once more if outputs arrive between the reply and ``idle``.
"""

from __future__ import annotations

import fnmatch
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .outputs import OutputDigest

Emit = Callable[[dict[str, Any]], None]
RUNNING_AFTER = 0.1  # seconds before an unanswered request is recorded as running
log = logging.getLogger("cellops.capture")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class Pending:
    """An execute_request whose kernel has not gone idle on it yet."""

    msg_id: str
    run: RunState
    seq: int
    cell_id: str | None
    code: str
    deleted_cells: list[str]
    requested_at: str
    connection: int
    outputs: OutputDigest
    started_at: str | None = None
    execution_count: int | None = None
    status: str = "running"
    error: dict[str, Any] | None = None
    finished_at: str | None = None
    requested_mono: float = 0.0
    heard: bool = False  # the kernel has said something about this request
    watched: bool = False  # fed by the iopub watcher since its requester left
    replied: bool = False
    idle: bool = False
    emitted_changes: int = -1


@dataclass
class RunState:
    key: str
    kernel_id: str
    notebook: str
    user: str | None
    kernel_spec: dict[str, Any] | None
    started_at: str
    kernel_session: str | None = None
    seq: int = 0
    repo: dict[str, str] | None = None  # the notebook's git identity (environment.py)
    # A headless run's fields (origin, parameters, ci: headless/runner.py); None interactive.
    headless: dict[str, Any] | None = None


@dataclass
class KernelState:
    kernel_id: str
    notebook: str
    user: str | None = None
    kernel_spec: dict[str, Any] | None = None
    folder: str | None = None
    repo: dict[str, str] | None = None
    run: RunState | None = None
    pending: dict[str, Pending] = field(default_factory=dict)
    headless: dict[str, Any] | None = None  # set by `cellops run`: its runs carry it
    last_heard: float = 0.0  # monotonic time of the last message from the current kernel process


class Tracker:
    def __init__(
        self,
        emit: Emit,
        *,
        source: str,
        instance: str,
        max_text: int = 10_000,
        max_blob: int = 10 * 1024 * 1024,
        on_new_run: Callable[[str, str | None], None] | None = None,
        defer: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        self.emit = emit
        # Schedules "this execution is running" for cells not answered quickly: a fast cell
        # then costs one spool record, not two. None: record it at once.
        self.defer = defer
        self.source = source
        self.instance = instance
        self.max_text = max_text
        self.max_blob = max_blob
        self.enabled = True
        self._exclude: tuple[str, ...] = ()
        self._excluded: dict[str, bool] = {}  # notebook path → matches an exclude pattern
        self.on_new_run = on_new_run  # (run key, notebook folder) → look up git state
        self.kernels: dict[str, KernelState] = {}
        self.closed_connections: set[int] = set()
        self.watchers: dict[str, Any] = {}  # kernel id → IopubWatcher, while orphans exist

    # -- connections -------------------------------------------------------------------

    def attach(
        self,
        kernel_id: str,
        notebook: str,
        user: str | None,
        kernel_spec: dict[str, Any] | None,
        folder: str | None,
        repo: dict[str, str] | None = None,
        headless: dict[str, Any] | None = None,
    ) -> None:
        """A websocket opened on a kernel (or `cellops run` started one: ``headless`` holds
        its run's origin, parameters and ci); remember what it belongs to."""
        state = self.kernels.get(kernel_id)
        if state is None:
            self.kernels[kernel_id] = KernelState(
                kernel_id, notebook, user, kernel_spec, folder, repo, headless=headless
            )
            return
        state.notebook, state.kernel_spec, state.folder = notebook, kernel_spec, folder
        state.repo = repo
        state.user = user or state.user

    def set_exclude(self, patterns: list[str]) -> None:
        self._exclude = tuple(p.strip("/") for p in patterns)
        self._excluded.clear()

    def is_excluded(self, notebook: str) -> bool:
        """fnmatch semantics: ``*`` also matches ``/``, so ``scratch/*`` covers sub-folders."""
        hit = self._excluded.get(notebook)
        if hit is None:
            path = notebook.strip("/")
            hit = any(fnmatch.fnmatchcase(path, p) for p in self._exclude)
            self._excluded[notebook] = hit
        return hit

    def connection_closed(self, connection: int) -> None:
        self.closed_connections.add(connection)

    # -- browser → kernel -----------------------------------------------------------------

    def on_execute_request(
        self,
        kernel_id: str,
        connection: int,
        header: dict[str, Any],
        metadata: dict[str, Any],
        content: dict[str, Any],
        user: str | None = None,
    ) -> None:
        if not self.enabled or content.get("silent"):
            return
        msg_id = header.get("msg_id")
        if not msg_id:
            return
        state = self.kernels.get(kernel_id) or self._unknown_kernel(kernel_id, user)
        if self._exclude and self.is_excluded(state.notebook):
            return
        if msg_id in state.pending:
            return  # the same request twice: keep the first
        run = state.run or self._start_run(state)
        run.seq += 1
        cell_id = metadata.get("cellId")
        deleted = metadata.get("deletedCells") or []
        pending = Pending(
            msg_id=msg_id,
            run=run,
            seq=run.seq,
            cell_id=str(cell_id) if cell_id else None,
            code=str(content.get("code", "")),
            deleted_cells=[str(c) for c in deleted if isinstance(c, str)],
            requested_at=now_iso(),
            requested_mono=time.monotonic(),
            connection=connection,
            outputs=OutputDigest(self.max_text, self.max_blob),
        )
        state.pending[msg_id] = pending
        if self.defer is None:
            self._emit_execution(pending)
        else:
            self.defer(RUNNING_AFTER, lambda: self._still_running(pending))

    def _still_running(self, pending: Pending) -> None:
        if pending.status == "running" and not pending.replied and pending.emitted_changes < 0:
            self._emit_execution(pending)

    # -- kernel → browser -------------------------------------------------------------------

    def kernel_session_seen(self, kernel_id: str, session: str) -> None:
        """Every kernel message carries the kernel process's session id; a new one means a restart."""
        state = self.kernels.get(kernel_id)
        if state is None or state.run is None or not session:
            return
        run = state.run
        if run.kernel_session is None:
            run.kernel_session = session
            self.emit(self._run_record(run))
        elif run.kernel_session != session:
            self._rotate(state, session)
        state.last_heard = time.monotonic()

    def _rotate(self, state: KernelState, session: str) -> None:
        """A new kernel process answered. Requests the old one never heard of and that were
        sent after it last spoke belong to the new process; the others died with it."""
        survivors = [
            p for p in state.pending.values() if not p.heard and p.requested_mono > state.last_heard
        ]
        for p in survivors:
            del state.pending[p.msg_id]
        self._end_run(state)
        run = self._start_run(state)
        run.kernel_session = session
        self.emit(self._run_record(run))
        for p in survivors:
            run.seq += 1
            p.run, p.seq = run, run.seq
            state.pending[p.msg_id] = p
            self._emit_execution(p)

    def wants(self, kernel_id: str, parent_msg_id: str, connection: int) -> Pending | None:
        """The execution a kernel message belongs to, if this connection should feed it."""
        state = self.kernels.get(kernel_id)
        pending = state.pending.get(parent_msg_id) if state else None
        if pending is None:
            return None
        if pending.connection != connection:
            # Every client gets iopub: only the requesting connection feeds the record,
            # unless it has gone (a reconnect replays the messages to a new one).
            if not self._orphaned(pending) or pending.watched:
                return None
            pending.connection = connection
        return pending

    def on_kernel_message(
        self,
        kernel_id: str,
        pending: Pending,
        msg_type: str,
        content: dict[str, Any],
        watcher: bool = False,
    ) -> None:
        """Feed one kernel message; ``watcher`` means it came from cellops' own iopub
        subscription (the browser that asked has gone, so no reply will be seen)."""
        pending.heard = True
        pending.watched = pending.watched or watcher
        if msg_type == "status":
            state = content.get("execution_state")
            # busy (iopub) can arrive after the reply (shell): then the request time stands.
            if state == "busy" and pending.started_at is None and not pending.replied:
                pending.started_at = now_iso()
            elif state == "idle":
                pending.idle = True
                if not pending.replied and watcher:
                    self._finish_without_reply(pending)
                    self._emit_execution(pending)  # its status changed even if no output did
                self._maybe_finish(kernel_id, pending)
            return
        if msg_type == "execute_input":
            pending.execution_count = content.get("execution_count")
            return
        if msg_type == "error":
            pending.error = self._error_info(content)
        if msg_type == "execute_reply":
            self._on_reply(pending, content)
            self._emit_execution(pending)
            self._maybe_finish(kernel_id, pending)
            self._abort_skipped(kernel_id, pending)
            return
        pending.outputs.add(msg_type, content)

    def _on_reply(self, pending: Pending, content: dict[str, Any]) -> None:
        pending.replied = True
        pending.finished_at = now_iso()
        if pending.execution_count is None:
            pending.execution_count = content.get("execution_count")
        status = content.get("status")
        if status == "ok":
            pending.status, pending.error = "ok", None
        elif status == "error":
            pending.error = self._error_info(content)
            interrupted = pending.error["ename"] == "KeyboardInterrupt"
            pending.status = "aborted" if interrupted else "error"
        else:  # "aborted" (skipped after an earlier error) or anything unknown
            pending.status = "aborted"

    def _finish_without_reply(self, pending: Pending) -> None:
        """Idle on iopub ends the execution; its outcome is read from the outputs."""
        pending.replied = True
        pending.finished_at = now_iso()
        if pending.error is None:
            pending.status = "ok"
        else:
            interrupted = pending.error["ename"] == "KeyboardInterrupt"
            pending.status = "aborted" if interrupted else "error"

    def _error_info(self, content: dict[str, Any]) -> dict[str, Any]:
        tb = content.get("traceback") or []
        return {
            "ename": str(content.get("ename", "")),
            "evalue": str(content.get("evalue", ""))[: self.max_text],
            "traceback": [str(t)[: self.max_text] for t in tb][:200],
        }

    def has_orphans(self, kernel_id: str) -> bool:
        """Executions whose requesting connection has closed (only a watcher can finish them)."""
        state = self.kernels.get(kernel_id)
        return state is not None and any(self._orphaned(p) for p in state.pending.values())

    def _orphaned(self, pending: Pending) -> bool:
        """Its requesting connection has closed."""
        return pending.connection in self.closed_connections

    def finish_orphans(self, kernel_id: str, *, kernel_gone: bool = False) -> None:
        """The kernel is done (or gone) but their end was never heard: close them with
        what was seen (``aborted`` if the kernel went away)."""
        state = self.kernels.get(kernel_id)
        if state is None:
            return
        for p in [p for p in state.pending.values() if self._orphaned(p)]:
            if not p.replied:
                self._finish_without_reply(p)
                if kernel_gone:
                    p.status = "aborted"
            self._emit_execution(p)
            del state.pending[p.msg_id]

    def orphan(self, kernel_id: str, parent_msg_id: str) -> Pending | None:
        """The pending execution a watcher may feed: only one whose requester has gone."""
        state = self.kernels.get(kernel_id)
        pending = state.pending.get(parent_msg_id) if state else None
        return pending if pending is not None and self._orphaned(pending) else None

    def rename(self, from_path: str, to_path: str) -> None:
        """A notebook or folder was renamed: later records use the new path, and the
        store moves the history recorded under the old one."""
        source, target = from_path.strip("/"), to_path.strip("/")
        self.emit({"kind": "rename", "from_path": source, "to_path": target, "at": now_iso()})

        def moved(path: str) -> str | None:
            if path == source:
                return target
            if path.startswith(source + "/"):
                return target + path[len(source) :]
            return None

        for state in self.kernels.values():
            if (new := moved(state.notebook)) is not None:
                state.notebook = new
                if state.run is not None:
                    state.run.notebook = new

    def session_moved(self, kernel_id: str, path: str) -> None:
        """The kernel's session now belongs to another file, and no rename moved it there
        (JupyterLab's "Save as"): that file is a copy, with a history of its own from its
        next cell on. Cells still running finish in the run they started in."""
        state = self.kernels.get(kernel_id)
        new = path.strip("/")
        if state is None or not new or state.notebook.strip("/") == new:
            return  # a rename already moved it (its contents event comes first)
        old = state.notebook
        if state.run is not None:
            self.emit({**self._run_record(state.run), "ended_at": now_iso()})
            state.run = None
        state.notebook, state.repo = new, None
        self.copy(old, new)

    def copy(self, from_path: str, to_path: str) -> None:
        """A notebook was copied: the store links the copy's new history to the original."""
        self.emit(
            {
                "kind": "copy",
                "from_path": from_path.strip("/"),
                "to_path": to_path.strip("/"),
                "at": now_iso(),
            }
        )

    def _maybe_finish(self, kernel_id: str, pending: Pending) -> None:
        if not (pending.replied and pending.idle):
            return
        if pending.outputs.changes != pending.emitted_changes:
            self._emit_execution(pending)
        state = self.kernels.get(kernel_id)
        if state is not None:
            state.pending.pop(pending.msg_id, None)

    def _abort_skipped(self, kernel_id: str, answered: Pending) -> None:
        """A kernel answers requests in order: earlier ones it never mentioned were lost."""
        state = self.kernels.get(kernel_id)
        if state is None:
            return
        lost = [
            p
            for p in state.pending.values()
            if p.run is answered.run and p.seq < answered.seq and not p.heard
        ]
        for p in lost:
            p.status, p.finished_at = "aborted", now_iso()
            self._emit_execution(p)
            del state.pending[p.msg_id]

    # -- kernel lifecycle -----------------------------------------------------------------------

    def shutdown(self, kernel_id: str, outcome: str | None = None) -> None:
        """The kernel is gone; ``outcome`` (ok, error, timeout) ends a headless run."""
        state = self.kernels.pop(kernel_id, None)
        if state is not None:
            self._end_run(state, outcome)
        watcher = self.watchers.pop(kernel_id, None)
        if watcher is not None:
            watcher.close()

    def _end_run(self, state: KernelState, outcome: str | None = None) -> None:
        at = now_iso()
        for pending in list(state.pending.values()):
            if not pending.replied:
                pending.status = "aborted"
                pending.finished_at = at
            self._emit_execution(pending)
        state.pending.clear()
        if state.run is not None:
            end = {"ended_at": at, **({"outcome": outcome} if outcome else {})}
            self.emit({**self._run_record(state.run), **end})
            state.run = None

    def _start_run(self, state: KernelState) -> RunState:
        run = RunState(
            key=uuid.uuid4().hex,
            kernel_id=state.kernel_id,
            notebook=state.notebook,
            user=state.user,
            kernel_spec=state.kernel_spec,
            started_at=now_iso(),
            repo=state.repo,
            headless=state.headless,
        )
        state.run = run
        self.emit(self._run_record(run))
        if self.on_new_run is not None:
            self.on_new_run(run.key, state.folder)
        return run

    def _unknown_kernel(self, kernel_id: str, user: str | None) -> KernelState:
        state = KernelState(kernel_id, f"kernel-{kernel_id}", user)
        self.kernels[kernel_id] = state
        return state

    # -- records --------------------------------------------------------------------------------

    def _run_record(self, run: RunState) -> dict[str, Any]:
        return {
            "kind": "run",
            "key": run.key,
            "notebook": run.notebook,
            "kernel_id": run.kernel_id,
            "kernel_session": run.kernel_session,
            "user": run.user,
            "started_at": run.started_at,
            "kernel_spec": run.kernel_spec,
            "source": self.source,
            "instance": self.instance,
            **(run.repo or {}),
            **(run.headless or {}),
        }

    def run_git_record(self, run_key: str, git: dict[str, Any]) -> None:
        for state in self.kernels.values():
            if state.run is not None and state.run.key == run_key:
                self.emit({**self._run_record(state.run), "git": git})
                return

    def _emit_execution(self, p: Pending) -> None:
        p.emitted_changes = p.outputs.changes
        self.emit(
            {
                "kind": "execution",
                "msg_id": p.msg_id,
                "run_key": p.run.key,
                "notebook": p.run.notebook,
                "seq": p.seq,
                "cell_id": p.cell_id,
                "code": p.code,
                "deleted_cells": p.deleted_cells,
                "status": p.status,
                "started_at": p.started_at or p.requested_at,
                "finished_at": p.finished_at,
                "execution_count": p.execution_count,
                "error": p.error,
                "outputs": p.outputs.snapshot(),
            }
        )
