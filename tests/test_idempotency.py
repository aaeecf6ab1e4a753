"""A repeated registration (a double click, a retry after a lost answer) is one version.

The client sends an ``Idempotency-Key`` header with POST /models/{name}/versions; the
store keeps it with the version. Tested on the store (SQLite and PostgreSQL, concurrent
threads), over HTTP in embedded mode and through a team member's forwarder, and from a
kernel whose first answer is lost on the way back.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from cellops_server.registry import Registry
from cellops_server.registry.store import IdempotencyKeyReused
from cellops_server.store import Store

from .support import Api, JupyterServer, TeamBackend
from .test_kernel_library import TRAIN, last_json, run
from .test_registry import MODEL, MODEL_SHA, create, upload

API = "cellops/api/v1"
DUPLICATES = 8


# -- store level (SQLite and PostgreSQL) ----------------------------------------------------


def test_concurrent_duplicates_create_one_version(store: Store) -> None:
    sha = upload(Registry(store))
    key = str(uuid.uuid4())

    def register(_: int) -> tuple[int, bool]:
        version, created = Registry(store).register_version(
            "churn", create(sha, alias="champion"), "ann", None, key
        )
        return version.version, created

    with ThreadPoolExecutor(DUPLICATES) as pool:
        answers = list(pool.map(register, range(DUPLICATES)))
    assert sorted(answers) == [(1, False)] * (DUPLICATES - 1) + [(1, True)]
    registry = Registry(store)
    assert [v.version for v in registry.list_versions("churn").items] == [1]
    assert registry.get_model("churn").aliases == {"champion": 1}

    # A new key is a new registration; the old key with another body is refused.
    assert registry.register_version("churn", create(sha), None, None, "other")[0].version == 2
    with pytest.raises(IdempotencyKeyReused, match="different request"):
        registry.register_version("churn", create(sha, description="changed"), None, None, key)
    with pytest.raises(ValueError, match="Idempotency-Key must be"):
        registry.register_version("churn", create(sha), None, None, "no spaces")
    assert registry.get_model("churn").latest_version == 2


# -- HTTP: embedded and through a team member's Jupyter server ------------------------------


def post_duplicates(api: Api, name: str, body: dict[str, Any], key: str) -> list[Any]:
    """DUPLICATES identical requests at once, as a double click or a retry storm sends them."""

    with ThreadPoolExecutor(DUPLICATES) as pool:
        return list(pool.map(lambda _: register(api, name, body, key), range(DUPLICATES)))


def register(api: Api, name: str, body: dict[str, Any], key: str) -> requests.Response:
    return requests.post(
        f"{api.base}/{API}/models/{name}/versions",
        json=body,
        headers={**api.headers, "Idempotency-Key": key},
        timeout=30,
    )


def check_http_idempotency(api: Api, name: str) -> None:
    assert api.put_artifact(MODEL).status_code in (200, 201)
    body = {"artifact": MODEL_SHA, "flavor": "sklearn"}
    key = str(uuid.uuid4())
    answers = post_duplicates(api, name, body, key)
    # The first creates (201); the others answer the same version without creating (200).
    assert sorted(r.status_code for r in answers) == [200] * (DUPLICATES - 1) + [201]
    assert {r.json()["version"] for r in answers} == {1}
    assert [v["version"] for v in api.cellops(f"models/{name}/versions")["items"]] == [1]

    changed = register(api, name, {**body, "description": "another model"}, key)
    assert changed.status_code == 422, changed.text
    assert "different request" in changed.json()["error"]
    bad = register(api, name, body, "x" * 300)
    assert bad.status_code == 400 and "Idempotency-Key" in bad.json()["error"]
    assert api.cellops(f"models/{name}")["latest_version"] == 1


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    server = JupyterServer(tmp_path_factory.mktemp("embedded")).start()
    yield server
    server.stop()


def test_http_duplicates_create_one_version(embedded: JupyterServer) -> None:
    check_http_idempotency(embedded.api, "http-model")


def test_forwarded_duplicates_create_one_version(module_pg_url: str, tmp_path: Path) -> None:
    backend = TeamBackend(module_pg_url, tmp_path / "artifacts")
    token = backend.add_user("alice")
    backend.start()
    env = {"CELLOPS_BACKEND_URL": backend.url, "CELLOPS_TOKEN": token}
    member = JupyterServer(tmp_path / "alice", env=env).start()
    try:
        check_http_idempotency(member.api, "team-model")
    finally:
        member.stop()
        backend.stop()


# -- the kernel library: a retry after a lost answer ----------------------------------------


class LosingProxy:
    """A TCP proxy to ``target`` that forwards the first model registration to the server
    and then drops its answer (the client sees no response, as after a timeout)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lost = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        with conn, socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
            request = _read_request(conn)
            upstream.sendall(request)
            answer = _read_all(upstream)  # the kernel's client asks for Connection: close
            head = request.split(b"\r\n", 1)[0]
            if head.startswith(b"POST") and b"/versions" in head and not self.lost:
                self.lost += 1  # the server did register it; the client never hears so
                return
            conn.sendall(answer)

    def close(self) -> None:
        self.listener.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_kernel_register_retried_after_a_lost_answer_is_one_version(
    embedded: JupyterServer,
) -> None:
    proxy = LosingProxy(embedded.port)
    client = embedded.connect(embedded.new_session("retry.ipynb"))
    try:
        run(client, TRAIN)
        out = run(
            client,
            f"""
import os
os.environ["CELLOPS_URL"] = "http://127.0.0.1:{proxy.port}/"
os.environ["CELLOPS_TOKEN"] = {embedded.token!r}
from cellops.client import reset_client
reset_client()
mv = cellops.register(LogisticRegression(max_iter=1000).fit(X, y), "retried")
print(json.dumps({{"version": mv.version}}))
""",
        )
        assert last_json(out["stdout"]) == {"version": 1}
        assert proxy.lost == 1  # the first answer really was lost
        listed = embedded.api.cellops("models/retried/versions")["items"]
        assert [v["version"] for v in listed] == [1]
    finally:
        client.close()
        proxy.close()
