"""Executions per second the background writer moves from the spool into the store.

The path is the one the Jupyter server runs: ``Spool`` (JSON lines on disk) ->
``Writer.drain_once`` -> ``StoreSink`` -> ``Store.ingest_json`` (pydantic validation,
notebook lock, run upsert, content-addressed code blobs, notebook versions, inserts,
counters) -> SQLite or PostgreSQL, in batches of 1000.

Records are realistic: one run on one notebook of 30 cells, each execution short code
(10% of executions edit their cell, so notebook versions are created), a small stdout
stream, status ok, ISO timestamps. N records are appended to a fresh spool, then the
writer drains them while the time of every batch is taken.

Baseline (the raw floor), interleaved batch by batch on the same database: the same
rows, already built as Python values, inserted with a plain SQLAlchemy Core
executemany (one transaction per 1000 rows) into a bare table with the same columns
and indexes as ``executions``. The ratio shows what cellops' ingest costs over raw
inserts.

Storage per version: a long notebook (LONG executions, each running a new cell) is ingested
into the same store; the bytes texts + versions grew by (tables and indexes: SQLite dbstat,
PostgreSQL pg_total_relation_size), per version, beside the bytes the old scheme (every
version its full cell list as JSON in texts) would have written for those lists alone.

Goals: >= 5,000 executions/s on SQLite, >= 2,000/s on PostgreSQL.

    python benchmarks/ingest.py [--quick] [--profile]
"""

from __future__ import annotations

import cProfile
import hashlib
import io
import json
import pstats
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import sqlalchemy as sa
from common import (
    banner,
    cpu_now,
    exit_code,
    fresh_postgres_db,
    gc_paused,
    goal,
    make_records,
    median,
    ms,
    now,
    parse_args,
    postgres_reason,
    print_table,
    skip,
    sqlite_url,
)

BATCH = 1000
WARMUP = 2000
LONG = 3000  # cells of the long notebook whose storage per version is measured
GOALS = {"sqlite": 5000.0, "postgresql": 2000.0}


def main() -> int:
    def extra(p: Any) -> None:
        p.add_argument(
            "-n", type=int, default=None, help="executions (default 50,000; quick 10,000)"
        )
        p.add_argument(
            "--profile",
            action="store_true",
            help="also print a cProfile of one extra drain per database",
        )

    args = parse_args(__doc__.split("\n\n")[0], extra)
    n = args.n or (10_000 if args.quick else 50_000)
    banner(
        "ingest: spool -> writer -> store, executions/s",
        args,
        executions=n,
        batch=BATCH,
        cells=common.CELLS,
        edit_share=common.EDIT_SHARE,
    )

    results: list[list[Any]] = []
    met: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="cellops-bench-ingest-") as tmp:
        folder = Path(tmp) / "sqlite"
        folder.mkdir()
        results.append(run_one("sqlite", sqlite_url(folder), folder, n, args.profile))
        reason = postgres_reason()
        if reason is None:
            with fresh_postgres_db() as url:
                folder = Path(tmp) / "pg"
                folder.mkdir()
                results.append(run_one("postgresql", url, folder, n, args.profile))
        else:
            skip("postgresql", reason)

    print()
    print_table(
        [
            "database",
            "executions",
            "cellops exec/s",
            "raw exec/s",
            "raw/cellops",
            "cellops batch p50 ms",
            "raw batch p50 ms",
            "batch p50 ratio",
            "cellops exec/CPU-s",
            "raw exec/CPU-s",
            "versions",
            "B/version (long nb)",
            "old scheme B/version",
        ],
        results,
    )
    print()
    for r in results:
        db, rate = r[0], r[2]
        met.append(goal(f"{db} ingest rate", rate, ">=", GOALS[db], " exec/s"))
    return exit_code(args, met)


def run_one(db: str, url: str, folder: Path, n: int, profile: bool) -> list[Any]:
    from cellops_server.spool import Spool
    from cellops_server.store import Store
    from cellops_server.writer import StoreSink, Writer

    print(f"\n[{db}] {url if db != 'sqlite' else 'sqlite (file in a temp folder)'}")
    store = Store(url, str(folder / "artifacts"))
    try:
        raw = _raw_table(store.engine)
        spool = Spool(folder / "spool")
        writer = Writer(spool, StoreSink(store), BATCH)  # not started: drained by hand

        # Warm up both paths (connections, statement caches, the notebook/run rows).
        warm, _ = make_records(WARMUP, "warmup.ipynb", seed=1)
        for rec in warm:
            spool.append(rec)
        while spool.pending():
            writer.drain_once()
        warm_rows = raw_rows(warm[1:], id_offset=10**9)
        for i in range(0, len(warm_rows), BATCH):
            _insert_raw(store.engine, raw, warm_rows[i : i + BATCH])

        records, edits = make_records(n, "bench/analysis.ipynb", seed=2)
        t0 = now()
        for rec in records:
            spool.append(rec)
        append_s = now() - t0
        print(
            f"[{db}] appended {len(records):,} records to the spool in {append_s:.2f} s "
            f"({append_s / len(records) * 1e6:.1f} us/record on the event loop's side)"
        )
        rows = raw_rows(records[1:])

        cellops_batches: list[float] = []
        raw_batches: list[float] = []
        cpu = {"cellops": 0.0, "raw": 0.0}  # this process's CPU time (less noisy than wall)
        moved_total = 0
        b = 0
        with gc_paused():
            while spool.pending():
                chunk = rows[b * BATCH : (b + 1) * BATCH]
                order = ("cellops", "raw") if b % 2 == 0 else ("raw", "cellops")
                for which in order:
                    if which == "cellops":
                        c, t = cpu_now(), now()
                        moved = writer.drain_once()
                        cellops_batches.append(now() - t)
                        cpu["cellops"] += cpu_now() - c
                        moved_total += moved
                    elif chunk:
                        c, t = cpu_now(), now()
                        _insert_raw(store.engine, raw, chunk)
                        raw_batches.append(now() - t)
                        cpu["raw"] += cpu_now() - c
                b += 1
        # The run record rides in the first batch; count executions.
        cellops_s, raw_s = sum(cellops_batches), sum(raw_batches)
        cellops_rate, raw_rate = n / cellops_s, n / raw_s

        with store.engine.connect() as conn:
            stored = conn.scalar(
                sa.text(
                    "SELECT count(*) FROM executions e JOIN notebooks nb ON nb.id = e.notebook_id "
                    "WHERE nb.path = 'bench/analysis.ipynb'"
                )
            )
            versions = conn.scalar(
                sa.text("SELECT versions_count FROM notebooks WHERE path = 'bench/analysis.ipynb'")
            )
            raw_count = conn.scalar(sa.select(sa.func.count()).select_from(raw))
        assert stored == n, (stored, n)
        assert raw_count == n + len(warm_rows), raw_count
        full = [x for x in cellops_batches if x > 0][: n // BATCH]
        k = min(5, len(full) // 2) or 1
        print(
            f"[{db}] drained {moved_total:,} records in {len(cellops_batches)} batches: "
            f"{cellops_s:.2f} s cellops vs {raw_s:.2f} s raw (wall); CPU in this process "
            f"{cpu['cellops']:.2f} s vs {cpu['raw']:.2f} s; {stored:,} executions and "
            f"{versions:,} versions stored ({edits:,} code edits)"
        )
        print(
            f"[{db}] cellops batch p50, first {k} vs last {k} batches: "
            f"{ms(median(full[:k])):.1f} ms vs {ms(median(full[-k:])):.1f} ms "
            f"(growth with table size)"
        )

        per_version, old_per_version = _storage_per_version(store)
        print(
            f"[{db}] a notebook of {LONG:,} cells, one new cell per execution: "
            f"{per_version:,.0f} B stored per version (texts + versions, with indexes); the "
            f"full-list scheme wrote {old_per_version:,.0f} B of cell-list JSON per version"
        )

        if profile:
            _profile_drain(db, spool, writer, n=min(n, 10_000))
        spool.close()
        p50c, p50r = median(cellops_batches), median(raw_batches)
        return [
            db,
            n,
            cellops_rate,
            raw_rate,
            raw_rate / cellops_rate,
            ms(p50c),
            ms(p50r),
            p50c / p50r,
            n / cpu["cellops"],
            n / cpu["raw"],
            versions,
            per_version,
            old_per_version,
        ]
    finally:
        store.close()


# -- the raw floor ------------------------------------------------------------------------


def raw_rows(records: list[dict[str, Any]], id_offset: int = 0) -> list[dict[str, Any]]:
    """The same executions as plain row values (built before timing: this is the floor)."""
    rows = []
    for i, r in enumerate(records):
        started = datetime.fromisoformat(r["started_at"])
        finished = datetime.fromisoformat(r["finished_at"])
        rows.append(
            {
                "msg_id": r["msg_id"] if not id_offset else f"w{id_offset + i}",
                "run_id": 1,
                "notebook_id": 1 if not id_offset else 2,
                "seq": r["seq"],
                "cell_id": r["cell_id"],
                "code_sha": hashlib.sha256(r["code"].encode()).hexdigest(),
                "status": r["status"],
                "started_at": started,
                "finished_at": finished,
                "duration_ms": (finished - started).total_seconds() * 1000,
                "execution_count": r["execution_count"],
                "error": None,
                "outputs": r["outputs"],
                "version_number": r["seq"],
            }
        )
    return rows


def _raw_table(engine: sa.Engine) -> sa.Table:
    from sqlalchemy.dialects.postgresql import JSONB

    json_type = sa.JSON().with_variant(JSONB(), "postgresql")
    md = sa.MetaData()
    table = sa.Table(
        "bench_raw_executions",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("msg_id", sa.String(128), nullable=False, unique=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("notebook_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("cell_id", sa.String(128)),
        sa.Column("code_sha", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("duration_ms", sa.Float),
        sa.Column("execution_count", sa.Integer),
        sa.Column("error", json_type),
        sa.Column("outputs", json_type),
        sa.Column("version_number", sa.Integer),
        sa.Index("ix_bench_raw_run_seq", "run_id", "seq"),
        sa.Index("ix_bench_raw_notebook", "notebook_id", "id"),
        sa.Index("ix_bench_raw_status", "status"),
    )
    md.create_all(engine)
    return table


def _insert_raw(engine: sa.Engine, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)


# -- storage per version -----------------------------------------------------------------------


def _storage_per_version(store: Any) -> tuple[float, float]:
    """Bytes per version of a notebook growing one cell per execution: stored now (measured),
    and the cell-list JSON alone that the full-list scheme wrote (computed: a lower bound)."""
    notebook = "bench/long.ipynb"
    records: list[dict[str, Any]] = [
        {
            "kind": "run",
            "key": "long-run",
            "notebook": notebook,
            "kernel_id": "k-long",
            "started_at": "2025-01-06T09:00:00+00:00",
            "source": "bench",
            "instance": "bench",
        }
    ]
    pairs_bytes = old_bytes = 0
    for i in range(LONG):
        cell, code = f"{i:08d}-0000-4000-8000-000000000000", f"x_{i} = load_part({i})"
        # The old list after this execution: '[' + ','.join(['"id","sha"'] * (i + 1)) + ']'
        pair = [cell, hashlib.sha256(code.encode()).hexdigest()]
        pairs_bytes += len(json.dumps(pair, separators=(",", ":")))
        old_bytes += pairs_bytes + i + 2
        records.append(
            {
                "kind": "execution",
                "msg_id": f"long-{i}",
                "run_key": "long-run",
                "notebook": notebook,
                "seq": i + 1,
                "cell_id": cell,
                "code": code,
                "status": "ok",
                "started_at": "2025-01-06T09:00:01+00:00",
            }
        )
    before = _version_bytes(store.engine)
    for i in range(0, len(records), BATCH):
        store.ingest_json(records[i : i + BATCH])
    return (_version_bytes(store.engine) - before) / LONG, old_bytes / LONG


def _version_bytes(engine: sa.Engine) -> int:
    if engine.dialect.name == "sqlite":
        query = (
            "SELECT sum(d.pgsize) FROM dbstat d JOIN sqlite_master m ON m.name = d.name "
            "WHERE m.tbl_name IN ('texts', 'versions')"
        )
    else:
        query = "SELECT pg_total_relation_size('texts') + pg_total_relation_size('versions')"
    with engine.connect() as conn:
        return int(conn.scalar(sa.text(query)) or 0)


def _profile_drain(db: str, spool: Any, writer: Any, n: int) -> None:
    records, _ = make_records(n, "profile.ipynb", seed=3)
    for rec in records:
        spool.append(rec)
    prof = cProfile.Profile()
    prof.enable()
    while spool.pending():
        writer.drain_once()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).sort_stats("tottime")
    stats.print_stats(25)
    print(f"\n[{db}] cProfile of draining {n:,} more executions (top 25 by own time):")
    print("\n".join(out.getvalue().splitlines()[:60]))


if __name__ == "__main__":
    sys.exit(main())
