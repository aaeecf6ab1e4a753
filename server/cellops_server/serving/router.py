"""The serving listener (``python -m cellops_server.serving``): HTTP, keys, routing by
traffic split, Prometheus ``/metrics``, per-minute metrics into the store. It never runs a
model: workers (worker.py) do, behind a socketpair each, so a crashing model never takes
the listener down.

Monitoring: per request it decides whether to sample (``--sample-rate``, at most
``--samples-per-second`` per deployment); only a sampled request's worker sends back its
first rows and their predictions, which stats.py writes to the store off the request path.
``--no-monitoring`` records nothing at all (no counts, minutes or samples).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hmac
import itertools
import logging
import os
import random
import re
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
from .http import HttpProtocol, Request, Response, error, json_response
from .metrics import BUCKETS
from .stats import MinuteStats, Samples
from .wire import decode, encode

log = logging.getLogger("cellops.serving")

Key = tuple[str, int]  # (deployment, version)
RETRY = {"Retry-After": "1"}
POLL_INTERVAL = 0.5
TOKEN_TTL = 1.0
LOAD_CRASHES = 2  # a version that kills its worker this often while loading has failed
SERVE_CRASHES = 3  # ... or this often within CRASH_WINDOW while serving
CRASH_WINDOW = 60.0

_V2 = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/infer|/ready)?$")
_MLFLOW = re.compile(r"^/deployments/([^/]+)/(invocations|ping)$")


# -- workers ----------------------------------------------------------------------------------


class WorkerGone(Exception):
    pass


@dataclass(eq=False)
class Worker:
    """One worker process and the router's end of its socket."""

    index: int
    proc: subprocess.Popen[bytes]
    writer: asyncio.StreamWriter
    started: float
    ready: bool = False  # said hello: imports done
    loaded: set[Key] = field(default_factory=set)
    loading: set[Key] = field(default_factory=set)
    inflight: int = 0
    pending: dict[int, tuple[asyncio.Future[tuple[dict[str, Any], bytes]], Key | None, str]] = (
        field(default_factory=dict)
    )
    alive: bool = True

    def send(
        self, header: dict[str, Any], body: bytes = b"", key: Key | None = None
    ) -> asyncio.Future[tuple[dict[str, Any], bytes]]:
        fut: asyncio.Future[tuple[dict[str, Any], bytes]] = (
            asyncio.get_running_loop().create_future()
        )
        if not self.alive:
            fut.set_exception(WorkerGone())
            return fut
        ident = next(_ids)
        header["id"] = ident
        self.pending[ident] = (fut, key, header["op"])
        self.writer.write(encode(header, body))
        return fut


_ids = itertools.count(1)
SPARE = -1  # the index of the warm spare worker


# -- what is served ---------------------------------------------------------------------------


@dataclass
class Route:
    """What takes a deployment's traffic now."""

    versions: tuple[Any, ...]  # ServedVersion, percent > 0 first
    cumulative: list[tuple[float, int]]

    @classmethod
    def of(cls, versions: tuple[Any, ...]) -> Route:
        total, cumulative = 0.0, []
        for v in versions:
            if v.percent > 0:
                total += v.percent
                cumulative.append((total, v.version))
        return cls(versions, cumulative)

    def pick(self) -> int:
        r = random.random() * self.cumulative[-1][0]
        for edge, version in self.cumulative:
            if r < edge:
                return version
        return self.cumulative[-1][1]

    def has(self, version: int) -> bool:
        return any(v.version == version for v in self.versions)


@dataclass
class Deployment:
    desired: Any  # DesiredDeployment
    route: Route | None = None
    reported: tuple[Any, ...] | None = None  # what was last written, to write changes only
    failed: dict[Key, str] = field(default_factory=dict)


# -- the router -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Monitoring:
    """What the router records of requests. Off: no Prometheus counts, per-minute metrics
    or samples (the serving cost of monitoring, measured by benchmarks/serving.py)."""

    enabled: bool = True
    sample_rate: float = 1.0  # share of requests sampled for drift (0: none)
    samples_per_second: int = 10  # most sampled requests per deployment and second


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
        self.crashes: dict[Key, list[float]] = {}
        self.load_crashes: dict[Key, int] = {}
        self.member_token = os.environ.get("CELLOPS_SERVING_MEMBER_TOKEN", "")
        self.tokens: dict[str, tuple[float, bool]] = {}
        self.monitoring = monitoring.enabled
        self.stats = MinuteStats(self.engine)
        self.samples: Samples | None = None
        if monitoring.enabled and monitoring.sample_rate > 0:
            self.samples = Samples(
                self.engine, monitoring.sample_rate, monitoring.samples_per_second
            )
        # Monitoring off: the registry stays empty, /metrics answers no series.
        self.registry = CollectorRegistry()
        if monitoring.enabled:
            self._metrics()
        self._children: dict[tuple[str, int, int], tuple[Any, Any, Any]] = {}
        self._stopping = False
        self._tasks: set[asyncio.Future[None]] = set()

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

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        for i in range(self.worker_count):
            self._spawn(i)
        if self.spares:
            self._spawn(SPARE)
        server = await loop.create_server(
            lambda: HttpProtocol(self.handle), host, port, reuse_address=True, backlog=1024
        )
        if self.monitoring:
            self.stats.start()
        if self.samples is not None:
            self.samples.start()
        self._poller = asyncio.ensure_future(self._poll_forever())
        return server

    async def stop(self) -> None:
        self._stopping = True
        self._poller.cancel()
        live = [w for w in [*self.workers, self.spare] if w is not None and w.alive]
        for w in live:
            w.writer.close()  # at end of stream a worker exits
        await asyncio.sleep(0.05)  # the transports close on the loop
        await asyncio.get_running_loop().run_in_executor(None, _reap, [w.proc for w in live])
        if self.monitoring:
            self.stats.stop()
        if self.samples is not None:
            self.samples.stop()  # writes what is left
        self.engine.dispose()

    def _spawn(self, index: int) -> None:
        ours, theirs = socket.socketpair()
        cmd = [
            sys.executable,
            "-m",
            "cellops_server.serving.worker",
            "--fd",
            str(theirs.fileno()),
            "--artifacts",
            self.artifacts,
        ]
        proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        theirs.close()
        task = asyncio.ensure_future(self._attach(index, proc, ours))
        self._tasks.add(task)  # keep a reference until done
        task.add_done_callback(self._tasks.discard)

    async def _attach(self, index: int, proc: subprocess.Popen[bytes], sock: socket.socket) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=2**20)
        worker = Worker(index, proc, writer, time.monotonic())
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
        if header.get("op") == "hello":
            worker.ready = True
            log.info("worker %d ready (pid %s)", worker.index, header.get("pid"))
            self._reconcile()
            return
        fut, _, _ = worker.pending.pop(header.get("id"), (None, None, None))
        if fut is not None and not fut.done():
            fut.set_result((header, body))

    async def _on_death(self, worker: Worker) -> None:
        worker.alive = False
        worker.ready = False
        worker.writer.close()
        code = await asyncio.get_running_loop().run_in_executor(None, worker.proc.wait)
        if self._stopping:
            return
        log.warning("worker %d (pid %d) exited with %s", worker.index, worker.proc.pid, code)
        now = time.monotonic()
        # One death is one crash of each version it was loading or predicting with, however
        # many requests were in flight (eight requests on a killed worker are not eight crashes).
        for key, op in {(key, op) for _, key, op in worker.pending.values() if key is not None}:
            self._note_crash(key, op, code, now)
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
            self._reconcile()
            slot = SPARE
        # Restart at once, slower when it keeps dying young (an import that fails, say).
        young = now - worker.started < 2.0
        self._young = self._young + 1 if young else 0
        await asyncio.sleep(min(0.05 * 2**self._young, 3.0) if young else 0)
        if not self._stopping:
            self._spawn(slot)

    def _note_crash(self, key: Key, op: str, code: int | None, now: float) -> None:
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if op == "load":
            self.load_crashes[key] = self.load_crashes.get(key, 0) + 1
            if self.load_crashes[key] >= LOAD_CRASHES:
                self._fail(
                    key, f"version {key[1]} crashes its worker process while loading ({how})"
                )
            return
        recent = [t for t in self.crashes.get(key, []) if now - t < CRASH_WINDOW] + [now]
        self.crashes[key] = recent
        if len(recent) >= SERVE_CRASHES:
            self._fail(
                key,
                f"version {key[1]} crashed its worker process {len(recent)} times in a minute "
                f"while predicting ({how}); roll back or deploy another version",
            )

    def _fail(self, key: Key, reason: str) -> None:
        dep = self.deployments.get(key[0])
        if dep is None:
            return
        dep.failed[key] = reason
        if dep.route is not None and dep.route.has(key[1]):
            dep.route = None  # stop sending requests that kill workers
        self._report(dep, "failed", reason)

    # -- desired state -----------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                wanted = await loop.run_in_executor(None, domain.desired, self.engine)
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
                needed.update((d.name, v.version) for v in dep.route.versions)
        for w in ready:
            for key in list(w.loaded - needed):
                w.loaded.discard(key)
                w.send({"op": "unload", "deployment": key[0], "version": key[1]})

    def _load(self, worker: Worker, dep: Deployment, key: Key, v: Any) -> None:
        worker.loading.add(key)
        header = {
            "op": "load",
            "deployment": key[0],
            "version": key[1],
            "sha256": v.artifact,
            "signature": v.signature,
        }
        fut = worker.send(header, key=key)
        fut.add_done_callback(lambda f: self._loaded(worker, dep, key, f))

    def _loaded(self, worker: Worker, dep: Deployment, key: Key, fut: asyncio.Future[Any]) -> None:
        worker.loading.discard(key)
        if fut.cancelled() or fut.exception() is not None:
            return  # the worker died; its restart loads again
        header, _ = fut.result()
        if header.get("ok"):
            worker.loaded.add(key)
            self.load_crashes.pop(key, None)
        else:
            reason = f"version {key[1]} cannot be served: {header.get('error')}"
            dep.failed[key] = reason
        self._reconcile()

    def _switch(self, dep: Deployment) -> None:
        d = dep.desired
        if dep.route is None or dep.route.versions != tuple(d.versions):
            dep.route = Route.of(tuple(d.versions))
            log.info("%s serves %s", d.name, [(v.version, v.percent) for v in d.versions])
        self._report(dep, "ready", None)

    def _report(self, dep: Deployment, state: str, reason: str | None) -> None:
        d = dep.desired
        mark = (d.generation, d.versions, state, reason)
        if dep.reported == mark:
            return
        dep.reported = mark
        loop = asyncio.get_running_loop()
        report = functools.partial(
            domain.report_state, self.engine, d.name, state, reason, generation=d.generation
        )
        fut = loop.run_in_executor(None, report)
        fut.add_done_callback(lambda f: f.exception() and log.warning("report: %s", f.exception()))

    # -- requests ----------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/v2"):
            if path == "/v2/health/live":
                return json_response(200, {"live": True})
            if path == "/v2/health/ready":
                ready = sum(1 for w in self.workers if w is not None and w.ready)
                if ready:
                    return json_response(200, {"ready": True, "workers": ready})
                return error(503, "no worker process is ready yet", **RETRY)
            if path == "/v2":
                return json_response(200, {"name": "cellops", "version": "1", "extensions": []})
            m = _V2.match(path)
            if m:
                return await self._v2(request, m.group(1), m.group(2), m.group(3))
        elif path.startswith("/deployments/"):
            m = _MLFLOW.match(path)
            if m:
                return await self._mlflow(request, m.group(1), m.group(2))
        elif path == "/metrics" and request.method == "GET":
            return Response(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        return error(404, f"no endpoint at {path}")

    async def _v2(
        self, request: Request, name: str, version: str | None, op: str | None
    ) -> Response:
        dep = self.deployments.get(name)
        if dep is None:
            return error(404, f"no deployment named {name!r}")
        pinned: int | None = None
        if version is not None:
            if not version.isdigit() or (dep.route is not None and not dep.route.has(int(version))):
                served = [v.version for v in dep.desired.versions]
                return error(404, f"{name} serves version(s) {served}, not {version!r}")
            pinned = int(version)
        if op == "/ready":
            return self._readiness(dep, pinned, v2=True)
        if op is None:
            if request.method != "GET":
                return error(405, "use GET for model metadata")
            refused = await self._authorize(dep, request)
            if refused is not None:
                return refused
            return self._metadata(dep, pinned)
        if request.method != "POST":
            return error(405, "use POST for inference")
        return await self._infer(dep, request, "v2", pinned)

    async def _mlflow(self, request: Request, name: str, op: str) -> Response:
        dep = self.deployments.get(name)
        if dep is None:
            return error(404, f"no deployment named {name!r}")
        if op == "ping":
            return self._readiness(dep, None, v2=False)
        if request.method != "POST":
            return error(405, "use POST for invocations")
        return await self._infer(dep, request, "mlflow", None)

    def _readiness(self, dep: Deployment, pinned: int | None, v2: bool) -> Response:
        name = dep.desired.name
        if dep.route is None:
            why = next(iter(dep.failed.values()), None) or f"{name} is starting"
            return error(503, why, **RETRY)
        versions = [pinned] if pinned is not None else [v.version for v in dep.route.versions]
        if not all(self._candidates((name, v)) for v in versions):
            return error(503, f"no worker is ready for {name} yet", **RETRY)
        return json_response(200, {"name": name, "ready": True}) if v2 else Response(200, b"\n")

    def _metadata(self, dep: Deployment, pinned: int | None) -> Response:
        from .protocols import metadata_v2

        d = dep.desired
        versions = [v for v in d.versions if pinned is None or v.version == pinned]
        if not versions:
            return error(404, f"{d.name} does not serve version {pinned}")
        main = max(versions, key=lambda v: v.percent)
        return json_response(
            200, metadata_v2(d.name, [v.version for v in versions], main.signature)
        )

    def _candidates(self, key: Key) -> list[Worker]:
        return [w for w in self.workers if w is not None and w.ready and key in w.loaded]

    async def _infer(
        self, dep: Deployment, request: Request, protocol: str, pinned: int | None
    ) -> Response:
        started = time.perf_counter()
        refused = await self._authorize(dep, request)
        if refused is not None:
            return refused
        name = dep.desired.name
        route = dep.route
        if route is None:
            why = next(iter(dep.failed.values()), None)
            return error(503, why or f"{name} is starting; retry shortly", **RETRY)
        version = pinned if pinned is not None else route.pick()
        key = (name, version)
        workers = self._candidates(key)
        if not workers:
            response = error(503, f"no worker is ready for {name} yet", **RETRY)
        else:
            sample = self.samples is not None and self.samples.wants(name)
            worker = min(workers, key=_load)
            response = await self._dispatch(worker, key, protocol, request, sample)
        if self.monitoring:
            self._count(name, version, response.status, time.perf_counter() - started)
        return response

    async def _dispatch(
        self, worker: Worker, key: Key, protocol: str, request: Request, sample: bool = False
    ) -> Response:
        header: dict[str, Any] = {
            "op": "infer",
            "deployment": key[0],
            "version": key[1],
            "protocol": protocol,
            "content_type": request.headers.get("content-type", ""),
        }
        if sample:  # the worker adds the request's first rows and their predictions
            header["sample"] = True
        icl = request.headers.get("inference-header-content-length")
        if icl is not None:  # the binary tensor extension (tritonclient's binary_data=True)
            if not icl.isdigit():
                return error(400, "Inference-Header-Content-Length must be a byte count")
            header["header_length"] = int(icl)
        worker.inflight += 1
        try:
            reply, body = await worker.send(header, request.body, key=key)
        except WorkerGone:
            return error(503, "the worker serving this request stopped; retry", **RETRY)
        finally:
            worker.inflight -= 1
        status = int(reply.get("status", 500))
        if "error" in reply:
            extra = RETRY if status == 503 else {}
            return error(status, reply["error"], **extra)
        taken = reply.get("sample")
        if taken is not None and self.samples is not None:
            self.samples.add(key[0], key[1], taken[0], taken[1])
        headers = {**(reply.get("headers") or {}), "Cellops-Model-Version": str(key[1])}
        return Response(status, body, reply.get("content_type") or "application/json", headers)

    def _count(self, name: str, version: int, status: int, seconds: float) -> None:
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

    # -- keys and member tokens --------------------------------------------------------------

    async def _authorize(self, dep: Deployment, request: Request) -> Response | None:
        d = dep.desired
        if d.public:
            return None
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _unauthorized(d.name, "no key was sent")
        if d.key_sha256 and domain.key_matches(d.key_sha256, token):
            return None
        if await self._is_member(token):
            return None
        return _unauthorized(d.name, "the key is not valid for this deployment")

    async def _is_member(self, token: str) -> bool:
        if self.member_token:  # embedded mode: the Jupyter server's own token
            return hmac.compare_digest(token.encode(), self.member_token.encode())
        now = time.monotonic()
        cached = self.tokens.get(token)
        if cached is not None and now - cached[0] < TOKEN_TTL:
            return cached[1]
        loop = asyncio.get_running_loop()
        try:
            ok = await loop.run_in_executor(None, _member_lookup, self.engine, token)
        except Exception as exc:
            log.warning("cannot check a member token: %s", exc)
            return False
        if len(self.tokens) > 4096:
            self.tokens.clear()
        self.tokens[token] = (now, ok)
        return ok


def _member_lookup(engine: sa.Engine, token: str) -> bool:
    from ..team.users import user_for_token

    return user_for_token(engine, token) is not None  # every role is at least a viewer


def _unauthorized(name: str, why: str) -> Response:
    return error(
        401,
        f"{why}: send 'Authorization: Bearer <key>' with {name}'s inference key "
        "(shown when it was deployed, or rotate it) or a member token",
        **{"WWW-Authenticate": 'Bearer realm="cellops"'},
    )


def _reap(procs: list[subprocess.Popen[bytes]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _load(worker: Worker) -> int:
    return worker.inflight


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
    server = await router.start(host, port)
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
    server.close()
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
