"""One-row predictions of one scikit-learn model: cellops serving against `mlflow models
serve` and Seldon MLServer, side by side in one run.

The model: LogisticRegression on scikit-learn's bundled breast_cancer (30 float features).
The same coefficients are served by every system (rebuilt in each system's own venv, so no
pickle crosses library versions), and every system's answer to the benchmark row is checked
against the in-process prediction before anything is timed.

1. ``raw predict``: ``model.predict(row)`` in this process (the floor);
2. ``cellops OIP`` / ``cellops invocations``: a real serving router
   (``python -m cellops_server.serving``) on a temp SQLite store; the model registered
   through cellops' registry and deployed through the deployments domain, called with the
   deployment key on ``POST /v2/models/{name}/infer`` and ``POST /deployments/{name}/invocations``;
3. ``mlflow serve``: ``mlflow models serve --env-manager local`` from a venv of its own
   (~/.cache/cellops-bench/mlflow-venv, created on first use: ``pip install mlflow scikit-learn``);
4. ``mlserver``: ``mlserver start`` with mlserver-sklearn, from its own venv, on a joblib file.

Every server gets the same number of worker processes (``--workers``, cellops' default 2).
Measured per system, the systems interleaved round by round: p50/p99 of sequential requests
(one keep-alive ``http.client`` connection, after a warm-up), and throughput at concurrency 8 and
32. The load client is the same for every system: plain asyncio streams, one keep-alive
connection per concurrent client, pre-encoded requests (a thread per client with
``requests`` would spend more CPU than the servers on these 2 cores and measure itself).

``--kill-worker``: under load at concurrency 8, kill -9 one cellops worker; count failed
requests by kind (only 503 with Retry-After is allowed) and the seconds until a new worker
is serving.

Goals (issue 12): cellops p50 <= 0.7 ms; throughput at 32 >= 3x mlflow's; monitoring on
within 10 % of off; after kill -9: only 503 + Retry-After, worker back within 5 s.

    python benchmarks/serving.py [--quick] [--strict] [--requests N] [--duration S]
        [--workers W] [--skip-mlflow] [--skip-mlserver] [--kill-worker] [--verbose]
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: F401  (puts server/, widgets/, tests/ on sys.path)
import requests
from common import (
    banner,
    exit_code,
    free_port,
    goal,
    ms,
    parse_args,
    percentile,
    print_table,
    skip,
    subprocess_env,
)

CACHE = Path(os.environ.get("CELLOPS_BENCH_CACHE", Path.home() / ".cache" / "cellops-bench"))
VENVS = {
    "mlflow": (["mlflow", "scikit-learn"], "import mlflow.sklearn"),
    # uvloop 0.22 breaks MLServer 1.7's inference workers ("There is no current event loop",
    # SeldonIO/MLServer#2286): keep the one before it.
    "mlserver": (
        ["mlserver", "mlserver-sklearn", "uvloop<0.22"],
        "import mlserver, mlserver_sklearn, joblib, uvloop; "
        "assert tuple(map(int, uvloop.__version__.split('.')[:2])) < (0, 22)",
    ),
}
INSTALL_TIMEOUT = 1200  # seconds for one venv's pip install
NAME = "breast-cancer"
P50_GOAL_MS, MLFLOW_RATIO_GOAL, MONITORING_GOAL, BACK_GOAL_S = 0.7, 3.0, 0.10, 5.0


# -- the model --------------------------------------------------------------------------------


def build_model() -> tuple[Any, Any]:
    """The fitted model and its training data (breast_cancer ships with scikit-learn)."""
    import warnings

    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs on unscaled features: fine for a benchmark
        model = LogisticRegression(max_iter=5000).fit(X, y)
    return model, X


def model_spec(model: Any, X: Any) -> dict[str, Any]:
    """What another venv needs to rebuild exactly this model (no pickle between versions)."""
    return {
        "coef": model.coef_.tolist(),
        "intercept": model.intercept_.tolist(),
        "classes": model.classes_.tolist(),
        "example": X[:5].tolist(),
    }


REBUILD = """
import json, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
spec = json.load(open(sys.argv[1]))
model = LogisticRegression()
model.coef_ = np.array(spec["coef"])
model.intercept_ = np.array(spec["intercept"])
model.classes_ = np.array(spec["classes"])
model.n_features_in_ = model.coef_.shape[1]
X = np.array(spec["example"])
"""
SAVE_MLFLOW = (
    REBUILD
    + """
import mlflow.sklearn
from mlflow.models import infer_signature
mlflow.sklearn.save_model(model, sys.argv[2], signature=infer_signature(X, model.predict(X)))
"""
)
SAVE_JOBLIB = (
    REBUILD
    + """
import joblib
joblib.dump(model, sys.argv[2])
"""
)


# -- targets: one HTTP endpoint and the body it gets ------------------------------------------


@dataclass
class Target:
    name: str
    port: int
    path: str
    body: bytes
    headers: dict[str, str]
    answer: Callable[[Any], Any]  # the prediction in a response's JSON
    seq: list[float] = field(default_factory=list)
    done: dict[int, tuple[int, float]] = field(default_factory=dict)  # concurrency -> (n, s)
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def raw_request(self) -> bytes:
        head = [f"POST {self.path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                "Content-Type: application/json", f"Content-Length: {len(self.body)}"]  # fmt: skip
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + self.body

    def rate(self, concurrency: int) -> float:
        n, seconds = self.done.get(concurrency, (0, 0.0))
        return n / seconds if seconds else float("nan")


def oip_body(row: list[float]) -> bytes:
    tensor = {"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}
    return json.dumps({"inputs": [tensor]}).encode()


def oip_answer(reply: Any) -> Any:
    return reply["outputs"][0]["data"][0]


def mlflow_body(row: list[float]) -> bytes:
    return json.dumps({"inputs": [row]}).encode()


def mlflow_answer(reply: Any) -> Any:
    return reply["predictions"][0]


def check_answer(target: Target, expected: Any) -> None:
    s = session()
    r = s.post(target.url, data=target.body, headers=target_headers(target), timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"{target.name}: {r.status_code} {r.text[:300]}")
    got = target.answer(r.json())
    if got != expected:
        raise RuntimeError(f"{target.name} predicted {got!r}, the model predicts {expected!r}")


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def target_headers(target: Target) -> dict[str, str]:
    return {"Content-Type": "application/json", **target.headers}


# -- processes ------------------------------------------------------------------------------


class Processes:
    """Servers this script started, each in a process group of its own (mlflow and MLServer
    fork workers): stopped by group id at the end, SIGTERM then SIGKILL."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, label: str, cmd: list[str], env: dict[str, str], cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{label}.log", "wb")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)  # fmt: skip
        log.close()
        self.procs.append(proc)
        return proc

    def log_tail(self, label: str, lines: int = 15) -> str:
        path = self.folder / f"{label}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop_all(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(target: Target, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until the target answers 200 to its own request (a deployment may still be loading)."""
    deadline = time.monotonic() + timeout
    s = session()
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before answering ({last})")
        try:
            r = s.post(target.url, data=target.body, headers=target_headers(target), timeout=5)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:200]}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise TimeoutError(f"{target.url} not ready within {timeout:.0f}s ({last})")


def venv_python(system: str) -> tuple[Path | None, str]:
    """The venv's python with ``system`` installed (created on first use), or why not."""
    packages, check = VENVS[system]
    venv = CACHE / f"{system}-venv"
    python = venv / "bin" / "python"
    if python.exists() and _imports(python, check):
        return python, ""
    print(f"  installing {' '.join(packages)} into {venv} (first run only; minutes) ...")
    sys.stdout.flush()
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                           capture_output=True, timeout=120)  # fmt: skip
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", *packages],
                              capture_output=True, text=True, timeout=INSTALL_TIMEOUT)  # fmt: skip
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"could not create the venv: {type(exc).__name__}: {exc}"
    if done.returncode != 0 or not _imports(python, check):
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return None, f"pip install {' '.join(packages)} failed: {' | '.join(tail)[:400]}"
    return python, ""


def _imports(python: Path, check: str) -> bool:
    return subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0


def venv_env(python: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(python.parent.parent)
    return env


def start_mlflow(procs: Processes, spec_file: Path, row: list[float], workers: int) -> Target:
    python, reason = venv_python("mlflow")
    if python is None:
        raise SkipSystem(reason)
    model_dir = procs.folder / "mlflow-model"
    env = venv_env(python)
    subprocess.run([str(python), "-c", SAVE_MLFLOW, str(spec_file), str(model_dir)],
                   check=True, capture_output=True, env=env, timeout=300)  # fmt: skip
    port = free_port()
    cmd = [str(python.parent / "mlflow"), "models", "serve", "-m", str(model_dir),
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
           "--workers", str(workers)]  # fmt: skip
    proc = procs.start("mlflow", cmd, env)
    target = Target("mlflow serve", port, "/invocations", mlflow_body(row), {}, mlflow_answer)
    _ready_or_skip(procs, "mlflow", target, proc)
    return target


def start_mlserver(procs: Processes, spec_file: Path, row: list[float], workers: int) -> Target:
    python, reason = venv_python("mlserver")
    if python is None:
        raise SkipSystem(reason)
    folder = procs.folder / "mlserver"
    folder.mkdir()
    env = venv_env(python)
    subprocess.run([str(python), "-c", SAVE_JOBLIB, str(spec_file), str(folder / "model.joblib")],
                   check=True, capture_output=True, env=env, timeout=300)  # fmt: skip
    port = free_port()
    settings = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
                "host": "127.0.0.1", "parallel_workers": workers}  # fmt: skip
    (folder / "settings.json").write_text(json.dumps(settings))
    model_settings = {"name": NAME, "implementation": "mlserver_sklearn.SKLearnModel",
                      "parameters": {"uri": "./model.joblib", "version": "v1"}}  # fmt: skip
    (folder / "model-settings.json").write_text(json.dumps(model_settings))
    proc = procs.start("mlserver", [str(python.parent / "mlserver"), "start", str(folder)], env)
    path = f"/v2/models/{NAME}/infer"
    target = Target("mlserver", port, path, oip_body(row), {}, oip_answer)
    _ready_or_skip(procs, "mlserver", target, proc)
    return target


def _ready_or_skip(procs: Processes, label: str, target: Target, proc: Any) -> None:
    try:
        wait_ready(target, proc, timeout=120)
    except (RuntimeError, TimeoutError) as exc:
        raise SkipSystem(f"did not serve: {exc}; log: {procs.log_tail(label, 5)!r}") from exc


class SkipSystem(Exception):
    pass


# -- cellops ----------------------------------------------------------------------------------


@dataclass
class Cellops:
    proc: subprocess.Popen[bytes]
    port: int
    key: str
    monitoring: bool

    def targets(self, row: list[float]) -> list[Target]:
        auth = {"Authorization": f"Bearer {self.key}"}
        suffix = "" if self.monitoring else " (monitoring off)"
        return [
            Target(f"cellops OIP{suffix}", self.port, f"/v2/models/{NAME}/infer",
                   oip_body(row), auth, oip_answer),
            Target(f"cellops invocations{suffix}", self.port, f"/deployments/{NAME}/invocations",
                   mlflow_body(row), auth, mlflow_answer),
        ]  # fmt: skip


def cellops_store(folder: Path, model: Any, X: Any) -> tuple[str, str, str]:
    """A SQLite store with the model registered and deployed: (db url, artifacts, key)."""
    import hashlib

    from cellops import serialize
    from cellops.registry import signature
    from cellops_server.registry.store import Registry
    from cellops_server.schemas import DeploymentCreate, ModelVersionCreate
    from cellops_server.serving import deployments
    from cellops_server.store import Store

    url, artifacts = f"sqlite:///{folder / 'cellops.db'}", str(folder / "artifacts")
    store = Store(url, artifacts)
    try:
        registry = Registry(store)
        data = serialize.dumps(model)
        sha = hashlib.sha256(data).hexdigest()
        upload = registry.artifacts.upload(sha, len(data) + 1)
        upload.write(data)
        upload.finish()
        body = ModelVersionCreate(artifact=sha, flavor="sklearn", signature=signature(model, X[:5]))
        version = registry.create_version(NAME, body)
        create = DeploymentCreate(name=NAME, model=NAME, version=version.version)
        created = deployments.Deployments(store).create(create, "bench")
        key = created.key
    finally:
        store.close()
    return url, artifacts, key


def start_cellops(procs: Processes, db: tuple[str, str, str], workers: int, monitoring: bool,
                  row: list[float], label: str | None = None) -> Cellops:  # fmt: skip
    url, artifacts, key = db
    port = free_port()
    env = subprocess_env()
    env.update(CELLOPS_DB_URL=url, CELLOPS_ARTIFACTS=artifacts)
    cmd = [sys.executable, "-m", "cellops_server.serving", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers)]  # fmt: skip
    label = label or ("cellops" if monitoring else "cellops-nomon")
    if not monitoring:
        cmd += MONITORING_OFF_ARGS
    proc = procs.start(label, cmd, env)
    server = Cellops(proc, port, key, monitoring)
    try:
        wait_ready(server.targets(row)[0], proc, timeout=60)
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(f"cellops serving: {exc}\n{procs.log_tail(label)}") from exc
    return server


MONITORING_OFF_ARGS: list[str] = []  # set by monitoring_switch() when the router has one
SWITCHES = {"--no-monitoring": [], "--sample-rate": ["0"], "--sampling-rate": ["0"]}


def monitoring_switch() -> str | None:
    """Why there is no monitoring on/off comparison, or None when the router's command line
    has a switch (then MONITORING_OFF_ARGS turns it off)."""
    done = subprocess.run([sys.executable, "-m", "cellops_server.serving", "--help"],
                          capture_output=True, text=True, env=subprocess_env())  # fmt: skip
    for flag, value in SWITCHES.items():
        if flag in done.stdout:
            MONITORING_OFF_ARGS[:] = [flag, *value]
            return None
    return f"the serving router has none of {', '.join(SWITCHES)}"


# -- measuring --------------------------------------------------------------------------------


def sequential(target: Target, n: int) -> None:
    """One keep-alive connection of the standard library's http.client: a client that costs
    ~0.05 ms per request (requests.Session costs ~0.4 ms here, which would be measured in
    every system's p50 instead of the server)."""
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
    headers = target_headers(target)
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            conn.request("POST", target.path, body=target.body, headers=headers)
            r = conn.getresponse()
            r.read()
            times.append(time.perf_counter() - t0)
            if r.status != 200:
                target.failures[f"sequential {r.status}"] += 1
    finally:
        conn.close()
    target.seq.extend(times)


def warm_up(target: Target, n: int = 100) -> None:
    sequential(target, n)
    target.seq.clear()
    target.failures.clear()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers, body


@dataclass
class Load:
    """Outcome of one load run: successes, failures by kind, and when each kind was seen."""

    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    killed: float | None = None  # when a worker was killed (--kill-worker)
    first_ok_after: float | None = None  # the first success answered after that
    bodies: dict[str, bytes] = field(default_factory=dict)  # the first body of each failure


async def _client(target: Target, raw: bytes, stop: float, load: Load) -> None:
    writer = None
    try:
        while time.perf_counter() < stop:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
                t0 = time.perf_counter()
                writer.write(raw)
                status, headers, body = await read_response(reader)
                if headers.get("connection", "").lower() == "close":
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                load.failures[f"connection: {type(exc).__name__}"] += 1
                if writer is not None:
                    writer.close()
                writer = None
                await asyncio.sleep(0.01)
                continue
            if status == 200:
                load.ok += 1
                if load.killed is not None and load.first_ok_after is None and t0 > load.killed:
                    load.first_ok_after = time.perf_counter() - load.killed
            else:
                retry = " + Retry-After" if "retry-after" in headers else ""
                load.failures[f"{status}{retry}"] += 1
                load.bodies.setdefault(f"{status}{retry}", body[:200])
    finally:
        if writer is not None:
            writer.close()


def run_load(target: Target, concurrency: int, seconds: float, load: Load | None = None) -> Load:
    """``concurrency`` keep-alive clients sending back to back for ``seconds``."""
    load = load or Load()
    raw = target.raw_request()

    async def main() -> None:
        stop = time.perf_counter() + seconds
        clients = [_client(target, raw, stop, load) for _ in range(concurrency)]
        await asyncio.gather(*clients)

    asyncio.run(main())
    return load


def throughput(target: Target, concurrency: int, seconds: float) -> None:
    t0 = time.perf_counter()
    load = run_load(target, concurrency, seconds)
    elapsed = time.perf_counter() - t0
    n, s = target.done.get(concurrency, (0, 0.0))
    target.done[concurrency] = (n + load.ok, s + elapsed)
    target.failures.update({f"c{concurrency} {k}": v for k, v in load.failures.items()})


def raw_predict(model: Any, row: Any, n: int) -> list[float]:
    for _ in range(200):
        model.predict(row)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        model.predict(row)
        times.append(time.perf_counter() - t0)
    return times


def interleaved(targets: list[Target], rounds: int, each: Callable[[Target], None]) -> None:
    """Each target ``rounds`` times, the order rotating so no system always goes first."""
    for r in range(rounds):
        k = r % len(targets)
        for target in targets[k:] + targets[:k]:
            each(target)


# -- the kill -9 mode -------------------------------------------------------------------------

WORKER_MODULE = "cellops_server.serving.worker"


def worker_pids(router: int) -> set[int]:
    """The router's children that are inference workers (psutil if installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return {c.pid for c in psutil.Process(router).children()
                if WORKER_MODULE in " ".join(c.cmdline())}  # fmt: skip
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if int(stat.rsplit(")", 1)[1].split()[1]) == router and WORKER_MODULE in cmdline:
                found.add(int(entry.name))
    return found


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process in clock ticks (-1 when it is gone)."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1
    return int(fields[11]) + int(fields[12])


LOOK = 0.1  # seconds between two looks at the workers' CPU time
BUSY = 1  # tick (10 ms) or more in each look: answering requests (an idle process: 0)
SUSTAINED = 3  # looks in a row: longer than loading a model takes


class Watch:
    """Per worker process, its CPU ticks look by look: who is idle, who serves."""

    def __init__(self, router: int) -> None:
        self.router = router
        self.history: dict[int, list[int]] = {}

    def look(self) -> None:
        for pid in worker_pids(self.router):
            self.history.setdefault(pid, []).append(cpu_ticks(pid))

    def deltas(self, pid: int) -> list[int]:
        h = self.history.get(pid, [])
        return [b - a for a, b in itertools.pairwise(h)]

    def busiest(self, looks: int) -> int | None:
        """The worker that spent the most CPU over the last ``looks`` looks (if any did)."""
        spent = {pid: sum(self.deltas(pid)[-looks:]) for pid in self.history}
        pid = max(spent, key=spent.get, default=None)  # type: ignore[arg-type]
        return pid if pid is not None and spent[pid] >= BUSY * looks else None

    def newly_serving(self, exclude: set[int], idle_before: set[int]) -> int | None:
        """A worker that was idle for a look (a warm spare, a survivor with nothing to do,
        a started process done importing) and then busy for SUSTAINED looks in a row.
        ``idle_before``: processes seen idle before this history began (the warm spare
        takes over within milliseconds, so it may never look idle afterwards)."""
        for pid in self.history.keys() - exclude:
            d = self.deltas(pid)
            if pid in idle_before:
                d = [0, *d]
            for i, x in enumerate(d):
                if (
                    x < 1
                    and len(d) >= i + 1 + SUSTAINED
                    and all(y >= BUSY for y in d[i + 1 : i + 1 + SUSTAINED])
                ):
                    return pid
        return None


def kill_worker(server: Cellops, target: Target, before: float, after: float) -> dict[str, Any]:
    """Load at concurrency 8; after ``before`` seconds kill -9 the busiest worker; then watch
    (CPU time in /proc) for another worker to go from idle to serving: the router's warm
    spare, a restarted process or a survivor; and the clients' first 200 after the kill."""
    import threading

    load = Load()
    result: dict[str, Any] = {}
    watch = Watch(server.proc.pid)

    def killer() -> None:
        deadline = time.perf_counter() + before
        while time.perf_counter() < deadline:
            watch.look()
            time.sleep(LOOK)
        victim = watch.busiest(5)
        if victim is None:
            result["error"] = f"no worker was busy before the kill: {watch.history}"
            return
        pids = worker_pids(server.proc.pid)
        # Only a process that was not serving may count as back: the spare or a new one.
        serving_before = {p for p in pids if sum(watch.deltas(p)[-5:]) >= BUSY * 3}
        os.kill(victim, signal.SIGKILL)
        load.killed = killed = time.perf_counter()
        result.update(victim=victim, processes=len(pids))
        watch.history = {pid: [cpu_ticks(pid)] for pid in pids - {victim}}
        idle_before = pids - serving_before - {victim}
        while time.perf_counter() < killed + after:
            watch.look()
            pid = watch.newly_serving({victim} | serving_before, idle_before)
            if pid is not None:
                # It went busy SUSTAINED looks ago.
                back = time.perf_counter() - killed - SUSTAINED * LOOK
                result.update(replacement=pid, back=max(back, 0.0))
                return
            time.sleep(LOOK)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    run_load(target, 8, before + after, load=load)
    thread.join()
    result["load"] = load
    return result


# -- the run ----------------------------------------------------------------------------------


def main() -> int:
    def extra(p: Any) -> None:
        p.add_argument("--requests", type=int, default=None,
                       help="sequential requests per system (600; --quick 200)")  # fmt: skip
        p.add_argument("--duration", type=float, default=None,
                       help="seconds of load per system and concurrency (6; --quick 2)")  # fmt: skip
        p.add_argument("--workers", type=int, default=2,
                       help="worker processes of every server (cellops' default: 2)")  # fmt: skip
        p.add_argument("--skip-mlflow", action="store_true", help="leave mlflow out")
        p.add_argument("--skip-mlserver", action="store_true", help="leave MLServer out")
        p.add_argument("--verbose", action="store_true", help="print the router's log tail")
        p.add_argument("--kill-worker", action="store_true",
                       help="only the kill -9 test of a cellops worker under load")  # fmt: skip

    args = parse_args(__doc__.split("\n\n")[0], extra)
    args.requests = args.requests or (200 if args.quick else 600)
    args.duration = args.duration or (2.0 if args.quick else 6.0)
    banner("serving: one-row predictions, cellops vs mlflow vs MLServer", args,
           requests=args.requests, duration=args.duration, workers=args.workers)  # fmt: skip
    model, X = build_model()
    row = X[:1]
    expected = model.predict(row)[0].item()
    with tempfile.TemporaryDirectory(prefix="cellops-bench-serving-") as tmp:
        procs = Processes(Path(tmp))
        try:
            if args.kill_worker:
                return kill_mode(args, procs, model, X)
            return compare(args, procs, model, X, expected)
        finally:
            procs.stop_all()


def compare(args: Any, procs: Processes, model: Any, X: Any, expected: Any) -> int:
    row = X[0].tolist()
    spec_file = procs.folder / "model.json"
    spec_file.write_text(json.dumps(model_spec(model, X)))
    skipped: dict[str, str] = {}
    targets: list[Target] = []
    no_monitoring = monitoring_switch()
    try:
        db = cellops_store(procs.folder, model, X)
        targets += start_cellops(procs, db, args.workers, True, row).targets(row)
        if no_monitoring is None:
            targets += start_cellops(procs, db, args.workers, False, row).targets(row)[:1]
    except (ImportError, AttributeError) as exc:  # the serving runtime is not there yet
        skipped["cellops"] = f"serving runtime unavailable: {type(exc).__name__}: {exc}"
    for system, start, off in (("mlflow serve", start_mlflow, args.skip_mlflow),
                               ("mlserver", start_mlserver, args.skip_mlserver)):  # fmt: skip
        if off:
            skipped[system] = "--skip option"
            continue
        try:
            targets.append(start(procs, spec_file, row, args.workers))
        except (SkipSystem, subprocess.SubprocessError) as exc:
            skipped[system] = str(exc)
    for system, reason in skipped.items():
        skip(system, reason)
    for target in targets:
        check_answer(target, expected)
        warm_up(target)
    print(f"  every system predicts {expected!r} for the benchmark row; measuring ...")
    sys.stdout.flush()
    floor = raw_predict(model, X[:1], args.requests)
    rounds = 4
    interleaved(targets, rounds, lambda t: sequential(t, max(1, args.requests // rounds)))
    for c in (8, 32):
        interleaved(targets, 2, lambda t, c=c: throughput(t, c, args.duration / 2))
    return report(args, targets, floor, skipped, no_monitoring)


def report(args: Any, targets: list[Target], floor: list[float], skipped: dict[str, str],
           no_monitoring: str | None) -> int:  # fmt: skip
    by_name = {t.name: t for t in targets}
    mlflow = by_name.get("mlflow serve")
    base50 = percentile(floor, 50)
    rows = [["raw predict (floor)", len(floor), ms(base50), ms(percentile(floor, 99)), 1.0,
             float("nan"), float("nan"), float("nan")]]  # fmt: skip
    for t in targets:
        vs = t.rate(32) / mlflow.rate(32) if mlflow else float("nan")
        rows.append([t.name, len(t.seq), ms(percentile(t.seq, 50)), ms(percentile(t.seq, 99)),
                     percentile(t.seq, 50) / base50, t.rate(8), t.rate(32), vs])  # fmt: skip
    print()
    print_table(["one-row predict", "n", "p50 ms", "p99 ms", "p50 / floor", "req/s c=8",
                 "req/s c=32", "c=32 / mlflow"], rows)  # fmt: skip
    for name, reason in skipped.items():
        print(f"  {name}: skipped ({reason[:200]})")
    failed = {t.name: dict(t.failures) for t in targets if t.failures}
    if failed:
        print(f"  failed requests: {failed}")
    oip, invocations = by_name.get("cellops OIP"), by_name.get("cellops invocations")
    if oip is None or invocations is None:
        print("GOALS: n/a (cellops skipped)")
        return exit_code(args, [False])
    met = [goal("cellops OIP p50 sequential", ms(percentile(oip.seq, 50)), "<=", P50_GOAL_MS,
                " ms")]  # fmt: skip
    met.append(goal("cellops invocations p50 sequential", ms(percentile(invocations.seq, 50)),
                    "<=", P50_GOAL_MS, " ms"))  # fmt: skip
    if mlflow:
        met.append(goal("cellops OIP / mlflow serve, req/s at c=32",
                        oip.rate(32) / mlflow.rate(32), ">=", MLFLOW_RATIO_GOAL, "x"))  # fmt: skip
        met.append(goal("cellops invocations / mlflow serve, req/s at c=32",
                        invocations.rate(32) / mlflow.rate(32), ">=", MLFLOW_RATIO_GOAL, "x"))  # fmt: skip
    else:
        print("GOAL throughput >= 3x mlflow serve: n/a (mlflow serve skipped)")
    off = by_name.get("cellops OIP (monitoring off)")
    if off is not None:
        loss = 1 - oip.rate(32) / off.rate(32)
        met.append(goal("throughput lost to monitoring at c=32", 100 * loss, "<=",
                        100 * MONITORING_GOAL, " %"))  # fmt: skip
    else:
        print(f"GOAL monitoring within 10 %: n/a ({no_monitoring})")
    met.append(goal("failed requests", sum(sum(t.failures.values()) for t in targets), "<=", 0))
    return exit_code(args, met)


def kill_mode(args: Any, procs: Processes, model: Any, X: Any) -> int:
    """kill -9 under load, with --workers workers (the others go on serving) and with one
    (every request waits for the replacement: the clients see when it serves)."""
    row = X[0].tolist()
    db = cellops_store(procs.folder, model, X)
    after = max(args.duration, 8.0)
    met = []
    for workers in sorted({args.workers, 1}, reverse=True):
        label = f"cellops-{workers}w"
        server = start_cellops(procs, db, workers, True, row, label=label)
        target = server.targets(row)[0]
        warm_up(target)
        result = kill_worker(server, target, 2.0, after)
        if "error" in result:
            raise RuntimeError(result["error"])
        load: Load = result["load"]
        print(f"\n{workers} worker(s) ({result['processes']} worker processes with the spare): kill -9 the busiest "
              f"(pid {result['victim']}) under load (c=8, 2 s before, {after:.0f} s after)")  # fmt: skip
        rows = [["200", load.ok]] + [[kind, n] for kind, n in sorted(load.failures.items())]
        print_table(["outcome", "requests"], rows)
        for kind, body in load.bodies.items():
            print(f"  {kind}: {body.decode(errors='replace')}")
        back = result.get("back", float("inf"))
        print(f"  a worker idle before serves (pid "
              f"{result.get('replacement', 'none seen')}) after {back:.2f} s; first request "
              f"answered 200 after the kill: {_secs(load.first_ok_after)}")  # fmt: skip
        bad = sum(n for kind, n in load.failures.items() if kind != "503 + Retry-After")
        met.append(goal(f"{workers} worker(s): failures other than 503 + Retry-After", bad,
                        "<=", 0))  # fmt: skip
        met.append(goal(f"{workers} worker(s): seconds until another worker serves", back,
                        "<=", BACK_GOAL_S, " s"))  # fmt: skip
        if not met[-1] or not met[-2] or args.verbose:
            print(
                "  router log (last lines):\n    "
                + procs.log_tail(label, 12).replace("\n", "\n    ")
            )
    return exit_code(args, met)


def _secs(value: float | None) -> str:
    return "none" if value is None else f"{value:.3f} s"


if __name__ == "__main__":
    sys.exit(main())
