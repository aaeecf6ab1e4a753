"""Live updates: GET /events answers a long poll as soon as records are stored."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cellops_server.activity import ActivityHub

from .support import JupyterServer

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

    asyncio.run(scenario())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[JupyterServer]:
    srv = JupyterServer(tmp_path).start()
    yield srv
    srv.stop()


def test_a_long_poll_returns_when_the_cells_record_is_stored(server: JupyterServer) -> None:
    last = server.api.cellops("events")["last"]
    client = server.connect(server.new_session("live.ipynb"))
    answers: list[tuple[float, dict]] = []

    def poll() -> None:
        r = server.api.request("GET", f"{API}/events", params={"after": last, "timeout": 20})
        answers.append((time.monotonic(), r.json()))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    assert not answers, "the poll answered before anything happened"
    client.execute("x = 1", cell_id="c1")
    finished = time.monotonic()
    poller.join(20)
    client.close()
    answered_at, body = answers[0]
    assert body["events"] and "live.ipynb" in body["events"][-1]["notebooks"]
    assert answered_at - finished < 2.0, "the event came long after the cell finished"
    # What the event announced can be read now.
    items = server.api.cellops("executions", notebook="live.ipynb")["items"]
    assert items and items[0]["code"] == "x = 1"


def test_bad_event_queries_get_400(server: JupyterServer) -> None:
    for params in ({"after": "x"}, {"after": -1}, {"timeout": 99}):
        r = server.api.request("GET", f"{API}/events", params=params)
        assert r.status_code == 400, params
        assert "must be" in r.json()["error"]
    quick = server.api.request("GET", f"{API}/events", params={"after": 0, "timeout": 0})
    assert quick.status_code == 200 and quick.json()["events"] == []
