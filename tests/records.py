"""Builders of tap records for store tests (the same JSON the tap writes)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def run(key: str = "run-1", notebook: str = "nb.ipynb", **kw: Any) -> dict[str, Any]:
    return {
        "kind": "run",
        "key": key,
        "notebook": notebook,
        "kernel_id": "kernel-1",
        "user": "ada",
        "started_at": T0.isoformat(),
        "kernel_spec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "source": "server-a",
        "instance": "process-1",
        **kw,
    }


def execution(
    seq: int,
    code: str,
    cell: str | None = "c1",
    run_key: str = "run-1",
    notebook: str = "nb.ipynb",
    **kw: Any,
) -> dict[str, Any]:
    start = T0 + timedelta(seconds=seq)
    return {
        "kind": "execution",
        "msg_id": kw.pop("msg_id", f"{run_key}-msg-{seq}"),
        "run_key": run_key,
        "notebook": notebook,
        "seq": seq,
        "cell_id": cell,
        "code": code,
        "status": "ok",
        "started_at": start.isoformat(),
        "finished_at": (start + timedelta(milliseconds=250)).isoformat(),
        "execution_count": seq,
        "outputs": [{"output_type": "stream", "name": "stdout", "text": f"out {seq}\n"}],
        **kw,
    }


def long_run(notebook: str, n: int, run_key: str = "long-run") -> list[dict[str, Any]]:
    """One run of ``n`` executions over 20 cells (``value = <seq>``), every 10th an error."""
    records = [run(run_key, notebook, kernel_id=f"kernel-{run_key}")]
    for seq in range(1, n + 1):
        extra: dict[str, Any] = {}
        if seq % 10 == 0:
            extra = {"status": "error", "error": {"ename": "ValueError", "evalue": str(seq)}}
        records.append(
            execution(seq, f"value = {seq}", f"cell-{seq % 20}", run_key, notebook, **extra)
        )
    return records


def seed_store(db_url: str, artifacts: str, records: list[dict[str, Any]]) -> None:
    """Write records straight into a store (a running server's too: SQLite WAL, PostgreSQL)."""
    from cellops_server.store import Store

    store = Store(db_url, artifacts)
    try:
        for start in range(0, len(records), 1000):
            store.ingest_json(records[start : start + 1000])
    finally:
        store.close()
