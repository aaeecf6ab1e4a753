"""The team's activity feed, each member's inbox, /me and /users, and the hub's shared
numbering (what lets replicas agree on a client's cursor)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from cellops_server.activity import KEEP, ActivityHub
from cellops_server.review.activity import record_activity
from cellops_server.review.feed import activity_page, inbox_page, mark_read
from cellops_server.schemas import ActivityEvent
from cellops_server.store import Store
from cellops_server.store.tables import inbox
from cellops_server.team.notify import MAX_PAYLOAD, decode, encode

from . import records
from .support import Api, JupyterServer, TeamBackend, run_coroutine

API = "cellops/api/v1"

# -- the hub with externally numbered events (team/notify.py delivers them) -------------------


class Numbering:
    """Stands in for PostgreSQL: numbers what the hub sends and delivers it back."""

    def __init__(self, hub: ActivityHub, start: int = 0) -> None:
        self.hub, self.seq = hub, start
        hub.sink = self.send

    def send(self, event: ActivityEvent) -> None:
        self.seq += 1
        self.hub.deliver(event.model_copy(update={"seq": self.seq}))


def test_a_hub_with_a_sink_takes_the_shared_numbers_and_resets_whoever_is_behind() -> None:
    async def scenario() -> None:
        hub = ActivityHub()
        hub.resume_at(40)  # the listener connected: numbers up to 40 were before this replica
        Numbering(hub, 40)
        assert [e.type for e in hub.since(12)] == ["reset"]  # missed 13..40: reload
        assert hub.since(40) == []
        hub.publish_models(["iris"])
        assert [(e.seq, e.models) for e in hub.since(40)] == [(41, ["iris"])]
        hub.deliver(ActivityEvent(seq=41, type="models", notebooks=[], at=hub.since(40)[0].at))
        assert len(hub.since(40)) == 1  # a repeat is ignored
        # The listener lost its connection and came back at 50: 42..50 are unknown here.
        hub.resume_at(50)
        assert [e.type for e in hub.since(41)] == ["reset"]
        assert hub.since(50) == [] and hub.last == 50

    run_coroutine(scenario())


def test_a_poll_a_little_ahead_waits_for_this_replica_to_catch_up() -> None:
    async def scenario() -> None:
        hub = ActivityHub()
        hub.resume_at(10)
        hub.sink = lambda event: None  # numbered elsewhere
        waiter = asyncio.ensure_future(hub.wait(11, 5))  # seen on another replica already
        await asyncio.sleep(0.05)
        assert not waiter.done()
        at = (await hub.wait(None, 0)).events or []
        assert at == []
        event = ActivityEvent(seq=11, type="comments", notebooks=["a.ipynb"], at=_now())
        hub.deliver(event)
        hub.deliver(event.model_copy(update={"seq": 12}))
        reply = await asyncio.wait_for(waiter, 2)
        assert [e.seq for e in reply.events] == [12]

    run_coroutine(scenario())


def test_events_dropped_from_memory_reset_clients_that_are_that_far_behind() -> None:
    async def scenario() -> None:
        hub = ActivityHub()
        for n in range(KEEP + 5):
            hub.publish_models([f"m{n}"])
        assert [e.type for e in hub.since(4)] == ["reset"]
        assert len(hub.since(5)) == KEEP

    run_coroutine(scenario())


def test_a_notification_too_large_becomes_a_reset_and_garbage_is_ignored() -> None:
    big = ActivityEvent(seq=0, type="executions", notebooks=["n" * 1000] * 20, at=_now())
    payload = encode(big)
    assert len(payload.encode()) <= MAX_PAYLOAD
    event = decode(f"7:{payload}")
    assert event is not None and (event.seq, event.type) == (7, "reset")
    small = ActivityEvent(seq=0, type="activity", notebooks=[], users=["bob"], at=_now())
    again = decode(f"8:{encode(small)}")
    assert again is not None and (again.seq, again.users) == (8, ["bob"])
    for junk in ("", "x:{}", "9:not json", '10:{"type": "evil"}'):
        assert decode(junk) is None


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- the feed and the inbox on both stores -------------------------------------------------------


def _record(store: Store, type: str, actor: str, notify: Sequence[tuple[str, str]] = ()) -> int:
    with store.engine.begin() as conn:
        return record_activity(conn, type, actor, model="churn", version=1, notify=notify)


def test_feed_pages_newest_first_and_mine_is_what_concerns_the_caller(store: Store) -> None:
    ids = [
        _record(store, "model_version.created", "alice"),
        _record(store, "comment.created", "bob", [("alice", "mention")]),
        _record(store, "review.requested", "carol", [("dave", "review_request")]),
        _record(store, "alias.moved", "carol"),
    ]
    first = activity_page(store.engine, "alice", mine=False, cursor=None, limit=3)
    assert [i.id for i in first.items] == ids[::-1][:3] and first.next
    rest = activity_page(store.engine, "alice", mine=False, cursor=first.next, limit=3)
    assert [i.id for i in rest.items] == [ids[0]] and rest.next is None
    mine = activity_page(store.engine, "alice", mine=True, cursor=None, limit=50)
    assert [i.id for i in mine.items] == [ids[1], ids[0]]  # her mention, her version
    assert mine.items[1].model == "churn" and mine.items[1].version == 1


def test_inbox_is_the_callers_own_and_only_their_items_are_marked_read(store: Store) -> None:
    _record(store, "comment.created", "bob", [("alice", "mention"), ("bob", "mention")])
    _record(store, "review.requested", "bob", [("alice", "review_request"), ("dave", "review_request")])  # fmt: skip
    alices = inbox_page(store.engine, "alice", 50)
    assert (alices.unread, [i.reason for i in alices.items]) == (2, ["review_request", "mention"])
    assert inbox_page(store.engine, "bob", 50).items == []  # never notified of their own act
    daves = inbox_page(store.engine, "dave", 50)
    # alice sends dave's item id with one of hers (and ids that exist nowhere): only hers change.
    changed = mark_read(
        store.engine, "alice", [daves.items[0].id, alices.items[1].id, 2**62, 2**80]
    )
    assert changed == 1
    assert inbox_page(store.engine, "dave", 50).unread == 1
    after = inbox_page(store.engine, "alice", 50)
    assert (after.unread, [i.read for i in after.items]) == (1, [False, True])
    assert mark_read(store.engine, "alice", [alices.items[1].id]) == 0  # already read
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(inbox)) == 3


def test_a_run_first_stored_is_in_the_feed_once(store: Store) -> None:
    store.ingest_json(
        [records.run("r1", "feed.ipynb"), records.execution(1, "x", "c1", "r1", "feed.ipynb")]
    )
    store.ingest_json([records.run("r1", "feed.ipynb", ended_at=records.T0.isoformat())])
    feed = activity_page(store.engine, "ada", mine=True, cursor=None, limit=50).items
    assert [(i.type, i.actor, i.notebook) for i in feed] == [("run.started", "ada", "feed.ipynb")]
    assert feed[0].data["run_id"] == store.list_runs().items[0].id


# -- over HTTP: a team backend with members, and an embedded server ----------------------------


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TeamBackend, dict[str, Api]]]:
    tmp = tmp_path_factory.mktemp("feed")
    backend = TeamBackend(f"sqlite:///{tmp / 'team.db'}", tmp / "artifacts")
    roles = {"alice": "editor", "bob": "approver", "vera": "viewer"}
    apis = {name: backend.api(backend.add_user(name, role)) for name, role in roles.items()}
    backend.start()
    yield backend, apis
    backend.stop()


def test_me_and_users_in_team_mode(team: tuple[TeamBackend, dict[str, Api]]) -> None:
    _, apis = team
    assert apis["vera"].cellops("me") == {"name": "vera", "role": "viewer"}
    users = apis["vera"].cellops("users")["items"]
    assert users == [
        {"name": "alice", "role": "editor"},
        {"name": "bob", "role": "approver"},
        {"name": "vera", "role": "viewer"},
    ]
    assert Api(apis["vera"].base, "cellops_wrong").request("GET", f"{API}/me").status_code == 401


def test_activity_and_inbox_over_http(team: tuple[TeamBackend, dict[str, Api]]) -> None:
    backend, apis = team
    alice, bob, vera = apis["alice"], apis["bob"], apis["vera"]
    batch = [records.run("http-run", "team.ipynb"), records.execution(1, "x = 1", run_key="http-run", notebook="team.ipynb")]  # fmt: skip
    assert alice.request("POST", f"{API}/ingest", json={"records": batch}).status_code == 200
    feed = vera.cellops("activity")  # a viewer reads the team's feed
    assert feed["items"][0]["type"] == "run.started" and feed["items"][0]["actor"] == "alice"
    assert vera.cellops("activity", mine="true")["items"] == []
    assert alice.cellops("activity", mine="1")["items"][0]["notebook"] == "team.ipynb"
    # Something reaches bob's inbox (written as the comment and review handlers do).
    store = Store(backend.db_url, str(backend.artifacts))
    try:
        with store.engine.begin() as conn:
            record_activity(conn, "comment.created", "alice", notify=[("bob", "mention")])
    finally:
        store.close()
    box = bob.cellops("inbox")
    assert box["unread"] == 1 and box["items"][0]["activity"]["actor"] == "alice"
    last = bob.cellops("events")["last"]
    # vera (a viewer may mark her own inbox) cannot mark bob's item read.
    r = vera.request("POST", f"{API}/inbox/read", json={"ids": [box["items"][0]["id"]]})
    assert r.status_code == 200 and r.json() == {"items": [], "unread": 0}
    assert bob.cellops("inbox")["unread"] == 1
    r = bob.request("POST", f"{API}/inbox/read", json={"ids": [box["items"][0]["id"]]})
    assert r.status_code == 200 and r.json()["unread"] == 0 and r.json()["items"][0]["read"]
    # bob's other tabs hear of it: an activity event naming him.
    events = bob.cellops("events", after=last, timeout=2)["events"]
    assert [(e["type"], e["users"]) for e in events] == [("activity", ["bob"])]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "activity?mine=maybe", None, 400),
        ("GET", "activity?cursor=bm90LW91cnM", None, 400),
        ("GET", "activity?cursor=" + "A" * 600, None, 400),
        ("GET", "activity?limit=0", None, 400),
        ("GET", "inbox?limit=100000", None, 400),
        ("POST", "inbox/read", {"ids": "all"}, 400),
        ("POST", "inbox/read", {"ids": [0]}, 400),
        ("POST", "inbox/read", {"ids": list(range(1, 1002))}, 400),
        ("POST", "inbox/read", {"ids": [1], "user": "bob"}, 400),
    ],
)
def test_bad_input_gets_a_400_that_says_what_to_fix(
    team: tuple[TeamBackend, dict[str, Api]], method: str, path: str, body: object, status: int
) -> None:
    _, apis = team
    r = apis["alice"].request(method, f"{API}/{path}", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]


def test_me_and_users_embedded(tmp_path: Path) -> None:
    server = JupyterServer(tmp_path).start()
    try:
        me = server.api.cellops("me")
        assert me["role"] == "admin" and me["name"]
        assert server.api.cellops("users")["items"] == [me]
        assert server.api.cellops("activity")["items"] == []
        assert server.api.cellops("inbox") == {"items": [], "unread": 0}
    finally:
        server.stop()
