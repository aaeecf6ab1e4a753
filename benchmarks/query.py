"""Listing the newest 100 executions of a notebook that has many executions stored.

One notebook gets N executions (default 200,000; --quick 20,000) in runs of 2,000
(a kernel restart each), loaded through ``Store.ingest_json`` in batches of 2,000;
then a second notebook gets N/10 (so the newest rows are not the listed notebook's,
as on a shared backend). Then, over
~50 interleaved repetitions after a warm-up, three ways of reading its newest page
are timed:

- ``store``: ``Store.list_notebook_executions(path, limit=100)`` in process (what
  every API handler calls);
- ``http``: ``GET /cellops/api/v1/executions?notebook=PATH&limit=100`` on a real
  ``cellops serve`` subprocess on the same database, with a personal token
  (keep-alive connection);
- ``bare SQL`` (the baseline): ``SELECT * FROM executions WHERE notebook_id = ?
  ORDER BY id DESC LIMIT 100`` through the store's own engine.

Goal: p50 <= 20 ms (store and http). Both SQLite and PostgreSQL.

    python benchmarks/query.py [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: F401  (puts server/, widgets/, tests/ on sys.path)
import requests
import sqlalchemy as sa
from common import (
    banner,
    exit_code,
    free_port,
    fresh_postgres_db,
    gc_paused,
    goal,
    iter_records,
    ms,
    now,
    parse_args,
    percentile,
    postgres_reason,
    print_table,
    skip,
    sqlite_url,
    stop_process,
    subprocess_env,
    wait_http,
)

NOTEBOOK = "projects/churn/analysis.ipynb"
OTHER_NOTEBOOK = "projects/churn/scratch.ipynb"
RUN_EVERY = 2000
LOAD_BATCH = 2000
LIMIT = 100
GOAL_MS = 20.0
BARE_SQL = "SELECT * FROM executions WHERE notebook_id = :nb ORDER BY id DESC LIMIT 100"


def main() -> int:
    def extra(p: Any) -> None:
        p.add_argument(
            "-n", type=int, default=None, help="executions stored (default 200,000; quick 20,000)"
        )
        p.add_argument("--reps", type=int, default=None, help="repetitions (default 50)")

    args = parse_args(__doc__.split("\n\n")[0], extra)
    n = args.n or (20_000 if args.quick else 200_000)
    reps = args.reps or (30 if args.quick else 50)
    warmup = 10
    banner(
        "query: newest 100 executions of one notebook",
        args,
        executions=n,
        reps=reps,
        warmup=warmup,
        run_every=RUN_EVERY,
    )

    results: list[tuple[str, dict[str, list[float]]]] = []
    with tempfile.TemporaryDirectory(prefix="cellops-bench-query-") as tmp:
        folder = Path(tmp) / "sqlite"
        folder.mkdir()
        results.append(("sqlite", run_one("sqlite", sqlite_url(folder), folder, n, reps, warmup)))
        reason = postgres_reason()
        if reason is None:
            with fresh_postgres_db() as url:
                folder = Path(tmp) / "pg"
                folder.mkdir()
                results.append(("postgresql", run_one("postgresql", url, folder, n, reps, warmup)))
        else:
            skip("postgresql", reason)

    print()
    rows = []
    for db, times in results:
        base = percentile(times["bare SQL"], 50)
        for variant in ("store", "http", "bare SQL"):
            xs = times[variant]
            rows.append(
                [
                    db,
                    variant,
                    len(xs),
                    ms(percentile(xs, 50)),
                    ms(percentile(xs, 90)),
                    ms(percentile(xs, 99)),
                    percentile(xs, 50) / base,
                ]
            )
    print_table(["database", "variant", "n", "p50 ms", "p90 ms", "p99 ms", "p50 / bare SQL"], rows)
    print()
    met = []
    for db, times in results:
        for variant in ("store", "http"):
            met.append(
                goal(
                    f"{db} {variant} p50", ms(percentile(times[variant], 50)), "<=", GOAL_MS, " ms"
                )
            )
    return exit_code(args, met)


def run_one(
    db: str, url: str, folder: Path, n: int, reps: int, warmup: int
) -> dict[str, list[float]]:
    from cellops_server.store import Store

    print(f"\n[{db}] {url if db != 'sqlite' else 'sqlite (file in a temp folder)'}")
    artifacts = folder / "artifacts"
    store = Store(url, str(artifacts))
    proc = None
    session = requests.Session()
    try:
        t0 = now()
        _populate(store, n)
        with store.engine.connect() as conn:
            nb = conn.scalar(sa.text("SELECT id FROM notebooks WHERE path = :p"), {"p": NOTEBOOK})
            count = conn.scalar(
                sa.text("SELECT executions_count FROM notebooks WHERE id = :nb"), {"nb": nb}
            )
            total = conn.scalar(sa.text("SELECT count(*) FROM executions"))
            if db == "postgresql":
                conn.execute(sa.text("ANALYZE"))
                conn.commit()
        elapsed = now() - t0
        print(
            f"[{db}] stored {count:,} executions of {NOTEBOOK} ({total:,} in all) in "
            f"{elapsed:.1f} s ({count / elapsed:,.0f}/s through Store.ingest_json)"
        )
        assert count == n, (count, n)

        token = (
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cellops_server.cli",
                    "users",
                    "add",
                    "bench",
                    "--role",
                    "viewer",
                    "--db",
                    url,
                ],
                env=subprocess_env(),
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        port = free_port()
        log = open(folder / "serve.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cellops_server.cli",
                "serve",
                "--db",
                url,
                "--artifacts",
                str(artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=subprocess_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}/cellops/api/v1"
        session.headers["Authorization"] = f"token {token}"
        wait_http(f"{base}/status", headers=dict(session.headers), proc=proc)

        def via_store() -> Any:
            page = store.list_notebook_executions(NOTEBOOK, limit=LIMIT)
            return [e.id for e in page.items]

        def via_http() -> Any:
            r = session.get(f"{base}/executions", params={"notebook": NOTEBOOK, "limit": LIMIT})
            r.raise_for_status()
            return [e["id"] for e in r.json()["items"]]

        def via_sql() -> Any:
            with store.engine.connect() as conn:
                return [r.id for r in conn.execute(sa.text(BARE_SQL), {"nb": nb}).fetchall()]

        variants = {"store": via_store, "http": via_http, "bare SQL": via_sql}
        expected = via_sql()
        assert len(expected) == LIMIT, len(expected)
        for name, fn in variants.items():
            got = fn()
            assert got == expected, f"{name} returned other rows: {got[:3]} vs {expected[:3]}"
        for _ in range(warmup):
            for fn in variants.values():
                fn()

        names = list(variants)
        times: dict[str, list[float]] = {name: [] for name in names}
        with gc_paused():
            for rep in range(reps):
                k = rep % len(names)
                for name in names[k:] + names[:k]:  # rotate who goes first
                    t = now()
                    variants[name]()
                    times[name].append(now() - t)
        print(
            f"[{db}] p50: "
            + ", ".join(f"{name} {ms(percentile(xs, 50)):.2f} ms" for name, xs in times.items())
        )
        _explain(db, store.engine, nb)
        return times
    finally:
        session.close()
        stop_process(proc)
        store.close()


def _populate(store: Any, n: int) -> None:
    """The notebook under test, then a smaller neighbour (n/10, active more recently), so the
    newest rows of the table are not the listed notebook's."""

    def load(records: Any) -> None:
        batch: list[dict[str, Any]] = []
        for rec in records:
            batch.append(rec)
            if len(batch) >= LOAD_BATCH:
                store.ingest_json(batch)
                batch = []
        if batch:
            store.ingest_json(batch)

    load(iter_records(n, NOTEBOOK, seed=8, run_every=RUN_EVERY))
    load(iter_records(n // 10, OTHER_NOTEBOOK, seed=7, run_every=RUN_EVERY))


def _explain(db: str, engine: sa.Engine, nb: int) -> None:
    """The plan of the store's own query, to show whether it walks the notebook index."""
    from cellops_server.store.tables import executions, notebooks

    q = (
        sa.select(executions, notebooks.c.path)
        .join(notebooks, notebooks.c.id == executions.c.notebook_id)
        .where(executions.c.notebook_id == nb)
        .order_by(executions.c.id.desc())
        .limit(LIMIT + 1)
    )
    sql = str(q.compile(engine, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if db == "sqlite" else "EXPLAIN (ANALYZE, COSTS OFF) "
    with engine.connect() as conn:
        plan = [" ".join(str(c) for c in row) for row in conn.exec_driver_sql(prefix + sql)]
    print(f"[{db}] plan of the store's query: " + " | ".join(p.strip() for p in plan))


if __name__ == "__main__":
    sys.exit(main())
