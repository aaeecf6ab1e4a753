"""Shared helpers for the cellops benchmarks: paths, timing, percentiles, tables,
fresh PostgreSQL databases and subprocess lifecycle.

Every benchmark is a plain script (``python benchmarks/<name>.py [--quick]``); importing
this module puts the checkout's ``server``, ``widgets`` and ``tests`` folders on
``sys.path`` so nothing needs to be pip-installed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _folder in ("tests", "widgets", "server"):  # server ends up first on sys.path
    _p = str(REPO / _folder)
    if _p not in sys.path:
        sys.path.insert(0, _p)

from support import wait_http  # noqa: E402 - the tests' helper, from the path set above

__all__ = ["wait_http"]  # re-exported for the scripts

PG_ADMIN_URL = os.environ.get("CELLOPS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def subprocess_env() -> dict[str, str]:
    """The environment for child processes (jupyter, cellops serve): the checkout on PYTHONPATH."""
    env = dict(os.environ)
    parts = [str(REPO / f) for f in ("server", "widgets", "tests")]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.pop("CELLOPS_DB_URL", None)
    env.pop("CELLOPS_BACKEND_URL", None)
    return env


# -- arguments and reporting --------------------------------------------------------------


def parse_args(
    description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke test (under ~60 s)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a goal is not met"
    )
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def banner(title: str, args: argparse.Namespace, **sizes: Any) -> None:
    mode = "quick" if getattr(args, "quick", False) else "full"
    print(f"== {title} ({mode}) ==")
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} cpus, load avg {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    if sizes:
        print("  " + ", ".join(f"{k}={v}" for k, v in sizes.items()))
    sys.stdout.flush()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=False))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))
    sys.stdout.flush()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def goal(label: str, value: float, op: str, target: float, unit: str = "") -> bool:
    """Print one goal line; answer whether it was met."""
    met = value <= target if op == "<=" else value >= target
    print(
        f"GOAL {label}: {_fmt(value)}{unit} {op} {_fmt(target)}{unit} -> "
        f"{'MET' if met else 'NOT MET'}"
    )
    sys.stdout.flush()
    return met


def exit_code(args: argparse.Namespace, goals_met: Sequence[bool]) -> int:
    """0 unless --strict was given and a goal was missed (the figures are noisy)."""
    return 1 if getattr(args, "strict", False) and not all(goals_met) else 0


def skip(label: str, reason: str) -> None:
    print(f"SKIP {label}: {reason}")
    sys.stdout.flush()


# -- timing and statistics ------------------------------------------------------------------


def now() -> float:
    return time.perf_counter()


def cpu_now() -> float:
    """CPU time of this process (all threads): not inflated by other processes' load."""
    return time.process_time()


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return float(xs[lo])
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> float:
    return seconds * 1000.0


def time_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call took, and its result."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic GC during a measured stretch (collect first so the pause is fair to all)."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# -- databases -------------------------------------------------------------------------------


class PostgresUnavailable(RuntimeError):
    pass


def postgres_reason() -> str | None:
    """None if PostgreSQL can be used for a benchmark, else why not."""
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg is not installed ({exc})"
    try:
        with psycopg.connect(_libpq(PG_ADMIN_URL), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"cannot connect to {PG_ADMIN_URL}: {type(exc).__name__}: {str(exc).strip()[:200]}"
    return None


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextlib.contextmanager
def fresh_postgres_db(prefix: str = "cellops_bench") -> Iterator[str]:
    """Create an empty database, yield its SQLAlchemy URL, drop it afterwards (even on error)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True, connect_timeout=3)
    except Exception as exc:
        raise PostgresUnavailable(str(exc)) from exc
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        try:
            yield f"{base}/{name}"
        finally:
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        admin.close()


def sqlite_url(folder: Path, name: str = "bench.db") -> str:
    return f"sqlite:///{folder / name}"


# -- processes and ports -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(
    proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, timeout: float = 15.0
) -> None:
    """Stop one child we started, by its pid: a polite signal, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def team_backend(
    url: str, folder: Path, *extra_args: str
) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """`cellops serve` on ``url`` with an admin "bench"; answers (its base URL, the admin's
    token, the process) once it answers, and stops it afterwards (log in folder/serve.log)."""
    from cellops_server.store import create_engine, migrate
    from cellops_server.team.users import add_user

    engine = create_engine(url)
    migrate(engine)
    token = add_user(engine, "bench", "admin")
    engine.dispose()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "cellops_server.cli", "serve", "--db", url,
           "--artifacts", str(folder / "artifacts"), "--port", str(port), *extra_args]  # fmt: skip
    with open(folder / "serve.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=subprocess_env())
        try:
            wait_http(f"{base}/cellops/api/v1/status", timeout=30)
            yield base, token, proc
        finally:
            stop_process(proc)


def stop_jupyter(server: Any, kernel_ids: Sequence[str] = ()) -> None:
    """Stop a ``tests.support.JupyterServer``: shut its kernels down through its REST API,
    then SIGTERM the server process (its own handler shuts everything down cleanly).

    ``JupyterServer.stop()`` is not used because it ends kernels with ``pkill -f``.
    """
    for kid in kernel_ids:
        with contextlib.suppress(Exception):
            server.api.request("DELETE", f"api/kernels/{kid}")
    stop_process(server.proc, signal.SIGTERM, timeout=20)
    log = getattr(server, "_log", None)
    if log is not None:
        with contextlib.suppress(Exception):
            log.close()


# -- realistic tap records ----------------------------------------------------------------------

CELLS = 30
EDIT_SHARE = 0.10


def iter_records(
    n: int, notebook: str, seed: int, run_every: int | None = None, edit_share: float = EDIT_SHARE
) -> Iterator[dict[str, Any]]:
    """Records as the tap writes them into the spool: a run record, then n execution
    records on a notebook of 30 cells (short code, a small stdout stream, status ok, ISO
    timestamps). A share ``edit_share`` of executions edits its cell's code, so notebook
    versions get created. With ``run_every``, a new run (kernel restart) starts every
    that many executions."""
    rng = random.Random(seed)
    t = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc) + timedelta(days=seed)
    cells = [f"c{seed}-{i:02d}-{rng.getrandbits(32):08x}" for i in range(CELLS)]
    code = {
        c: f"df_{i} = load_part({i})\nsummary_{i} = df_{i}.describe()\nprint(len(df_{i}))"
        for i, c in enumerate(cells)
    }
    run_key, seq = "", 0
    for i in range(n):
        if i == 0 or (run_every and i % run_every == 0):
            run_key, seq = f"run-{seed}-{rng.getrandbits(64):016x}", 0
            yield {
                "kind": "run", "key": run_key, "notebook": notebook,
                "kernel_id": f"k-{seed}-{i}", "kernel_session": f"s-{seed}-{i}", "user": "bench",
                "started_at": t.isoformat(),
                "kernel_spec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "source": "bench-source", "instance": "bench-instance",
            }  # fmt: skip
        # Mostly top-to-bottom passes, sometimes a re-run of an earlier cell.
        idx = i % CELLS if rng.random() < 0.7 else rng.randrange(CELLS)
        cell = cells[idx]
        if i >= CELLS and rng.random() < edit_share:
            code[cell] = f"{code[cell].split('  # rev')[0]}  # rev {i}"
        started = t + timedelta(milliseconds=rng.randint(300, 3000))
        finished = started + timedelta(milliseconds=rng.randint(2, 400))
        t = finished
        seq += 1
        yield {
            "kind": "execution",
            "msg_id": f"{seed:02d}{rng.getrandbits(120):030x}",
            "run_key": run_key,
            "notebook": notebook,
            "seq": seq,
            "cell_id": cell,
            "code": code[cell],
            "deleted_cells": [],
            "status": "ok",
            "started_at": started.isoformat(),
            "finished_at": finished.isoformat(),
            "execution_count": seq,
            "error": None,
            "outputs": [
                {"output_type": "stream", "name": "stdout", "text": f"{rng.randint(1, 10**6)}\n"}
            ],
        }


def make_records(n: int, notebook: str, seed: int) -> tuple[list[dict[str, Any]], int]:
    """One run record and n execution records (a list), and how many code edits they hold
    (executions whose cell was run before with different code)."""
    records = list(iter_records(n, notebook, seed))
    last: dict[str, str] = {}
    edits = 0
    for r in records:
        if r["kind"] == "execution":
            cid = r["cell_id"]
            edits += cid in last and last[cid] != r["code"]
            last[cid] = r["code"]
    return records, edits
