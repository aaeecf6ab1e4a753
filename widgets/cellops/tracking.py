"""log_params / log_metrics / set_tags: validated in the cell, sent by a background thread.

A cell must never fail or wait because the server is slow or down, so the calling
thread only validates and appends to a bounded in-memory queue; a daemon thread
POSTs batches to ``/logs`` and retries with backoff while it cannot. "Server down, kept for
later" goes to the ``cellops`` logger and to the server's status (the status bar shows the
backlog), never into the cell's output; losses (refused or dropped records) are printed.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from . import context
from .client import CellopsError, RegistryError, ServerUnreachable, client, log, report_backlog

MAX_KEY = 250
MAX_PARAM_TEXT = 6000  # the server's limits on text values
MAX_TAG_TEXT = 5000
MAX_BATCH = 1000  # entries per POST /logs, the server's limit
MAX_BUFFERED = 10_000  # records kept while the server is away; the oldest go first
_MAX_BACKOFF = 30.0


# -- validation (the user's mistakes raise ValueError in the cell) ----------------------


def _key(key: Any, what: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"{what} names must be non-empty strings; got {key!r}")
    if len(key) > MAX_KEY:
        raise ValueError(
            f"{what} name {key[:40]!r}… is {len(key)} characters; the limit is {MAX_KEY}"
        )
    return key


def _mapping(value: Any, fn: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"cellops.{fn}() takes a dict; got {type(value).__name__}")
    return value


def _param_value(value: Any) -> str | int | float | bool | None:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        with contextlib.suppress(TypeError, ValueError):
            value = value.item()
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)  # JSON has no NaN
    if not isinstance(value, str):
        value = str(value)  # lists, estimators, …: recorded as text, like every tracker does
    return value if len(value) <= MAX_PARAM_TEXT else value[: MAX_PARAM_TEXT - 1] + "…"


def _metric_value(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            try:
                return _metric_value(key, value.item())
            except (TypeError, ValueError):
                pass
        raise ValueError(f"metric {key!r} must be a number; got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"metric {key!r} must be finite; got {number}")
    return number


def validate_params(params: Any) -> dict[str, Any]:
    return {_key(k, "param"): _param_value(v) for k, v in _mapping(params, "log_params").items()}


def validate_metrics(metrics: Any, step: Any = None) -> dict[str, float]:
    if step is not None and (
        isinstance(step, bool) or not isinstance(step, int) or not -(2**63) <= step < 2**63
    ):
        raise ValueError(f"step must be an int (64-bit) or None; got {step!r}")
    return {
        _key(k, "metric"): _metric_value(k, v) for k, v in _mapping(metrics, "log_metrics").items()
    }


def _tag_value(key: str, value: Any) -> str:
    text = str(value)
    if len(text) > MAX_TAG_TEXT:
        raise ValueError(f"tag {key!r} is {len(text)} characters long; the limit is {MAX_TAG_TEXT}")
    return text


def validate_tags(tags: Any) -> dict[str, str]:
    return {_key(k, "tag"): _tag_value(k, v) for k, v in _mapping(tags, "set_tags").items()}


# -- what this process logged, per execution (register() reads the metrics) -------------

_logged: OrderedDict[str, dict[str, dict[str, Any]]] = OrderedDict()
_logged_lock = threading.Lock()


def _remember(msg_id: str, kind: str, values: Mapping[str, Any]) -> None:
    with _logged_lock:
        entry = _logged.setdefault(msg_id, {"params": {}, "metrics": {}, "tags": {}})
        entry[kind].update(values)
        _logged.move_to_end(msg_id)
        while len(_logged) > 64:
            _logged.popitem(last=False)


def logged(msg_id: str | None) -> dict[str, dict[str, Any]]:
    """What register() records with a model: the params/metrics/tags logged so far in
    this execution, or, when it logged no metrics, those of the latest execution that
    did (models are usually trained and scored in one cell and registered in the next)."""
    empty: dict[str, dict[str, Any]] = {"params": {}, "metrics": {}, "tags": {}}
    with _logged_lock:
        entry = _logged.get(msg_id or "", empty)
        if not entry["metrics"]:
            entry = next((e for e in reversed(_logged.values()) if e["metrics"]), entry)
        return {kind: dict(values) for kind, values in entry.items()}


# -- the background sender --------------------------------------------------------------


def _size(record: Mapping[str, Any]) -> int:
    return len(record["params"]) + len(record["metrics"]) + len(record["tags"])


class Sender:
    """A bounded queue of LogBatch records and the daemon thread that delivers them."""

    def __init__(self, max_buffered: int = MAX_BUFFERED) -> None:
        self.max_buffered = max_buffered
        self._cond = threading.Condition()
        self._queue: deque[dict[str, Any]] = deque()
        self._in_flight = 0
        self._dropped = 0
        self._warned = False
        self._reported = False  # the server was told of a backlog not yet sent
        self._last_refusal = ""
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._wake = threading.Event()

    def put(self, record: dict[str, Any]) -> None:
        with self._cond:
            if self._pid != os.getpid():  # forked: the parent's thread does not exist here
                self._pid, self._thread, self._in_flight = os.getpid(), None, 0
            if len(self._queue) >= self.max_buffered:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append(record)
            self._cond.notify()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="cellops-sender", daemon=True
                )
                self._thread.start()
                atexit.register(self.flush, 2.0)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued was delivered (or dropped); False on timeout."""
        self._wake.set()  # skip a pending backoff sleep: the caller wants a result now
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._in_flight, timeout)

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._in_flight

    def _take(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        # Merge consecutive records of one execution and step, unless a metric would be
        # overwritten (two values of one metric at one step are two points of a series).
        first = self._queue.popleft()
        taken = [first]
        batch = {k: (dict(v) if isinstance(v, dict) else v) for k, v in first.items()}
        while self._queue:
            nxt = self._queue[0]
            if (
                nxt["msg_id"] != batch["msg_id"]
                or nxt["step"] != batch["step"]
                or nxt["at"] != batch["at"]  # one batch, one time
                or batch["metrics"].keys() & nxt["metrics"].keys()
                or _size(batch) + _size(nxt) > MAX_BATCH
            ):
                break
            self._queue.popleft()
            taken.append(nxt)
            for kind in ("params", "metrics", "tags"):
                batch[kind].update(nxt[kind])
        self._in_flight = len(taken)
        return batch, taken

    def _say(self, text: str) -> None:
        with contextlib.suppress(Exception):
            print(text, file=sys.stderr, flush=True)

    def _run(self) -> None:
        backoff = 0.5
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                batch, taken = self._take()
            try:
                client().send_json("POST", "logs", batch)
            except (ServerUnreachable, RegistryError) as err:
                retry = isinstance(err, ServerUnreachable) or (err.status or 500) >= 500
                with self._cond:
                    if retry:
                        self._queue.extendleft(reversed(taken))
                    self._in_flight = 0
                    self._cond.notify_all()
                    waiting = len(self._queue)
                if not retry:  # the server rejected it: resending would fail the same way
                    if str(err) != self._last_refusal:  # once per reason, not once per batch
                        self._last_refusal = str(err)
                        self._say(f"cellops: the server refused {len(taken)} log records: {err}")
                    self._report_drained()
                    continue
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "cellops: the server is unreachable; %d records buffered and sent "
                        "when it is back (%s)",
                        waiting,
                        err,
                    )
                report_backlog(waiting, str(err))
                self._reported = True
                self._wake.wait(backoff)
                self._wake.clear()  # one early retry per flush(), not a busy loop
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            except Exception as err:  # never let the thread die: drop what cannot be sent
                self._say(f"cellops: could not send {len(taken)} log records: {err!r}")
            else:
                backoff = 0.5
                if self._warned:
                    self._warned = False
                    log.info("cellops: the server is back; sending the buffered records")
            with self._cond:
                self._in_flight = 0
                if self._dropped:
                    dropped, self._dropped = self._dropped, 0
                    self._say(
                        f"cellops: the buffer was full; the {dropped} oldest records were dropped"
                    )
                self._cond.notify_all()
            self._report_drained()

    def _report_drained(self) -> None:
        """Clear the status bar's backlog once the server answered for every record."""
        with self._cond:
            drained = self._reported and not self._queue
        if drained:
            self._reported = False
            report_backlog(0, None)


_sender = Sender()


def _enqueue(
    fn: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    step: int | None,
) -> None:
    if not (params or metrics or tags):
        return
    client()  # raises CellopsConfigError, naming the variables, when no server is configured
    msg_id = context.current().msg_id
    if msg_id is None:
        raise CellopsError(
            f"cellops.{fn}() attaches values to the running notebook cell, and there is none: "
            "call it from a cell of a Jupyter kernel"
        )
    for kind, values in (("params", params), ("metrics", metrics), ("tags", tags)):
        if values:
            _remember(msg_id, kind, values)
    # Split so that no batch exceeds the server's limit, whatever the user passes.
    items = [("params", k, v) for k, v in params.items()]
    items += [("metrics", k, v) for k, v in metrics.items()]
    items += [("tags", k, v) for k, v in tags.items()]
    # Sent with the values: a batch buffered while the server is unreachable keeps its time.
    logged_at = datetime.now(timezone.utc).isoformat()
    for start in range(0, len(items), MAX_BATCH):
        record: dict[str, Any] = {
            "msg_id": msg_id,
            "params": {},
            "metrics": {},
            "tags": {},
            "step": step,
            "at": logged_at,
        }
        for kind, key, value in items[start : start + MAX_BATCH]:
            record[kind][key] = value
        _sender.put(record)


def log_params(params: Mapping[str, Any]) -> None:
    """Record parameters (str/int/float/bool/None; other values as text) on the current cell."""
    _enqueue("log_params", validate_params(params), {}, {}, None)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Record finite numeric metrics on the current cell (a series when ``step`` is given)."""
    _enqueue("log_metrics", {}, validate_metrics(metrics, step), {}, step)


def set_tags(tags: Mapping[str, str]) -> None:
    """Attach string tags to the current cell."""
    _enqueue("set_tags", {}, {}, validate_tags(tags), None)


def flush(timeout: float = 5.0) -> bool:
    """Wait up to ``timeout`` seconds until every logged value reached the server."""
    return _sender.flush(timeout)
