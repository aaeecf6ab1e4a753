"""The model registry and execution logs: store (SQLite + PostgreSQL) and HTTP (Jupyter, team)."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cellops_server.registry import ChecksumMismatch, ExecutionLogStore, Registry
from cellops_server.schemas import LogBatch, ModelVersionCreate, ModelVersionUpdate
from cellops_server.store import NotFound, Store

from .records import execution, run
from .support import JupyterServer, TeamBackend, wait_http

API = "cellops/api/v1"
MODEL = b"pretend this is a skops file"
MODEL_SHA = hashlib.sha256(MODEL).hexdigest()


def upload(registry: Registry, data: bytes = MODEL) -> str:
    sha = hashlib.sha256(data).hexdigest()
    up = registry.artifacts.upload(sha, 1 << 20)
    up.write(data)
    up.finish()
    return sha


def create(artifact: str, **kw: Any) -> ModelVersionCreate:
    return ModelVersionCreate(artifact=artifact, flavor="sklearn", **kw)


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


# -- store level ------------------------------------------------------------------------------


def test_concurrent_registrations_get_distinct_consecutive_versions(store: Store) -> None:
    registry = Registry(store)
    sha = upload(registry)
    got: list[int] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            for _ in range(3):
                got.append(Registry(store).create_version("churn", create(sha)).version)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(got) == list(range(1, 19))
    assert registry.get_model("churn").latest_version == 18
    listed = registry.list_versions("churn", limit=10)
    assert [v.version for v in listed.items] == list(range(18, 8, -1))
    rest = registry.list_versions("churn", cursor=listed.next, limit=10)
    assert [v.version for v in rest.items] == list(range(8, 0, -1)) and rest.next is None


def test_aliases_move_between_versions_and_can_be_removed(store: Store) -> None:
    registry = Registry(store)
    sha = upload(registry)
    registry.create_version("churn", create(sha, alias="champion"))
    registry.create_version("churn", create(sha))
    assert registry.get_model("churn").aliases == {"champion": 1}

    model = registry.set_alias("churn", "champion", 2)
    registry.set_alias("churn", "fallback", 1)
    assert registry.get_model("churn").aliases == {"champion": 2, "fallback": 1}
    assert model.aliases == {"champion": 2}
    assert registry.get_version("churn", 1).aliases == ["fallback"]
    assert registry.get_version("churn", 2).aliases == ["champion"]
    registry.create_version("churn", create(sha, alias="fallback"))  # moves it to 3
    assert registry.get_model("churn").aliases == {"champion": 2, "fallback": 3}

    registry.delete_alias("churn", "champion")
    assert registry.get_model("churn").aliases == {"fallback": 3}
    with pytest.raises(NotFound):
        registry.delete_alias("churn", "champion")
    with pytest.raises(NotFound):
        registry.set_alias("churn", "champion", 9)
    with pytest.raises(ValueError, match="invalid alias"):
        registry.set_alias("churn", "2", 1)


def test_lineage_resolves_once_the_execution_arrives(store: Store) -> None:
    registry, logs = Registry(store), ExecutionLogStore(store)
    sha = upload(registry)
    # The kernel logs and registers before the writer has stored the cell's execution.
    logs.add(LogBatch(msg_id="m-fit", params={"C": 1.0, "kind": "svm"}, metrics={"acc": 0.5}))
    logs.add(LogBatch(msg_id="m-fit", params={"C": 2.0}, metrics={"acc": 0.75}, step=1))
    logs.add(LogBatch(msg_id="m-fit", tags={"stage": "dev"}))
    fingerprint = {"shape": [100, 4], "columns": ["a", "b", "c", "d"], "sha256": "f" * 64}
    v = registry.create_version(
        "iris",
        create(
            sha,
            metrics={"acc": 0.75},
            lineage={"msg_id": "m-fit", "data_fingerprints": [fingerprint]},
        ),
    )
    assert v.lineage.msg_id == "m-fit"
    assert (v.lineage.execution_id, v.lineage.run_id, v.lineage.version_id) == (None, None, None)

    store.ingest_json(
        [run(notebook="train.ipynb"), execution(1, "x = 1", "c1", notebook="train.ipynb"),
         execution(2, "fit()", "c2", notebook="train.ipynb", msg_id="m-fit")]
    )  # fmt: skip
    (r,) = store.list_runs("train.ipynb").items
    executions = store.list_executions(r.id).items
    versions = store.list_versions("train.ipynb").items
    lineage = registry.get_version("iris", 1).lineage
    assert lineage.execution_id == executions[1].id
    assert lineage.run_id == r.id
    assert lineage.notebook == "train.ipynb"
    assert lineage.version_id == next(x.id for x in versions if x.number == executions[1].version)
    assert lineage.version_number == executions[1].version
    assert lineage.data_fingerprints == [fingerprint]

    got = logs.for_execution(executions[1].id)
    assert got.params == {"C": 2.0, "kind": "svm"}  # the latest value wins
    assert [(p.value, p.step) for p in got.metrics["acc"]] == [(0.5, None), (0.75, 1)]
    assert got.tags == {"stage": "dev"}
    assert logs.for_execution(executions[0].id).params == {}
    with pytest.raises(NotFound):
        logs.for_execution(999_999)


def test_registering_without_the_artifact_changes_nothing(store: Store) -> None:
    registry = Registry(store)
    with pytest.raises(ValueError, match="upload the artifact first"):
        registry.create_version("churn", create(MODEL_SHA))
    assert registry.list_models().items == []
    with pytest.raises(NotFound):
        registry.get_model("churn")


def test_versions_can_be_described_and_retagged(store: Store) -> None:
    registry = Registry(store)
    registry.create_version("churn", create(upload(registry), tags={"a": "1"}, description="x"))
    v = registry.update_version("churn", 1, ModelVersionUpdate(tags={"b": "2"}))
    assert (v.tags, v.description) == ({"b": "2"}, "x")
    v = registry.update_version("churn", 1, ModelVersionUpdate(description=None))
    assert (v.tags, v.description) == ({"b": "2"}, None)
    with pytest.raises(NotFound):
        registry.update_version("churn", 2, ModelVersionUpdate(description="y"))


def test_a_corrupt_upload_keeps_nothing(store: Store, tmp_path: Path) -> None:
    registry = Registry(store)
    up = registry.artifacts.upload(MODEL_SHA, 1 << 20)
    up.write(MODEL[:-1] + b"!")
    with pytest.raises(ChecksumMismatch):
        up.finish()
    assert stored_files(tmp_path / "artifacts") == []
    assert registry.artifacts.size(MODEL_SHA) is None


# -- HTTP on a Jupyter server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    srv = JupyterServer(tmp_path_factory.mktemp("registry")).start()
    yield srv
    srv.stop()


def raw_request(url: str, head: str) -> tuple[int, dict[str, Any]]:
    """Send only a request head (e.g. a huge Content-Length); answer the status and JSON body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b"partial body")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
            if b"\r\n\r\n" in reply and reply.rstrip().endswith(b"}"):
                break
    status = int(reply.split(b" ", 2)[1])
    return status, json.loads(reply.split(b"\r\n\r\n", 1)[1])


def test_artifact_upload_is_verified_idempotent_and_downloadable(server: JupyterServer) -> None:
    api = server.api
    artifacts = server.home / "artifacts"
    bad = api.put_artifact(MODEL + b"tampered", MODEL_SHA)
    assert bad.status_code == 400 and bad.json()["error"].startswith("checksum mismatch")
    assert api.request("GET", f"{API}/artifacts/{MODEL_SHA}").status_code == 404
    assert MODEL_SHA not in {p.name for p in stored_files(artifacts)}

    first = api.put_artifact(MODEL)
    assert first.status_code == 201 and first.json() == {"sha256": MODEL_SHA, "size": len(MODEL)}
    assert api.put_artifact(MODEL).status_code == 200  # already stored
    got = api.request("GET", f"{API}/artifacts/{MODEL_SHA}")
    assert got.status_code == 200 and got.content == MODEL
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert "attachment" in got.headers["Content-Disposition"]
    assert not [p for p in stored_files(artifacts) if p.name.startswith("upload-")]

    big = 3 * 1024**3  # over the default 2 GiB: refused from the Content-Length, before any body
    status, body = raw_request(
        server.url,
        f"PUT /{API}/artifacts/{'a' * 64} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: token {server.token}\r\nContent-Length: {big}\r\n\r\n",
    )
    assert status == 413 and body["detail"] == {"limit": 2 * 1024**3}, body


def test_register_and_read_models_over_http(server: JupyterServer) -> None:
    api = server.api
    assert api.put_artifact(MODEL).status_code in (200, 201)
    kernel = server.new_session("train.ipynb")
    client = server.connect(kernel)
    fit = client.execute("score = 0.9", cell_id="fit")
    client.close()

    logged = api.request(
        "POST",
        f"{API}/logs",
        json={"msg_id": fit["msg_id"], "params": {"C": 1}, "metrics": {"acc": 0.9}, "step": 3},
    )
    assert logged.status_code == 201 and logged.json() == {"accepted": 2}

    body = {
        "artifact": MODEL_SHA,
        "flavor": "sklearn",
        "library_versions": {"scikit-learn": "1.9"},
        "signature": {"inputs": [{"name": "a", "type": "double"}]},
        "metrics": {"acc": 0.9},
        "params": {"C": 1, "kernel": "rbf"},
        "tags": {"team": "growth"},
        "description": "first",
        "alias": "champion",
        "lineage": {"msg_id": fit["msg_id"], "data_fingerprints": [{"shape": [10, 1]}]},
    }
    r = api.request("POST", f"{API}/models/churn.v2/versions", json=body)
    assert r.status_code == 201, r.text
    v1 = r.json()
    assert (v1["model"], v1["version"], v1["aliases"]) == ("churn.v2", 1, ["champion"])
    assert v1["artifact_size"] == len(MODEL) and v1["created_by"]
    r = api.request("POST", f"{API}/models/churn.v2/versions", json={**body, "alias": None})
    assert r.json()["version"] == 2

    # The writer stores the execution a moment later; lineage then points at it.
    versions = api.wait_for(
        "models/churn.v2/versions", lambda b: b["items"][-1]["lineage"]["execution_id"]
    )["items"]
    assert [v["version"] for v in versions] == [2, 1]
    lineage = versions[-1]["lineage"]
    execution = api.cellops(f"executions/{lineage['execution_id']}")
    assert execution["msg_id"] == fit["msg_id"] and execution["cell_id"] == "fit"
    assert lineage["run_id"] == execution["run_id"] and lineage["notebook"] == "train.ipynb"
    nb_version = api.cellops(f"versions/{lineage['version_id']}")
    assert nb_version["metadata"]["cellops"]["version"] == execution["version"]
    logs = api.cellops(f"executions/{lineage['execution_id']}/logs")
    assert logs["params"] == {"C": 1} and logs["metrics"]["acc"][0]["step"] == 3

    model = api.cellops("models/churn.v2")
    assert (model["latest_version"], model["aliases"]) == (2, {"champion": 1})
    assert "churn.v2" in [m["name"] for m in api.cellops("models")["items"]]
    r = api.request("PUT", f"{API}/models/churn.v2/aliases/champion", json={"version": 2})
    assert r.status_code == 200 and r.json()["aliases"] == {"champion": 2}
    assert api.request("DELETE", f"{API}/models/churn.v2/aliases/champion").status_code == 204
    assert api.request("DELETE", f"{API}/models/churn.v2/aliases/champion").status_code == 404
    r = api.request("PATCH", f"{API}/models/churn.v2/versions/1", json={"tags": {"ok": "yes"}})
    assert r.status_code == 200 and r.json()["tags"] == {"ok": "yes"}
    assert api.request("GET", f"{API}/models/nope").status_code == 404
    assert api.request("GET", f"{API}/models/churn.v2/versions/7").status_code == 404


def test_logs_keep_the_time_they_were_logged(server: JupyterServer) -> None:
    api = server.api
    client = server.connect(server.new_session("logged-at.ipynb"))
    cell = client.execute("x = 1", cell_id="x")
    client.close()
    logged_at = datetime.now(timezone.utc) - timedelta(hours=3)  # buffered for three hours
    body = {"msg_id": cell["msg_id"], "metrics": {"loss": 0.5}, "at": logged_at.isoformat()}
    r = api.request("POST", f"{API}/logs", json=body)
    assert r.status_code == 201, r.text
    without = api.request(
        "POST", f"{API}/logs", json={"msg_id": cell["msg_id"], "tags": {"t": "1"}}
    )
    assert without.status_code == 201  # older clients send no time: the arrival time is used

    execution = api.wait_for("executions", lambda b: b["items"], notebook="logged-at.ipynb")[
        "items"
    ][0]
    [point] = api.cellops(f"executions/{execution['id']}/logs")["metrics"]["loss"]
    assert datetime.fromisoformat(point["at"]) == logged_at

    # A time ahead of the server's clock (beyond a small skew) is refused, saying why.
    ahead = {**body, "at": (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()}
    r = api.request("POST", f"{API}/logs", json=ahead)
    assert r.status_code == 400 and "in the future" in json.dumps(r.json()), r.text
    r = api.request("POST", f"{API}/logs", json={**body, "at": "yesterday"})
    assert r.status_code == 400 and r.json()["error"]
    after = api.cellops(f"executions/{execution['id']}/logs")["metrics"]["loss"]
    assert len(after) == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "says"),
    [
        ("POST", "models/-bad/versions", {"artifact": MODEL_SHA, "flavor": "sklearn"}, "invalid model name"),
        ("POST", f"models/{'m' * 129}/versions", {"artifact": MODEL_SHA, "flavor": "sklearn"}, "invalid model name"),
        ("GET", "models/bad%20name", None, "invalid model name"),
        ("POST", "models/ok/versions", {"artifact": MODEL_SHA, "flavor": "sklearn", "alias": "9lives"}, "invalid alias"),
        ("PUT", "models/ok/aliases/has.dot", {"version": 1}, "invalid alias"),
        ("POST", "models/ok/versions", {"artifact": "0" * 64, "flavor": "sklearn"}, "upload the artifact first"),
        ("POST", "models/ok/versions", {"artifact": "xyz", "flavor": "sklearn"}, "invalid ModelVersionCreate"),
        ("POST", "models/ok/versions", {"artifact": MODEL_SHA, "flavor": "sklearn", "params": {"x": float("nan")}}, "NaN"),
        ("POST", "logs", {"msg_id": "m", "metrics": {"loss": float("inf")}}, "invalid LogBatch"),
        ("POST", "logs", {"msg_id": "m", "metrics": {"k" * 251: 1.0}}, "invalid LogBatch"),
        ("POST", "logs", {"msg_id": "m", "params": {f"p{i}": i for i in range(1001)}}, "at most 1000"),
        ("POST", "logs", {"params": {"a": 1}}, "invalid LogBatch"),
    ],
)  # fmt: skip
def test_bad_input_gets_400_and_changes_nothing(
    server: JupyterServer, method: str, path: str, body: Any, says: str
) -> None:
    data = None if body is None else json.dumps(body)  # allow NaN/Infinity on the wire
    r = server.api.request(method, f"{API}/{path}", data=data)
    assert r.status_code == 400, r.text
    assert says in json.dumps(r.json()), r.json()
    assert server.api.request("GET", f"{API}/models/ok").status_code == 404


def test_every_registry_route_is_in_the_openapi_document(server: JupyterServer) -> None:
    doc = server.api.cellops("openapi.json")
    expected = {
        "/logs": {"post"},
        "/executions/{execution_id}/logs": {"get"},
        "/artifacts/{sha}": {"get", "put"},
        "/models": {"get"},
        "/models/{name}": {"get", "patch", "delete"},
        "/models/{name}/versions": {"get", "post"},
        "/models/{name}/versions/{version}": {"get", "patch", "delete"},
        "/models/{name}/aliases/{alias}": {"put", "delete"},
    }
    for path, verbs in expected.items():
        assert set(doc["paths"][path]) == verbs, path
    upload = doc["paths"]["/artifacts/{sha}"]["put"]["requestBody"]["content"]
    assert upload == {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
    }
    for model in ("ModelVersion", "Model", "LogBatch", "ExecutionLogs", "ModelVersionCreate"):
        assert model in doc["components"]["schemas"]
    lineage = doc["components"]["schemas"]["Lineage"]["properties"]
    assert {"execution_id", "run_id", "version_id", "data_fingerprints"} <= set(lineage)


# -- HTTP on the team backend ------------------------------------------------------------------

LIMIT = 6 * 1024 * 1024  # above what the forwarder keeps in memory (4 MiB)


class SmallBackend(TeamBackend):
    """`cellops serve --max-artifact-size 6M`."""

    def start(self) -> SmallBackend:
        cmd = [
            sys.executable, "-m", "cellops_server.cli", "serve", "--db", self.db_url,
            "--artifacts", str(self.artifacts), "--port", str(self.port),
            "--max-artifact-size", str(LIMIT),
        ]  # fmt: skip
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/{API}/status", timeout=30, proc=self.proc)
        return self


@pytest.fixture(scope="module")
def team(module_pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmallBackend]:
    backend = SmallBackend(module_pg_url, tmp_path_factory.mktemp("team") / "artifacts")
    backend.tokens = {  # type: ignore[attr-defined]
        "alice": backend.add_user("alice"),
        "vera": backend.add_user("vera", role="viewer"),
    }
    backend.start()
    yield backend
    backend.stop()


def test_team_backend_limits_uploads_and_enforces_roles(team: SmallBackend) -> None:
    alice = team.api(team.tokens["alice"])  # type: ignore[attr-defined]
    vera = team.api(team.tokens["vera"])  # type: ignore[attr-defined]
    data = b"x" * (LIMIT + 1)

    r = alice.put_artifact(data)  # Content-Length over the limit
    assert r.status_code == 413 and r.json()["detail"] == {"limit": LIMIT}

    def chunks() -> Iterator[bytes]:  # no Content-Length: caught while streaming
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    sha = hashlib.sha256(data).hexdigest()
    r = alice.put_artifact(chunks(), sha)  # type: ignore[arg-type]
    assert r.status_code == 413 and r.json()["detail"] == {"limit": LIMIT}, r.text
    assert not [p for p in stored_files(team.artifacts) if p.name in (sha, MODEL_SHA)]
    assert not [p for p in stored_files(team.artifacts) if p.name.startswith("upload-")]

    assert vera.put_artifact(MODEL).status_code == 403
    assert alice.request("GET", f"{API}/artifacts/{MODEL_SHA}").status_code == 404
    assert alice.put_artifact(MODEL).status_code == 201
    body = {"artifact": MODEL_SHA, "flavor": "sklearn"}
    r = vera.request("POST", f"{API}/models/team-model/versions", json=body)
    assert r.status_code == 403
    assert vera.request("GET", f"{API}/models/team-model").status_code == 404
    r = alice.request("POST", f"{API}/models/team-model/versions", json=body)
    assert r.status_code == 201 and r.json()["created_by"] == "alice"
    assert vera.get(f"{API}/models/team-model")["latest_version"] == 1  # viewers read
    r = vera.request("PUT", f"{API}/models/team-model/aliases/prod", json={"version": 1})
    assert r.status_code == 403
    assert vera.request("POST", f"{API}/logs", json={"msg_id": "m"}).status_code == 403
    assert vera.request("GET", f"{API}/artifacts/{MODEL_SHA}").content == MODEL


def test_a_team_member_uploads_and_registers_through_its_jupyter_server(
    team: SmallBackend, tmp_path: Path
) -> None:
    env = {"CELLOPS_BACKEND_URL": team.url, "CELLOPS_TOKEN": team.tokens["alice"]}  # type: ignore[attr-defined]
    member = JupyterServer(tmp_path / "alice", env=env).start()
    try:
        data = bytes(range(256)) * (5 * 4096)  # 5 MiB: streamed through, not held in memory
        sha = hashlib.sha256(data).hexdigest()
        r = member.api.put_artifact(data)  # forwarded, raw body and all
        assert r.status_code == 201, r.text
        assert r.json() == {"sha256": sha, "size": len(data)}
        assert member.api.put_artifact(b"x" * (LIMIT + 1)).status_code == 413
        r = member.api.request(
            "POST",
            f"{API}/models/member-model/versions",
            json={"artifact": sha, "flavor": "sklearn"},
        )
        assert r.status_code == 201, r.text
        got = member.api.request("GET", f"{API}/artifacts/{sha}")
        assert got.status_code == 200 and got.content == data
        assert "attachment" in got.headers["Content-Disposition"]
        missing = member.api.request("GET", f"{API}/artifacts/{'0' * 64}")
        assert missing.status_code == 404 and "no artifact" in missing.json()["error"]
        small = member.api.request("POST", f"{API}/logs", json={"msg_id": "m", "tags": {"a": "b"}})
        assert small.status_code == 201, small.text
        direct = team.api(team.tokens["alice"])  # type: ignore[attr-defined]
        assert direct.get(f"{API}/models/member-model/versions")["items"][0]["artifact"] == sha
    finally:
        member.stop()
