"""Long polls held by a team backend: does `/status` stay fast while 200 sidebars wait?

Starts ``cellops serve`` on a fresh PostgreSQL database (LISTEN/NOTIFY on, as a replica
runs), then:

1. ``idle``: GET /cellops/api/v1/status N times on one keep-alive connection, with a
   personal token (each request looks the token up in the database);
2. ``200 polls``: holds P concurrent long polls on GET /events (each re-polls when
   answered, as a sidebar does) and measures /status the same way;
3. fan-out: one model registration; the time until every held poll is answered (which also
   proves all P were held by the server).

Goal: /status p50 under load <= 2x idle; every poll woken.

    python benchmarks/longpolls.py [--quick] [--polls 200] [-n 300]
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: F401  (puts server/, widgets/, tests/ on sys.path)
import requests
from common import (
    banner,
    exit_code,
    fresh_postgres_db,
    goal,
    ms,
    percentile,
    postgres_reason,
    print_table,
    skip,
    team_backend,
)

API = "/cellops/api/v1"
RATIO_GOAL = 2.0
POLL_WAIT = 25  # seconds a poll is held (the server's maximum)


def main() -> int:
    def extra(p: Any) -> None:
        p.add_argument("--polls", type=int, default=200, help="concurrent long polls (200)")
        p.add_argument("-n", type=int, default=None, help="/status requests per phase (300)")

    args = parse(extra)
    n = args.n or (100 if args.quick else 300)
    banner("long polls: /status latency with concurrent GET /events", args, polls=args.polls, n=n)
    reason = postgres_reason()
    if reason is not None:
        skip("postgresql", reason)
        return 0
    with (
        tempfile.TemporaryDirectory(prefix="cellops-bench-polls-") as tmp,
        fresh_postgres_db() as url,
    ):
        return run(args, url, Path(tmp), n)


def parse(extra: Any) -> Any:
    from common import parse_args

    return parse_args(__doc__.split("\n\n")[0], extra)


def run(args: Any, url: str, folder: Path, n: int) -> int:
    with team_backend(url, folder) as (base, token, _):
        headers = {"Authorization": f"token {token}"}
        idle = status_times(base, headers, n)
        polls = Polls(base, headers, args.polls)
        polls.start()
        polls.wait_sent()
        time.sleep(1.0)  # let the server take every poll in (token lookups done)
        loaded = status_times(base, headers, n)
        woken_in = polls.fan_out(lambda: register(base, headers))
        answered, errors = polls.stop()
    rows = [
        ["idle", len(idle), ms(percentile(idle, 50)), ms(percentile(idle, 90)),
         ms(percentile(idle, 99))],
        [f"{args.polls} polls held", len(loaded), ms(percentile(loaded, 50)),
         ms(percentile(loaded, 90)), ms(percentile(loaded, 99))],
    ]  # fmt: skip
    print()
    print_table(["/status", "n", "p50 ms", "p90 ms", "p99 ms"], rows)
    ratio = percentile(loaded, 50) / percentile(idle, 50)
    print(f"\nratio of medians (loaded / idle): {ratio:.2f}")
    print(
        f"one model registration (answered in {ms(polls.written_in):.1f} ms) woke {answered} "
        f"of {args.polls} held polls in {ms(woken_in):.1f} ms"
    )
    if errors:
        print(f"poll errors: {errors[:5]}")
    met = [
        goal("/status p50 under load / idle", ratio, "<=", RATIO_GOAL, "x"),
        goal("held polls woken by one event", answered, ">=", args.polls),
        goal("poll errors", len(errors), "<=", 0),
    ]
    return exit_code(args, met)


def status_times(base: str, headers: dict[str, str], n: int) -> list[float]:
    session = requests.Session()
    session.trust_env = False
    for _ in range(10):  # warm-up: connection, pool, caches
        session.get(f"{base}{API}/status", headers=headers).raise_for_status()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = session.get(f"{base}{API}/status", headers=headers)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
    return times


def register(base: str, headers: dict[str, str]) -> None:
    data = uuid.uuid4().bytes
    sha = hashlib.sha256(data).hexdigest()
    s = requests.Session()
    s.trust_env = False
    s.put(f"{base}{API}/artifacts/{sha}", data=data, headers=headers).raise_for_status()
    body = {"artifact": sha, "flavor": "sklearn"}
    s.post(f"{base}{API}/models/bench/versions", json=body, headers=headers).raise_for_status()


class Polls:
    """``count`` long polls held on their own event loop (a thread), re-polling when answered."""

    def __init__(self, base: str, headers: dict[str, str], count: int) -> None:
        self.base, self.headers, self.count = base, headers, count
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.sent = threading.Event()
        self.errors: list[str] = []
        self.woken: set[int] = set()
        self.armed = threading.Event()  # counting wake-ups only after the fan-out event
        self.all_woken = threading.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()

    async def _start(self) -> None:
        self.last = requests.get(f"{self.base}{API}/events", headers=self.headers).json()["last"]
        self.started = 0
        self.tasks = [asyncio.ensure_future(self._poll(i)) for i in range(self.count)]

    def wait_sent(self) -> None:
        self.sent.wait(30)

    async def _poll(self, i: int) -> None:
        """One sidebar: a keep-alive connection of its own, polling again when answered.
        (Plain asyncio streams: a client library's pool would time itself, not the server.)"""
        host, port = self.base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        auth = self.headers["Authorization"]
        after = self.last
        try:
            while True:
                path = f"{API}/events?after={after}&timeout={POLL_WAIT}"
                request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\r\n"
                writer.write(request.encode())
                await writer.drain()
                self.started += 1
                if self.started >= self.count:
                    self.sent.set()
                status, body = await read_response(reader)
                if status != 200:
                    self.errors.append(f"{status}: {body[:200]!r}")
                    return
                reply = json.loads(body)
                if reply["events"] and self.armed.is_set():
                    self.woken.add(i)
                    if len(self.woken) >= self.count:
                        self.all_woken.set()
                after = reply["last"]
        finally:
            writer.close()

    def fan_out(self, write: Any) -> float:
        """Write once; the time until every poll was answered."""
        self.armed.set()
        t0 = time.perf_counter()
        write()
        self.written_in = time.perf_counter() - t0
        self.all_woken.wait(10)
        return time.perf_counter() - t0

    def stop(self) -> tuple[int, list[str]]:
        async def cancel() -> None:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        return len(self.woken), self.errors


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return int(lines[0].split()[1]), await reader.readexactly(length)


if __name__ == "__main__":
    sys.exit(main())
