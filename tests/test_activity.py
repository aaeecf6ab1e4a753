"""Live updates: GET /events answers a long poll as soon as records are stored or models change."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from cellops_server.activity import ActivityHub

from .support import Api, JupyterServer, run_coroutine

API = "cellops/api/v1"


def test_hub_answers_waiters_on_publish_and_tells_late_clients_to_reset() -> None:
    async def scenario() -> None:
        hub = ActivityHub()
        assert (await hub.wait(None, 5)).last == 0
        waiter = asyncio.ensure_future(hub.wait(0, 5))
        await asyncio.sleep(0.05)
        assert not waiter.done()  # nothing yet: it waits
        hub.publish([""])  # nothing named: nobody is woken
        await asyncio.sleep(0.05)
        assert not waiter.done()
        hub.publish(["a.ipynb", "a.ipynb", "b.ipynb", ""])
        reply = await asyncio.wait_for(waiter, 1)
        assert [(e.seq, e.type, e.notebooks) for e in reply.events] == [
            (1, "executions", ["a.ipynb", "b.ipynb"])
        ]
        assert (await hub.wait(1, 0)).events == []  # up to date, no wait
        assert [e.type for e in (await hub.wait(7, 0)).events] == ["reset"]  # server restarted

    run_coroutine(scenario())


def test_model_events_name_the_models_and_share_the_sequence() -> None:
    async def scenario() -> None:
        hub = ActivityHub()
        hub.publish(["a.ipynb"])
        waiter = asyncio.ensure_future(hub.wait(1, 5))
        hub.publish_models([""])  # nothing named: nobody is woken
        await asyncio.sleep(0.05)
        assert not waiter.done()
        hub.publish_models(["iris", "churn", "iris"])
        reply = await asyncio.wait_for(waiter, 1)
        assert [(e.seq, e.type, e.notebooks, e.models) for e in reply.events] == [
            (2, "models", [], ["churn", "iris"])
        ]
        first = (await hub.wait(0, 0)).events[0]
        assert (first.type, first.models) == ("executions", [])

    run_coroutine(scenario())


# One server for the module: every test reads ``last`` first, so earlier events do not matter.
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    srv = JupyterServer(tmp_path_factory.mktemp("activity")).start()
    yield srv
    srv.stop()


def test_a_long_poll_returns_when_the_cells_record_is_stored(server: JupyterServer) -> None:
    last = server.api.cellops("events")["last"]
    client = server.connect(server.new_session("live.ipynb"))
    answers: list[tuple[float, dict]] = []
    readable_at: list[float] = []

    def follow() -> None:
        """Poll as the sidebar does: each answer names the notebook; reload, poll again from
        its ``last``, until the reload shows the cell (the run may be announced first)."""
        cursor = last
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            params = {"after": cursor, "timeout": 20}
            body = server.api.request("GET", f"{API}/events", params=params).json()
            answers.append((time.monotonic(), body))
            if not body["events"]:
                return  # a timeout: nothing was announced
            items = server.api.cellops("executions", notebook="live.ipynb")["items"]
            if items and items[0]["code"] == "x = 1" and items[0]["status"] == "ok":
                readable_at.append(time.monotonic())
                return
            cursor = body["last"]

    poller = threading.Thread(target=follow)
    poller.start()
    time.sleep(0.3)
    assert not answers, "the poll answered before anything happened"
    client.execute("x = 1", cell_id="c1")
    finished = time.monotonic()
    poller.join(25)
    client.close()
    assert answers and all(
        "live.ipynb" in body["events"][-1]["notebooks"] for _, body in answers
    ), answers
    assert readable_at, "no event was followed by the cell's execution being readable"
    assert readable_at[0] - finished < 2.0, "the event came long after the cell finished"


def test_bad_event_queries_get_400(server: JupyterServer) -> None:
    for params in ({"after": "x"}, {"after": -1}, {"timeout": 99}):
        r = server.api.request("GET", f"{API}/events", params=params)
        assert r.status_code == 400, params
        assert "must be" in r.json()["error"]
    last = server.api.cellops("events")["last"]
    quick = server.api.request("GET", f"{API}/events", params={"after": last, "timeout": 0})
    assert quick.status_code == 200 and quick.json()["events"] == []


def upload_artifact(api: Api, data: bytes) -> str:
    r = api.put_artifact(data)
    assert r.status_code in (200, 201), r.text
    return hashlib.sha256(data).hexdigest()


def woken_by(
    listener: Api, change: Callable[[], requests.Response]
) -> tuple[dict[str, Any], float]:
    """Hold a long poll on ``listener`` (as a waiting sidebar does), make ``change``; answer
    the poll's reply and how long after the change it came."""
    last = listener.cellops("events")["last"]
    answers: list[tuple[float, dict[str, Any]]] = []

    def poll() -> None:
        r = listener.request("GET", f"{API}/events", params={"after": last, "timeout": 20})
        answers.append((time.monotonic(), r.json()))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    assert not answers, "the poll answered before anything changed"
    response = change()
    assert response.status_code < 300, response.text
    changed = time.monotonic()
    poller.join(20)
    assert answers, "the poll was not answered"
    answered_at, body = answers[0]
    return body, answered_at - changed


def test_registry_changes_wake_a_waiting_models_tab(server: JupyterServer) -> None:
    api = server.api
    sha = upload_artifact(api, b"a model of the activity test")
    model = f"{API}/models/live-iris"
    changes: list[tuple[str, Callable[[], requests.Response]]] = [
        ("register", lambda: api.request("POST", f"{model}/versions", json={"artifact": sha, "flavor": "sklearn"})),
        ("describe", lambda: api.request("PATCH", f"{model}/versions/1", json={"description": "first"})),
        ("set alias", lambda: api.request("PUT", f"{model}/aliases/champion", json={"version": 1})),
        ("remove alias", lambda: api.request("DELETE", f"{model}/aliases/champion")),
    ]  # fmt: skip
    for what, change in changes:
        body, latency = woken_by(api, change)
        assert [(e["type"], e["models"], e["notebooks"]) for e in body["events"]] == [
            ("models", ["live-iris"], [])
        ], what
        assert latency < 2.0, f"{what}: the event came {latency:.1f}s after the change"
    # What the events announced can be read now.
    assert api.cellops("models/live-iris")["aliases"] == {}
    assert api.cellops("models/live-iris/versions")["items"][0]["description"] == "first"


def test_a_refused_change_wakes_nobody(server: JupyterServer) -> None:
    last = server.api.cellops("events")["last"]
    r = server.api.request("DELETE", f"{API}/models/nobody/aliases/champion")
    assert r.status_code == 404
    assert server.api.cellops("events", after=last, timeout=0)["events"] == []
