"""The router's buffer of sampled requests while the store cannot take them: bounded (the
oldest go first), the loss counted on ``/metrics``, and what is kept written once the store
takes writes again. On SQLite and PostgreSQL, each a real database without tables at first."""

from __future__ import annotations

from pathlib import Path

from cellops_server.monitoring.samples import recent_samples
from cellops_server.serving.stats import Samples
from cellops_server.store import Store, create_engine
from prometheus_client import CollectorRegistry

DROPPED = "cellops_samples_dropped_total"


def request(samples: Samples, n: int) -> None:
    """The n-th sampled request: one input row [n] predicted n."""
    samples.add("iris", 1, [[float(n)]], [n])


def test_samples_wait_in_a_bounded_buffer_for_the_store(db_url: str, tmp_path: Path) -> None:
    engine = create_engine(db_url)  # a database without cellops' tables: every write fails
    registry = CollectorRegistry()
    samples = Samples(engine, per_second=100, limit=5, registry=registry)
    for n in range(4):
        request(samples, n)
    samples.flush()  # fails: all four kept for the next flush
    assert [rows for _, _, rows, _ in samples.pending] == [[[0.0]], [[1.0]], [[2.0]], [[3.0]]]
    assert registry.get_sample_value(DROPPED) == 0
    for n in range(4, 8):
        request(samples, n)
    samples.flush()  # fails again: the buffer holds the newest five only
    assert [predictions for _, _, _, predictions in samples.pending] == [[n] for n in range(3, 8)]
    assert registry.get_sample_value(DROPPED) == 3
    Store(db_url, str(tmp_path / "artifacts")).close()  # the store is back (tables made)
    samples.flush()
    assert not samples.pending
    stored = recent_samples(engine, "iris", window_minutes=5)
    assert sorted((s.inputs, s.prediction) for s in stored) == [
        ([float(n)], n) for n in range(3, 8)
    ]
    assert registry.get_sample_value(DROPPED) == 3  # nothing more lost
    engine.dispose()
