"""Attacks on a team client's forwarder: a member's Jupyter server passes /cellops/api/v1 to
the team backend with the member's token, and relays the backend's live events."""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from typing import Any

import pytest
import requests

from ..support import Api, JupyterServer
from .conftest import API, Team

# Each reaches the backend as a name it refuses; decoded before forwarding, each reached
# another resource: %0A was dropped (`iris`), %3F and %23 cut the path, %2F split it.
ENCODED = ["iris%0A", "iris%3Fx", "iris%23x", "iris%2Fx", "%2e%2e"]
FLOOD = 150  # long polls held at once through one member's server


@pytest.fixture(scope="module")
def iris(team: Team) -> Api:
    """The model `iris` (versions 1 and 2, alias champion -> 1), registered by alice."""
    api = team.as_("alice")
    data = b"the iris model"
    assert api.put_artifact(data).status_code in (200, 201)
    body = {"artifact": hashlib.sha256(data).hexdigest(), "flavor": "custom"}
    for _ in range(2):
        assert api.request("POST", f"{API}/models/iris/versions", json=body).status_code == 201
    set_champion(api, 1)
    return api


def set_champion(api: Api, version: int) -> None:
    r = api.request("PUT", f"{API}/models/iris/aliases/champion", json={"version": version})
    assert r.status_code == 200, r.text


def send(
    server: JupyterServer, method: str, target: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    """One request with ``target`` on the request line exactly as written here."""
    conn = http.client.HTTPConnection(host_of(server.url), timeout=30)
    headers = dict(server.api.headers)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, target, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def test_percent_encoded_names_reach_the_backend_as_sent(
    team: Team, alice: JupyterServer, iris: Api
) -> None:
    targets = [f"models/{bad}/aliases/champion" for bad in ENCODED]
    targets += [f"models/iris/aliases/{bad.replace('iris', 'champion')}" for bad in ENCODED]
    for target in targets:
        for method, body in (("DELETE", None), ("PUT", {"version": 2})):
            status, answer = send(alice, method, f"/{API}/{target}", body)
            # The backend's own name check (or lookup) answered, about the name as sent.
            assert status in (400, 404), (method, target, status, answer)
            assert "no such endpoint" not in answer["error"], (method, target, answer)
            assert iris.get(f"{API}/models/iris")["aliases"] == {"champion": 1}, (method, target)
    assert [m["name"] for m in iris.get(f"{API}/models")["items"]] == ["iris"]


def test_removing_an_alias_through_the_forwarder_answers_204(
    alice: JupyterServer, iris: Api
) -> None:
    try:
        r = alice.api.request("DELETE", f"{API}/models/iris/aliases/champion")
        assert (r.status_code, r.content) == (204, b"")
        assert iris.get(f"{API}/models/iris")["aliases"] == {}
    finally:
        set_champion(iris, 1)


def test_a_flood_of_long_polls_does_not_starve_other_forwarded_requests(
    team: Team, alice: JupyterServer, iris: Api
) -> None:
    """150 sidebars wait on /events through one member's server; other requests stay fast
    (they waited 20 s, then 502, while each poll held a backend connection), and one
    change on the backend wakes every poll. (It leaves champion at 2: a change back would
    still be on its way to the member when the next test reads `last`.)"""
    last = alice.api.cellops("events")["last"]
    polls = [http.client.HTTPConnection(host_of(alice.url), timeout=40) for _ in range(FLOOD)]
    try:
        for poll in polls:
            poll.request("GET", f"/{API}/events?after={last}&timeout=20", headers=alice.api.headers)
        # Sent after every poll: answered once the server has taken them all in.
        timed_get(alice, "models/iris", timeout=10)
        latencies = [timed_get(alice, "models/iris", timeout=5) for _ in range(10)]
        set_champion(team.as_("bob"), 2)
        replies = [poll.getresponse() for poll in polls]
        bodies = [json.loads(reply.read()) for reply in replies]
    finally:
        for poll in polls:
            poll.close()
    assert max(latencies) < 1.0, latencies
    assert {reply.status for reply in replies} == {200}
    for body in bodies:
        assert [(e["type"], e["models"]) for e in body["events"]] == [("models", ["iris"])]


def timed_get(member: JupyterServer, path: str, timeout: float) -> float:
    started = time.monotonic()
    r = requests.get(f"{member.url}/{API}/{path}", headers=member.api.headers, timeout=timeout)
    assert r.status_code == 200, r.text
    return time.monotonic() - started


def host_of(url: str) -> str:
    return url.removeprefix("http://")


def test_waiting_polls_hear_a_reset_when_the_backend_comes_back(
    team: Team, alice: JupyterServer, iris: Api
) -> None:
    """The backend restarts under a waiting sidebar: the poll is answered with `reset`
    (reload everything) once the backend is back, not with an error, and live events
    flow again. Last in the module: it restarts the module's backend."""
    last = alice.api.cellops("events")["last"]
    poll = http.client.HTTPConnection(host_of(alice.url), timeout=60)
    poll.request("GET", f"/{API}/events?after={last}&timeout=20", headers=alice.api.headers)
    alice.api.cellops("status")  # a round trip after the poll was sent: it is waiting now
    team.stop()
    try:
        down = events_once_the_relay_lost_the_backend(alice, last)
        assert down.status_code == 502 and "unreachable" in down.json()["error"]
    finally:
        team.start()  # same port, same database
    answer = poll.getresponse()
    reply = json.loads(answer.read())
    poll.close()
    assert answer.status == 200 and [e["type"] for e in reply["events"]] == ["reset"], reply

    set_champion(team.as_("bob"), 1)
    woken = alice.api.cellops("events", after=reply["last"], timeout=20)
    assert [(e["type"], e["models"]) for e in woken["events"]] == [("models", ["iris"])]


def events_once_the_relay_lost_the_backend(
    member: JupyterServer, after: int, timeout: float = 10.0
) -> requests.Response:
    """Ask for events (without waiting) until the answer is not 200: the backend is gone."""
    deadline = time.monotonic() + timeout
    while True:
        r = member.api.request("GET", f"{API}/events", params={"after": after, "timeout": 0})
        if r.status_code != 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.1)
