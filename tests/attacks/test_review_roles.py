"""Team review attacked through roles and data, on both stores (issue 11, points 1-4 and
"every input limit enforced").

A role table (tests/test_role_matrix.py) cannot see rules that depend on the data: whose
version, whose comment, whose inbox. These tests play members trying what their role or
their relation to the thing forbids, and check both the answer (a 4xx JSON error saying
what to fix) and that nothing stored changed.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from ..members import ensure_roles
from ..support import Api
from .conftest import API, Team
from .seed import ARTIFACT_SHA, register


@pytest.fixture(scope="module")
def members(team: Team) -> Team:
    ensure_roles(team)  # one member per role, "cora" the commenter
    return team


def target(model: str, version: int = 1) -> dict[str, Any]:
    return {"kind": "model_version", "model": model, "version": version}


def comment(api: Api, model: str, body: str, **extra: Any) -> requests.Response:
    return api.request(
        "POST", f"{API}/comments", json={"target": target(model), "body": body, **extra}
    )


def comments_on(team: Team, model: str) -> list[dict[str, Any]]:
    return team.as_("vera").cellops("comments", model=model, version=1)["items"]


def new_model(api: Api, name: str) -> None:
    r = register(api, name)
    assert r.status_code == 201, r.text


def refused(r: requests.Response, status: int, *words: str) -> dict[str, Any]:
    """The answer is ``status`` with a JSON {"error", "detail"} mentioning each word."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    body = r.json()
    assert {"error", "detail"} <= body.keys() and body["error"], body
    said = (body["error"] + " " + str(body["detail"])).lower()
    for word in words:
        assert word.lower() in said, f"{word!r} not in {body}"
    return body


def reviews_of(team: Team, model: str, version: int = 1) -> dict[str, Any]:
    return team.as_("vera").cellops(f"models/{model}/versions/{version}/reviews")


# -- reviews: nobody approves their own version -----------------------------------------------


@pytest.mark.parametrize("author", ["admin", "ada"])
@pytest.mark.parametrize("verdict", ["approve", "request_changes"])
def test_nobody_reviews_their_own_version_not_even_an_admin(
    members: Team, author: str, verdict: str
) -> None:
    model = f"own-{author}-{verdict.replace('_', '-')}"
    new_model(members.as_(author), model)
    r = members.as_(author).request(
        "POST", f"{API}/models/{model}/versions/1/reviews", json={"verdict": verdict}
    )
    refused(r, 403, "own")
    state = reviews_of(members, model)
    assert (state["state"], state["approvals"], state["items"]) == ("none", [], [])


def test_an_admin_overrides_a_protected_alias_with_a_reason_and_nobody_else_can(
    members: Team,
) -> None:
    alice, admin = members.as_("alice"), members.as_("admin")
    new_model(alice, "guarded")
    policy = {"protected_aliases": {"production": {"min_approvals": 1}}}
    r = admin.request("PUT", f"{API}/models/guarded/policy", json=policy)
    assert r.status_code == 200, r.text
    url = f"{API}/models/guarded/aliases/production"

    failed = refused(alice.request("PUT", url, json={"version": 1}), 409)["detail"]["failed"]
    assert [f["rule"] for f in failed] == ["min_approvals"], failed
    assert all({"rule", "need", "have"} <= f.keys() for f in failed)
    for who in ("alice", "ada"):  # an editor, an approver: override is the admin's
        r = members.as_(who).request("PUT", url, json={"version": 1, "override": "trust me"})
        refused(r, 403, "admin")
    for blank in ("", "   "):
        r = admin.request("PUT", url, json={"version": 1, "override": blank})
        refused(r, 400)
    # Registering straight onto the alias is refused too, and stores no version.
    refused(register(alice, "guarded", alias="production"), 409)
    model = members.as_("vera").cellops("models/guarded")
    assert model["latest_version"] == 1 and "production" not in model["aliases"], model

    r = admin.request("PUT", url, json={"version": 1, "override": "hotfix, approved by phone"})
    assert r.status_code == 200, r.text
    assert members.as_("vera").cellops("models/guarded")["aliases"]["production"] == 1
    feed = members.as_("vera").cellops("activity")["items"]
    override = next(a for a in feed if a["type"] == "alias.override" and a["model"] == "guarded")
    assert override["actor"] == "admin"
    assert override["data"]["reason"] == "hotfix, approved by phone"
    assert [f["rule"] for f in override["data"]["failed"]] == ["min_approvals"]

    # Sending an override where no rule protects the alias is still the admin's to do.
    r = alice.request(
        "PUT", f"{API}/models/guarded/aliases/staging", json={"version": 1, "override": "why not"}
    )
    refused(r, 403, "admin")
    assert "staging" not in members.as_("vera").cellops("models/guarded")["aliases"]

    # Removing a protected alias is the admin's too.
    refused(alice.request("DELETE", url), 403)
    assert members.as_("vera").cellops("models/guarded")["aliases"]["production"] == 1


# -- comments: one's own, except an admin's delete ---------------------------------------------


def test_only_the_author_edits_a_comment_and_only_an_admin_deletes_anothers(
    members: Team,
) -> None:
    new_model(members.as_("alice"), "talked-about")
    r = comment(members.as_("alice"), "talked-about", "alice's words")
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    for who in ("cora", "bob", "ada", "admin"):  # nobody puts words in alice's mouth
        r = members.as_(who).request("PATCH", f"{API}/comments/{cid}", json={"body": "forged"})
        refused(r, 403)
    for who in ("cora", "bob", "ada"):
        refused(members.as_(who).request("DELETE", f"{API}/comments/{cid}"), 403)
    [kept] = comments_on(members, "talked-about")
    assert (kept["body"], kept["author"], kept["edited_at"]) == ("alice's words", "alice", None)

    # A resolve rides along with a forged body: refused whole, not half applied.
    r = members.as_("bob").request(
        "PATCH", f"{API}/comments/{cid}", json={"body": "forged", "resolved": True}
    )
    refused(r, 403)
    assert comments_on(members, "talked-about")[0]["resolved"] is False

    r = members.as_("alice").request("PATCH", f"{API}/comments/{cid}", json={"body": "mine"})
    assert r.status_code == 200 and r.json()["body"] == "mine", r.text
    r = members.as_("admin").request("DELETE", f"{API}/comments/{cid}")
    assert r.status_code in (200, 204), r.text
    assert comments_on(members, "talked-about") == []


def test_marking_another_members_inbox_read_changes_nothing(members: Team) -> None:
    alice, ada = members.as_("alice"), members.as_("ada")
    new_model(alice, "to-review")
    r = alice.request(
        "POST", f"{API}/models/to-review/versions/1/review-requests", json={"reviewers": ["ada"]}
    )
    assert r.status_code in (200, 201), r.text
    inbox = ada.cellops("inbox")
    item = next(i for i in inbox["items"] if i["activity"]["model"] == "to-review")
    assert not item["read"] and inbox["unread"] >= 1

    for who in ("alice", "bob", "admin"):
        r = members.as_(who).request("POST", f"{API}/inbox/read", json={"ids": [item["id"]]})
        assert r.status_code < 500, r.text
        assert r.status_code in (200, 400, 403, 404), r.text
    after = ada.cellops("inbox")
    assert after["unread"] == inbox["unread"]
    assert not next(i for i in after["items"] if i["id"] == item["id"])["read"]

    r = ada.request("POST", f"{API}/inbox/read", json={"ids": [item["id"]]})
    assert r.status_code == 200, r.text
    assert next(i for i in ada.cellops("inbox")["items"] if i["id"] == item["id"])["read"]


# -- what a commenter and a viewer may not do --------------------------------------------------


def test_a_commenter_comments_but_cannot_register_move_aliases_or_review(members: Team) -> None:
    cora = members.as_("cora")
    new_model(members.as_("alice"), "cora-looks")
    assert comment(cora, "cora-looks", "looks good").status_code == 201

    refused(cora.put_artifact(b"cora's model"), 403, "editor")
    r = cora.request(
        "POST",
        f"{API}/models/cora-own/versions",
        json={"artifact": ARTIFACT_SHA, "flavor": "bytes"},
    )
    refused(r, 403, "editor")
    refused(cora.request("GET", f"{API}/models/cora-own"), 404)  # nothing was created
    version = f"{API}/models/cora-looks/versions/1"
    r = cora.request("PUT", f"{API}/models/cora-looks/aliases/staging", json={"version": 1})
    refused(r, 403, "editor")
    r = cora.request("POST", f"{version}/review-requests", json={"reviewers": ["ada"]})
    refused(r, 403, "editor")
    refused(
        cora.request("POST", f"{version}/reviews", json={"verdict": "approve"}), 403, "approver"
    )
    r = cora.request("PUT", f"{API}/models/cora-looks/policy", json={"protected_aliases": {}})
    refused(r, 403, "admin")
    model = members.as_("vera").cellops("models/cora-looks")
    assert model["aliases"] == {} and reviews_of(members, "cora-looks")["requested"] == []


def test_a_viewer_reads_but_cannot_comment_resolve_edit_or_delete(members: Team) -> None:
    vera = members.as_("vera")
    new_model(members.as_("alice"), "vera-reads")
    r = comment(members.as_("alice"), "vera-reads", "a thread")
    assert r.status_code == 201, r.text
    cid = r.json()["id"]

    refused(comment(vera, "vera-reads", "me too"), 403, "commenter")
    refused(comment(vera, "vera-reads", "a reply", parent_id=cid), 403, "commenter")
    url = f"{API}/comments/{cid}"
    refused(vera.request("PATCH", url, json={"resolved": True}), 403, "commenter")
    refused(vera.request("PATCH", url, json={"body": "edited"}), 403, "commenter")
    refused(vera.request("DELETE", url), 403, "commenter")
    [kept] = comments_on(members, "vera-reads")
    assert (kept["body"], kept["resolved"]) == ("a thread", False)
    # Reading and one's own inbox are hers.
    assert vera.request("POST", f"{API}/inbox/read", json={"ids": []}).status_code == 200
    assert vera.cellops("me") == {"name": "vera", "role": "viewer"}


# -- inputs that name what does not exist ------------------------------------------------------


def test_unknown_reviewers_are_named_in_a_400_and_nobody_is_asked(members: Team) -> None:
    alice = members.as_("alice")
    new_model(alice, "who-reviews")
    url = f"{API}/models/who-reviews/versions/1/review-requests"
    body = refused(
        alice.request("POST", url, json={"reviewers": ["ada", "nobody-here"]}), 400, "nobody-here"
    )
    assert "ada" not in str(body["detail"]).replace("nobody-here", "")
    assert reviews_of(members, "who-reviews")["requested"] == []
    assert all(
        i["activity"]["model"] != "who-reviews"
        for i in members.as_("ada").cellops("inbox")["items"]
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "execution", "id": 999_999},
        {"kind": "run", "id": 999_999},
        {"kind": "model_version", "model": "no-such-model", "version": 1},
        {"kind": "model_version", "model": "exists-once", "version": 999},
        {"kind": "cell", "notebook": "never-stored.ipynb", "cell_id": "c1"},
    ],
    ids=["execution", "run", "model", "version", "notebook"],
)
def test_comments_on_what_does_not_exist_are_404(members: Team, bad: dict[str, Any]) -> None:
    alice = members.as_("alice")
    if alice.request("GET", f"{API}/models/exists-once").status_code == 404:
        new_model(alice, "exists-once")
    r = alice.request(
        "POST", f"{API}/comments", json={"target": bad, "body": "hello?"},
        params={"notebook": bad["notebook"]} if bad["kind"] == "cell" else {},
    )  # fmt: skip
    refused(r, 404)


def test_review_routes_on_what_does_not_exist_are_404(members: Team) -> None:
    admin = members.as_("admin")
    new_model(members.as_("alice"), "reviewed-once")
    calls = [
        ("POST", "models/no-such-model/versions/1/review-requests", {"reviewers": ["ada"]}),
        ("POST", "models/reviewed-once/versions/999/review-requests", {"reviewers": ["ada"]}),
        ("POST", "models/no-such-model/versions/1/reviews", {"verdict": "approve"}),
        ("POST", "models/reviewed-once/versions/999/reviews", {"verdict": "approve"}),
        ("GET", "models/reviewed-once/versions/999/reviews", None),
        ("GET", "models/no-such-model/policy", None),
        ("PUT", "models/no-such-model/policy", {"protected_aliases": {}}),
        ("PUT", "models/reviewed-once/aliases/staging", {"version": 999}),
    ]
    for method, path, body in calls:
        refused(admin.request(method, f"{API}/{path}", json=body), 404)
    refused(admin.request("GET", f"{API}/models/no-such-model"), 404)  # and none was made


def test_a_reply_to_a_comment_that_does_not_exist_is_refused(members: Team) -> None:
    alice = members.as_("alice")
    new_model(alice, "lonely-reply")
    r = comment(alice, "lonely-reply", "to nobody", parent_id=999_999)
    assert r.status_code in (400, 404), r.text
    refused(r, r.status_code)
    assert comments_on(members, "lonely-reply") == []


@pytest.mark.parametrize("raw", ["abc", "-1", "0x10", "99999999999999999999", "1.5"])
def test_comment_ids_that_are_not_ids_are_400(members: Team, raw: str) -> None:
    admin = members.as_("admin")
    refused(admin.request("PATCH", f"{API}/comments/{raw}", json={"resolved": True}), 400)
    refused(admin.request("DELETE", f"{API}/comments/{raw}"), 400)


# -- limits and types --------------------------------------------------------------------------


def test_bodies_past_their_limits_are_refused_and_nothing_is_stored(members: Team) -> None:
    alice, admin, ada = members.as_("alice"), members.as_("admin"), members.as_("ada")
    new_model(alice, "limits")
    assert comment(alice, "limits", "x" * 10_000).status_code == 201  # the limit itself passes
    refused(comment(alice, "limits", "x" * 10_001), 400, "body")
    refused(comment(alice, "limits", " \n\t "), 400)  # nothing to say
    big = comment(alice, "limits", "x" * (2 * 1024 * 1024))
    refused(big, 413)
    [kept] = comments_on(members, "limits")
    r = alice.request("PATCH", f"{API}/comments/{kept['id']}", json={"body": "y" * 10_001})
    refused(r, 400, "body")

    version = f"{API}/models/limits/versions/1"
    refused(
        ada.request(
            "POST", f"{version}/reviews", json={"verdict": "approve", "body": "z" * 10_001}
        ),
        400,
    )
    many = [f"user{i}" for i in range(21)]
    refused(alice.request("POST", f"{version}/review-requests", json={"reviewers": many}), 400)
    aliases = {f"alias{i}": {} for i in range(21)}
    r = admin.request("PUT", f"{API}/models/limits/policy", json={"protected_aliases": aliases})
    refused(r, 400)
    r = admin.request(
        "PUT", f"{API}/models/limits/aliases/staging", json={"version": 1, "override": "r" * 2001}
    )
    refused(r, 400)
    refused(alice.request("POST", f"{API}/inbox/read", json={"ids": list(range(1, 1002))}), 400)

    assert [c["body"] for c in comments_on(members, "limits")] == ["x" * 10_000]
    state = reviews_of(members, "limits")
    assert (state["items"], state["requested"]) == ([], [])
    assert admin.cellops("models/limits/policy")["protected_aliases"] == {}
    assert members.as_("vera").cellops("models/limits")["aliases"] == {}


MV = {"kind": "model_version", "model": "typed", "version": 1}
WRONG_TYPES: list[tuple[str, str, Any]] = [
    ("POST", "comments", []),
    ("POST", "comments", {"target": "typed/1", "body": "hi"}),
    ("POST", "comments", {"target": {**MV, "kind": "deployment"}, "body": "hi"}),
    ("POST", "comments", {"target": {**MV, "version": "one"}, "body": "hi"}),
    ("POST", "comments", {"target": MV, "body": 42}),
    ("POST", "comments", {"target": MV, "body": "hi", "parent_id": "first"}),
    ("POST", "comments", {"target": MV, "body": "hi", "author": "admin"}),  # no forging
    ("PATCH", "comments/{cid}", {"resolved": "maybe"}),
    ("PATCH", "comments/{cid}", {"body": ["a", "b"]}),
    ("PATCH", "comments/{cid}", {"author": "admin"}),
    ("POST", "models/typed/versions/1/review-requests", {"reviewers": "ada"}),
    ("POST", "models/typed/versions/1/review-requests", {"reviewers": [1, 2]}),
    ("POST", "models/typed/versions/1/review-requests", {"reviewers": []}),
    ("POST", "models/typed/versions/1/reviews", {"verdict": "yes"}),
    ("POST", "models/typed/versions/1/reviews", {"verdict": "approve", "reviewer": "bob"}),
    ("PUT", "models/typed/policy", {"protected_aliases": ["production"]}),
    ("PUT", "models/typed/policy", {"protected_aliases": {"production": {"min_approvals": -1}}}),
    (
        "PUT",
        "models/typed/policy",
        {"protected_aliases": {"production": {"min_approvals": "2" * 400}}},
    ),
    ("PUT", "models/typed/aliases/staging", {"version": 1, "override": 7}),
    ("POST", "inbox/read", {"ids": "all"}),
    ("POST", "inbox/read", {"ids": [-1]}),
]


@pytest.fixture(scope="module")
def typed(members: Team) -> int:
    """A model "typed" with a comment of alice's; answers the comment's id."""
    alice = members.as_("alice")
    new_model(alice, "typed")
    r = comment(alice, "typed", "typed thread")
    return int(r.json()["id"]) if r.status_code == 201 else 1


@pytest.mark.parametrize(
    ("method", "path", "body"), WRONG_TYPES, ids=[f"{m} {p} {b}"[:70] for m, p, b in WRONG_TYPES]
)
def test_wrong_json_types_get_a_400_saying_what_to_fix(
    members: Team, typed: int, method: str, path: str, body: Any
) -> None:
    who = "alice" if path.startswith("comments/") else "admin"  # the right role and owner
    r = members.as_(who).request(method, f"{API}/{path.format(cid=typed)}", json=body)
    refused(r, 400)


@pytest.mark.parametrize(
    "path",
    ["comments", "comments/{cid}", "models/typed/versions/1/reviews", "models/typed/policy",
     "models/typed/versions/1/review-requests", "inbox/read"],
)  # fmt: skip
def test_bodies_that_are_not_json_get_a_400(members: Team, typed: int, path: str) -> None:
    method = {"comments/{cid}": "PATCH", "models/typed/policy": "PUT"}.get(path, "POST")
    who = "alice" if path.startswith("comments/") else "admin"
    r = members.as_(who).request(method, f"{API}/{path.format(cid=typed)}", data=b"{not json")
    refused(r, 400, "json")
