"""Every route, every method, every role, against a real `cellops serve` on both stores
and a real Jupyter server (issue 11, point 4: "a test walks every route x every role").

The route table is read at run time: a route or method missing from NEEDS fails, so a new
endpoint cannot ship without saying who may call it. Each call carries a valid input where
that is cheap (a notebook with runs and executions, a model with a version, a comment), so
an allowed role must get a real answer: a 2xx, or a 4xx about the input (never 401/403, never
a 5xx).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from cellops_server.api.routes import LOCAL_ONLY, ROUTES, TEAM_ONLY

from .attacks.conftest import API, Team
from .attacks.seed import ARTIFACT, ARTIFACT_SHA, register, seed_history
from .members import MEMBER_OF_ROLE, ROLE_ORDER, at_least, ensure_roles
from .support import Api, JupyterServer

# The least role each (handler, method) needs on a team backend. LOCAL: only a member's own
# Jupyter server answers it (the backend does not mount it).
LOCAL = "local"
NEEDS: dict[tuple[str, str], str] = {
    ("StatusHandler", "GET"): "viewer",
    ("KernelBacklogHandler", "POST"): LOCAL,
    ("OpenApiHandler", "GET"): "viewer",
    ("SettingsHandler", "GET"): LOCAL,
    ("SettingsHandler", "PUT"): LOCAL,
    ("EventsHandler", "GET"): "viewer",
    ("NotebooksHandler", "GET"): "viewer",
    ("NotebookCellsHandler", "GET"): "viewer",
    ("RunsHandler", "GET"): "viewer",
    ("RunHandler", "GET"): "viewer",
    ("RunExecutionsHandler", "GET"): "viewer",
    ("ExecutionsHandler", "GET"): "viewer",
    ("ExecutionHandler", "GET"): "viewer",
    ("VersionsHandler", "GET"): "viewer",
    ("VersionHandler", "GET"): "viewer",
    ("VersionHandler", "PATCH"): "editor",
    ("VersionDiffHandler", "GET"): "viewer",
    ("VersionRestoreHandler", "POST"): LOCAL,
    ("BlobHandler", "GET"): "viewer",
    ("IngestHandler", "POST"): "editor",  # TEAM_ONLY: what a member's Jupyter server sends
    ("LogsHandler", "POST"): "editor",  # the kernel library's logs, as the code says today
    ("ExecutionLogsHandler", "GET"): "viewer",
    ("ArtifactHandler", "GET"): "viewer",
    ("ArtifactHandler", "PUT"): "editor",
    ("ModelsHandler", "GET"): "viewer",
    ("ModelHandler", "GET"): "viewer",
    ("ModelHandler", "PATCH"): "editor",
    ("ModelHandler", "DELETE"): "editor",
    ("ModelVersionsHandler", "GET"): "viewer",
    ("ModelVersionsHandler", "POST"): "editor",
    ("ModelVersionHandler", "GET"): "viewer",
    ("ModelVersionHandler", "PATCH"): "editor",
    ("ModelVersionHandler", "DELETE"): "editor",
    ("ModelVersionNotebookHandler", "GET"): "viewer",
    ("ModelAliasHandler", "PUT"): "editor",  # an unprotected alias
    ("ModelAliasHandler", "DELETE"): "editor",
    ("PolicyHandler", "GET"): "viewer",
    ("PolicyHandler", "PUT"): "admin",
    ("ReviewRequestsHandler", "POST"): "editor",
    ("ReviewsHandler", "GET"): "viewer",
    ("ReviewsHandler", "POST"): "approver",
    ("PromotionChecksHandler", "GET"): "viewer",
    ("PromotionsHandler", "POST"): "editor",  # as moving the alias (a dry run too)
    ("MeHandler", "GET"): "viewer",
    ("UsersHandler", "GET"): "viewer",
    ("CommentsHandler", "GET"): "viewer",
    ("CommentsHandler", "POST"): "commenter",
    ("CommentCountsHandler", "GET"): "viewer",
    ("CommentHandler", "PATCH"): "commenter",  # resolve / reopen anyone's thread
    ("CommentHandler", "DELETE"): "commenter",  # one's own comment
    ("ActivityHandler", "GET"): "viewer",
    ("InboxHandler", "GET"): "viewer",
    ("InboxReadHandler", "POST"): "viewer",  # one's own inbox
    ("DeploymentsHandler", "GET"): "viewer",
    ("DeploymentsHandler", "POST"): "editor",
    ("DeploymentHandler", "GET"): "viewer",
    ("DeploymentHandler", "PATCH"): "editor",
    ("DeploymentHandler", "DELETE"): "editor",  # anyone's, as models are
    ("DeploymentEventsHandler", "GET"): "viewer",
    ("DeploymentMetricsHandler", "GET"): "viewer",
    ("DeploymentKeyHandler", "POST"): "editor",
    ("DeploymentDriftHandler", "GET"): "viewer",
    ("WebhooksHandler", "GET"): "admin",
    ("WebhooksHandler", "POST"): "admin",
    ("WebhookHandler", "PATCH"): "admin",
    ("WebhookHandler", "DELETE"): "admin",
    ("WebhookTestHandler", "POST"): "admin",
    ("WebhookDeliveriesHandler", "GET"): "admin",
}

METHODS = ("get", "post", "put", "patch", "delete")
MODEL = "matrix-model"


def route_methods() -> list[tuple[str, type, str]]:
    """(pattern, handler, METHOD) of every method a handler of ROUTES defines itself."""
    return [
        (pattern, handler, method.upper())
        for pattern, handler in ROUTES
        for method in METHODS
        if method in handler.__dict__
    ]


def case_id(case: tuple[str, type, str]) -> str:
    return f"{case[2]} {case[0]}"


ALL = route_methods()
BACKEND = [c for c in ALL if c[1] not in LOCAL_ONLY]
EMBEDDED = [c for c in ALL if c[1] not in TEAM_ONLY]


def test_every_route_and_method_has_an_expected_role() -> None:
    defined = {(h.__name__, m) for _, h, m in ALL}
    missing = sorted(defined - NEEDS.keys())
    assert not missing, f"say which role these need in NEEDS: {missing}"
    stale = sorted(NEEDS.keys() - defined)
    assert not stale, f"NEEDS lists what no route answers any more: {stale}"
    local = {h.__name__ for h in LOCAL_ONLY}
    for (handler, method), needed in NEEDS.items():
        assert (needed == LOCAL) == (handler in local), (handler, method, needed)


# -- what the backend holds before it is walked ------------------------------------------------


@dataclass
class World:
    """Ids of what each member made, so every call can carry a valid input."""

    team: Team
    notebook: str = ""  # alice's
    notebook_id: int = 0
    run_id: int = 0
    execution_id: int = 0
    version_ids: list[int] = field(default_factory=list)
    comment_id: int = 0  # alice's, on MODEL v1
    # editor and up: a notebook of their own (owners are checked on writes to one)
    own_version: dict[str, int] = field(default_factory=dict)
    own_msg_id: dict[str, str] = field(default_factory=dict)

    def api(self, role: str) -> Api:
        return self.team.as_(MEMBER_OF_ROLE[role])


def seed_member(world: World, role: str) -> tuple[str, int]:
    """A notebook run of the role's member; answers (notebook, run id)."""
    api = world.api(role)
    notebook = f"matrix-{MEMBER_OF_ROLE[role]}.ipynb"
    run_id = seed_history(api, notebook, f"matrix-run-{MEMBER_OF_ROLE[role]}", executions=2)
    world.own_version[role] = api.get(f"{API}/versions", notebook=notebook)["items"][0]["id"]
    executions = api.get(f"{API}/runs/{run_id}/executions")["items"]
    world.own_msg_id[role] = executions[0]["msg_id"]
    return notebook, run_id


@pytest.fixture(scope="module")
def world(team: Team) -> World:
    ensure_roles(team)
    w = World(team)
    for role in ("editor", "approver", "admin"):
        seed_member(w, role)
    alice = w.api("editor")
    w.notebook, w.run_id = "matrix-alice.ipynb", 0
    runs = alice.get(f"{API}/runs", notebook=w.notebook)["items"]
    w.run_id = runs[0]["id"]
    w.execution_id = alice.get(f"{API}/runs/{w.run_id}/executions")["items"][0]["id"]
    w.version_ids = [v["id"] for v in alice.get(f"{API}/versions", notebook=w.notebook)["items"]]
    notebooks = alice.get(f"{API}/notebooks")["items"]
    w.notebook_id = next(n["id"] for n in notebooks if n["path"] == w.notebook)
    r = register(alice, MODEL)
    assert r.status_code == 201, r.text
    # Until comments work, the calls on one fail by themselves, not the whole matrix.
    comment = post_comment(alice, "the matrix's comment")
    w.comment_id = comment.json()["id"] if comment.status_code == 201 else 1
    return w


def post_comment(api: Api, body: str) -> requests.Response:
    target = {"kind": "model_version", "model": MODEL, "version": 1}
    return api.request("POST", f"{API}/comments", json={"target": target, "body": body})


# -- one call per (handler, method), for a role ------------------------------------------------


@dataclass
class Call:
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    data: bytes | None = None
    ok: set[int] | None = None  # the answers an allowed caller must get, when known


Prepare = Callable[[World, str], Call]


def fresh_model(world: World, role: str) -> str:
    """A model of its own for a destructive call (made by the role if it may register)."""
    name = f"gone-{uuid.uuid4().hex[:8]}"
    maker = world.api(role if at_least(role, "editor") else "editor")
    r = register(maker, name)
    assert r.status_code == 201, r.text
    return name


def own_comment(world: World, role: str) -> int:
    if not at_least(role, "commenter"):
        return world.comment_id  # refused by role before the owner is looked at
    r = post_comment(world.api(role), f"{role} says hi")
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def alias_to_remove(world: World, role: str) -> Call:
    r = world.api("editor").request(
        "PUT", f"{API}/models/{MODEL}/aliases/staging", json={"version": 1}
    )
    assert r.status_code == 200, r.text
    return Call(f"models/{MODEL}/aliases/staging", ok={204})


def own_or_alices(world: World, values: dict[str, Any], role: str) -> Any:
    return values.get(role, values["editor"])


DEPLOYMENT = "matrix-deployment"


def deployment(world: World, role: str = "editor", fresh: bool = False) -> str:
    """The matrix's deployment (made once by the editor), or a fresh one to delete."""
    name = f"gone-{uuid.uuid4().hex[:8]}" if fresh and at_least(role, "editor") else DEPLOYMENT
    body = {"name": name, "model": MODEL, "version": 1}
    r = world.api("editor").request("POST", f"{API}/deployments", json=body)
    assert r.status_code in (201, 409), r.text
    return name


# A public-looking name: registered without the private-targets setting (nothing resolves
# it here, so its deliveries fail quietly).
WEBHOOK = {"url": "https://hooks.example.com/cellops", "events": ["alias.moved"], "secret": "s"}


def webhook(world: World) -> int:
    """A fresh webhook (made by the admin) for a call on one."""
    r = world.api("admin").request("POST", f"{API}/webhooks", json=WEBHOOK)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


OWNER = {"owner": "alice"}  # other members read alice's notebook by naming her
PREPARE: dict[tuple[str, str], Prepare] = {
    ("StatusHandler", "GET"): lambda w, r: Call("status", ok={200}),
    ("OpenApiHandler", "GET"): lambda w, r: Call("openapi.json", ok={200}),
    ("EventsHandler", "GET"): lambda w, r: Call("events", {"timeout": 0}, ok={200}),
    ("NotebooksHandler", "GET"): lambda w, r: Call("notebooks", ok={200}),
    ("NotebookCellsHandler", "GET"): lambda w, r: Call(
        f"notebooks/{w.notebook_id}/cells", ok={200}
    ),
    ("RunsHandler", "GET"): lambda w, r: Call("runs", {"notebook": w.notebook, **OWNER}, ok={200}),
    ("RunHandler", "GET"): lambda w, r: Call(f"runs/{w.run_id}", ok={200}),
    ("RunExecutionsHandler", "GET"): lambda w, r: Call(f"runs/{w.run_id}/executions", ok={200}),
    ("ExecutionsHandler", "GET"): lambda w, r: Call(
        "executions", {"notebook": w.notebook, **OWNER}, ok={200}
    ),
    ("ExecutionHandler", "GET"): lambda w, r: Call(f"executions/{w.execution_id}", ok={200}),
    ("VersionsHandler", "GET"): lambda w, r: Call(
        "versions", {"notebook": w.notebook, **OWNER}, ok={200}
    ),
    ("VersionHandler", "GET"): lambda w, r: Call(f"versions/{w.version_ids[0]}", ok={200}),
    ("VersionHandler", "PATCH"): lambda w, r: Call(
        f"versions/{own_or_alices(w, w.own_version, r)}", json={"pinned": True}, ok={200}
    ),
    ("VersionDiffHandler", "GET"): lambda w, r: Call(
        f"versions/{w.version_ids[-1]}/diff/{w.version_ids[0]}", ok={200}
    ),
    ("BlobHandler", "GET"): lambda w, r: Call(f"blobs/{ARTIFACT_SHA}", ok={200}),
    ("IngestHandler", "POST"): lambda w, r: Call("ingest", json={"records": []}, ok={200}),
    ("LogsHandler", "POST"): lambda w, r: Call(
        "logs",
        json={"msg_id": own_or_alices(w, w.own_msg_id, r), "metrics": {"loss": 0.5}},
        ok={201},
    ),
    ("ExecutionLogsHandler", "GET"): lambda w, r: Call(
        f"executions/{w.execution_id}/logs", ok={200}
    ),
    ("ArtifactHandler", "GET"): lambda w, r: Call(f"artifacts/{ARTIFACT_SHA}", ok={200}),
    ("ArtifactHandler", "PUT"): lambda w, r: Call(
        f"artifacts/{ARTIFACT_SHA}", data=ARTIFACT, ok={200, 201}
    ),
    ("ModelsHandler", "GET"): lambda w, r: Call("models", ok={200}),
    ("ModelHandler", "GET"): lambda w, r: Call(f"models/{MODEL}", ok={200}),
    ("ModelHandler", "PATCH"): lambda w, r: Call(
        f"models/{MODEL}", json={"archived": False}, ok={200}
    ),
    ("ModelHandler", "DELETE"): lambda w, r: Call(
        f"models/{fresh_model(w, r) if at_least(r, 'editor') else MODEL}", ok={204}
    ),
    ("ModelVersionsHandler", "GET"): lambda w, r: Call(f"models/{MODEL}/versions", ok={200}),
    ("ModelVersionsHandler", "POST"): lambda w, r: Call(
        "models/matrix-registered/versions",
        json={"artifact": ARTIFACT_SHA, "flavor": "bytes"},
        ok={201},
    ),
    ("ModelVersionHandler", "GET"): lambda w, r: Call(f"models/{MODEL}/versions/1", ok={200}),
    ("ModelVersionHandler", "PATCH"): lambda w, r: Call(
        f"models/{MODEL}/versions/1", json={"description": f"edited by {r}"}, ok={200}
    ),
    ("ModelVersionHandler", "DELETE"): lambda w, r: Call(
        f"models/{fresh_model(w, r) if at_least(r, 'editor') else MODEL}/versions/1", ok={204}
    ),
    # No lineage was recorded for the version: a 4xx saying so is the answer.
    ("ModelVersionNotebookHandler", "GET"): lambda w, r: Call(
        f"models/{MODEL}/versions/1/notebook"
    ),
    ("ModelAliasHandler", "PUT"): lambda w, r: Call(
        f"models/{MODEL}/aliases/staging", json={"version": 1}, ok={200}
    ),
    ("ModelAliasHandler", "DELETE"): lambda w, r: alias_to_remove(w, r),
    ("PolicyHandler", "GET"): lambda w, r: Call(f"models/{MODEL}/policy", ok={200}),
    ("PolicyHandler", "PUT"): lambda w, r: Call(
        f"models/{MODEL}/policy",
        json={"protected_aliases": {"production": {"min_approvals": 1}}},
        ok={200},
    ),
    ("ReviewRequestsHandler", "POST"): lambda w, r: Call(
        f"models/{MODEL}/versions/1/review-requests", json={"reviewers": ["ada"]}, ok={200, 201}
    ),
    ("ReviewsHandler", "GET"): lambda w, r: Call(f"models/{MODEL}/versions/1/reviews", ok={200}),
    ("ReviewsHandler", "POST"): lambda w, r: Call(  # alice's version: nobody here is its author
        f"models/{MODEL}/versions/1/reviews", json={"verdict": "approve"}, ok={200, 201}
    ),
    ("PromotionChecksHandler", "GET"): lambda w, r: Call(
        f"models/{MODEL}/versions/1/promotion", ok={200}
    ),
    ("PromotionsHandler", "POST"): lambda w, r: Call(  # an alias no policy protects
        f"models/{MODEL}/promotions", json={"version": 1, "alias": "candidate"}, ok={200}
    ),
    ("MeHandler", "GET"): lambda w, r: Call("me", ok={200}),
    ("UsersHandler", "GET"): lambda w, r: Call("users", ok={200}),
    ("CommentsHandler", "GET"): lambda w, r: Call(
        "comments", {"model": MODEL, "version": 1}, ok={200}
    ),
    ("CommentsHandler", "POST"): lambda w, r: Call(
        "comments",
        json={"target": {"kind": "model_version", "model": MODEL, "version": 1}, "body": "hi"},
        ok={201},
    ),
    ("CommentCountsHandler", "GET"): lambda w, r: Call(
        "comments/counts", {"notebook": w.notebook, **OWNER}, ok={200}
    ),
    ("CommentHandler", "PATCH"): lambda w, r: Call(
        f"comments/{w.comment_id}", json={"resolved": True}, ok={200}
    ),
    ("CommentHandler", "DELETE"): lambda w, r: Call(f"comments/{own_comment(w, r)}", ok={200, 204}),
    ("ActivityHandler", "GET"): lambda w, r: Call("activity", ok={200}),
    ("InboxHandler", "GET"): lambda w, r: Call("inbox", ok={200}),
    ("InboxReadHandler", "POST"): lambda w, r: Call("inbox/read", json={"ids": []}, ok={200}),
    ("DeploymentsHandler", "GET"): lambda w, r: Call("deployments", ok={200}),
    ("DeploymentsHandler", "POST"): lambda w, r: Call(
        "deployments",
        json={"name": f"made-{uuid.uuid4().hex[:8]}", "model": MODEL, "version": 1},
        ok={201},
    ),
    ("DeploymentHandler", "GET"): lambda w, r: Call(f"deployments/{deployment(w)}", ok={200}),
    ("DeploymentHandler", "PATCH"): lambda w, r: Call(
        f"deployments/{deployment(w)}", json={"version": 1}, ok={200}
    ),
    ("DeploymentHandler", "DELETE"): lambda w, r: Call(
        f"deployments/{deployment(w, r, fresh=True)}", ok={204}
    ),
    ("DeploymentEventsHandler", "GET"): lambda w, r: Call(
        f"deployments/{deployment(w)}/events", ok={200}
    ),
    ("DeploymentMetricsHandler", "GET"): lambda w, r: Call(
        f"deployments/{deployment(w)}/metrics", ok={200}
    ),
    ("DeploymentKeyHandler", "POST"): lambda w, r: Call(
        f"deployments/{deployment(w)}/key", ok={201}
    ),
    ("DeploymentDriftHandler", "GET"): lambda w, r: Call(
        f"deployments/{deployment(w)}/drift", ok={200}
    ),
    ("WebhooksHandler", "GET"): lambda w, r: Call("webhooks", ok={200}),
    ("WebhooksHandler", "POST"): lambda w, r: Call("webhooks", json=WEBHOOK, ok={201}),
    ("WebhookHandler", "PATCH"): lambda w, r: Call(
        f"webhooks/{webhook(w)}", json={"events": ["drift.detected"]}, ok={200}
    ),
    ("WebhookHandler", "DELETE"): lambda w, r: Call(f"webhooks/{webhook(w)}", ok={204}),
    ("WebhookTestHandler", "POST"): lambda w, r: Call(f"webhooks/{webhook(w)}/test", ok={202}),
    ("WebhookDeliveriesHandler", "GET"): lambda w, r: Call(
        f"webhooks/{webhook(w)}/deliveries", ok={200}
    ),
}


def test_every_backend_call_has_a_prepared_input() -> None:
    missing = sorted({(h.__name__, m) for _, h, m in BACKEND} - PREPARE.keys())
    assert not missing, f"add a PREPARE entry for {missing}"


def send(api: Api | None, method: str, call: Call, token: str | None = None) -> requests.Response:
    if api is None:
        headers = {"Authorization": f"token {token}"} if token else {}
        return requests.request(
            method, call.path, params=call.params, json=call.json, data=call.data,
            headers=headers, timeout=30,
        )  # fmt: skip
    kw: dict[str, Any] = {"params": call.params}
    if call.data is not None:
        kw["data"] = call.data
    elif call.json is not None:
        kw["json"] = call.json
    return api.request(method, f"{API}/{call.path}", **kw)


def error_of(r: requests.Response, what: str) -> dict[str, Any]:
    """The JSON error body every 4xx carries: {"error": …, "detail": …}."""
    try:
        body = r.json()
    except ValueError:
        raise AssertionError(
            f"{what}: {r.status_code} without a JSON body: {r.text[:300]}"
        ) from None
    assert isinstance(body, dict) and {"error", "detail"} <= body.keys(), f"{what}: {body}"
    assert isinstance(body["error"], str) and body["error"], f"{what}: {body}"
    return body


def check_allowed(r: requests.Response, call: Call, what: str) -> None:
    assert r.status_code not in (401, 403), f"{what}: refused: {r.status_code} {r.text[:500]}"
    assert r.status_code < 500, f"{what}: server error {r.status_code} {r.text[:500]}"
    if r.status_code >= 400:
        error_of(r, what)
    if call.ok is not None:
        assert r.status_code in call.ok, f"{what}: {r.status_code} {r.text[:500]}"


def check_refused(r: requests.Response, needed: str, what: str) -> None:
    assert r.status_code == 403, f"{what}: should need {needed}: {r.status_code} {r.text[:500]}"
    body = error_of(r, what)
    said = body["error"] + " " + json.dumps(body["detail"])
    assert re.search(rf"\b{needed}\b", said), (
        f"{what}: the 403 should name the role {needed}: {body}"
    )


@pytest.mark.parametrize("case", BACKEND, ids=case_id)
def test_backend_route_answers_each_role_as_its_table_says(
    world: World, case: tuple[str, type, str]
) -> None:
    pattern, handler, method = case
    needed = NEEDS[(handler.__name__, method)]
    prepare = PREPARE[(handler.__name__, method)]
    anonymous = prepare(world, "viewer")
    url = Call(f"{world.team.url}/{API}/{anonymous.path}", anonymous.params, anonymous.json)
    for token in (None, "cellops_not-a-token"):
        r = send(None, method, url, token)
        assert r.status_code == 401, f"{method} {pattern} with token {token}: {r.status_code}"
        error_of(r, f"{method} {pattern} without a valid token")
    for role in ROLE_ORDER:
        call = prepare(world, role)
        what = f"{method} /{call.path} as {role} ({MEMBER_OF_ROLE[role]})"
        r = send(world.api(role), method, call)
        if at_least(role, needed):
            check_allowed(r, call, what)
        else:
            check_refused(r, needed, what)


@pytest.mark.parametrize("case", [c for c in ALL if c[1] in LOCAL_ONLY], ids=case_id)
def test_local_routes_are_not_served_by_the_backend(
    world: World, case: tuple[str, type, str]
) -> None:
    pattern, _, method = case
    path = re.sub(r"\([^)]*\)", "1", pattern).lstrip("/")
    r = world.api("admin").request(method, f"{API}/{path}", json={})
    assert r.status_code in (404, 405), f"{method} {pattern}: {r.status_code} {r.text[:300]}"
    error_of(r, f"{method} {pattern}")


# -- embedded mode: the Jupyter user is the admin of their own store ----------------------------


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    server = JupyterServer(tmp_path_factory.mktemp("embedded-matrix")).start()
    yield server
    server.stop()


SAMPLES = {r"([0-9a-f]{64})": ARTIFACT_SHA, r"([^/]+)": "1"}


def embedded_call(pattern: str, handler: type, method: str) -> Call:
    path = pattern
    for group, value in SAMPLES.items():
        path = path.replace(group, value)
    params = {"timeout": 0} if handler.__name__ == "EventsHandler" else {}
    body = None if method in ("GET", "DELETE") else {}
    return Call(path.lstrip("/"), params, body)


@pytest.mark.parametrize("case", EMBEDDED, ids=case_id)
def test_embedded_route_needs_the_token_and_then_never_refuses(
    embedded: JupyterServer, case: tuple[str, type, str]
) -> None:
    pattern, handler, method = case
    call = embedded_call(pattern, handler, method)
    bare = Call(f"{embedded.url}/{API}/{call.path}", call.params, call.json)
    for token in (None, "not-the-token"):
        r = send(None, method, bare, token)
        assert r.status_code == 401, f"{method} {pattern} with token {token}: {r.status_code}"
        error_of(r, f"{method} {pattern} without the token")
    r = send(embedded.api, method, call)
    check_allowed(r, Call(call.path), f"{method} /{call.path} as the Jupyter user")


def test_embedded_user_is_admin(embedded: JupyterServer) -> None:
    me = embedded.api.cellops("me")
    assert me["role"] == "admin" and me["name"]


def test_embedded_admin_overrides_but_never_approves_their_own_version(
    embedded: JupyterServer,
) -> None:
    """Alone on their server, the Jupyter user made every version: a protected alias moves
    only with a written override, never by approving oneself."""
    me = embedded.api
    assert register(me, "solo").status_code == 201
    r = me.request("POST", f"{API}/models/solo/versions/1/reviews", json={"verdict": "approve"})
    assert r.status_code == 403 and "own" in error_of(r, "self-approval")["error"], r.text
    policy = {"protected_aliases": {"production": {"min_approvals": 1}}}
    assert me.request("PUT", f"{API}/models/solo/policy", json=policy).status_code == 200
    url = f"{API}/models/solo/aliases/production"
    assert me.request("PUT", url, json={"version": 1}).status_code == 409
    r = me.request("PUT", url, json={"version": 1, "override": "solo project"})
    assert r.status_code == 200 and r.json()["aliases"]["production"] == 1, r.text
