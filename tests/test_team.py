"""The team backend (`cellops serve`) on PostgreSQL, with two users' Jupyter servers."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cellops_server.api.routes import LOCAL_ONLY

from .routes import concrete_routes
from .support import JupyterServer, TeamBackend

API = "cellops/api/v1"


def start_backend(db_url: str, tmp: Path) -> TeamBackend:
    team = TeamBackend(db_url, tmp / "artifacts")
    team.tokens = {  # type: ignore[attr-defined]
        "alice": team.add_user("alice"),
        "bob": team.add_user("bob"),
        "vera": team.add_user("vera", role="viewer"),
    }
    return team.start()


@pytest.fixture(scope="module")
def shared_backend(
    module_pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TeamBackend]:
    """One backend for the tests that only read it or are refused by it."""
    team = start_backend(module_pg_url, tmp_path_factory.mktemp("team"))
    yield team
    team.stop()


@pytest.fixture
def backend(pg_url: str, tmp_path: Path) -> Iterator[TeamBackend]:
    """A backend of the test's own (it gets stopped, or must start empty)."""
    team = start_backend(pg_url, tmp_path)
    yield team
    team.stop()


def member(backend: TeamBackend, tmp_path: Path, name: str) -> JupyterServer:
    env = {"CELLOPS_BACKEND_URL": backend.url, "CELLOPS_TOKEN": backend.tokens[name]}  # type: ignore[attr-defined]
    return JupyterServer(tmp_path / name, env=env).start()


def test_two_users_on_one_backend_see_each_others_runs(
    backend: TeamBackend, tmp_path: Path
) -> None:
    alice, bob = member(backend, tmp_path, "alice"), member(backend, tmp_path, "bob")
    try:
        # Bob's sidebar long-polls through his own server; Alice's cell wakes it.
        last = bob.api.cellops("events")["last"]
        bob_hears: list[dict] = []
        poll = threading.Thread(
            target=lambda: bob_hears.append(
                bob.api.cellops("events", after=last, timeout=20)  # forwarded to the backend
            )
        )
        poll.start()
        a = alice.connect(alice.new_session("churn.ipynb"))
        a.execute("model = 'alice'", cell_id="a1")
        a.execute("1 / 0", cell_id="a2")
        b = bob.connect(bob.new_session("pricing.ipynb"))
        b.execute("model = 'bob'", cell_id="b1")
        a.close()
        b.close()
        poll.join(25)
        assert any("churn.ipynb" in e["notebooks"] for e in bob_hears[0]["events"])

        for viewer in (alice, bob):  # each through their own Jupyter server (forwarding)
            notebooks = viewer.api.wait_for("notebooks", lambda body: len(body["items"]) == 2)
            assert {n["path"] for n in notebooks["items"]} == {"churn.ipynb", "pricing.ipynb"}
            runs = viewer.api.cellops("runs")["items"]
            assert {(r["notebook"], r["user"]) for r in runs} == {
                ("churn.ipynb", "alice"),
                ("pricing.ipynb", "bob"),
            }
        churn = next(
            r for r in alice.api.cellops("runs")["items"] if r["notebook"] == "churn.ipynb"
        )
        items = bob.api.wait_for(
            f"runs/{churn['id']}/executions", lambda body: len(body["items"]) == 2
        )["items"]
        assert [(e["code"], e["status"]) for e in items] == [
            ("model = 'alice'", "ok"),
            ("1 / 0", "error"),
        ]
        assert items[1]["error"]["ename"] == "ZeroDivisionError"
        assert alice.api.cellops("status")["mode"] == "team-client"

        # Restoring writes into the requesting user's own Jupyter server.
        version = bob.api.cellops("versions", notebook="churn.ipynb")["items"][-1]["id"]
        r = bob.api.request("POST", f"{API}/versions/{version}/restore", json={})
        assert r.status_code == 201, r.text
        assert (bob.root / r.json()["path"]).exists()
        assert not (alice.root / r.json()["path"]).exists()
    finally:
        alice.stop()
        bob.stop()


def test_a_members_models_tab_hears_a_version_registered_by_another(
    backend: TeamBackend, tmp_path: Path
) -> None:
    bob = member(backend, tmp_path, "bob")
    # Alice registers from her own machine (her kernel's forwarding is tested with the registry).
    alice = backend.api(backend.tokens["alice"])  # type: ignore[attr-defined]
    try:
        # Bob's sidebar long-polls through his own server (forwarded to the backend).
        last = bob.api.cellops("events")["last"]
        bob_hears: list[dict] = []
        poll = threading.Thread(
            target=lambda: bob_hears.append(bob.api.cellops("events", after=last, timeout=20))
        )
        poll.start()
        data = b"alice's model"
        sha = hashlib.sha256(data).hexdigest()
        up = alice.put_artifact(data)
        assert up.status_code == 201, up.text
        r = alice.request(
            "POST",
            f"{API}/models/shared-iris/versions",
            json={"artifact": sha, "flavor": "sklearn"},
        )
        assert r.status_code == 201, r.text
        poll.join(20)
        assert [(e["type"], e["models"]) for e in bob_hears[0]["events"]] == [
            ("models", ["shared-iris"])
        ]
        versions = bob.api.cellops("models/shared-iris/versions")["items"]
        assert [(v["version"], v["created_by"]) for v in versions] == [(1, "alice")]
    finally:
        bob.stop()


@pytest.mark.parametrize(("method", "path"), concrete_routes(exclude=LOCAL_ONLY))
def test_every_backend_route_needs_a_valid_token(
    shared_backend: TeamBackend, method: str, path: str
) -> None:
    url = f"{shared_backend.url}/{API}/{path}"
    missing = requests.request(method, url, timeout=10)
    assert missing.status_code == 401 and "token" in missing.json()["error"]
    wrong = requests.request(method, url, headers={"Authorization": "token nope"}, timeout=10)
    assert wrong.status_code == 401


def test_roles_are_enforced_by_the_backend(shared_backend: TeamBackend) -> None:
    viewer = shared_backend.api(shared_backend.tokens["vera"])  # type: ignore[attr-defined]
    assert viewer.request("GET", f"{API}/notebooks").status_code == 200
    r = viewer.request("POST", f"{API}/ingest", json={"records": []})
    assert r.status_code == 403 and "not authorized" in r.json()["error"]


def test_bad_ingest_bodies_get_400_and_store_nothing(backend: TeamBackend) -> None:
    editor = backend.api(backend.tokens["alice"])  # type: ignore[attr-defined]
    for body in ({"records": [{"kind": "execution", "msg_id": "x"}]}, {"rows": []}, [1, 2]):
        r = editor.request("POST", f"{API}/ingest", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"].startswith("invalid")
    r = editor.request("POST", f"{API}/ingest", data=b"not json")
    assert r.status_code == 400
    assert editor.get(f"{API}/notebooks")["items"] == []


def test_tracking_spools_while_the_backend_is_down(backend: TeamBackend, tmp_path: Path) -> None:
    alice = member(backend, tmp_path, "alice")
    try:
        backend.stop()
        client = alice.connect(alice.new_session("offline.ipynb"))
        for i in range(5):
            assert (
                client.execute(f"x = {i}", cell_id="c")["reply"]["status"] == "ok"
            )  # cells still run
        client.close()
        status = alice.api.wait_for(
            "status", lambda s: s["spool_pending"] > 0 and s["backend_reachable"] is False
        )
        assert "unreachable" in status["last_error"]
        r = alice.api.request("GET", f"{API}/runs")
        assert r.status_code == 502 and "unreachable" in r.json()["error"]

        backend.start()  # same port, same database
        alice.api.wait_for("status", lambda s: s["spool_pending"] == 0 and s["backend_reachable"])
        run = alice.api.wait_for("runs", lambda b: b["items"], notebook="offline.ipynb")["items"][0]
        codes = [e["code"] for e in alice.api.cellops(f"runs/{run['id']}/executions")["items"]]
        assert codes == [f"x = {i}" for i in range(5)]  # all of them, in order
    finally:
        alice.stop()


def test_a_wrong_token_keeps_records_spooled_and_says_why(
    shared_backend: TeamBackend, tmp_path: Path
) -> None:
    env = {"CELLOPS_BACKEND_URL": shared_backend.url, "CELLOPS_TOKEN": "revoked"}
    server = JupyterServer(tmp_path / "revoked", env=env).start()
    try:
        client = server.connect(server.new_session("x.ipynb"))
        client.execute("1", cell_id="c")
        client.close()
        status = server.api.wait_for("status", lambda s: s["last_error"] is not None)
        assert "401" in status["last_error"] and status["spool_pending"] > 0
    finally:
        server.stop()
