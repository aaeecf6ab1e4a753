"""The serving router (``python -m cellops_server.serving``): it owns the listening socket,
starts and restarts the worker processes, tells them what to serve, and keeps the books.

Connections: the router accepts each one and hands it to a worker (``send_fds`` over a
Unix socket), which answers every request on it in its own process (worker.py,
endpoints.py): one process per request, no second hop. The router keeps its own descriptor
of every connection it handed over: if the worker dies, the router answers 503 +
Retry-After on each of them instead of a dropped connection. While no worker is ready, the
router answers connections itself (503 + Retry-After for inference, then it closes them, so
a client's next connection reaches a worker).

What is served: the desired state is polled from the store (deployments.desired); a
version takes traffic once every ready worker has loaded and checked it, then the router
sends the workers the new table (keys, traffic split) and unloads what nothing routes to.
A version that keeps killing its worker (loading or predicting) fails its deployment; the
worker writes the version it is predicting with into 4 shared bytes, read after its death;
crashes.py decides when a version is to blame.

Monitoring: workers send their outcome counts and sampled rows every few hundred
milliseconds; the router holds the Prometheus registry (``/metrics``, after asking every
worker for what it has not sent yet), the per-minute metrics and the samples, written to
the store off the request path (stats.py). ``--no-monitoring`` records nothing at all.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import logging
import mmap
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import deployments as domain
from .crashes import CrashBook
from .endpoints import RETRY, Endpoints, Key, Route, Served
from .http import HttpProtocol, Response, error, raise_open_files_limit, render
from .metrics import BUCKETS
from .stats import MinuteStats, Samples
from .wire import decode, encode
from .worker import CONN_ID, SLOT, TOKEN_TTL

log = logging.getLogger("cellops.serving")

POLL_INTERVAL = 0.5
FLUSH_WAIT = 1.0  # seconds /metrics waits for the workers' unsent counts
LINGER = 2.0  # seconds an orphaned connection may take to read its 503 before it is closed
ACCEPTS_PER_TURN = 64


# -- workers ----------------------------------------------------------------------------------


class WorkerGone(Exception):
    pass


Reply = tuple[dict[str, Any], bytes]


@dataclass(eq=False)
class Worker:
    """One worker process: the router's ends of its control and handoff sockets, its slot,
    and the connections it was handed."""

    index: int
    proc: subprocess.Popen[bytes]
    writer: asyncio.StreamWriter
    handoff: socket.socket
    slot: mmap.mmap
    started: float
    ready: bool = False  # said hello: imports done
    loaded: set[Key] = field(default_factory=set)
    loading: set[Key] = field(default_factory=set)
    pending: dict[int, tuple[asyncio.Future[Reply], Key | None, str]] = field(default_factory=dict)
    conns: dict[int, socket.socket] = field(default_factory=dict)  # handed over, still open
    alive: bool = True

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        if self.alive:
            self.writer.write(encode(header, body))

    def ask(self, header: dict[str, Any], key: Key | None = None) -> asyncio.Future[Reply]:
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        if not self.alive:
            fut.set_exception(WorkerGone())
            return fut
        ident = next(_ids)
        self.pending[ident] = (fut, key, header["op"])
        self.send({**header, "id": ident})
        return fut

    def busy_with(self) -> int:
        """The slot id of the version being predicted with (0: none)."""
        return SLOT.unpack_from(self.slot)[0]


_ids = itertools.count(1)
_conn_ids = itertools.count(1)
SPARE = -1  # the index of the warm spare worker


@dataclass
class Deployment:
    desired: Any  # DesiredDeployment
    route: Route | None = None
    reported: tuple[Any, ...] | None = None  # what was last written, to write changes only
    failed: dict[Key, str] = field(default_factory=dict)
    routed: dict[Key, Any] = field(default_factory=dict)  # the route's versions (artifact...)

    def served(self) -> Served:
        d = self.desired
        why = next(iter(self.failed.values()), None) if self.route is None else None
        return Served(
            name=d.name,
            public=d.public,
            key_sha256=d.key_sha256,
            versions=tuple((v.version, v.percent, v.signature) for v in d.versions),
            route=self.route,
            why=why,
        )


def split_of(versions: tuple[Any, ...]) -> tuple[tuple[int, int], ...]:
    return tuple((v.version, v.percent) for v in versions)


# -- the router -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Monitoring:
    """What is recorded of requests. Off: no Prometheus counts, per-minute metrics or samples
    (the serving cost of monitoring, measured by benchmarks/serving.py)."""

    enabled: bool = True
    sample_rate: float = 1.0  # share of requests sampled for drift (0: none)
    samples_per_second: int = 10  # most sampled requests per deployment and second


class RouterEndpoints(Endpoints):
    """The router's own answers, while no worker is ready: it holds no model."""

    def __init__(self, router: Router) -> None:
        super().__init__(router.member_token)
        self.router = router

    def holds(self, key: Key) -> bool:
        return False

    async def check_member(self, token: str) -> bool:
        return await self.router.is_member(token)

    def record(self, name: str, version: int, status: int, seconds: float) -> None:
        self.router.count(name, version, status, seconds)

    async def metrics(self) -> Response:
        return await self.router.scrape()


class Router:
    def __init__(
        self,
        db_url: str,
        artifacts: str,
        workers: int,
        spare: bool = True,
        monitoring: Monitoring = Monitoring(),
    ) -> None:
        from ..store.engine import create_engine

        self.engine = create_engine(db_url)
        self.artifacts = artifacts
        self.worker_count = max(1, workers)
        self.workers: list[Worker | None] = [None] * self.worker_count
        self.spares = spare
        self.spare: Worker | None = None  # started, imports done, no models: takes over a dead one
        self._young = 0
        self.deployments: dict[str, Deployment] = {}
        self.crashes = CrashBook()
        self.slots: dict[Key, int] = {}  # a version's slot id (what a worker writes when busy)
        self.slot_keys: dict[int, Key] = {}
        self.member_token = os.environ.get("CELLOPS_SERVING_MEMBER_TOKEN", "")
        self.tokens: dict[str, tuple[float, bool]] = {}
        self.monitoring = monitoring
        self.stats = MinuteStats(self.engine)
        # Monitoring off: the registry stays empty, /metrics answers no series.
        self.registry = CollectorRegistry()
        if monitoring.enabled:
            self._metrics()
        self.samples: Samples | None = None
        if monitoring.enabled and monitoring.sample_rate > 0:
            self.samples = Samples(
                self.engine, monitoring.samples_per_second, registry=self.registry
            )
        self._children: dict[tuple[str, int, int], tuple[Any, Any, Any]] = {}
        self.endpoints = RouterEndpoints(self)
        self._published = ""
        self._stopping = False
        self._tasks: set[asyncio.Future[Any]] = set()
        self.listener: socket.socket | None = None

    def _metrics(self) -> None:
        labels = ("deployment", "version")
        self.requests = Counter(
            "cellops_requests",
            "Inference requests answered, by deployment, version and HTTP status.",
            (*labels, "status"),
            registry=self.registry,
        )
        self.errors = Counter(
            "cellops_request_errors",
            "Inference requests answered with a 4xx or 5xx status.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "cellops_request_duration_seconds",
            "Time from a request's arrival to its answer.",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)  # keep a reference until done
        task.add_done_callback(self._tasks.discard)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.listener = _listen(host, port)
        for i in range(self.worker_count):
            self._spawn(i)
        if self.spares:
            self._spawn(SPARE)
        self.loop.add_reader(self.listener.fileno(), self._accept)
        if self.monitoring.enabled:
            self.stats.start()
        if self.samples is not None:
            self.samples.start()
        self._poller = asyncio.ensure_future(self._poll_forever())

    async def stop(self) -> None:
        self._stopping = True
        self._poller.cancel()
        if self.listener is not None:
            self.loop.remove_reader(self.listener.fileno())
            self.listener.close()
        live = [w for w in [*self.workers, self.spare] if w is not None and w.alive]
        for w in live:
            w.writer.close()  # at end of stream a worker exits
            w.handoff.close()
        await asyncio.sleep(0.05)  # the transports close on the loop
        await self.loop.run_in_executor(None, _reap, [w.proc for w in live])
        for w in live:
            for conn in w.conns.values():
                conn.close()
        if self.monitoring.enabled:
            self.stats.stop()
        if self.samples is not None:
            self.samples.stop()  # writes what is left
        self.engine.dispose()

    def _spawn(self, index: int) -> None:
        ours, theirs = socket.socketpair()
        hand, handed = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        slot_fd = os.memfd_create("cellops-worker-slot")
        os.ftruncate(slot_fd, SLOT.size)
        m = self.monitoring
        cmd = [
            sys.executable,
            "-m",
            "cellops_server.serving.worker",
            "--control",
            str(theirs.fileno()),
            "--handoff",
            str(handed.fileno()),
            "--slot",
            str(slot_fd),
            "--artifacts",
            self.artifacts,
            "--sample-rate",
            repr(m.sample_rate),
            "--samples-per-second",
            str(m.samples_per_second),
        ]
        if not m.enabled:
            cmd.append("--no-monitoring")
        fds = (theirs.fileno(), handed.fileno(), slot_fd)
        proc = subprocess.Popen(cmd, pass_fds=fds, stdin=subprocess.DEVNULL)
        theirs.close()
        handed.close()
        slot = mmap.mmap(slot_fd, SLOT.size)
        os.close(slot_fd)
        hand.setblocking(False)
        self._spawn_task(self._attach(index, proc, ours, hand, slot))

    async def _attach(
        self,
        index: int,
        proc: subprocess.Popen[bytes],
        sock: socket.socket,
        handoff: socket.socket,
        slot: mmap.mmap,
    ) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=2**20)
        worker = Worker(index, proc, writer, handoff, slot, time.monotonic())
        if index == SPARE:
            self.spare = worker
        else:
            self.workers[index] = worker
        try:
            while True:
                (length,) = struct.unpack(">I", await reader.readexactly(4))
                header, body = decode(await reader.readexactly(length))
                self._on_frame(worker, header, body)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except Exception:
            log.exception("worker %d sent a bad frame", index)
            proc.kill()
        await self._on_death(worker)

    def _on_frame(self, worker: Worker, header: dict[str, Any], body: bytes) -> None:
        op = header.get("op")
        if op == "report":
            self._take_report(worker, body)
        reply = header.get("reply")
        if reply is not None:
            fut, _, _ = worker.pending.pop(reply, (None, None, None))
            if fut is not None and not fut.done():
                fut.set_result((header, body))
        elif op == "hello":
            worker.ready = True
            log.info("worker %d ready (pid %s)", worker.index, header.get("pid"))
            self._publish(force=worker)
            self._reconcile()
        elif op == "metrics":
            self._spawn_task(self._answer_metrics(worker, header["id"]))
        elif op == "member":
            self._spawn_task(self._answer_member(worker, header["id"], str(header.get("token"))))

    async def _answer_metrics(self, worker: Worker, ident: int) -> None:
        response = await self.scrape(asker=worker)
        worker.send({"reply": ident, "content_type": response.content_type}, response.body)

    async def _answer_member(self, worker: Worker, ident: int, token: str) -> None:
        worker.send({"reply": ident, "ok": await self.is_member(token)})

    def _take_report(self, worker: Worker, body: bytes) -> None:
        report = json.loads(body)
        for name, version, status, seconds in report.get("counts", ()):
            self.count(name, version, status, seconds)
        if self.samples is not None:
            for name, version, rows, predictions in report.get("samples", ()):
                self.samples.add(name, version, rows, predictions)
        for conn_id in report.get("closed", ()):
            conn = worker.conns.pop(conn_id, None)
            if conn is not None:
                conn.close()

    async def _on_death(self, worker: Worker) -> None:
        worker.alive = False
        worker.ready = False
        worker.writer.close()
        worker.handoff.close()
        died = time.monotonic()  # when it was seen: the deaths of one kill are close together
        busy = self.slot_keys.get(worker.busy_with())
        for conn in worker.conns.values():  # answered 503 rather than dropped
            self._spawn_task(self._orphan(conn))
        worker.conns.clear()
        code = await self.loop.run_in_executor(None, worker.proc.wait)
        if self._stopping:
            return
        log.warning("worker %d (pid %d) exited with %s", worker.index, worker.proc.pid, code)
        # One death is one crash of each version it was loading or predicting with.
        crashed = {(key, op) for _, key, op in worker.pending.values() if key is not None}
        if busy is not None:
            crashed.add((busy, "infer"))
        for key, op in crashed:
            reason = self.crashes.note(key, op, code, died)
            if reason is not None:
                self._fail(key, reason)
        for fut, _, _ in worker.pending.values():
            if not fut.done():
                fut.set_exception(WorkerGone())
        worker.pending.clear()
        if worker is self.spare:
            self.spare = None
        slot = worker.index
        spare = self.spare
        if slot != SPARE and spare is not None and spare.ready and spare.alive:
            # The warm spare (imports done) takes the slot at once and loads its models;
            # a cold start takes seconds on a busy machine.
            spare.index, self.spare = slot, None
            self.workers[slot] = spare
            slot = SPARE
        self._reconcile()
        # Restart at once, slower when it keeps dying young (an import that fails, say).
        young = died - worker.started < 2.0
        self._young = self._young + 1 if young else 0
        await asyncio.sleep(min(0.05 * 2**self._young, 3.0) if young else 0)
        if not self._stopping:
            self._spawn(slot)

    def _fail(self, key: Key, reason: str) -> None:
        dep = self.deployments.get(key[0])
        if dep is None:
            return
        dep.failed[key] = reason
        if dep.route is not None and dep.route.has(key[1]):
            dep.route = None  # stop sending requests that kill workers
        self._report(dep, "failed", reason)
        self._publish()

    # -- connections -------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self.listener is not None
        for _ in range(ACCEPTS_PER_TURN):
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, say: the backlog waits
                log.warning("accept failed: %s", exc)
                return
            conn.setblocking(False)
            if conn.family != socket.AF_UNIX:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._place(conn)

    def _place(self, conn: socket.socket) -> None:
        """Hand ``conn`` to the worker with the fewest connections among those holding every
        version that takes traffic; while none does, answer it here (503, then close)."""
        routed = self._routed_keys()
        able = [w for w in self.workers if w is not None and w.ready and routed <= w.loaded]
        if able:
            worker = min(able, key=lambda w: len(w.conns))
            conn_id = next(_conn_ids)
            try:
                socket.send_fds(worker.handoff, [CONN_ID.pack(conn_id)], [conn.fileno()])
            except OSError as exc:  # its queue is full, or it just died
                log.warning("cannot hand a connection to worker %d: %s", worker.index, exc)
            else:
                worker.conns[conn_id] = conn
                return
        self._spawn_task(self._serve_here(conn))

    async def _serve_here(self, conn: socket.socket) -> None:
        def protocol() -> HttpProtocol:
            return HttpProtocol(self.endpoints.handle, close_after_answer=True)

        try:
            await self.loop.connect_accepted_socket(protocol, conn)
        except OSError:
            conn.close()

    async def _orphan(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(Orphan, conn)
        except OSError:
            conn.close()

    def _routed_keys(self) -> set[Key]:
        return {
            (name, v)
            for name, dep in self.deployments.items()
            if dep.route is not None
            for v in dep.route.versions()
        }

    # -- desired state -----------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        while True:
            try:
                wanted = await self.loop.run_in_executor(None, domain.desired, self.engine)
            except Exception as exc:  # the store is down: keep serving what we serve
                log.warning("cannot read deployments: %s", exc)
            else:
                self._update(wanted)
            await asyncio.sleep(POLL_INTERVAL)

    def _update(self, wanted: list[Any]) -> None:
        names = {d.name for d in wanted}
        for name in list(self.deployments):
            if name not in names:
                del self.deployments[name]
        for d in wanted:
            dep = self.deployments.get(d.name)
            if dep is None:
                self.deployments[d.name] = Deployment(d)
            else:
                if d.generation != dep.desired.generation:
                    dep.failed.clear()  # a change is a fresh attempt
                dep.desired = d
        self._reconcile()

    def _reconcile(self) -> None:
        """Load what is wanted in every ready worker; switch a deployment's traffic once its
        versions are loaded and checked everywhere; unload what nothing routes to."""
        ready = [w for w in self.workers if w is not None and w.ready]
        needed: set[Key] = set()
        for dep in self.deployments.values():
            d = dep.desired
            target = {(d.name, v.version): v for v in d.versions}
            failed = [dep.failed[k] for k in target if k in dep.failed]
            # What takes traffic now comes first: a restarted worker serves it again while
            # the wanted versions load, and after they have failed.
            for key, v in dep.routed.items():
                if dep.route is not None and key not in dep.failed:
                    for w in ready:
                        if key not in w.loaded and key not in w.loading:
                            self._load(w, dep, key, v)
            if not any(v.percent > 0 for v in d.versions):
                self._report(dep, "failed", "none of its versions exists any more: deploy one")
            elif failed:
                self._report(dep, "failed", failed[0])
            else:
                for w in ready:
                    for key, v in target.items():
                        if key not in w.loaded and key not in w.loading:
                            self._load(w, dep, key, v)
                if ready and all(k in w.loaded for w in ready for k in target):
                    self._switch(dep)
            needed.update(target)
            if dep.route is not None:
                needed.update((d.name, v) for v in dep.route.versions())
        self._publish()  # the new routes reach every worker before any unload
        for w in ready:
            for key in list(w.loaded - needed):
                w.loaded.discard(key)
                w.send({"op": "unload", "deployment": key[0], "version": key[1]})

    def _load(self, worker: Worker, dep: Deployment, key: Key, v: Any) -> None:
        worker.loading.add(key)
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = len(self.slots) + 1
            self.slot_keys[slot] = key
        header = {
            "op": "load",
            "deployment": key[0],
            "version": key[1],
            "sha256": v.artifact,
            "signature": v.signature,
            "slot": slot,
        }
        fut = worker.ask(header, key=key)
        fut.add_done_callback(lambda f: self._loaded(worker, dep, key, f))

    def _loaded(self, worker: Worker, dep: Deployment, key: Key, fut: asyncio.Future[Any]) -> None:
        worker.loading.discard(key)
        if fut.cancelled() or fut.exception() is not None:
            return  # the worker died; its restart loads again
        header, _ = fut.result()
        if header.get("ok"):
            worker.loaded.add(key)
            self.crashes.loaded(key)
        else:
            reason = f"version {key[1]} cannot be served: {header.get('error')}"
            dep.failed[key] = reason
        self._reconcile()

    def _switch(self, dep: Deployment) -> None:
        d = dep.desired
        split = split_of(d.versions)
        if dep.route is None or dep.route.split != split:
            dep.route = Route(split)
            dep.routed = {(d.name, v.version): v for v in d.versions if dep.route.has(v.version)}
            log.info("%s serves %s", d.name, list(split))
        self._report(dep, "ready", None)

    def _publish(self, force: Worker | None = None) -> None:
        """Send every worker what is served (keys, splits), when it changed."""
        ready = sum(1 for w in self.workers if w is not None and w.ready)
        table = [dep.served() for dep in self.deployments.values()]
        self.endpoints.served = {s.name: s for s in table}
        self.endpoints.ready_workers = ready
        payload = {"workers": ready, "deployments": [s.to_wire() for s in table]}
        text = json.dumps(payload, separators=(",", ":"))
        if text != self._published:  # every ready worker (the spare too)
            self._published = text
            targets = [w for w in (*self.workers, self.spare) if w is not None and w.ready]
        elif force is not None:  # a worker that just said hello
            targets = [force]
        else:
            return
        for w in targets:
            w.send({"op": "routes", **payload})

    def _report(self, dep: Deployment, state: str, reason: str | None) -> None:
        d = dep.desired
        mark = (d.generation, d.versions, state, reason)
        if dep.reported == mark:
            return
        dep.reported = mark
        report = functools.partial(
            domain.report_state, self.engine, d.name, state, reason, generation=d.generation
        )
        fut = self.loop.run_in_executor(None, report)
        fut.add_done_callback(lambda f: f.exception() and log.warning("report: %s", f.exception()))

    # -- monitoring --------------------------------------------------------------------------

    def count(self, name: str, version: int, status: int, seconds: float) -> None:
        if not self.monitoring.enabled:
            return
        children = self._children.get((name, version, status))
        if children is None:
            v = str(version)
            children = (
                self.requests.labels(name, v, str(status)),
                self.errors.labels(name, v),
                self.latency.labels(name, v),
            )
            self._children[(name, version, status)] = children
        requests, errors, latency = children
        requests.inc()
        failed = status >= 400
        if failed:
            errors.inc()
        latency.observe(seconds)
        self.stats.add(name, version, seconds, failed)

    async def scrape(self, asker: Worker | None = None) -> Response:
        """``/metrics``, once every worker has sent the counts it holds (or a second passed)."""
        if self.monitoring.enabled:
            others = [
                w.ask({"op": "flush"})
                for w in self.workers
                if w is not None and w.ready and w.alive and w is not asker
            ]
            if others:
                await asyncio.wait(others, timeout=FLUSH_WAIT)
                for fut in others:  # a worker that died meanwhile is no error here
                    if fut.done() and not fut.cancelled():
                        fut.exception()
        return Response(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)

    # -- member tokens -----------------------------------------------------------------------

    async def is_member(self, token: str) -> bool:
        """A team member's token (asked by workers; the Jupyter server's own token, in
        embedded mode, is compared where the request arrives: endpoints.py)."""
        now = time.monotonic()
        cached = self.tokens.get(token)
        if cached is not None and now - cached[0] < TOKEN_TTL:
            return cached[1]
        try:
            ok = await self.loop.run_in_executor(None, _member_lookup, self.engine, token)
        except Exception as exc:
            log.warning("cannot check a member token: %s", exc)
            return False
        if len(self.tokens) > 4096:
            self.tokens.clear()
        self.tokens[token] = (now, ok)
        return ok


_ORPHANED = render(
    error(503, "the worker serving this connection stopped; retry", **RETRY), keep_alive=False
)


class Orphan(asyncio.Protocol):
    """A connection whose worker died: answer 503 + Retry-After and close it gracefully
    (half-close, then read until the client closes), so the answer is not lost to a reset."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport.write(_ORPHANED)
        self.transport.write_eof()
        self.timer = asyncio.get_running_loop().call_later(LINGER, self.transport.close)

    def data_received(self, data: bytes) -> None:
        pass  # whatever the client still sends is not read by anyone

    def eof_received(self) -> bool:
        return False  # the client is done: close

    def connection_lost(self, exc: Exception | None) -> None:
        self.timer.cancel()


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _member_lookup(engine: sa.Engine, token: str) -> bool:
    from ..team.users import user_for_token

    return user_for_token(engine, token) is not None  # every role is at least a viewer


def _reap(procs: list[subprocess.Popen[bytes]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the process -------------------------------------------------------------------------------


def _watch_stdin(on_eof: Callable[[], None]) -> None:
    """The supervisor holds our stdin: when it goes away (even killed), so do we."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    on_eof()


async def run(
    db_url: str,
    artifacts: str,
    host: str,
    port: int,
    workers: int,
    watch: bool,
    monitoring: Monitoring = Monitoring(),
) -> None:
    router = Router(db_url, artifacts, workers, monitoring=monitoring)
    await router.start(host, port)
    log.info(
        "cellops serving listener on http://%s:%d with %d workers (%s)",
        host,
        port,
        workers,
        _describe(monitoring),
    )
    print(f"listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if watch:
        threading.Thread(
            target=_watch_stdin, args=(lambda: loop.call_soon_threadsafe(stop.set),), daemon=True
        ).start()
    await stop.wait()
    await router.stop()


def main(argv: list[str] | None = None) -> None:
    from ..cli import fraction  # the same rule as `cellops serve --sample-rate`

    parser = argparse.ArgumentParser(prog="python -m cellops_server.serving")
    parser.add_argument("--host", default=os.environ.get("CELLOPS_SERVING_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("CELLOPS_SERVING_PORT") or 8900)
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    parser.add_argument(
        "--no-monitoring",
        action="store_true",
        default=os.environ.get("CELLOPS_SERVING_MONITORING", "1") in ("0", "false", "no"),
        help="no Prometheus counts, per-minute metrics or samples (env CELLOPS_SERVING_MONITORING=0)",
    )
    parser.add_argument(
        "--sample-rate",
        type=fraction,
        default=os.environ.get("CELLOPS_SERVING_SAMPLE_RATE") or "1",  # parsed by type
        help="share of requests (0-1) whose rows and predictions are kept for drift; 0: none "
        "(env CELLOPS_SERVING_SAMPLE_RATE; default 1)",
    )
    parser.add_argument(
        "--samples-per-second",
        type=int,
        default=os.environ.get("CELLOPS_SERVING_SAMPLES_PER_SECOND") or "10",
        help="most requests sampled per deployment and second "
        "(env CELLOPS_SERVING_SAMPLES_PER_SECOND; default 10)",
    )
    args = parser.parse_args(argv)
    monitoring = Monitoring(not args.no_monitoring, args.sample_rate, args.samples_per_second)
    db_url = os.environ.get("CELLOPS_DB_URL")
    artifacts = os.environ.get("CELLOPS_ARTIFACTS")
    if not db_url or not artifacts:
        parser.error("set CELLOPS_DB_URL and CELLOPS_ARTIFACTS")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s cellops-serving %(message)s")
    raise_open_files_limit()
    try:
        asyncio.run(
            run(
                db_url,
                artifacts,
                args.host,
                args.port,
                args.workers,
                args.watch_stdin,
                monitoring,
            )
        )
    except OSError as exc:  # the port is taken
        log.error("cannot listen on %s:%d: %s", args.host, args.port, exc)
        sys.exit(2)


def _describe(m: Monitoring) -> str:
    if not m.enabled:
        return "monitoring off"
    if m.sample_rate <= 0:
        return "monitoring on, no samples"
    return f"monitoring on, sampling {m.sample_rate:g} of requests, at most {m.samples_per_second}/s per deployment"


if __name__ == "__main__":
    main()
