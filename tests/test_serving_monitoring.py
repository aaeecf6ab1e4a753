"""Monitoring of served requests, end to end: a real `cellops serve --serving-port` (the
serving router, its worker, the deployment watcher) on SQLite and PostgreSQL. Requests
become stored samples, one per input row; the per-second cap holds under a burst; routers
started with --sample-rate 0 or --no-monitoring keep nothing; and shifted requests make the
watcher record drift, show it on the deployment and wake a long poll, with nobody reading
the drift API."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import requests
import sqlalchemy as sa
from cellops.reference import summarize
from cellops.registry import signature
from cellops.serialize import dumps
from cellops_server.monitoring.samples import recent_samples
from cellops_server.monitoring.watch import Leadership
from cellops_server.serving.deployments import report_state
from cellops_server.store import create_engine
from cellops_server.store.tables import deployment_metrics
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from .attacks.conftest import ROLES, Team, team_db_url
from .support import free_port, terminate
from .test_serving_runtime import wait_for

pytestmark = pytest.mark.timeout(180)

API = "cellops/api/v1"
NAMES = ("rows", "burst", "drifting", "quiet")  # one deployment per test: samples stay apart
CAP = 5  # --samples-per-second of the monitored router


@dataclass
class Monitored:
    team: Team
    engine: sa.Engine
    serving_url: str
    model: LogisticRegression
    X_test: np.ndarray

    def infer(
        self, name: str, rows: np.ndarray, session: Any = requests, url: str | None = None
    ) -> requests.Response:
        body = {
            "inputs": [
                {"name": "x", "shape": list(rows.shape), "datatype": "FP64",
                 "data": rows.ravel().tolist()}
            ]
        }  # fmt: skip
        r = session.post(f"{url or self.serving_url}/v2/models/{name}/infer", json=body, timeout=10)
        assert r.status_code == 200, r.text
        return r

    def ready(self, name: str, url: str | None = None) -> bool:
        r = requests.get(f"{url or self.serving_url}/v2/models/{name}/ready", timeout=2)
        return r.status_code == 200

    def samples(self, name: str) -> list[Any]:
        return recent_samples(self.engine, name, 60)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def monitored(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Monitored]:
    tmp = tmp_path_factory.mktemp(f"monitoring-{request.param}")
    serving_port = free_port()
    extra = (
        "--serving-port", str(serving_port), "--serving-workers", "1",
        "--drift-check-interval", "1", "--samples-per-second", str(CAP),
    )  # fmt: skip
    team = Team(team_db_url(request, tmp / "team.db"), tmp / "artifacts", extra_args=extra)
    team.tokens = {name: team.add_user(name, role) for name, role in ROLES.items()}
    team.start()
    engine = create_engine(team.db_url)
    try:
        X, y = load_breast_cancer(return_X_y=True)
        X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.4, random_state=0)
        model = LogisticRegression(solver="liblinear").fit(X_train, y_train)
        register(team, model, X_train)
        alice = team.as_("alice")
        for name in NAMES:
            body = {"name": name, "model": "bc", "version": 1, "public": True}
            r = alice.request("POST", f"{API}/deployments", json=body)
            assert r.status_code == 201, r.text
        m = Monitored(team, engine, f"http://127.0.0.1:{serving_port}", model, X_test)
        wait_for(lambda: all(m.ready(n) for n in NAMES), 90, "deployments ready")
        yield m
    finally:
        engine.dispose()
        team.stop()


def register(team: Team, model: LogisticRegression, X_train: np.ndarray) -> None:
    """Version 1 of "bc", with its signature and its training data's reference."""
    artifact = dumps(model)
    sha = hashlib.sha256(artifact).hexdigest()
    alice = team.as_("alice")
    assert alice.put_artifact(artifact, sha).status_code in (200, 201)
    body = {
        "artifact": sha,
        "flavor": "sklearn",
        "signature": signature(model, X_train[:5]),
        "reference": summarize(X_train),
    }
    r = alice.request("POST", f"{API}/models/bc/versions", json=body)
    assert r.status_code == 201, r.text


# -- samples ------------------------------------------------------------------------------


def test_requests_become_samples_one_per_input_row(monitored: Monitored) -> None:
    rows = monitored.X_test[:3]
    monitored.infer("rows", rows)
    stored = wait_for(lambda: len(monitored.samples("rows")) == 3 and monitored.samples("rows"))
    by_input = {tuple(s.inputs): s.prediction for s in stored}
    assert all(s.version == 1 for s in stored)
    # Each input row in the signature's order (drift reads them so), with its prediction.
    expected = dict(
        zip(map(tuple, rows.tolist()), monitored.model.predict(rows).tolist(), strict=True)
    )
    assert by_input == expected
    # The listener's /metrics counts the samples lost to a full buffer: none here.
    scraped = requests.get(f"{monitored.serving_url}/metrics", timeout=5).text
    assert "\ncellops_samples_dropped_total 0.0\n" in scraped


def test_the_per_second_cap_bounds_samples_under_a_burst(monitored: Monitored) -> None:
    session = requests.Session()
    started = time.monotonic()
    for i in range(60):
        monitored.infer("burst", monitored.X_test[i : i + 1], session)
    elapsed = time.monotonic() - started
    # Samples are written in order: once a marker sent after the burst is stored, every
    # sample the burst left is too (a marker may itself meet the cap: send until one is).
    marker = np.full((1, monitored.X_test.shape[1]), 12345.0)

    def marker_stored() -> bool:
        monitored.infer("burst", marker, session)
        return any(s.inputs[0] == 12345.0 for s in monitored.samples("burst"))

    wait_for(marker_stored, 30, "the marker request sampled and stored")
    burst = [s for s in monitored.samples("burst") if s.inputs[0] != 12345.0]
    # At most CAP per second the burst spanned (its first and last second partly).
    assert 1 <= len(burst) <= CAP * (math.floor(elapsed) + 2), (len(burst), elapsed)
    assert len(burst) < 60


# -- switched off -------------------------------------------------------------------------


def router(monitored: Monitored, port: int, *flags: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CELLOPS_DB_URL": monitored.team.db_url,
        "CELLOPS_ARTIFACTS": str(monitored.team.artifacts),
    }
    cmd = [sys.executable, "-m", "cellops_server.serving", "--port", str(port),
           "--workers", "1", "--watch-stdin", *flags]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Close its stdin: the router stops as under its supervisor, writing what it holds."""
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        assert proc.wait(30) == 0
    finally:
        terminate(proc)


# The switches are the router's own, whatever the store: one store suffices.
@pytest.mark.parametrize("monitored", ["sqlite"], indirect=True)
def test_sample_rate_zero_and_no_monitoring_keep_nothing(monitored: Monitored) -> None:
    ports = {"--sample-rate": free_port(), "--no-monitoring": free_port()}
    procs = {
        "--sample-rate": router(monitored, ports["--sample-rate"], "--sample-rate", "0"),
        "--no-monitoring": router(monitored, ports["--no-monitoring"], "--no-monitoring"),
    }
    try:
        urls = {flag: f"http://127.0.0.1:{port}" for flag, port in ports.items()}
        for url in urls.values():
            wait_for(lambda url=url: monitored.ready("quiet", url), 90, f"{url} ready")
        rows = monitored.X_test[:4]
        for url in urls.values():
            for _ in range(5):
                monitored.infer("quiet", rows, url=url)
        counted = requests.get(f"{urls['--sample-rate']}/metrics", timeout=5).text
        assert 'cellops_requests_total{deployment="quiet",status="200",version="1"} 5.0' in counted
        silent = requests.get(f"{urls['--no-monitoring']}/metrics", timeout=5).text
        assert "cellops_requests" not in silent
    finally:
        for proc in procs.values():
            stop(proc)
    # Stopped, each router has written all it held: no samples; minutes from one only.
    assert monitored.samples("quiet") == []
    with monitored.engine.connect() as conn:
        counted_requests = conn.scalar(
            sa.select(sa.func.sum(deployment_metrics.c.requests)).where(
                deployment_metrics.c.deployment == "quiet"
            )
        )
    assert counted_requests == 5


# -- drift, checked on its own ------------------------------------------------------------


def test_shifted_requests_drift_with_nobody_asking(monitored: Monitored) -> None:
    vera = monitored.team.as_("vera")
    cursor = vera.cellops("events")["last"]
    woken: list[dict[str, Any]] = []

    def long_poll() -> None:  # a sidebar waiting for news of the deployment
        after = cursor
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            reply = vera.cellops("events", after=after, timeout=20)
            after = reply["last"]
            woken.extend(reply["events"])
            if any("drifting" in e.get("deployments", []) for e in reply["events"]):
                return

    poll = threading.Thread(target=long_poll, daemon=True)
    poll.start()
    assert vera.cellops("deployments/drifting")["drifted"] is None
    # Held-out rows with a third of the features moved by two training deviations.
    X = monitored.X_test[:100].copy()
    X[:, :10] += 2 * monitored.X_test[:, :10].std(axis=0)
    monitored.infer("drifting", X)

    def started() -> list[dict[str, Any]]:
        items = vera.cellops("activity", limit=200)["items"]
        return [i for i in items if i["type"] == "deployment.drift_started"]

    activity = wait_for(started, 30, "deployment.drift_started in the activity")
    assert len(activity) == 1 and activity[0]["data"]["deployment"] == "drifting"
    assert activity[0]["model"] == "bc" and activity[0]["version"] == 1
    listed = {d["name"]: d["drifted"] for d in vera.cellops("deployments")["items"]}
    assert listed["drifting"] is True
    assert listed["rows"] is None  # 3 samples: too few to judge
    poll.join(30)
    deployment_events = [e for e in woken if e["type"] == "deployments"]
    assert any("drifting" in e["deployments"] for e in deployment_events), woken


# -- the watcher: what other processes write, told once ----------------------------------


def test_a_state_the_router_writes_wakes_a_long_poll(monitored: Monitored) -> None:
    """The router is another process: what it writes to the store reaches open sidebars
    through the watcher's poll, within about a second."""
    vera = monitored.team.as_("vera")
    after = vera.cellops("events")["last"]
    started = time.monotonic()
    report_state(monitored.engine, "rows", "failed", "the disk is full")  # as the router does
    try:
        while time.monotonic() - started < 10:
            reply = vera.cellops("events", after=after, timeout=10)
            after = reply["last"]
            if any("rows" in e.get("deployments", []) for e in reply["events"]):
                break
        else:
            pytest.fail("no deployments event for a state written by another process")
        assert time.monotonic() - started < 5
        assert vera.cellops("deployments/rows")["error"] == "the disk is full"
    finally:
        report_state(monitored.engine, "rows", "ready", None)


def test_one_replica_watches_on_postgresql(pg_url: str) -> None:
    """Replicas sharing events through PostgreSQL: one holds the watch; when it lets go
    (or dies: its connection ends), another takes it."""
    engine = create_engine(pg_url)
    first, second = Leadership(engine), Leadership(engine)
    try:
        assert first.held() and not second.held()
        assert first.held()  # kept, on its own connection
        first.release()
        assert second.held() and not first.held()
    finally:
        first.release()
        second.release()
        engine.dispose()
