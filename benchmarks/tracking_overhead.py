"""What the cellops kernel-websocket tap adds to a cell's round trip.

Two real ``jupyter server`` processes, one with the cellops extension (the tap, the
spool and the background writer into the embedded SQLite store) and one without it
(the baseline), one kernel each. A browser-like client sends a trivial
``execute_request`` (``pass``) over the v1 kernel websocket and waits for the reply
and ``idle``. After a warm-up, batches alternate between the two servers (the order
flips every round) and the p50/p99 round trip of each is reported.

It is measured twice, interleaved: with the client re-arming TCP_QUICKACK before each
read (the headline: what the servers spend) and with plain sockets. Jupyter's kernel
websocket does not set TCP_NODELAY, so with plain sockets the second small frame of
a reply waits for the client's delayed ACK and every round trip sits on a ~40 ms
floor that hides the tap's cost.

Goal: tap / no-tap p50 ratio <= 1.05.

    python benchmarks/tracking_overhead.py [--quick]
"""

from __future__ import annotations

import contextlib
import socket
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: F401  (puts server/, widgets/, tests/ on sys.path)
from common import (
    banner,
    exit_code,
    gc_paused,
    goal,
    median,
    ms,
    now,
    parse_args,
    percentile,
    print_table,
    stop_jupyter,
    subprocess_env,
)

NOTEBOOK = "bench.ipynb"
CELL_ID = "bench-cell-0001"
GOAL_RATIO = 1.05


MODES = {
    # The headline: the client acknowledges every TCP segment at once (TCP_QUICKACK before
    # each read), so the figure is what the servers spend, not what Nagle's algorithm waits.
    "quickack": "client acks at once (server cost)",
    # Plain sockets, as the tests' client (and a browser) has them: Jupyter's kernel
    # websocket does not set TCP_NODELAY, so a second small frame waits for the client's
    # delayed ACK (~40 ms on Linux) and every round trip has a ~40 ms floor.
    "default": "default sockets (~40 ms Nagle floor)",
}


def main() -> int:
    def extra(p) -> None:
        p.add_argument(
            "--diagnose",
            action="store_true",
            help="also run two tapped servers that isolate the cost: tracking disabled "
            "(decode only), and the writer process polling every 2 s instead of 0.2 s",
        )

    args = parse_args(__doc__.split("\n\n")[0], extra)
    warmup = 30 if args.quick else 50
    rounds = 4 if args.quick else 10
    batches = {"quickack": 50, "default": 20} if args.quick else {"quickack": 100, "default": 40}
    banner(
        "tracking overhead: execute_request round trip, tap vs no tap",
        args,
        warmup=warmup,
        rounds=rounds,
        **{f"batch_{m}": b for m, b in batches.items()},
    )

    from support import JupyterServer  # tests/support.py

    tmp = tempfile.TemporaryDirectory(prefix="cellops-bench-overhead-")
    # name -> (cellops extension on, extra server args, extra environment)
    variants: dict[str, tuple[bool, list[str], dict[str, str]]] = {
        "tap (cellops)": (True, [], {}),
        "no tap (baseline)": (False, [], {}),
    }
    if args.diagnose:
        variants["tap, tracking disabled"] = (True, ["--CellopsConfig.enabled=False"], {})
        variants["tap, writer polling every 2 s"] = (
            True,
            ["--CellopsConfig.writer_interval=2.0"],
            {},
        )
    servers: dict[str, JupyterServer] = {}
    kernels: dict[str, str] = {}
    clients = {}
    try:
        for i, (name, (tracked, extra_args, env)) in enumerate(variants.items()):
            folder = Path(tmp.name) / f"server-{i}"
            folder.mkdir()
            server = JupyterServer(
                folder, cellops=tracked, env={**_env(), **env}, extra_args=extra_args
            )
            servers[name] = server.start()
            kernels[name] = server.new_session(NOTEBOOK)
            clients[name] = _with_quickack_switch(server.connect(kernels[name]))
        print(f"servers up: {', '.join(f'{n} {s.url}' for n, s in servers.items())}")

        for client in clients.values():
            for mode in ("quickack", "default"):
                client.quickack = mode == "quickack"
                for _ in range(warmup // 2):
                    _roundtrip(client)

        order = list(variants)
        samples = {(m, v): [] for m in MODES for v in order}
        batch_p50 = {(m, v): [] for m in MODES for v in order}
        for r in range(rounds):
            for mode in MODES:
                for name in order if r % 2 == 0 else order[::-1]:
                    client = clients[name]
                    client.quickack = mode == "quickack"
                    with gc_paused():
                        times = [_roundtrip(client) for _ in range(batches[mode])]
                    samples[mode, name].extend(times)
                    batch_p50[mode, name].append(median(times))

        tap, base = order[:2]
        ratios = {}
        for mode, title in MODES.items():
            print()
            print(f"-- {title} --")
            rows = []
            for name in order:
                xs = samples[mode, name]
                rows.append(
                    [
                        name,
                        len(xs),
                        ms(percentile(xs, 50)),
                        ms(percentile(xs, 90)),
                        ms(percentile(xs, 99)),
                        ms(median(batch_p50[mode, name])),
                        ms(max(xs)),
                    ]
                )
            a, b = samples[mode, tap], samples[mode, base]
            p50_ratio = percentile(a, 50) / percentile(b, 50)
            p99_ratio = percentile(a, 99) / percentile(b, 99)
            rows.append(
                [
                    "ratio tap/no-tap",
                    "",
                    p50_ratio,
                    percentile(a, 90) / percentile(b, 90),
                    p99_ratio,
                    "",
                    "",
                ]
            )
            for name in order[2:]:
                xs = samples[mode, name]
                rows.append(
                    [
                        f"  ratio {name}/no-tap",
                        "",
                        percentile(xs, 50) / percentile(samples[mode, base], 50),
                        percentile(xs, 90) / percentile(samples[mode, base], 90),
                        percentile(xs, 99) / percentile(samples[mode, base], 99),
                        "",
                        "",
                    ]
                )
            print_table(
                ["variant", "n", "p50 ms", "p90 ms", "p99 ms", "median batch p50 ms", "max ms"],
                rows,
            )
            per_round = [
                x / y for x, y in zip(batch_p50[mode, tap], batch_p50[mode, base], strict=False)
            ]
            print(
                f"per-round p50 ratios: min {min(per_round):.3f}, median {median(per_round):.3f}, "
                f"max {max(per_round):.3f}; p50 added by the tap: "
                f"{ms(percentile(a, 50) - percentile(b, 50)):.3f} ms"
            )
            ratios[mode] = p50_ratio

        # The tracked server must really have recorded every execution (the writer is
        # asynchronous, so poll), and the baseline server must really have no tap.
        executed = warmup // 2 * 2 + rounds * sum(batches.values())
        tracked = servers[tap]
        body = tracked.api.wait_for(
            "notebooks",
            lambda b: any(
                n["path"] == NOTEBOOK and n["executions"] >= executed for n in b["items"]
            ),
            timeout=60,
        )
        nb = next(n for n in body["items"] if n["path"] == NOTEBOOK)
        status = tracked.api.cellops("status")
        print()
        print(
            f"recorded by the tap: notebook {nb['path']!r} has {nb['executions']} executions "
            f"(sent {executed}), {nb['runs']} run(s), {nb['versions']} version(s); "
            f"spool pending {status.get('spool_pending')}, last error {status.get('last_error')}"
        )
        assert nb["executions"] == executed, (nb, executed)
        untracked = servers[base].api.request("GET", "cellops/api/v1/status")
        print(
            f"baseline server has no cellops API (GET /cellops/api/v1/status -> {untracked.status_code})"
        )
        assert untracked.status_code == 404, untracked.status_code

        print()
        met = goal(
            "tap/no-tap p50 ratio, client acks at once (headline)",
            ratios["quickack"],
            "<=",
            GOAL_RATIO,
        )
        goal(
            "tap/no-tap p50 ratio, default sockets (40 ms floor hides cost)",
            ratios["default"],
            "<=",
            GOAL_RATIO,
        )
        return exit_code(args, [met])
    finally:
        for client in clients.values():
            with contextlib.suppress(Exception):
                client.close()
        for name, server in servers.items():
            stop_jupyter(server, [kernels[name]] if name in kernels else [])
        tmp.cleanup()


def _with_quickack_switch(client):
    """Make ``client.recv`` re-arm TCP_QUICKACK before each read while ``client.quickack``."""
    sock = client.ws.sock
    plain_recv = client.recv
    client.quickack = False
    quickack = getattr(socket, "TCP_QUICKACK", None)  # Linux only

    def recv():
        if client.quickack and quickack is not None:
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        return plain_recv()

    client.recv = recv
    return client


def _roundtrip(client) -> float:
    t0 = now()
    result = client.execute("pass", cell_id=CELL_ID)
    dt = now() - t0
    if result["reply"]["status"] != "ok":
        raise RuntimeError(f"execution failed: {result['reply']}")
    return dt


def _env() -> dict[str, str]:
    env = subprocess_env()
    return {"PYTHONPATH": env["PYTHONPATH"]}


if __name__ == "__main__":
    sys.exit(main())
