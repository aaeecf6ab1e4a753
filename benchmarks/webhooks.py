"""Webhook fan-out: 1,000 events delivered to 3 receivers, and what it costs the action.

`cellops serve` on a fresh PostgreSQL database (or SQLite with ``--sqlite``), private targets
allowed (the receivers are on loopback), three real HTTP receivers
(tests/webhook_receiving.py) in a process of their own (their threads must not compete with
the client timing the moves for one interpreter). The events are alias moves (`PUT /models/m/aliases/a`, moving
between two versions), sent one after another by one client, in blocks that alternate:
a block with the 3 webhooks registered, then a block with none (the webhooks deleted once
the receivers had every delivery of the block), and so on. So the alias-move timings with
and without webhooks come from the same run, interleaved.

Delivery latency: from the event's ``at`` (when the backend recorded it, in the body) to
its arrival at a receiver (same machine, same clock), over all 3 x N deliveries.

Receivers stand for the team's own services, which run on other machines; here they share
the 2 cores with the backend and the client timing it, so by default their process runs at
a lower priority (``--receivers-nice 10``) and the ratio measures what cellops costs the
action, not what a co-located receiver costs; ``--receivers-nice 0`` runs them at full
priority. (The backend's webhook process runs at niceness 10 itself: background work.)

Goals (issue 13): delivery p50 ≤ 100 ms; p50 alias move with webhooks ≤ 1.1x without.

    python benchmarks/webhooks.py [--quick] [--strict] [-n N] [--block B] [--sqlite]
                                  [--receivers-nice N]
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: F401  (puts server/, widgets/, tests/ on sys.path)
import requests
from cellops_server.webhooks.signing import verify
from common import (
    banner,
    exit_code,
    fresh_postgres_db,
    goal,
    median,
    ms,
    parse_args,
    percentile,
    postgres_reason,
    print_table,
    skip,
    sqlite_url,
    team_backend,
)
from webhook_receiving import Receiver  # tests/

API = "/cellops/api/v1"
SECRET = "bench-secret"
RECEIVERS = 3
P50_GOAL_MS = 100.0
RATIO_GOAL = 1.10
MODEL = "fanout"


def main() -> int:
    def extra(p: Any) -> None:
        p.add_argument("-n", type=int, default=None, help="events delivered (1000)")
        p.add_argument("--block", type=int, default=50, help="alias moves per block (50)")
        p.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
        p.add_argument(
            "--receivers-nice", type=int, default=10, help="the receivers' niceness (10)"
        )

    args = parse_args(__doc__.split("\n\n")[0], extra)
    n = args.n or (200 if args.quick else 1000)
    store = "sqlite" if args.sqlite else "postgresql"
    banner(
        "webhook fan-out",
        args,
        events=n,
        receivers=RECEIVERS,
        block=args.block,
        store=store,
        receivers_nice=args.receivers_nice,
    )
    with tempfile.TemporaryDirectory(prefix="cellops-bench-webhooks-") as tmp:
        if args.sqlite:
            return run(args, sqlite_url(Path(tmp)), Path(tmp), n)
        reason = postgres_reason()
        if reason is not None:
            skip("postgresql", reason)
            return 0
        with fresh_postgres_db() as url:
            return run(args, url, Path(tmp), n)


def run(args: Any, url: str, folder: Path, n: int) -> int:
    receivers = Receivers(RECEIVERS, args.receivers_nice)
    try:
        with team_backend(url, folder, "--webhook-allow-private-targets") as (root, token, proc):
            base = f"{root}{API}"
            session = requests.Session()
            session.headers["Authorization"] = f"token {token}"
            setup(session, base)
            cpu = {"with": 0.0, "without": 0.0}
            with_hooks, without, latencies = measure(
                session, base, receivers, n, args.block, proc.pid, cpu
            )
    finally:
        receivers.close()
    return report(args, with_hooks, without, latencies, n, cpu)


def setup(session: requests.Session, base: str) -> None:
    import hashlib

    artifact = b"webhook fan-out model"
    sha = hashlib.sha256(artifact).hexdigest()
    r = session.put(f"{base}/artifacts/{sha}", data=artifact)
    assert r.status_code in (200, 201), r.text
    for _ in range(2):
        r = session.post(
            f"{base}/models/{MODEL}/versions", json={"artifact": sha, "flavor": "bytes"}
        )
        assert r.status_code == 201, r.text
    for i in range(20):  # warm-up: connections, caches, the dispatcher's first looks
        move(session, base, i)


def move(session: requests.Session, base: str, i: int) -> float:
    """Move the alias to the other version; answer the request's wall time."""
    started = time.perf_counter()
    r = session.put(f"{base}/models/{MODEL}/aliases/live", json={"version": 1 + i % 2})
    took = time.perf_counter() - started
    assert r.status_code == 200, r.text
    return took


def measure(
    session: requests.Session,
    base: str,
    receivers: Receivers,
    n: int,
    block: int,
    pid: int,
    cpu: dict[str, float],
) -> tuple[list[float], list[float], list[float]]:
    """Alternate blocks with and without webhooks until ``n`` events were delivered to
    each receiver; answer (move times with, move times without, delivery latencies). ``cpu``
    gets the backend's CPU seconds in each kind of block (with: until all were delivered)."""
    with_hooks: list[float] = []
    without: list[float] = []
    i = 0
    delivered = 0
    first = True
    while delivered < n:
        size = min(block, n - delivered)
        if not first:  # the blocks without webhooks: as many moves, alternating order
            before = cpu_of(pid)
            for _ in range(size):
                without.append(move(session, base, i))
                i += 1
            cpu["without"] += cpu_of(pid) - before
        hooks = [register(session, base, url) for url in receivers.urls]
        before = cpu_of(pid)
        for _ in range(size):
            with_hooks.append(move(session, base, i))
            i += 1
        delivered += size
        receivers.wait_for(delivered)
        cpu["with"] += cpu_of(pid) - before
        for hook in hooks:
            assert session.delete(f"{base}/webhooks/{hook}").status_code == 204
        if first:
            before = cpu_of(pid)
            for _ in range(size):
                without.append(move(session, base, i))
                i += 1
            cpu["without"] += cpu_of(pid) - before
            first = False
    received = receivers.dump()
    latencies = [
        at - datetime.fromisoformat(json.loads(body)["at"].replace("Z", "+00:00")).timestamp()
        for at, body, _ in received
    ]
    bad = [
        h
        for _, body, h in received
        if not verify(SECRET, h["X-Cellops-Timestamp"], body, h["X-Cellops-Signature"])
    ]
    assert not bad, f"{len(bad)} deliveries with a bad signature"
    return with_hooks, without, latencies


class Receivers:
    """``count`` receivers served by a child process, asked over a pipe."""

    def __init__(self, count: int, nice: int) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.proc = multiprocessing.get_context("spawn").Process(
            target=_serve_receivers, args=(child, count, nice), daemon=True
        )
        self.proc.start()
        self.urls: list[str] = self.conn.recv()

    def wait_for(self, each: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.conn.send("counts")
            counts = self.conn.recv()
            if min(counts) >= each:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"receivers got {counts}, expected {each} each")
            time.sleep(0.02)

    def dump(self) -> list[tuple[float, str, dict[str, str]]]:
        self.conn.send("dump")
        return self.conn.recv()

    def close(self) -> None:
        if self.proc.is_alive():
            self.conn.send("stop")
            self.proc.join(10)


def _serve_receivers(conn: Any, count: int, nice: int) -> None:
    os.nice(nice)
    receivers = [Receiver().__enter__() for _ in range(count)]
    conn.send([r.url for r in receivers])
    while (command := conn.recv()) != "stop":
        if command == "counts":
            conn.send([len(r.requests) for r in receivers])
        else:
            conn.send([(q.at, q.body, q.headers) for r in receivers for q in r.requests])
    for r in receivers:
        r.close()


def register(session: requests.Session, base: str, url: str) -> int:
    body = {"url": url, "events": ["alias.moved"], "secret": SECRET}
    r = session.post(f"{base}/webhooks", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(
    args: Any,
    with_hooks: list[float],
    without: list[float],
    latencies: list[float],
    n: int,
    cpu: dict[str, float],
) -> int:
    print_table(
        ["alias move", "n", "p50 ms", "p95 ms", "p99 ms", "backend CPU ms / move"],
        [
            [
                label,
                len(times),
                ms(percentile(times, 50)),
                ms(percentile(times, 95)),
                ms(percentile(times, 99)),
                ms(cpu[kind] / len(times)),
            ]
            for label, kind, times in (
                ("no webhooks", "without", without),
                ("3 webhooks", "with", with_hooks),
            )
        ],
    )
    print_table(
        ["delivery latency", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        [
            [
                "event at → received",
                len(latencies),
                ms(percentile(latencies, 50)),
                ms(percentile(latencies, 95)),
                ms(percentile(latencies, 99)),
                ms(max(latencies)),
            ]
        ],
    )
    ratio = median(with_hooks) / median(without)
    met = [
        goal("deliveries", len(latencies), ">=", RECEIVERS * n),
        goal("delivery latency p50", ms(percentile(latencies, 50)), "<=", P50_GOAL_MS, " ms"),
        goal("alias move p50 with / without webhooks", ratio, "<=", RATIO_GOAL, "x"),
    ]
    return exit_code(args, met)


if __name__ == "__main__":
    sys.exit(main())
