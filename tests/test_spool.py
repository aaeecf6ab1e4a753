"""The durable spool and the background writer, without a Jupyter server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cellops_server.spool import Spool
from cellops_server.store import Store
from cellops_server.writer import SinkRejected, SinkUnavailable, StoreSink, Writer

from .records import execution, run


class FlakySink:
    """Refuses writes while ``down``; remembers what it was given, in order."""

    def __init__(self) -> None:
        self.down = False
        self.received: list[dict[str, Any]] = []

    def write(self, records: list[dict[str, Any]]) -> None:
        if self.down:
            raise SinkUnavailable("store is down")
        if any(r.get("bad") for r in records):
            raise SinkRejected("bad record")
        self.received += records


def test_records_survive_a_new_process_until_committed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(5):
        spool.append({"n": i})
    records, position = spool.read_batch(3)
    assert [r["n"] for r in records] == [0, 1, 2]
    spool.commit(position)
    spool.close()

    reopened = Spool(tmp_path)  # as after a crash and restart
    assert reopened.pending() == 2
    records, _ = reopened.read_batch(100)
    assert [r["n"] for r in records] == [3, 4]


def test_a_line_cut_by_a_crash_is_skipped_not_glued(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append({"n": 1})
    spool.close()
    with open(tmp_path / "spool-000001.jsonl", "a") as f:
        f.write('{"n": 2, "cut')  # the process died mid-write
    spool = Spool(tmp_path)
    spool.append({"n": 3})
    records, _ = spool.read_batch(10)
    assert [r["n"] for r in records] == [1, 3]


def test_segments_roll_and_are_deleted_once_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200)
    for i in range(40):
        spool.append({"n": i, "pad": "x" * 20})
    assert len(list(tmp_path.glob("spool-*.jsonl"))) > 3
    seen = []
    while True:
        records, position = spool.read_batch(7)
        if not records:
            break
        seen += [r["n"] for r in records]
        spool.commit(position)
    assert seen == list(range(40))
    assert spool.pending() == 0
    assert len(list(tmp_path.glob("spool-*.jsonl"))) == 1


def test_writer_keeps_records_while_the_sink_is_down_then_delivers_in_order(tmp_path: Path) -> None:
    spool, sink = Spool(tmp_path), FlakySink()
    writer = Writer(spool, sink, batch_size=4)
    sink.down = True
    for i in range(10):
        spool.append({"n": i})
    with pytest.raises(SinkUnavailable):
        writer.drain_once()
    assert spool.pending() == 10 and sink.received == []
    sink.down = False
    while writer.drain_once():
        pass
    assert [r["n"] for r in sink.received] == list(range(10))
    assert spool.pending() == 0


def test_a_rejected_record_is_set_aside_and_the_rest_delivered(tmp_path: Path) -> None:
    spool, sink = Spool(tmp_path), FlakySink()
    writer = Writer(spool, sink, batch_size=10)
    for i in range(5):
        spool.append({"n": i, "bad": i == 2})
    writer.drain_once()
    assert [r["n"] for r in sink.received] == [0, 1, 3, 4]
    aside = [
        json.loads(line) for line in (tmp_path / "spool-rejected.jsonl").read_text().splitlines()
    ]
    assert [a["record"]["n"] for a in aside] == [2]


def test_background_writer_thread_moves_records_into_a_real_store(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "artifacts"))
    spool = Spool(tmp_path / "spool")
    writer = Writer(spool, StoreSink(store))
    writer.start()
    try:
        spool.append(run())
        for i in range(1, 51):
            spool.append(execution(i, f"x = {i}", f"c{i % 5}"))
        writer.notify()
        import time

        deadline = time.monotonic() + 20
        while spool.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert spool.pending() == 0
        assert store.list_notebooks().items[0].executions == 50
    finally:
        writer.stop()
        store.close()


def test_store_sink_reports_an_unreachable_database_as_unavailable(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "artifacts"))
    store.engine.dispose()
    (tmp_path / "db.sqlite").unlink()
    (tmp_path / "db.sqlite").mkdir()  # the database file is now unusable
    with pytest.raises(SinkUnavailable):
        StoreSink(store).write([run()])
    with pytest.raises(SinkRejected):
        StoreSink(store).write([{"kind": "nonsense"}])
