"""Webhooks, end to end (issue 13, point 3): a real `cellops serve` on each store, with
private targets allowed by its admin setting, delivering to a real receiver on 127.0.0.1.

Every event type is caused the way a team causes it (register, alias move, review, comment
and reply, deployment, a headless run's records, the drift check's recording of a verdict)
and every delivery's signature is recomputed. Retries, the deliveries log, failure in the
feed, the test button and a backend restart are checked through the API as a user sees
them. Deliveries of one round may arrive in any order: they are compared as sets.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .attacks.conftest import API, ROLES, Team, team_db_url
from .attacks.seed import register
from .records import run
from .support import Api, free_port
from .webhook_receiving import Received, Receiver

SECRET = "webhook-secret-\u00e9"  # non-ASCII: signed as UTF-8
ALL_EVENTS = [
    "run.finished",
    "model_version.created",
    "alias.moved",
    "review.submitted",
    "comment.created",
    "deployment.changed",
    "drift.detected",
]
FAST = ("--webhook-allow-private-targets", "--webhook-backoff", "0.05")
HEADERS = ("X-Cellops-Event", "X-Cellops-Delivery", "X-Cellops-Timestamp", "X-Cellops-Signature")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def start(db_url: str, tmp: Path, *extra: str, tokens: dict[str, str] | None = None) -> Team:
    team = Team(db_url, tmp / "artifacts", extra_args=(*FAST, *extra))
    team.tokens = tokens or {name: team.add_user(name, role) for name, role in ROLES.items()}
    team.start()
    return team


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def team(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Team]:
    tmp = tmp_path_factory.mktemp(f"webhooks-{request.param}")
    backend = start(team_db_url(request, tmp / "cellops.db"), tmp, "--webhook-max-attempts", "3")
    yield backend
    backend.stop()


@pytest.fixture(autouse=True)
def no_webhooks_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test's webhooks are deleted after it: later events are not sent to them."""
    yield
    if "team" not in request.fixturenames:
        return
    team: Team = request.getfixturevalue("team")
    admin = team.as_("admin")
    for hook in admin.get(f"{API}/webhooks")["items"]:
        admin.request("DELETE", f"{API}/webhooks/{hook['id']}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def add_webhook(team: Team, url: str, events: list[str], secret: str = SECRET) -> int:
    r = team.as_("admin").request(
        "POST", f"{API}/webhooks", json={"url": url, "events": events, "secret": secret}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert "secret" not in body and body["events"] and body["created_by"] == "admin"
    return int(body["id"])


def attempts(team: Team, webhook: int) -> list[dict[str, Any]]:
    return team.as_("admin").get(f"{API}/webhooks/{webhook}/deliveries")["items"]


def wait_attempts(team: Team, webhook: int, predicate: Any) -> list[dict[str, Any]]:
    body = team.as_("admin").wait_for(
        f"webhooks/{webhook}/deliveries", lambda b: predicate(b["items"])
    )
    return body["items"]


def ping(team: Team, webhook: int) -> str:
    r = team.as_("admin").request("POST", f"{API}/webhooks/{webhook}/test")
    assert r.status_code == 202, r.text
    return str(r.json()["delivery"])


def assert_signed(received: Received, secret: str = SECRET) -> None:
    for name in HEADERS:
        assert received.headers.get(name), f"{name} missing: {received.headers}"
    assert received.signed_with(secret), f"bad signature on {received.body}"
    assert not received.signed_with(secret + "x")
    assert UUID.match(received.delivery)
    assert abs(int(received.headers["X-Cellops-Timestamp"]) - time.time()) < 120
    body = received.json
    assert set(body) == {"id", "type", "at", "actor", "data"}, body
    assert body["type"] == received.event
    assert received.headers["Content-Type"] == "application/json"


# -- every event type ---------------------------------------------------------------------------


def cause_every_event(team: Team, model: str, drift: Any) -> None:
    alice, ada, cora = team.as_("alice"), team.as_("ada"), team.as_("cora")
    assert register(alice, model).status_code == 201  # model_version.created
    r = alice.request("PUT", f"{API}/models/{model}/aliases/staging", json={"version": 1})
    assert r.status_code == 200, r.text  # alias.moved
    r = ada.request("POST", f"{API}/models/{model}/versions/1/reviews", json={"verdict": "approve"})
    assert r.status_code in (200, 201), r.text  # review.submitted
    target = {"kind": "model_version", "model": model, "version": 1}
    r = cora.request("POST", f"{API}/comments", json={"target": target, "body": "looks good"})
    assert r.status_code == 201, r.text  # comment.created
    reply = {"target": target, "body": "thanks", "parent_id": r.json()["id"]}
    r = alice.request("POST", f"{API}/comments", json=reply)
    assert r.status_code == 201, r.text  # comment.created (a reply)
    deployment = f"{model}-dep"
    body = {"name": deployment, "model": model, "version": 1}
    r = alice.request("POST", f"{API}/deployments", json=body)
    assert r.status_code == 201, r.text  # deployment.changed
    notebook = f"{model}.ipynb"
    record = run(f"{model}-run", notebook, origin="headless", outcome="ok", parameters={"lr": 0.1})
    r = alice.request("POST", f"{API}/ingest", json={"records": [record]})
    assert r.status_code == 200, r.text  # run.finished
    drift(deployment, model)  # drift.detected


@pytest.fixture
def drift(team: Team) -> Iterator[Any]:
    """The drift check's own recording of a verdict (monitoring/drift.py): what a check
    that finds drift writes, without serving requests for a minute."""
    from cellops_server.monitoring.drift import _record_transition
    from cellops_server.schemas import DeploymentDrift
    from cellops_server.store import create_engine

    engine = create_engine(team.db_url)

    def record(deployment: str, model: str) -> None:
        result = DeploymentDrift(deployment=deployment, window=60, drifted=True, versions=[])
        assert _record_transition(engine, deployment, model, result)

    yield record
    engine.dispose()


def test_every_event_type_is_delivered_signed_and_filters_are_kept(
    team: Team, receiver: Receiver, drift: Any
) -> None:
    everything = add_webhook(team, receiver.url, ALL_EVENTS)
    with Receiver() as aliases_only:
        only = add_webhook(team, aliases_only.url, ["alias.moved"])
        model = f"wh-{uuid.uuid4().hex[:6]}"
        cause_every_event(team, model, drift)
        wanted = {*ALL_EVENTS}
        got = receiver.wait_for(lambda rs: {r.event for r in rs} >= wanted and len(rs) >= 8)
        # A fence: once the second webhook got this move, every earlier event was examined
        # for it too.
        r = team.as_("alice").request(
            "PUT", f"{API}/models/{model}/aliases/fence", json={"version": 1}
        )
        assert r.status_code == 200, r.text
        fenced = aliases_only.wait_for(lambda rs: len(rs) >= 2)
        assert {r.event for r in fenced} == {"alias.moved"}
        assert {r.json["data"]["alias"] for r in fenced} == {"staging", "fence"}
        for received in fenced:
            assert_signed(received)
        # The receiver has a request before the dispatcher logs its answer: wait for the log.
        log = wait_attempts(team, only, lambda items: len(items) >= 2)
        assert len(log) == 2 and {a["event"] for a in log} == {"alias.moved"}
    receiver.wait_for(lambda rs: len(rs) >= 9)  # the fence, to the first webhook too
    got = receiver.requests
    for received in got:
        assert_signed(received)
        assert received.path == "/hook"
    by_type: dict[str, list[dict[str, Any]]] = {}
    for received in got:
        by_type.setdefault(received.event, []).append(received.json)
    assert set(by_type) == set(ALL_EVENTS)
    assert len(by_type["comment.created"]) == 2  # the comment and its reply
    created = by_type["model_version.created"][0]
    assert created["actor"] == "alice"
    assert created["data"]["model"] == model and created["data"]["version"] == 1
    moves = {m["data"]["alias"]: m for m in by_type["alias.moved"]}
    assert moves["staging"]["data"]["to"] == 1 and moves["staging"]["data"]["from"] is None
    assert by_type["review.submitted"][0]["data"]["verdict"] == "approve"
    assert by_type["review.submitted"][0]["actor"] == "ada"
    assert {c["actor"] for c in by_type["comment.created"]} == {"cora", "alice"}
    assert by_type["deployment.changed"][0]["data"]["deployment"] == f"{model}-dep"
    assert by_type["drift.detected"][0]["data"]["deployment"] == f"{model}-dep"
    finished = by_type["run.finished"][0]["data"]
    assert finished["outcome"] == "ok" and finished["parameters"] == {"lr": 0.1}
    # One delivery per webhook and event: no event arrived twice.
    ids = [r.json["id"] for r in got]
    assert len(ids) == len(set(ids)) == 9
    log = wait_attempts(team, everything, lambda items: len(items) >= 9)
    assert len(log) == 9 and {a["status"] for a in log} == {"delivered"}
    assert all(a["response_code"] == 200 and a["duration_ms"] > 0 for a in log)
    assert {a["id"] for a in log} == {r.delivery for r in got}
    listed = {w["id"]: w for w in team.as_("admin").get(f"{API}/webhooks")["items"]}
    assert listed[everything]["last_delivery"]["status"] == "delivered"
    assert listed[everything]["last_delivery"]["response_code"] == 200
    for hook in (everything, only):
        assert team.as_("admin").request("DELETE", f"{API}/webhooks/{hook}").status_code == 204


def test_a_new_webhook_does_not_replay_history(team: Team, receiver: Receiver) -> None:
    assert register(team.as_("alice"), f"old-{uuid.uuid4().hex[:6]}").status_code == 201
    hook = add_webhook(team, receiver.url, ["model_version.created"])
    model = f"new-{uuid.uuid4().hex[:6]}"
    assert register(team.as_("alice"), model).status_code == 201
    got = receiver.wait_for(lambda rs: len(rs) >= 1)
    wait_attempts(team, hook, lambda items: len(items) >= 1)
    assert [r.json["data"]["model"] for r in got] == [model]
    assert len(attempts(team, hook)) == 1


# -- retries, failures, the test button -----------------------------------------------------------


def test_retries_after_500_keep_the_delivery_id(team: Team, receiver: Receiver) -> None:
    hook = add_webhook(team, receiver.url, ["alias.moved"])
    receiver.fail = 2
    delivery = ping(team, hook)
    got = receiver.wait_for(lambda rs: len(rs) >= 3)
    log = wait_attempts(team, hook, lambda items: len(items) >= 3)
    assert [r.delivery for r in got] == [delivery] * 3
    assert [r.event for r in got] == ["ping"] * 3
    assert len({r.json["id"] for r in got}) == 1  # the same event, the same body
    assert len({r.body for r in got}) == 1
    for received in got:
        assert_signed(received)
    assert [(a["attempt"], a["status"], a["response_code"]) for a in log] == [
        (3, "delivered", 200),
        (2, "retrying", 500),
        (1, "retrying", 500),
    ]
    assert all(a["id"] == delivery and a["event"] == "ping" for a in log)
    assert all(a["duration_ms"] > 0 for a in log)
    assert log[1]["error"] == "HTTP 500" and log[0]["error"] is None


def test_a_delivery_failing_for_good_shows_in_the_feed(team: Team, receiver: Receiver) -> None:
    hook = add_webhook(team, receiver.url, ["alias.moved"])
    receiver.fail = 1000
    delivery = ping(team, hook)
    log = wait_attempts(team, hook, lambda items: items and items[0]["status"] == "failed")
    assert [a["attempt"] for a in log] == [3, 2, 1]  # webhook_max_attempts
    assert len(receiver.requests) == 3
    feed = team.as_("vera").get(f"{API}/activity")
    failed = [i for i in feed["items"] if i["type"] == "webhook.failed"]
    notice = next(i for i in failed if i["data"]["delivery"] == delivery)
    assert notice["data"] == {
        "webhook": hook,
        "host": "127.0.0.1",
        "event": "ping",
        "delivery": delivery,
        "error": "HTTP 500",
    }
    assert notice["actor"] is None
    # At most one notice a minute per webhook: a second failure adds none.
    second = ping(team, hook)
    wait_attempts(
        team, hook, lambda items: items[0]["id"] == second and items[0]["status"] == "failed"
    )
    feed = team.as_("vera").get(f"{API}/activity")
    assert [i["data"]["delivery"] for i in feed["items"] if i["type"] == "webhook.failed"].count(
        second
    ) == 0


def test_a_4xx_fails_without_retry(team: Team, receiver: Receiver) -> None:
    hook = add_webhook(team, receiver.url + "/missing?x=1", ["alias.moved"])
    receiver.status = 404
    delivery = ping(team, hook)
    log = wait_attempts(team, hook, lambda items: bool(items))
    assert [(a["id"], a["status"], a["response_code"]) for a in log] == [(delivery, "failed", 404)]
    assert [r.path for r in receiver.requests] == ["/hook/missing?x=1"]


def test_webhooks_are_admin_only_and_ids_are_checked(team: Team, receiver: Receiver) -> None:
    hook = add_webhook(team, receiver.url, ["alias.moved"])
    calls = [
        ("GET", "webhooks", None),
        ("POST", "webhooks", {"url": receiver.url, "events": ["alias.moved"], "secret": "x"}),
        ("DELETE", f"webhooks/{hook}", None),
        ("POST", f"webhooks/{hook}/test", None),
        ("GET", f"webhooks/{hook}/deliveries", None),
    ]
    for member in ("alice", "ada", "cora", "vera"):
        for method, path, body in calls:
            r = team.as_(member).request(method, f"{API}/{path}", json=body)
            assert r.status_code == 403, (member, method, path, r.text)
            assert "admin" in r.text
    admin = team.as_("admin")
    assert admin.request("GET", f"{API}/webhooks/999999/deliveries").status_code == 404
    assert admin.request("POST", f"{API}/webhooks/999999/test").status_code == 404
    assert admin.request("DELETE", f"{API}/webhooks/999999").status_code == 404
    r = admin.request("DELETE", f"{API}/webhooks/abc")
    assert r.status_code == 400 and "integer" in r.json()["error"]
    assert admin.request("DELETE", f"{API}/webhooks/{hook}").status_code == 204
    assert hook not in {w["id"] for w in admin.get(f"{API}/webhooks")["items"]}
    assert not receiver.requests


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"url": "ftp://example.com/x", "events": ["alias.moved"], "secret": "s"}, "http"),
        ({"url": "http://example.com/x", "events": [], "secret": "s"}, "at least one"),
        ({"url": "http://example.com/x", "events": ["alias.moved", "nope"], "secret": "s"}, "nope"),
        ({"url": "http://example.com/x", "events": ["alias.moved"], "secret": ""}, "secret"),
        ({"url": "http://example.com/x", "events": ["alias.moved"], "secret": "s" * 257}, "secret"),
        ({"url": "http://example.com/x", "events": ["alias.moved"]}, "secret"),
        ({"url": "http://exa mple.com/", "events": ["alias.moved"], "secret": "s"}, "spaces"),
        ({"url": "http://169.254.169.254/", "events": ["alias.moved"], "secret": "s"}, "metadata"),
    ],
)
def test_bad_registrations_say_what_to_fix(team: Team, body: dict[str, Any], says: str) -> None:
    admin = team.as_("admin")
    before = admin.get(f"{API}/webhooks")["items"]
    r = admin.request("POST", f"{API}/webhooks", json=body)
    assert r.status_code == 400, r.text
    assert says in r.text
    assert set(r.json()) == {"error", "detail"}
    assert admin.get(f"{API}/webhooks")["items"] == before


# -- changing a webhook -------------------------------------------------------------------------


def test_a_changed_webhook_sends_its_new_events_to_its_new_url_with_its_new_secret(
    team: Team, receiver: Receiver
) -> None:
    admin = team.as_("admin")
    with Receiver() as old:
        hook = add_webhook(team, old.url, ["model_version.created"])
        r = admin.request(
            "PATCH",
            f"{API}/webhooks/{hook}",
            json={"url": receiver.url, "events": ["alias.moved"], "secret": "rotated"},
        )
        assert r.status_code == 200, r.text
        changed = r.json()
        assert changed["url"] == receiver.url and changed["events"] == ["alias.moved"]
        assert "secret" not in changed and changed["id"] == hook
        model = f"ch-{uuid.uuid4().hex[:6]}"
        assert register(team.as_("alice"), model).status_code == 201  # no longer subscribed
        r = team.as_("alice").request(
            "PUT", f"{API}/models/{model}/aliases/staging", json={"version": 1}
        )
        assert r.status_code == 200, r.text
        got = receiver.wait_for(lambda rs: len(rs) >= 1)
        wait_attempts(team, hook, lambda items: len(items) >= 1)
        assert not old.requests
    assert [r.event for r in got] == ["alias.moved"]
    assert_signed(got[0], "rotated")
    assert not got[0].signed_with(SECRET)
    # Only the events: the URL and secret are kept.
    r = admin.request("PATCH", f"{API}/webhooks/{hook}", json={"events": ["alias.moved", "ping"]})
    assert r.status_code == 400 and "'ping'" in r.json()["error"]
    r = admin.request(
        "PATCH", f"{API}/webhooks/{hook}", json={"events": ["drift.detected", "alias.moved"]}
    )
    assert r.status_code == 200 and r.json()["url"] == receiver.url
    assert r.json()["events"] == ["alias.moved", "drift.detected"]  # the documented order
    ping(team, hook)
    assert_signed(receiver.wait_for(lambda rs: len(rs) >= 2)[1], "rotated")


def test_a_retry_after_a_change_goes_to_the_new_url_signed_with_the_new_secret(
    team: Team, receiver: Receiver
) -> None:
    admin = team.as_("admin")
    with Receiver() as failing:
        failing.fail = 1000
        failing.hold()  # the first attempt waits for its 500 until the webhook has changed
        hook = add_webhook(team, failing.url, ["alias.moved"])
        delivery = ping(team, hook)
        failing.wait_for(lambda rs: len(rs) >= 1)
        r = admin.request(
            "PATCH", f"{API}/webhooks/{hook}", json={"url": receiver.url, "secret": "second"}
        )
        assert r.status_code == 200, r.text
        failing.release()
        got = receiver.wait_for(lambda rs: len(rs) >= 1)
        assert len(failing.requests) == 1
    assert got[0].delivery == delivery  # the same delivery, retried
    assert_signed(got[0], "second")
    log = wait_attempts(team, hook, lambda items: items and items[0]["status"] == "delivered")
    assert log[0]["id"] == delivery and log[0]["attempt"] >= 2


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "at least one of url, events and secret"),
        ({"url": None, "events": None, "secret": None}, "at least one"),
        ({"url": "ftp://example.com/x"}, "http"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "metadata"),
        ({"events": []}, "at least one of run.finished"),
        ({"events": "alias.moved"}, "events"),
        ({"secret": ""}, "secret"),
        ({"secret": "s" * 257}, "secret"),
        ({"name": "x"}, "name"),
    ],
)
def test_bad_changes_say_what_to_fix_and_change_nothing(
    team: Team, receiver: Receiver, body: dict[str, Any], says: str
) -> None:
    admin = team.as_("admin")
    hook = add_webhook(team, receiver.url, ["alias.moved"])
    before = admin.get(f"{API}/webhooks")["items"]
    r = admin.request("PATCH", f"{API}/webhooks/{hook}", json=body)
    assert r.status_code == 400, r.text
    assert says in r.text
    assert admin.get(f"{API}/webhooks")["items"] == before
    ping(team, hook)
    assert_signed(receiver.wait_for(lambda rs: len(rs) >= 1)[0])  # the old secret still signs


def test_only_an_admin_changes_a_webhook(team: Team, receiver: Receiver) -> None:
    hook = add_webhook(team, receiver.url, ["alias.moved"])
    for member in ("alice", "ada", "cora", "vera"):
        r = team.as_(member).request(
            "PATCH", f"{API}/webhooks/{hook}", json={"url": "http://127.0.0.1:1/steal"}
        )
        assert r.status_code == 403 and "admin" in r.text, (member, r.text)
    admin = team.as_("admin")
    r = admin.request("PATCH", f"{API}/webhooks/999999", json={"secret": "x"})
    assert r.status_code == 404
    r = admin.request("PATCH", f"{API}/webhooks/abc", json={"secret": "x"})
    assert r.status_code == 400 and "integer" in r.json()["error"]
    assert [w["url"] for w in admin.get(f"{API}/webhooks")["items"]] == [receiver.url]


# -- durability -----------------------------------------------------------------------------------


def test_no_event_is_lost_across_a_backend_restart(db_url: str, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet: every attempt fails to connect
    url = f"http://127.0.0.1:{port}/hook"
    team = start(db_url, tmp_path, "--webhook-max-attempts", "50")
    try:
        hook = add_webhook(team, url, ["model_version.created", "alias.moved"])
        names = [f"durable-{i}" for i in range(5)]
        for name in names:
            assert register(team.as_("alice"), name).status_code == 201
        wait_attempts(team, hook, lambda items: len({a["id"] for a in items}) == 5)
        assert {a["status"] for a in attempts(team, hook)} == {"retrying"}
    finally:
        team.stop()
    team = start(db_url, tmp_path, tokens=team.tokens)
    try:
        with Receiver(port) as receiver:
            got = receiver.wait_for(lambda rs: len({r.delivery for r in rs}) >= 5)
            assert {r.json["data"]["model"] for r in got} == set(names)
            for received in got:
                assert_signed(received)
            # Each event arrives; more than once only if an attempt was cut by the stop.
            log = wait_attempts(
                team, hook, lambda items: sum(a["status"] == "delivered" for a in items) == 5
            )
            assert {a["id"] for a in log} == {r.delivery for r in got}
    finally:
        team.stop()


def test_a_deleted_webhook_gets_nothing_more(team: Team, receiver: Receiver) -> None:
    hook = add_webhook(team, receiver.url, ["model_version.created"])
    assert team.as_("admin").request("DELETE", f"{API}/webhooks/{hook}").status_code == 204
    watcher = add_webhook(team, receiver.url + "?other=1", ["model_version.created"])
    assert register(team.as_("alice"), f"after-{uuid.uuid4().hex[:6]}").status_code == 201
    got = receiver.wait_for(lambda rs: len(rs) >= 1)
    wait_attempts(team, watcher, lambda items: len(items) >= 1)
    assert [r.path for r in got] == ["/hook?other=1"]


def test_a_silent_receiver_does_not_block_the_action(team: Team, receiver: Receiver) -> None:
    """A receiver that never answers costs the action nothing: the alias move returns at
    once while the attempt is still pending."""
    silent = _SilentServer()
    try:
        hook = add_webhook(team, silent.url, ["alias.moved"])
        model = f"slow-{uuid.uuid4().hex[:6]}"
        alice: Api = team.as_("alice")
        assert register(alice, model).status_code == 201
        started = time.monotonic()
        r = alice.request("PUT", f"{API}/models/{model}/aliases/staging", json={"version": 1})
        took = time.monotonic() - started
        assert r.status_code == 200, r.text
        silent.accepted.wait(20)
        assert silent.accepted.is_set(), "the dispatcher never connected"
        assert took < 2.0, took
        assert not attempts(team, hook)  # still in flight
    finally:
        silent.close()


class _SilentServer:
    """Accepts connections and never answers."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.accepted = threading.Event()
        self.conns: list[Any] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


# -- embedded mode --------------------------------------------------------------------------------


def test_an_embedded_jupyter_server_delivers_too(tmp_path: Path) -> None:
    """The Jupyter server extension runs the dispatcher on its own store; the setting is a
    CellopsConfig trait there, and the Jupyter user is the admin."""
    from .support import JupyterServer, running

    server = JupyterServer(
        tmp_path, extra_args=["--CellopsConfig.webhook_allow_private_targets=True"]
    )
    with running(server), Receiver() as receiver:
        api = server.api
        r = api.request(
            "POST",
            f"{API}/webhooks",
            json={"url": receiver.url, "events": ["model_version.created"], "secret": SECRET},
        )
        assert r.status_code == 201, r.text
        hook = r.json()["id"]
        assert register(api, "embedded-model").status_code == 201
        got = receiver.wait_for(lambda rs: len(rs) >= 1)
        assert_signed(got[0])
        assert got[0].json["data"]["model"] == "embedded-model"
        delivery = api.request("POST", f"{API}/webhooks/{hook}/test").json()["delivery"]
        pinged = receiver.wait_for(lambda rs: len(rs) >= 2)
        assert pinged[1].delivery == delivery and pinged[1].event == "ping"


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--webhook-max-attempts", "0"),
        ("--webhook-max-attempts", "many"),
        ("--webhook-timeout", "-1"),
        ("--webhook-backoff", "nan"),
    ],
)
def test_bad_webhook_settings_are_refused(tmp_path: Path, flag: str, value: str) -> None:
    from .support import cellops_cli

    done = cellops_cli("serve", "--db", f"sqlite:///{tmp_path / 'x.db'}", flag, value)
    assert done.returncode == 2, done.stderr
    assert flag in done.stderr and repr(value) in done.stderr
    assert not (tmp_path / "x.db").exists()  # refused before anything was created
