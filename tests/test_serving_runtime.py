"""The serving runtime as a client sees it: a real router process with two workers in front
of a real store; a registered LogisticRegression called with tritonclient, the MLflow scoring
formats and curl; keys, alias moves under load, rollback, canary, killed workers and a killed
router."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import requests
from cellops.registry import signature
from cellops.serialize import dumps
from cellops_server.registry import Registry
from cellops_server.schemas import (
    DeploymentCreate,
    DeploymentPatch,
    ModelVersionCreate,
    TrafficShare,
)
from cellops_server.serving.deployments import Deployments
from cellops_server.serving.supervisor import ServingSupervisor
from cellops_server.store import Store
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from .support import free_port

pytestmark = pytest.mark.timeout(180)


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = check()
        except requests.RequestException:
            got = None
        if got:
            return got
        time.sleep(0.05)
    raise TimeoutError(f"{what} not reached within {timeout}s")


@dataclass
class Serving:
    url: str
    store: Store
    deployments: Deployments
    registry: Registry
    supervisor: ServingSupervisor
    key: str
    models: dict[int, LogisticRegression]
    X: np.ndarray
    signature: dict[str, Any]
    auth: dict[str, str] = field(default_factory=dict)

    def v2_body(self, rows: np.ndarray) -> dict[str, Any]:
        return {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(rows.shape),
                    "datatype": "FP64",
                    "data": rows.ravel().tolist(),
                }
            ]
        }

    def infer(self, rows: np.ndarray, session: Any = requests, path: str = "") -> requests.Response:
        return session.post(
            f"{self.url}/v2/models/bc{path}/infer",
            json=self.v2_body(rows),
            headers=self.auth,
            timeout=10,
        )

    def ready(self) -> bool:
        return requests.get(f"{self.url}/v2/models/bc/ready", timeout=2).status_code == 200

    def serves(self, version: int) -> bool:
        r = self.infer(self.X[:1])
        return r.status_code == 200 and r.headers["Cellops-Model-Version"] == str(version)


def _register(registry: Registry, model: Any, X: np.ndarray, alias: str | None) -> int:
    data = dumps(model)
    sha = hashlib.sha256(data).hexdigest()
    up = registry.artifacts.upload(sha, len(data))
    up.write(data)
    up.finish()
    body = ModelVersionCreate(
        artifact=sha, flavor="sklearn", signature=signature(model, X[:5]), alias=alias
    )
    return registry.create_version("bc", body).version


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def serving(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serving]:
    home = tmp_path_factory.mktemp("serving")
    if request.param == "postgresql":
        db_url = request.getfixturevalue("module_pg_url")
    else:
        db_url = f"sqlite:///{home / 'cellops.db'}"
    artifacts = str(home / "artifacts")
    store = Store(db_url, artifacts)
    X, y = load_breast_cancer(return_X_y=True)
    models = {
        1: LogisticRegression(solver="liblinear").fit(X, y),
        # Another version, strongly regularized: it answers differently on some rows.
        2: LogisticRegression(solver="liblinear", C=1e-4).fit(X, y),
    }
    registry = Registry(store)
    _register(registry, models[1], X, "champion")
    _register(registry, models[2], X, None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    deployments = Deployments(store, url)
    key = deployments.create(DeploymentCreate(name="bc", model="bc", alias="champion"), "ada").key
    assert key
    supervisor = ServingSupervisor(db_url, artifacts, "127.0.0.1", port, 2, {})
    supervisor.start()
    s = Serving(
        url,
        store,
        deployments,
        registry,
        supervisor,
        key,
        models,
        X,
        signature(models[1], X[:5]),
        {"Authorization": f"Bearer {key}"},
    )
    try:
        wait_for(s.ready, 60, "deployment bc ready")
        yield s
    finally:
        supervisor.stop()
        store.close()


def worker_pids(router_pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(router_pid)], capture_output=True, text=True
    ).stdout
    return [int(p) for p in out.split()]


class Load(threading.Thread):
    """Sends one-row requests over keep-alive until stopped; keeps every outcome."""

    def __init__(self, serving: Serving) -> None:
        super().__init__(daemon=True)
        self.serving = serving
        self.stop = threading.Event()
        self.outcomes: list[tuple[int, str | None, str | None]] = []  # status, Retry-After, version

    def run(self) -> None:
        session = requests.Session()
        i = 0
        while not self.stop.is_set():
            row = self.serving.X[i % len(self.serving.X)][None, :]
            i += 1
            try:
                r = self.serving.infer(row, session)
                self.outcomes.append(
                    (
                        r.status_code,
                        r.headers.get("Retry-After"),
                        r.headers.get("Cellops-Model-Version"),
                    )
                )
            except requests.RequestException as exc:  # a dropped connection: never acceptable
                self.outcomes.append((0, None, repr(exc)))

    def __enter__(self) -> Load:
        self.start()
        wait_for(lambda: len(self.outcomes) > 20, 10, "load started")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(15)

    def failures(self) -> list[tuple[int, str | None, str | None]]:
        return [o for o in self.outcomes if o[0] != 200]


# -- protocols -----------------------------------------------------------------------------------


def test_tritonclient_predictions_equal_the_model(serving: Serving) -> None:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=serving.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("bc")
    meta = client.get_model_metadata("bc", headers=dict(serving.auth))
    assert meta["name"] == "bc"
    name = meta["inputs"][0]["name"]
    rows = serving.X[:40]
    for binary in (False, True):
        inp = httpclient.InferInput(name, list(rows.shape), "FP64")
        inp.set_data_from_numpy(rows, binary_data=binary)
        out = httpclient.InferRequestedOutput("predict", binary_data=binary)
        result = client.infer("bc", [inp], outputs=[out], headers=dict(serving.auth))
        np.testing.assert_array_equal(
            result.as_numpy("predict").ravel(), serving.models[1].predict(rows)
        )
    client.close()


def test_mlflow_formats_and_curl_answer_the_models_predictions(serving: Serving) -> None:
    rows = serving.X[:7]
    expected = serving.models[1].predict(rows).tolist()
    url = f"{serving.url}/deployments/bc/invocations"
    for body in (
        {"inputs": rows.tolist()},
        {"instances": rows.tolist()},
        {"dataframe_split": {"data": rows.tolist()}},
    ):
        r = requests.post(url, json=body, headers=serving.auth, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == expected
    assert requests.get(f"{serving.url}/deployments/bc/ping", timeout=5).status_code == 200
    curl = subprocess.run(
        [
            "curl",
            "-sS",
            "-H",
            f"Authorization: Bearer {serving.key}",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps(serving.v2_body(rows)),
            f"{serving.url}/v2/models/bc/infer",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    outputs = {o["name"]: o for o in json.loads(curl.stdout)["outputs"]}
    assert outputs["predict"]["data"] == expected

    chunked = subprocess.run(  # a body streamed in chunks
        [
            "curl",
            "-sS",
            "-H",
            f"Authorization: Bearer {serving.key}",
            "-H",
            "Content-Type: application/json",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "@-",
            url,
        ],
        input=json.dumps({"inputs": rows.tolist()}),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(chunked.stdout)["predictions"] == expected, chunked.stdout


# -- keys ---------------------------------------------------------------------------------------


def test_inference_needs_the_key_and_health_does_not(serving: Serving) -> None:
    rows = serving.X[:1]
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": serving.key},
        {"Authorization": "Basic " + serving.key},
    ):
        for r in (
            requests.post(
                f"{serving.url}/v2/models/bc/infer",
                json=serving.v2_body(rows),
                headers=headers,
                timeout=5,
            ),
            requests.post(
                f"{serving.url}/deployments/bc/invocations",
                json={"inputs": rows.tolist()},
                headers=headers,
                timeout=5,
            ),
            requests.get(f"{serving.url}/v2/models/bc", headers=headers, timeout=5),
        ):
            assert r.status_code == 401, (headers, r.text)
            assert "Authorization: Bearer" in r.json()["error"]
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/bc/ready", "/metrics"):
        assert requests.get(serving.url + path, timeout=5).status_code == 200
    r = requests.post(
        f"{serving.url}/v2/models/nope/infer", json={}, headers=serving.auth, timeout=5
    )
    assert r.status_code == 404 and "nope" in r.json()["error"]


def test_malformed_http_gets_a_json_4xx(serving: Serving) -> None:
    import socket

    port = int(serving.url.rsplit(":", 1)[1])
    for raw, status in (
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"POST /v2/models/bc/infer HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n", b"413"),
        (b"POST /v2/models/bc/infer HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"400"),
        (b"GET / HTTP/2.0\r\n\r\n", b"400"),
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(raw)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 " + status), raw
        assert json.loads(body)["error"]
    r = serving.infer(serving.X[:1])  # the listener still serves
    assert r.status_code == 200


def test_a_rotated_key_stops_working_within_a_second(serving: Serving) -> None:
    old = serving.key
    new = serving.deployments.rotate_key("bc", "ada")
    serving.key, serving.auth = new, {"Authorization": f"Bearer {new}"}
    changed = time.monotonic()
    wait_for(lambda: serving.infer(serving.X[:1]).status_code == 200, 5, "new key accepted")
    old_auth = {"Authorization": f"Bearer {old}"}
    wait_for(
        lambda: (
            requests.post(
                f"{serving.url}/v2/models/bc/infer",
                json=serving.v2_body(serving.X[:1]),
                headers=old_auth,
                timeout=5,
            ).status_code
            == 401
        ),
        5,
        "old key refused",
    )
    assert time.monotonic() - changed < 1.5


# -- switching versions ---------------------------------------------------------------------------


def test_moving_the_alias_under_load_switches_with_no_failed_request(serving: Serving) -> None:
    assert serving.serves(1)
    with Load(serving) as load:
        serving.registry.set_alias("bc", "champion", 2)
        wait_for(lambda: load.outcomes[-1][2] == "2", 30, "version 2 answering")
        n = len(load.outcomes)
        wait_for(lambda: len(load.outcomes) > n + 20, 10, "more requests")
    assert load.failures() == []
    versions = [o[2] for o in load.outcomes]
    first_v2 = versions.index("2")
    assert set(versions[:first_v2]) == {"1"} and set(versions[first_v2 + 10 :]) == {"2"}
    r = serving.infer(serving.X)
    assert r.json()["outputs"][0]["data"] == serving.models[2].predict(serving.X).tolist()
    wait_for(lambda: serving.deployments.get("bc").state == "ready", 5, "state ready")


def test_rollback_then_canary_serves_both_versions(serving: Serving) -> None:
    serving.deployments.patch("bc", DeploymentPatch(version=1), "ada")
    wait_for(lambda: serving.serves(1), 30, "rolled back to 1")
    events = [e.type for e in serving.deployments.events("bc")]
    assert "rolled_back" in events

    split = [TrafficShare(version=1, percent=50), TrafficShare(version=2, percent=50)]
    serving.deployments.patch("bc", DeploymentPatch(traffic=split), "ada")
    session = requests.Session()

    def both() -> bool:
        seen = {
            serving.infer(serving.X[:1], session).headers.get("Cellops-Model-Version")
            for _ in range(40)
        }
        return seen == {"1", "2"}

    wait_for(both, 30, "both versions answering")
    for v in (1, 2):
        r = serving.infer(serving.X, session, f"/versions/{v}")
        assert r.status_code == 200 and r.headers["Cellops-Model-Version"] == str(v)
        assert r.json()["outputs"][0]["data"] == serving.models[v].predict(serving.X).tolist()
    r = serving.infer(serving.X[:1], session, "/versions/9")
    assert r.status_code == 404
    serving.deployments.patch("bc", DeploymentPatch(alias="champion"), "ada")
    wait_for(lambda: all(serving.serves(2) for _ in range(10)), 30, "back on the alias")


def test_a_refused_model_fails_the_deployment_and_the_old_version_keeps_serving(
    serving: Serving,
) -> None:
    crafted = b"not a skops file at all"
    sha = hashlib.sha256(crafted).hexdigest()
    up = serving.registry.artifacts.upload(sha, len(crafted))
    up.write(crafted)
    up.finish()
    serving.registry.create_version("bc", ModelVersionCreate(artifact=sha, flavor="sklearn"))
    number = (
        serving.registry.get_model("bc").latest_version
        if hasattr(serving.registry.get_model("bc"), "latest_version")
        else 3
    )
    serving.deployments.patch("bc", DeploymentPatch(version=number), "ada")
    failed = wait_for(
        lambda: (d := serving.deployments.get("bc")).state == "failed" and d, 30, "state failed"
    )
    assert failed.error and str(number) in failed.error
    assert serving.serves(2)  # what served before still serves
    serving.deployments.patch("bc", DeploymentPatch(alias="champion"), "ada")
    wait_for(lambda: serving.deployments.get("bc").state == "ready", 30, "ready again")


# -- crashes ----------------------------------------------------------------------------------------


def test_a_killed_worker_costs_only_503_with_retry_after_and_comes_back(serving: Serving) -> None:
    router = serving.supervisor.proc
    assert router is not None
    # Two workers and a warm spare; the workers were started first.
    before = sorted(worker_pids(router.pid))
    assert len(before) == 3
    # Eight clients: the killed worker has several requests in flight, and one death must
    # count as one crash (not eight, which would fail the deployment).
    loads = [Load(serving) for _ in range(8)]
    for load in loads:
        load.__enter__()
    try:
        os.kill(before[0], signal.SIGKILL)
        killed = time.monotonic()

        def back() -> bool:
            r = requests.get(f"{serving.url}/v2/health/ready", timeout=2)
            pids = worker_pids(router.pid)
            return r.json().get("workers") == 2 and before[0] not in pids

        wait_for(back, 10, "worker back")
        assert time.monotonic() - killed < 5
        marks = [len(load.outcomes) for load in loads]
        wait_for(
            lambda: all(len(ld.outcomes) > m + 20 for ld, m in zip(loads, marks, strict=True)),
            10,
            "more requests",
        )
    finally:
        for load in loads:
            load.__exit__()
    outcomes = [o for load in loads for o in load.outcomes]
    failures = [o for load in loads for o in load.failures()]
    assert all(status == 503 and retry == "1" for status, retry, _ in failures), failures
    # Serving again: the last requests of every client were answered.
    assert all(
        o[0] == 200 for ld, m in zip(loads, marks, strict=True) for o in ld.outcomes[m + 10 :]
    )
    assert sum(1 for o in outcomes if o[0] == 200) > 40
    assert serving.deployments.get("bc").state == "ready"


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of ``pid`` (clock ticks), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def test_requests_are_answered_by_the_workers_without_passing_through_the_router(
    serving: Serving,
) -> None:
    router = serving.supervisor.proc
    assert router is not None
    workers = worker_pids(router.pid)
    session = requests.Session()
    assert serving.infer(serving.X[:1], session).status_code == 200  # the connection is placed
    before = cpu_ticks(router.pid), sum(cpu_ticks(p) for p in workers)
    for i in range(1500):
        assert serving.infer(serving.X[i % 50 : i % 50 + 1], session).status_code == 200
    router_spent = cpu_ticks(router.pid) - before[0]
    workers_spent = sum(cpu_ticks(p) for p in workers) - before[1]
    # The router only accepted the connection and reads the counts the workers send it;
    # parsing, routing, keys and predicting happen in the worker that holds the connection.
    assert workers_spent > 0
    assert router_spent < 0.2 * workers_spent, (router_spent, workers_spent)


def test_a_long_lived_connection_is_closed_after_1000_answers_so_its_load_can_move(
    serving: Serving,
) -> None:
    from cellops_server.serving.worker import MAX_REQUESTS_PER_CONNECTION

    port = int(serving.url.rsplit(":", 1)[1])
    body = json.dumps(serving.v2_body(serving.X[:1]))
    headers = {**serving.auth, "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    closes = []
    for i in range(MAX_REQUESTS_PER_CONNECTION):
        conn.request("POST", "/v2/models/bc/infer", body, headers)
        r = conn.getresponse()
        r.read()
        assert r.status == 200
        if r.getheader("Connection") == "close":
            closes.append(i + 1)
    assert closes == [MAX_REQUESTS_PER_CONNECTION]  # the last answer, and only it
    conn.request("POST", "/v2/models/bc/infer", body, headers)  # http.client reconnects
    assert conn.getresponse().status == 200
    conn.close()


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_an_idle_connection_whose_worker_dies_reads_503_with_retry_after_not_a_reset(
    serving: Serving,
) -> None:
    router = serving.supervisor.proc
    assert router is not None
    port = int(serving.url.rsplit(":", 1)[1])
    body = json.dumps(serving.v2_body(serving.X[:1])).encode()
    request = (
        f"POST /v2/models/bc/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {serving.key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        before = worker_pids(router.pid)
        for pid in before:  # every worker, so the one holding this connection is among them
            os.kill(pid, signal.SIGKILL)
        answer = _read_until_closed(sock)  # an end, not ConnectionResetError
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    head = answer.split(b"\r\n\r\n")[0].lower()
    assert b"retry-after: 1" in head and b"connection: close" in head
    wait_for(lambda: serving.serves(serving.deployments.get("bc").version), 60, "serving again")
    assert not set(before) & set(worker_pids(router.pid))


def test_while_no_worker_is_ready_the_router_answers_503_and_closes(serving: Serving) -> None:
    router = serving.supervisor.proc
    assert router is not None
    for pid in worker_pids(router.pid):  # the workers and the warm spare: a cold start follows
        os.kill(pid, signal.SIGKILL)
    seen: list[requests.Response] = []

    def served() -> bool:
        r = serving.infer(serving.X[:1])  # a new connection each time
        seen.append(r)
        return r.status_code == 200

    try:
        wait_for(served, 60, "a worker back")
    except TimeoutError as exc:  # say what was answered meanwhile
        raise AssertionError(f"{exc}; last answer {seen[-1].status_code} {seen[-1].text}") from exc
    waiting = [r for r in seen if r.status_code != 200]
    assert waiting, "no request was sent while the workers started"
    for r in waiting:
        assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
        assert r.headers["Connection"] == "close"  # the next connection can reach a worker
        assert "error" in r.json()
    assert serving.deployments.get("bc").state == "ready"  # no crash counted against bc


def bytes_read(pid: int) -> int:
    """What ``pid`` has read so far (files and sockets), from /proc."""
    with open(f"/proc/{pid}/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


@dataclass
class SlowVersion:
    number: int
    model: RandomForestClassifier
    size: int  # of its file: a worker that has read this much is loading it


@pytest.fixture(scope="module")
def slow_version(serving: Serving) -> SlowVersion:
    """A version that takes a second or more to load, so a kill can land while it loads."""
    forest = RandomForestClassifier(n_estimators=400, random_state=0)
    forest.fit(serving.X, serving.models[1].predict(serving.X))
    number = _register(serving.registry, forest, serving.X, None)
    return SlowVersion(number, forest, len(dumps(forest)))


def kill_every_worker_while_it_loads(
    serving: Serving, slow: SlowVersion, start_loading: Callable[[], None]
) -> None:
    """Once both workers have read ``slow``'s file, kill every worker (and the spare) at once."""
    router = serving.supervisor.proc
    assert router is not None

    def idle() -> dict[int, int] | None:  # two workers and the spare, none reading anything
        pids = worker_pids(router.pid)
        before = {pid: bytes_read(pid) for pid in pids}
        time.sleep(0.2)
        now = {pid: bytes_read(pid) for pid in worker_pids(router.pid)}
        return before if len(pids) == 3 and now == before else None

    start = wait_for(idle, 60, "every worker started and idle")
    start_loading()

    def two_reading() -> bool:
        return sum(bytes_read(pid) - n >= slow.size for pid, n in start.items()) == 2

    wait_for(two_reading, 60, "both workers reading the new version")
    for pid in worker_pids(router.pid):
        os.kill(pid, signal.SIGKILL)


def answers(serving: Serving, check: Callable[[requests.Response], bool], what: str) -> None:
    """Wait until an answer passes ``check``; on a timeout, say what the last one was."""
    seen: list[requests.Response] = []

    def passes() -> bool:
        seen.append(r := serving.infer(serving.X[:1]))
        return check(r)

    try:
        wait_for(passes, 90, what)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; last answer {seen[-1].status_code} {seen[-1].text}") from exc


def test_every_worker_killed_while_loading_a_version_does_not_fail_it(
    serving: Serving, slow_version: SlowVersion
) -> None:
    """Workers killed together (an operator, the OOM killer) with a version half loaded are one
    incident: the version loads in the restarted workers and takes traffic, where counting
    each dead worker as a crash of the version refused a model that had done nothing wrong."""
    n = slow_version.number

    def deploy() -> None:
        serving.deployments.patch("bc", DeploymentPatch(version=n), "ada")

    kill_every_worker_while_it_loads(serving, slow_version, deploy)
    answers(serving, lambda r: r.headers.get("Cellops-Model-Version") == str(n), f"v{n} served")
    assert serving.deployments.get("bc").state == "ready"
    expected = slow_version.model.predict(serving.X).tolist()
    assert serving.infer(serving.X).json()["outputs"][0]["data"] == expected
    serving.deployments.patch("bc", DeploymentPatch(alias="champion"), "ada")
    wait_for(lambda: serving.serves(2), 30, "back on the alias")


def test_after_a_version_failed_restarted_workers_serve_the_one_before(serving: Serving) -> None:
    """A failed version leaves the one before it serving, also in workers started after the
    failure (they load what takes traffic), rather than 503 until someone deploys again."""
    crafted = b"a file that is no model"
    sha = hashlib.sha256(crafted).hexdigest()
    up = serving.registry.artifacts.upload(sha, len(crafted))
    up.write(crafted)
    up.finish()
    number = serving.registry.create_version(
        "bc", ModelVersionCreate(artifact=sha, flavor="sklearn")
    ).version
    serving.deployments.patch("bc", DeploymentPatch(version=number), "ada")
    wait_for(lambda: serving.deployments.get("bc").state == "failed", 30, "state failed")
    router = serving.supervisor.proc
    assert router is not None
    before = worker_pids(router.pid)
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    answers(serving, lambda r: r.headers.get("Cellops-Model-Version") == "2", "v2 served again")
    assert not set(before) & set(worker_pids(router.pid))
    failed = serving.deployments.get("bc")
    assert failed.state == "failed" and failed.error and "not a skops file" in failed.error
    serving.deployments.patch("bc", DeploymentPatch(alias="champion"), "ada")
    wait_for(lambda: serving.deployments.get("bc").state == "ready", 30, "ready again")


def test_a_killed_router_is_restarted_and_serves_its_deployments_again(serving: Serving) -> None:
    proc = serving.supervisor.proc
    assert proc is not None
    version = serving.deployments.get("bc").version
    proc.kill()
    proc.wait()
    serving.supervisor.ensure_running()
    assert serving.supervisor.proc is not proc
    # A new router knows nothing but the store: as after a restart of the Jupyter server.
    wait_for(lambda: serving.serves(version), 90, "serving again after a restart")


# -- metrics -------------------------------------------------------------------------------------


def test_metrics_are_prometheus_text_and_reach_the_store(serving: Serving) -> None:
    from cellops_server.serving.metrics import read_minutes
    from prometheus_client.parser import text_string_to_metric_families

    v = str(serving.deployments.get("bc").version)
    for _ in range(5):
        assert serving.infer(serving.X[:1]).status_code == 200
    serving.infer(np.zeros((1, 3)))  # a bad request: an error
    text = requests.get(f"{serving.url}/metrics", timeout=5).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    counted = {
        (s.labels["version"], s.labels["status"]): s.value
        for s in families["cellops_requests"].samples
        if s.name == "cellops_requests_total" and s.labels["deployment"] == "bc"
    }
    assert counted[(v, "200")] >= 5 and counted[(v, "400")] >= 1
    errors = [s for s in families["cellops_request_errors"].samples if s.name.endswith("_total")]
    assert sum(s.value for s in errors) >= 1
    buckets = [
        s
        for s in families["cellops_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    ]
    assert {s.labels["le"] for s in buckets} >= {"0.001", "+Inf"}
    rows = wait_for(
        lambda: [m for m in read_minutes(serving.store.engine, "bc", 10) if m.errors],
        15,
        "minutes in the store",
    )
    assert rows[0].requests >= 1 and rows[0].p50 is not None
