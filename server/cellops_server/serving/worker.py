"""An inference worker: ``python -m cellops_server.serving.worker --control N --handoff M
--slot S --artifacts DIR``, started and restarted by the router (router.py).

A worker answers HTTP itself: the router accepts each connection and hands it over
(``--handoff``, a Unix socket carrying file descriptors), and the worker serves every
request on it (endpoints.py) with the models it holds, in this process: no second hop,
no second HTTP pass. Over ``--control`` (frames, wire.py) the router tells it what to load
and unload and what each deployment serves (keys, traffic split); the worker sends back
its outcome counts and samples every few hundred milliseconds, asks about member tokens and
forwards ``/metrics``. ``--slot`` is 4 shared bytes where the worker writes which version it
is predicting with, so the router can count a crash against that version if it dies.

When the router goes away the control socket closes and the worker exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import mmap
import os
import signal
import socket
import struct
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .endpoints import Endpoints, Key, Served
from .http import HttpProtocol, Request, Response, error, raise_open_files_limit
from .stats import SamplePicker
from .wire import decode, encode

log = logging.getLogger("cellops.serving.worker")

REPORT_INTERVAL = 0.2  # seconds between reports of counts and samples to the router
TOKEN_TTL = 1.0  # seconds a member token's answer is reused
# A connection is closed after this many answers: a client that keeps its connection for
# hours still reconnects now and then, and the router places it on the least busy worker
# (a replaced worker gets its share back within seconds under load).
MAX_REQUESTS_PER_CONNECTION = 1000
CONN_ID = struct.Struct("<Q")
SLOT = struct.Struct("<I")


class Connection(HttpProtocol):
    """A client connection handed over by the router, which keeps its own descriptor of it
    (to answer 503 should this worker die): closing is a shutdown, so the client sees the
    end although the router still holds the socket, and the router is told to let go."""

    def __init__(self, worker: Worker, conn_id: int) -> None:
        super().__init__(worker.handle, max_requests=MAX_REQUESTS_PER_CONNECTION)
        self.worker, self.conn_id = worker, conn_id

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.worker.closed(self.conn_id)


class Worker(Endpoints):
    def __init__(
        self,
        control: socket.socket,
        handoff: socket.socket,
        slot: mmap.mmap,
        artifacts: str,
        monitoring: bool,
        picker: SamplePicker | None,
    ) -> None:
        super().__init__(os.environ.get("CELLOPS_SERVING_MEMBER_TOKEN", ""))
        self.control_sock, self.handoff = control, handoff
        self.slot = slot
        self.artifacts = artifacts
        self.monitoring = monitoring
        self.picker = picker
        self.models: dict[Key, tuple[Any, Any, int]] = {}  # key -> (model, signature, slot id)
        self.tokens: dict[str, tuple[float, bool]] = {}
        self.counts: list[tuple[str, int, int, float]] = []
        self.samples: list[tuple[str, int, Any, Any]] = []
        self.gone: list[int] = []  # connections closed since the last report
        self.waiting: dict[int, asyncio.Future[tuple[dict[str, Any], bytes]]] = {}
        self._ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self.loader = ThreadPoolExecutor(1, thread_name_prefix="cellops-load")

    async def run(self) -> None:
        from . import loading, protocols  # heavy imports (sklearn) in the worker only

        self.loading, self.protocols = loading, protocols
        _warm_up()
        self.loop = asyncio.get_running_loop()
        reader, self.writer = await asyncio.open_unix_connection(
            sock=self.control_sock, limit=2**20
        )
        self.handoff.setblocking(False)
        self.loop.add_reader(self.handoff.fileno(), self._take_connections)
        self.send({"op": "hello", "pid": os.getpid()})
        try:
            while True:
                (length,) = struct.unpack(">I", await reader.readexactly(4))
                header, body = decode(await reader.readexactly(length))
                self._on_frame(header, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # the router is gone

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        self.writer.write(encode(header, body))

    def ask(self, header: dict[str, Any]) -> asyncio.Future[tuple[dict[str, Any], bytes]]:
        ident = next(self._ids)
        fut: asyncio.Future[tuple[dict[str, Any], bytes]] = self.loop.create_future()
        self.waiting[ident] = fut
        self.send({**header, "id": ident})
        return fut

    # -- the router's frames -----------------------------------------------------------------

    def _on_frame(self, header: dict[str, Any], body: bytes) -> None:
        reply = header.get("reply")
        if reply is not None:
            fut = self.waiting.pop(reply, None)
            if fut is not None and not fut.done():
                fut.set_result((header, body))
            return
        op = header.get("op")
        if op == "routes":
            self.served = {d["name"]: Served.from_wire(d) for d in header["deployments"]}
            self.ready_workers = int(header["workers"])
        elif op == "load":
            self.loop.create_task(self._load(header))
        elif op == "unload":
            self.models.pop((header["deployment"], int(header["version"])), None)
        elif op == "flush":
            self._report(reply_to=header.get("id"))
        else:
            log.warning("unknown frame %r", op)

    async def _load(self, header: dict[str, Any]) -> None:
        key = (header["deployment"], int(header["version"]))
        signature = header.get("signature")
        # On a thread, so the connections this worker holds keep being answered meanwhile;
        # one at a time, as before (skops and the allow-list checks are not made for
        # concurrent loads).
        try:
            model = await self.loop.run_in_executor(
                self.loader, self._load_checked, header, signature
            )
        except Exception as exc:  # a refused or broken model: the reason goes to the deployment
            self.send({"reply": header["id"], "ok": False, "error": str(exc) or type(exc).__name__})
            return
        self.models[key] = (model, signature, int(header["slot"]))
        self.send({"reply": header["id"], "ok": True})

    def _load_checked(self, header: dict[str, Any], signature: Any) -> Any:
        try:
            return self._load_once(header, signature)
        except Exception:
            # skops walks sys.modules while loading: an import on the serving thread at
            # that moment (a first predict of another model class) can make it fail once.
            # A model that is refused is refused again.
            return self._load_once(header, signature)

    def _load_once(self, header: dict[str, Any], signature: Any) -> Any:
        model = self.loading.load_verified(self.artifacts, header["sha256"])
        self.loading.check_prediction(model, signature)
        return model

    # -- connections -------------------------------------------------------------------------

    def _take_connections(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.handoff, CONN_ID.size, 4)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.loop.remove_reader(self.handoff.fileno())
                return
            if not data:
                self.loop.remove_reader(self.handoff.fileno())
                return
            (conn_id,) = CONN_ID.unpack(data)
            for fd in fds:
                sock = socket.socket(fileno=fd)
                self.loop.create_task(self._serve(sock, conn_id))

    async def _serve(self, sock: socket.socket, conn_id: int) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: Connection(self, conn_id), sock)
        except OSError:
            sock.close()
            self.closed(conn_id)

    def closed(self, conn_id: int) -> None:
        self.gone.append(conn_id)
        self._soon()

    # -- Endpoints: predicting, counting, tokens, /metrics -----------------------------------

    def holds(self, key: Key) -> bool:
        return key in self.models

    def predict(
        self, key: Key, protocol: str, request: Request, header_length: int | None, sample: bool
    ) -> Response:
        model, signature, slot = self.models[key]
        inference = self.protocols.InferenceRequest(
            protocol=protocol,
            body=request.body,
            content_type=request.headers.get("content-type", ""),
            deployment=key[0],
            version=key[1],
            signature=signature,
            header_length=header_length,
            sample=sample,
        )
        SLOT.pack_into(self.slot, 0, slot)  # a crash from here on is this version's
        try:
            result = self.protocols.infer(model, inference)
        except Exception as exc:  # never let one request end the worker
            traceback.print_exc(file=sys.stderr)
            return error(500, f"prediction failed: {type(exc).__name__}: {exc}")
        finally:
            SLOT.pack_into(self.slot, 0, 0)
        if result.sample is not None:  # (input rows, predictions), for drift
            self.samples.append((key[0], key[1], result.sample[0], result.sample[1]))
            self._soon()
        return Response(result.status, result.body, headers={"Cellops-Model-Version": str(key[1])})

    def record(self, name: str, version: int, status: int, seconds: float) -> None:
        if self.monitoring:
            self.counts.append((name, version, status, seconds))
            self._soon()

    def wants_sample(self, name: str) -> bool:
        return self.picker is not None and self.picker.wants(name)

    def known_member(self, token: str) -> bool | None:
        cached = self.tokens.get(token)
        if cached is not None and time.monotonic() - cached[0] < TOKEN_TTL:
            return cached[1]
        return None

    async def check_member(self, token: str) -> bool:
        header, _ = await self.ask({"op": "member", "token": token})
        ok = bool(header.get("ok"))
        if len(self.tokens) > 4096:
            self.tokens.clear()
        self.tokens[token] = (time.monotonic(), ok)
        return ok

    async def metrics(self) -> Response:
        self._report()  # this worker's counts first, so the scrape sees its own requests
        header, body = await self.ask({"op": "metrics"})
        return Response(200, body, header.get("content_type") or "text/plain")

    # -- reports -----------------------------------------------------------------------------

    def _soon(self) -> None:
        if self._timer is None:
            self._timer = self.loop.call_later(REPORT_INTERVAL, self._report)

    def _report(self, reply_to: int | None = None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        header: dict[str, Any] = {"op": "report"}
        if reply_to is not None:
            header["reply"] = reply_to
        elif not (self.counts or self.samples or self.gone):
            return
        counts, samples, gone = self.counts, self.samples, self.gone
        self.counts, self.samples, self.gone = [], [], []
        body = json.dumps({"counts": counts, "samples": samples, "closed": gone}).encode()
        self.send(header, body)


def _warm_up() -> None:
    """Import what loading a model needs (skops pulls in scikit-learn, scipy, pandas: seconds
    on a busy machine) before saying hello, so a load is only the model's own work."""
    import cellops.serialize  # noqa: F401
    import sklearn.base  # noqa: F401
    import skops.io  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    from ..cli import fraction

    parser = argparse.ArgumentParser(prog="python -m cellops_server.serving.worker")
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--handoff", type=int, required=True)
    parser.add_argument("--slot", type=int, required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--no-monitoring", action="store_true")
    parser.add_argument("--sample-rate", type=fraction, default=1.0)
    parser.add_argument("--samples-per-second", type=int, default=10)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the router decides when workers stop
    raise_open_files_limit()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s cellops-worker %(message)s")
    picker = None
    if not args.no_monitoring and args.sample_rate > 0 and args.samples_per_second > 0:
        picker = SamplePicker(args.sample_rate, args.samples_per_second)
    slot = mmap.mmap(args.slot, SLOT.size)
    worker = Worker(
        socket.socket(fileno=args.control),
        socket.socket(fileno=args.handoff),
        slot,
        args.artifacts,
        not args.no_monitoring,
        picker,
    )
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        asyncio.run(worker.run())


if __name__ == "__main__":
    main()
