"""Issue 11, comments: threads on cells, executions, runs and model versions.

The team (admin, alice and bob editors, ada approver, cora commenter, vera viewer) talks
through one real `cellops serve` on SQLite and on PostgreSQL; cells are recorded through
its ingest endpoint as members' Jupyter servers do. An embedded Jupyter server (a real
kernel running real cells) checks the single-user case, and alice's own Jupyter server in
team-client mode checks that a cell comment names *her* notebook when teammates have one
at the same path.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from . import records as rec
from .attacks.conftest import API, Team, member_server
from .attacks.seed import register
from .support import Api, JupyterServer


def tag() -> str:
    return uuid.uuid4().hex[:8]


def record(team: Team, member: str, path: str, cells: list[tuple[str, str]]) -> str:
    """``member`` runs ``cells`` (cell id, code) in a new kernel session on ``path``;
    answers the run's key."""
    key = f"run-{tag()}"
    batch: list[dict[str, Any]] = [rec.run(key, path, user=member, kernel_id=f"k-{key}")]
    batch += [
        rec.execution(seq, code, cell, key, path, msg_id=f"{key}-{seq}")
        for seq, (cell, code) in enumerate(cells, 1)
    ]
    r = team.as_(member).request("POST", f"{API}/ingest", json={"records": batch})
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    return key


def cell(path: str, cell_id: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "cell", "notebook": path, "cell_id": cell_id, **extra}


def post(api: Api, target: dict[str, Any], body: str, **extra: Any) -> requests.Response:
    params = {"notebook": target["notebook"]} if target["kind"] == "cell" else {}
    payload = {"target": target, "body": body, **extra}
    return api.request("POST", f"{API}/comments", params=params, json=payload)


def posted(api: Api, target: dict[str, Any], body: str, **extra: Any) -> dict[str, Any]:
    r = post(api, target, body, **extra)
    assert r.status_code == 201, r.text
    return r.json()


def listed(api: Api, **params: Any) -> list[dict[str, Any]]:
    return api.get(f"{API}/comments", **params)["items"]


def patch(api: Api, comment_id: int, **body: Any) -> requests.Response:
    return api.request("PATCH", f"{API}/comments/{comment_id}", json=body)


def inbox(api: Api) -> list[dict[str, Any]]:
    return api.get(f"{API}/inbox")["items"]


def counts(api: Api, path: str) -> dict[str, tuple[int, int]]:
    items = api.get(f"{API}/comments/counts", notebook=path)["items"]
    return {i["cell_id"]: (i["total"], i["unresolved"]) for i in items}


@pytest.fixture(scope="module")
def notebook(team: Team) -> str:
    """alice's notebook with cells c1 and c2 run once."""
    path = f"nb-{tag()}/analysis.ipynb"
    record(team, "alice", path, [("c1", "x = 1"), ("c2", "y = x + 1")])
    return path


# -- writing and reading ----------------------------------------------------------------------


def test_a_cell_comment_mentions_a_teammate_who_finds_it_in_the_inbox(
    team: Team, notebook: str
) -> None:
    alice, bob = team.as_("alice"), team.as_("bob")
    body = "Why **x = 1**? @bob please look; @nobody is not a user, nor is `@ada` in code."
    c = posted(alice, cell(notebook, "c1"), body)
    assert (c["author"], c["body"], c["mentions"]) == ("alice", body, ["bob"])
    # The comment is anchored to the code the cell ran (its sha256, as the store keys code).
    ran = hashlib.sha256(b"x = 1").hexdigest()
    assert c["target"] == cell(notebook, "c1", owner="alice", code_sha=ran)
    assert (c["parent_id"], c["resolved"], c["outdated"], c["deleted"]) == (
        None,
        False,
        False,
        False,
    )
    assert "<strong>x = 1</strong>" in c["html"]
    assert '<span class="cellops-mention">@bob</span>' in c["html"]
    assert "@nobody" in c["html"] and 'mention">@nobody' not in c["html"]
    assert "<code>@ada</code>" in c["html"]

    item = next(i for i in inbox(bob) if i["activity"]["comment_id"] == c["id"])
    assert item["reason"] == "mention" and not item["read"]
    assert item["activity"]["type"] == "comment.created"
    assert item["activity"]["notebook"] == notebook
    assert item["activity"]["data"]["excerpt"].startswith("Why **x = 1**?")
    # Nobody else was told; the author is never notified of her own comment.
    for other in ("ada", "alice", "cora"):
        assert all(i["activity"]["comment_id"] != c["id"] for i in inbox(team.as_(other)))

    assert [x["id"] for x in listed(bob, notebook=notebook, cell="c1")] == [c["id"]]


def test_replies_join_the_thread_and_tell_its_first_author(team: Team, notebook: str) -> None:
    alice, bob, cora = team.as_("alice"), team.as_("bob"), team.as_("cora")
    root = posted(alice, cell(notebook, "c2"), "Is this the right join?")
    reply = posted(bob, cell(notebook, "c2"), "I think so", parent_id=root["id"])
    # A reply to a reply attaches to the thread's first comment: threads are one level.
    nested = posted(cora, cell(notebook, "c2"), "agreed with bob", parent_id=reply["id"])
    assert (reply["parent_id"], nested["parent_id"]) == (root["id"], root["id"])

    thread = listed(alice, notebook=notebook, cell="c2")
    assert [(x["id"], x["parent_id"]) for x in thread] == [
        (root["id"], None),
        (reply["id"], root["id"]),
        (nested["id"], root["id"]),
    ]
    reasons = {i["activity"]["comment_id"]: i["reason"] for i in inbox(alice)}
    assert reasons[reply["id"]] == reasons[nested["id"]] == "reply"


def test_a_comment_is_outdated_once_its_cells_code_changes(team: Team) -> None:
    path = f"nb-{tag()}/outdated.ipynb"
    record(team, "alice", path, [("c1", "a = 1"), ("c2", "b = 2")])
    alice = team.as_("alice")
    on_c1 = posted(alice, cell(path, "c1"), "a looks off")
    on_c2 = posted(alice, cell(path, "c2"), "b is fine")
    before_run = posted(alice, cell(path, "c9"), "a cell nobody ran yet")
    assert before_run["outdated"] is False  # accepted: people comment before running

    record(team, "alice", path, [("c1", "a = 10"), ("c2", "b = 2")])  # c1 changed, c2 did not
    state = {x["id"]: x["outdated"] for x in listed(alice, notebook=path)}
    assert state == {on_c1["id"]: True, on_c2["id"]: False, before_run["id"]: False}

    fresh = posted(alice, cell(path, "c1"), "on the new code")
    assert fresh["outdated"] is False
    record(team, "alice", path, [("c1", "a = 1")])  # back to the old code
    state = {x["id"]: x["outdated"] for x in listed(alice, notebook=path, cell="c1")}
    assert state == {on_c1["id"]: False, fresh["id"]: True}


def test_counts_per_cell_follow_resolving_and_reopening(team: Team) -> None:
    path = f"nb-{tag()}/counts.ipynb"
    record(team, "alice", path, [("c1", "a = 1"), ("c2", "b = 2")])
    alice, cora = team.as_("alice"), team.as_("cora")
    first = posted(alice, cell(path, "c1"), "one")
    posted(cora, cell(path, "c1"), "reply", parent_id=first["id"])
    posted(alice, cell(path, "c1"), "two")
    posted(alice, cell(path, "c2"), "three")
    assert counts(alice, path) == {"c1": (3, 2), "c2": (1, 1)}

    # A commenter resolves a thread; the record says who.
    r = patch(cora, first["id"], resolved=True)
    assert r.status_code == 200, r.text
    assert (r.json()["resolved"], r.json()["resolved_by"]) == (True, "cora")
    assert counts(alice, path) == {"c1": (3, 1), "c2": (1, 1)}
    r = patch(alice, first["id"], resolved=False)
    assert (r.json()["resolved"], r.json()["resolved_by"]) == (False, None)
    assert counts(alice, path) == {"c1": (3, 2), "c2": (1, 1)}
    assert counts(alice, f"nb-{tag()}/never-ran.ipynb") == {}


def test_resolving_is_a_threads_not_a_replys(team: Team, notebook: str) -> None:
    alice = team.as_("alice")
    root = posted(alice, cell(notebook, "c1"), "thread")
    reply = posted(team.as_("bob"), cell(notebook, "c1"), "reply", parent_id=root["id"])
    r = patch(alice, reply["id"], resolved=True)
    assert r.status_code == 400 and f"comment {root['id']}" in r.json()["error"]


def test_only_the_author_edits_and_new_mentions_are_notified(team: Team, notebook: str) -> None:
    alice, bob = team.as_("alice"), team.as_("bob")
    c = posted(alice, cell(notebook, "c1"), "first words, @bob")
    for who in ("bob", "admin"):  # not even an admin puts words in alice's mouth
        r = patch(team.as_(who), c["id"], body="rewritten")
        assert r.status_code == 403 and "only its author (alice)" in r.json()["error"]
    r = patch(alice, c["id"], body="better words, @bob and @ada")
    assert r.status_code == 200, r.text
    edited = r.json()
    assert edited["body"] == "better words, @bob and @ada" and edited["edited_at"]
    assert edited["mentions"] == ["bob", "ada"]
    assert 'mention">@ada</span>' in edited["html"]
    assert listed(bob, notebook=notebook, cell="c1")[-1]["body"] == edited["body"]

    ada_items = [i for i in inbox(team.as_("ada")) if i["activity"]["comment_id"] == c["id"]]
    assert [(i["reason"], i["activity"]["type"]) for i in ada_items] == [
        ("mention", "comment.edited")
    ]
    bob_items = [i for i in inbox(bob) if i["activity"]["comment_id"] == c["id"]]
    assert len(bob_items) == 1  # already told when the comment was written
    # The feed quotes the comment as it is now, everywhere.
    assert bob_items[0]["activity"]["data"]["excerpt"] == "better words, @bob and @ada"


def test_deleting_leaves_a_tombstone_only_while_there_are_replies(
    team: Team, notebook: str
) -> None:
    alice, bob = team.as_("alice"), team.as_("bob")
    root = posted(alice, cell(notebook, "c2"), "secret-ish words @bob")
    reply = posted(bob, cell(notebook, "c2"), "a reply", parent_id=root["id"])

    r = bob.request("DELETE", f"{API}/comments/{root['id']}")
    assert r.status_code == 403 and "or an admin" in r.json()["error"]
    assert alice.request("DELETE", f"{API}/comments/{root['id']}").status_code == 204
    thread = {x["id"]: x for x in listed(bob, notebook=notebook, cell="c2")}
    tomb = thread[root["id"]]
    assert (tomb["deleted"], tomb["body"], tomb["html"], tomb["mentions"]) == (True, "", "", [])
    assert thread[reply["id"]]["body"] == "a reply"
    # The feed and bob's inbox keep the id, never the words.
    told = next(i for i in inbox(bob) if i["activity"]["comment_id"] == root["id"])
    assert "secret" not in str(told["activity"]["data"])
    # The tombstone can't be edited; replying to its thread still works.
    assert patch(alice, root["id"], body="back").status_code == 404

    # An admin deletes anyone's comment; the last reply takes the tombstone with it.
    assert team.as_("admin").request("DELETE", f"{API}/comments/{reply['id']}").status_code == 204
    remaining = {x["id"] for x in listed(bob, notebook=notebook, cell="c2")}
    assert not remaining & {root["id"], reply["id"]}
    assert patch(alice, root["id"], resolved=True).status_code == 404


# -- targets ----------------------------------------------------------------------------------


def test_comments_on_an_execution_a_run_and_a_model_version(team: Team) -> None:
    path = f"nb-{tag()}/targets.ipynb"
    key = record(team, "alice", path, [("c1", "fit()")])
    alice, bob = team.as_("alice"), team.as_("bob")
    run = alice.get(f"{API}/runs", notebook=path)["items"][0]
    execution = alice.get(f"{API}/executions", notebook=path)["items"][0]
    model = f"m-{tag()}"
    assert register(alice, model).status_code == 201

    on_run = posted(alice, {"kind": "run", "id": run["id"]}, "run note")
    on_exec = posted(bob, {"kind": "execution", "id": execution["id"]}, "exec note")
    target = {"kind": "model_version", "model": model, "version": 1}
    on_model = posted(bob, target, "ship it? @alice")
    reply = posted(alice, target, "after review", parent_id=on_model["id"])

    assert [x["id"] for x in listed(bob, run=run["id"])] == [on_run["id"]]
    assert [x["id"] for x in listed(bob, execution=execution["id"])] == [on_exec["id"]]
    assert [x["id"] for x in listed(bob, model=model, version=1)] == [on_model["id"], reply["id"]]
    assert listed(bob, model=model, version=1)[0]["target"] == target
    assert on_exec["target"] == {"kind": "execution", "id": execution["id"]}
    # Cell lists hold cell comments only.
    assert listed(bob, notebook=path) == []
    assert key  # the run is alice's

    # A deleted version is gone for comments too.
    assert register(alice, model).status_code == 201
    r = alice.request("DELETE", f"{API}/models/{model}/versions/2")
    assert r.status_code == 204, r.text
    r = post(bob, {**target, "version": 2}, "too late")
    assert r.status_code == 404 and "no version 2" in r.json()["error"]
    r = bob.request("GET", f"{API}/comments", params={"model": model, "version": 2})
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ({"kind": "execution", "id": 2_000_000_000}, "no execution with id 2000000000"),
        ({"kind": "run", "id": 2_000_000_000}, "no run with id 2000000000"),
        ({"kind": "model_version", "model": "no-such-model", "version": 1}, "no model named"),
        ({"kind": "cell", "notebook": "nowhere/none.ipynb", "cell_id": "c1"}, "no notebook"),
    ],
)
def test_a_target_that_does_not_exist_is_a_404(
    team: Team, target: dict[str, Any], error: str
) -> None:
    r = post(team.as_("alice"), target, "hello")
    assert r.status_code == 404 and error in r.json()["error"], r.text
    assert r.json()["detail"] is None or isinstance(r.json()["detail"], dict)


def test_reading_needs_exactly_one_target(team: Team, notebook: str) -> None:
    bob = team.as_("bob")
    for params in (
        {},
        {"notebook": notebook, "run": "1"},
        {"cell": "c1"},
        {"model": "m"},
        {"version": "1"},
        {"execution": "1", "version": "1"},
    ):
        r = bob.request("GET", f"{API}/comments", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["error"]
    assert listed(bob, notebook=f"nb-{tag()}/nothing-recorded.ipynb") == []


def test_a_notebook_pages_by_id_oldest_first(team: Team) -> None:
    path = f"nb-{tag()}/paging.ipynb"
    record(team, "alice", path, [("c1", "a = 1")])
    alice = team.as_("alice")
    ids = [posted(alice, cell(path, "c1"), f"n{i}")["id"] for i in range(5)]
    first = alice.get(f"{API}/comments", notebook=path, limit=3)
    assert [x["id"] for x in first["items"]] == ids[:3] and first["next"] == ids[2]
    rest = alice.get(f"{API}/comments", notebook=path, limit=3, after=first["next"])
    assert [x["id"] for x in rest["items"]] == ids[3:] and rest["next"] is None
    r = alice.request("GET", f"{API}/comments", params={"notebook": path, "limit": 2001})
    assert r.status_code == 400 and "2000" in r.json()["error"]


# -- roles and live updates --------------------------------------------------------------------


def test_a_viewer_reads_but_does_not_comment_and_a_commenter_does(
    team: Team, notebook: str
) -> None:
    vera, cora = team.as_("vera"), team.as_("cora")
    c = posted(cora, cell(notebook, "c1"), "a commenter's note")
    assert any(x["id"] == c["id"] for x in listed(vera, notebook=notebook))
    assert counts(vera, notebook)["c1"][0] >= 1
    r = post(vera, cell(notebook, "c1"), "a viewer's note")
    assert r.status_code == 403 and r.json()["error"]
    for method, body in (("PATCH", {"resolved": True}), ("DELETE", None)):
        r = vera.request(method, f"{API}/comments/{c['id']}", json=body)
        assert r.status_code == 403, (method, r.text)
    assert listed(vera, notebook=notebook, cell="c1")[-1]["resolved"] is False


def wait_for_event(api: Api, after: int, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
    """The first event after ``after`` that ``predicate`` accepts (long polls, no sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = api.get(f"{API}/events", after=after, timeout=5)
        for event in reply["events"]:
            if predicate(event):
                return event
        after = reply["last"]
    raise AssertionError("no such event")


def test_a_comment_wakes_long_polls_with_its_notebook_and_whom_it_told(
    team: Team, notebook: str
) -> None:
    bob = team.as_("bob")
    last = bob.get(f"{API}/events")["last"]
    posted(team.as_("alice"), cell(notebook, "c1"), "ping @bob")
    wait_for_event(bob, last, lambda e: e["type"] == "comments" and notebook in e["notebooks"])
    wait_for_event(bob, last, lambda e: e["type"] == "activity" and "bob" in e["users"])


# -- a member's own Jupyter server (team-client mode) ---------------------------------------------


@pytest.fixture(scope="module")
def alice_server(team: Team, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    server = member_server(team, tmp_path_factory.mktemp("members"), "alice")
    yield server
    server.stop()


def test_a_team_client_comments_on_its_members_own_notebook(
    team: Team, alice_server: JupyterServer
) -> None:
    """bob and alice both have shared.ipynb; on alice's Jupyter server (where the file is)
    a cell comment, its list and its counts are about alice's."""
    path = f"nb-{tag()}/shared.ipynb"
    record(team, "bob", path, [("c1", "bob's code")])
    record(team, "alice", path, [("c1", "alice's code")])
    (alice_server.root / path).parent.mkdir(parents=True, exist_ok=True)
    (alice_server.root / path).write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    # Straight to the backend, with no identity, the path is ambiguous: it says so.
    r = post(team.as_("admin"), cell(path, "c1"), "whose?")
    assert r.status_code == 400 and "add owner=NAME" in r.json()["error"]

    c = posted(alice_server.api, cell(path, "c1"), "mine, through my server")
    assert c["target"]["owner"] == "alice" and c["author"] == "alice"
    mine = alice_server.api.get(f"{API}/comments", notebook=path)["items"]
    assert [x["id"] for x in mine] == [c["id"]]
    assert alice_server.api.get(f"{API}/comments/counts", notebook=path)["items"] == [
        {"cell_id": "c1", "total": 1, "unresolved": 1}
    ]
    # bob's notebook at the same path has no comments; an explicit owner reaches it.
    assert listed(team.as_("bob"), notebook=path, owner="bob") == []
    theirs = posted(alice_server.api, cell(path, "c1", owner="bob"), "on bob's copy")
    assert theirs["target"]["owner"] == "bob"


# -- embedded: one person's Jupyter server, real cells ----------------------------------------


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    server = JupyterServer(tmp_path_factory.mktemp("embedded")).start()
    yield server
    server.stop()


def test_embedded_the_jupyter_user_comments_on_a_cell_they_ran_and_it_goes_outdated(
    embedded: JupyterServer,
) -> None:
    path = f"emb-{tag()}.ipynb"
    client = embedded.connect(embedded.new_session(path))
    client.execute("threshold = 0.5", cell_id="cell-a")
    api = embedded.api
    api.wait_for("executions", lambda b: len(b["items"]) == 1, notebook=path)

    c = posted(api, cell(path, "cell-a"), "is 0.5 right? @alice (nobody else here)")
    assert c["mentions"] == [] and c["target"]["owner"] is None
    assert counts(api, path) == {"cell-a": (1, 1)}
    # The Jupyter user is the admin of their own store: resolve, edit, delete all work.
    assert patch(api, c["id"], resolved=True).json()["resolved"] is True
    assert patch(api, c["id"], body="is 0.5 right?").json()["edited_at"]

    client.execute("threshold = 0.7", cell_id="cell-a")
    api.wait_for("executions", lambda b: len(b["items"]) == 2, notebook=path)
    client.close()
    assert [x["outdated"] for x in listed(api, notebook=path)] == [True]
    assert api.request("DELETE", f"{API}/comments/{c['id']}").status_code == 204
    assert listed(api, notebook=path) == [] and counts(api, path) == {}


# -- rendering --------------------------------------------------------------------------------


def test_plain_prose_renders_as_the_markdown_parser_would() -> None:
    """Plain prose skips the parser (it is most comments, and ~10x faster): it must render
    exactly as the parser does, and anything else must go through the parser."""
    import random

    from cellops_server.review import markdown

    alphabet = list("abcXYZ019 ,.;:'\"?!()/%+=-#>\n\n é€🎉\u00a0\u2028*_[]<>&`~|@\\\t")
    rng = random.Random(11)
    plain = 0
    for _ in range(5000):
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        fast = markdown._plain(body)
        parsed = markdown.sanitize(markdown._md.render(body, {"known": frozenset()}))
        if fast is not None:
            plain += 1
            assert markdown.sanitize(fast) == parsed, repr(body)
    assert plain > 100  # the check saw plain bodies
    assert markdown._plain("see [docs](https://x.y)") is None
    assert markdown._plain("1. a list") is None and markdown._plain("@bob hi") is None
