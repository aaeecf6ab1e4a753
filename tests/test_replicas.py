"""Two `cellops serve` replicas on one PostgreSQL: an event written through one wakes the
long polls held by the other (LISTEN/NOTIFY), and an ``after`` cursor means the same on both."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from . import records
from .support import Api, TeamBackend

LISTENER = "cellops events listener"  # team/notify.py's connection

API = "cellops/api/v1"


class Replicas:
    def __init__(self, a: TeamBackend, b: TeamBackend, token: str, db_url: str) -> None:
        self.a, self.b, self.token, self.db_url = a, b, token, db_url

    def api(self, backend: TeamBackend) -> Api:
        return backend.api(self.token)


@pytest.fixture(scope="module")
def replicas(module_pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    tmp = tmp_path_factory.mktemp("replicas")
    a = TeamBackend(module_pg_url, tmp / "artifacts")
    b = TeamBackend(module_pg_url, tmp / "artifacts")  # one artifact store, as in production
    token = a.add_user("ada", "admin")
    a.start()
    b.start()
    yield Replicas(a, b, token, module_pg_url)
    a.stop()
    b.stop()


def last(api: Api) -> int:
    return api.cellops("events")["last"]


def long_poll(api: Api, after: int, timeout: int = 10) -> tuple[dict[str, Any], float]:
    """GET /events?after= as a sidebar holds it; answers the reply and when it came."""
    r = api.request("GET", f"{API}/events", params={"after": after, "timeout": timeout})
    assert r.status_code == 200, r.text
    return r.json(), time.monotonic()


class Poll(threading.Thread):
    """A long poll held open in the background (the other member's sidebar)."""

    def __init__(self, api: Api, after: int) -> None:
        super().__init__(daemon=True)
        self.api, self.after = api, after
        self.reply: dict[str, Any] | None = None
        self.answered_at = 0.0
        self.started_at = time.monotonic()

    def run(self) -> None:
        self.reply, self.answered_at = long_poll(self.api, self.after)


def held_poll(replicas: Replicas, backend: TeamBackend, after: int) -> Poll:
    """A long poll on ``backend`` that has been waiting a moment (not answered yet)."""
    poll = Poll(replicas.api(backend), after)
    poll.start()
    # Nothing outside shows a poll being held; it must still be open after a moment.
    time.sleep(0.3)
    assert poll.reply is None, f"answered before anything happened: {poll.reply}"
    return poll


def models_events(reply: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The models events of a reply (a registration may also grow the activity feed)."""
    return [(e["type"], e["models"]) for e in reply["events"] if e["type"] != "activity"]


def register(api: Api, model: str) -> None:
    data = uuid.uuid4().bytes
    assert api.put_artifact(data).status_code in (200, 201)
    body = {"artifact": hashlib.sha256(data).hexdigest(), "flavor": "sklearn"}
    r = api.request("POST", f"{API}/models/{model}/versions", json=body)
    assert r.status_code == 201, r.text


def test_a_model_registered_through_a_wakes_a_long_poll_on_b_within_a_second(
    replicas: Replicas,
) -> None:
    a, b = replicas.api(replicas.a), replicas.api(replicas.b)
    cursor = last(a)
    assert last(b) == cursor  # one numbering: both replicas are at the same event
    poll = held_poll(replicas, replicas.b, cursor)
    model = f"churn-{uuid.uuid4().hex[:6]}"
    written_at = time.monotonic()
    register(a, model)
    poll.join(5)
    assert poll.reply is not None, "B's long poll was not woken"
    assert poll.answered_at - written_at < 1.0, poll.answered_at - written_at
    assert models_events(poll.reply) == [("models", [model])]
    assert poll.reply["events"][0]["seq"] == cursor + 1


def test_a_cursor_from_one_replica_is_valid_on_the_other(replicas: Replicas) -> None:
    a, b = replicas.api(replicas.a), replicas.api(replicas.b)
    start = last(a)
    first, second = f"m1-{uuid.uuid4().hex[:6]}", f"m2-{uuid.uuid4().hex[:6]}"
    register(a, first)
    reply_a, _ = long_poll(a, start)  # the client reads the first event from A...
    assert models_events(reply_a) == [("models", [first])]
    register(b, second)
    # ...and its next poll lands on B behind the load balancer: it gets what followed,
    # not a reset, and not the first event again.
    reply_b, _ = long_poll(b, reply_a["last"])
    assert models_events(reply_b) == [("models", [second])]
    # Both replicas hold both events, numbered alike.
    assert long_poll(a, start)[0]["events"] == long_poll(b, start)[0]["events"]


def test_stored_records_through_b_wake_a(replicas: Replicas) -> None:
    a, b = replicas.api(replicas.a), replicas.api(replicas.b)
    poll = held_poll(replicas, replicas.a, last(a))
    notebook = f"live-{uuid.uuid4().hex[:6]}.ipynb"
    run_key = f"run-{uuid.uuid4().hex}"
    batch = [records.run(run_key, notebook), records.execution(1, "x = 1", "c1", run_key, notebook)]
    written_at = time.monotonic()
    r = b.request("POST", f"{API}/ingest", json={"records": batch})
    assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
    poll.join(5)
    assert poll.reply is not None and poll.answered_at - written_at < 1.0
    assert [(e["type"], e["notebooks"]) for e in poll.reply["events"]] == [
        ("executions", [notebook])
    ]
    # The run's start is in the team's feed, read through either replica.
    feed = a.cellops("activity")["items"]
    assert feed[0]["type"] == "run.started" and feed[0]["notebook"] == notebook


def test_a_cursor_from_the_future_resets_but_one_a_moment_ahead_waits(
    replicas: Replicas,
) -> None:
    b = replicas.api(replicas.b)
    now = last(b)
    reply, _ = long_poll(b, now + 1000, timeout=3)  # not ours (another database?): reload
    assert [e["type"] for e in reply["events"]] == ["reset"] and reply["last"] == now
    # A cursor one event ahead (seen on the other replica a moment earlier) is answered
    # with what follows it once this replica hears of it, not with a reset.
    ahead = Poll(b, now + 1)
    ahead.start()
    time.sleep(0.2)
    a = replicas.api(replicas.a)
    register(a, f"m-{uuid.uuid4().hex[:6]}")
    register(a, f"m-{uuid.uuid4().hex[:6]}")
    ahead.join(5)
    assert ahead.reply is not None
    seqs = [e["seq"] for e in ahead.reply["events"]]
    assert seqs and seqs[0] == now + 2 and "reset" not in str(ahead.reply), ahead.reply


def test_a_replica_that_loses_its_listening_connection_reconnects_and_resets_clients(
    replicas: Replicas,
) -> None:
    a, b = replicas.api(replicas.a), replicas.api(replicas.b)
    before = last(b)
    # Cut both replicas' listening connections, as a network cut would.
    with psycopg.connect(replicas.db_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database()",
            (LISTENER,),
        ).fetchone()
    assert killed and killed[0] >= 2, killed
    register(a, f"m-{uuid.uuid4().hex[:6]}")  # published while (maybe) nobody listened
    # Once B listens again, events keep coming; a client that may have missed one resets.
    deadline = time.monotonic() + 10
    while True:
        reply, _ = long_poll(b, before, timeout=1)
        types = [e["type"] for e in reply["events"]]
        if types:
            break
        assert time.monotonic() < deadline, "B never caught up after losing its connection"
    assert "models" in types or types == ["reset"], types
    poll = held_poll(replicas, replicas.b, reply["last"])
    register(a, model := f"m-{uuid.uuid4().hex[:6]}")
    poll.join(5)
    assert poll.reply is not None
    assert models_events(poll.reply) == [("models", [model])]


def test_each_replica_logs_no_error(replicas: Replicas) -> None:
    for backend in (replicas.a, replicas.b):
        log = Path(backend.log_path).read_text()
        assert "Traceback" not in log, log[-3000:]


def test_sqlite_backend_keeps_its_events_in_process(tmp_path: Path) -> None:
    backend = TeamBackend(f"sqlite:///{tmp_path / 'team.db'}", tmp_path / "artifacts")
    api = backend.api(backend.add_user("ada", "admin"))
    backend.start()
    try:
        assert last(api) == 0
        register(api, "iris")
        reply, _ = long_poll(api, 0, timeout=2)
        assert (reply["events"][0]["seq"], reply["events"][0]["type"]) == (1, "models")
    finally:
        backend.stop()
