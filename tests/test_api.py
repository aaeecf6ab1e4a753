"""The REST API inside a Jupyter server: authentication, errors, pagination, OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from cellops_server.api.routes import TEAM_ONLY

from .routes import concrete_routes
from .support import JupyterServer

API = "cellops/api/v1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    srv = JupyterServer(tmp_path_factory.mktemp("api")).start()
    client = srv.connect(srv.new_session("api.ipynb"))
    for i in range(5):
        client.execute(f"v = {i}", cell_id=f"cell-{i % 2}")
    client.close()
    srv.api.wait_for("versions", lambda b: len(b["items"]) == 5, notebook="api.ipynb")
    yield srv
    srv.stop()


@pytest.mark.parametrize(("method", "path"), concrete_routes(exclude=TEAM_ONLY))
def test_every_route_refuses_requests_without_a_token(
    server: JupyterServer, method: str, path: str
) -> None:
    r = requests.request(method, f"{server.url}/{API}/{path}", timeout=10)
    # 401: authenticate (a 403 would say the user lacks rights), with a JSON error.
    assert r.status_code == 401, f"{method} {path} answered {r.status_code} without a token"
    assert "authentication required" in r.json()["error"]
    assert r.headers["WWW-Authenticate"].startswith("token")


@pytest.mark.parametrize(("method", "path"), concrete_routes(exclude=TEAM_ONLY))
def test_every_route_refuses_a_wrong_token(server: JupyterServer, method: str, path: str) -> None:
    r = requests.request(
        method, f"{server.url}/{API}/{path}", headers={"Authorization": "token wrong"}, timeout=10
    )
    assert r.status_code == 401 and r.json()["error"]


def test_only_cellops_routes_change_how_a_signed_out_request_is_refused(
    server: JupyterServer,
) -> None:
    unknown = requests.get(f"{server.url}/{API}/nothing/here", timeout=10)
    assert unknown.status_code == 401 and unknown.json()["error"]
    # Jupyter's own API is left as Jupyter answers it.
    contents = requests.get(f"{server.url}/api/contents", timeout=10)
    assert contents.status_code == 403


def test_ingest_is_not_exposed_by_a_jupyter_server(server: JupyterServer) -> None:
    r = server.api.request("POST", f"{API}/ingest", json={"records": []})
    assert r.status_code == 404 and "no such endpoint" in r.json()["error"]


def test_browser_posts_need_the_xsrf_token(server: JupyterServer) -> None:
    """A cookie-authenticated POST without the _xsrf value is refused (CSRF protection)."""
    session = requests.Session()
    login = session.get(f"{server.url}/lab?token={server.token}", timeout=10)
    assert login.status_code in (200, 404)
    version = server.api.cellops("versions", notebook="api.ipynb")["items"][-1]["id"]
    url = f"{server.url}/{API}/versions/{version}/restore"
    refused = session.post(url, json={}, timeout=10)
    assert refused.status_code == 403
    xsrf = session.cookies.get("_xsrf")
    assert xsrf
    allowed = session.post(url, json={}, headers={"X-XSRFToken": xsrf}, timeout=10)
    assert allowed.status_code == 201, allowed.text


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("runs", {"cursor": "garbage"}, 400, "cursor"),
        ("runs", {"limit": "many"}, 400, "limit must be an integer"),
        ("runs", {"limit": "0"}, 400, "between 1 and 500"),
        ("executions", {}, 400, "'notebook' is required"),
        ("versions", {}, 400, "'notebook' is required"),
        ("runs/999999", {}, 404, "no run with id 999999"),
        ("runs/999999/executions", {}, 404, "no run"),
        ("executions/999999", {}, 404, "no execution"),
        ("versions/999999", {}, 404, "no version"),
        ("versions/1/diff/999999", {}, 404, "no version"),
        ("blobs/" + "0" * 64, {}, 404, "no blob"),
        ("runs/abc", {}, 400, "run id must be an integer"),
        ("runs/-1/executions", {}, 400, "run id must be an integer"),
        ("executions/1.5", {}, 400, "execution id must be an integer"),
        ("executions/abc/logs", {}, 400, "execution id must be an integer"),
        ("versions/1/diff/latest", {}, 400, "version id must be an integer"),
        ("models/churn/versions/one", {}, 400, "model version must be an integer"),
        ("models/churn/versions/1000000000", {}, 400, "model version 1000000000 is out of range"),
        ("nothing/here", {}, 404, "no such endpoint"),
    ],
)
def test_bad_requests_get_json_errors_that_say_what_to_fix(
    server: JupyterServer, path: str, params: dict[str, str], status: int, says: str
) -> None:
    r = server.api.request("GET", f"{API}/{path}", params=params)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert says in r.json()["error"]


@pytest.mark.parametrize("path", ["runs", "executions", "versions"])
def test_lists_of_a_notebook_never_run_are_empty(server: JupyterServer, path: str) -> None:
    # The sidebar asks as soon as a new notebook opens: an empty list, not an error.
    assert server.api.cellops(path, notebook="never-run.ipynb") == {"items": [], "next": None}


def test_restore_rejects_bad_bodies_and_never_overwrites(server: JupyterServer) -> None:
    version = server.api.cellops("versions", notebook="api.ipynb")["items"][0]["id"]
    url = f"{API}/versions/{version}/restore"
    before = (server.root / "api.ipynb").exists()
    r = server.api.request("POST", url, data=b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = server.api.request("POST", url, json={"path": 5})
    assert r.status_code == 400 and r.json()["detail"]
    r = server.api.request("POST", url, json={"path": "notes.txt"})
    assert r.status_code == 400 and ".ipynb" in r.json()["error"]
    (server.root / "taken.ipynb").write_text("precious")
    r = server.api.request("POST", url, json={"path": "taken.ipynb"})
    assert r.status_code == 409
    assert (server.root / "taken.ipynb").read_text() == "precious"
    r = server.api.request("POST", url, json={"path": "../outside.ipynb"})
    assert r.status_code in (400, 403, 404)
    assert not (server.root.parent / "outside.ipynb").exists()
    assert (server.root / "api.ipynb").exists() == before
    r = server.api.request("POST", url, json={"path": "no-such-folder/name.ipynb"})
    assert r.status_code == 400 and "could not save" in r.json()["error"]
    (server.root / "chosen").mkdir()
    r = server.api.request("POST", url, json={"path": "chosen/name.ipynb"})
    assert r.status_code == 201 and r.json()["path"] == "chosen/name.ipynb"


def test_cursor_pagination_over_http(server: JupyterServer) -> None:
    run = server.api.cellops("runs", notebook="api.ipynb")["items"][0]
    seqs, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = server.api.cellops(f"runs/{run['id']}/executions", **params)
        seqs += [e["seq"] for e in body["items"]]
        if not (cursor := body["next"]):
            break
    assert seqs == [1, 2, 3, 4, 5]
    newest = server.api.cellops("executions", notebook="api.ipynb", limit=2)
    assert [e["seq"] for e in newest["items"]] == [5, 4] and newest["next"]


def test_openapi_document_describes_every_route(server: JupyterServer) -> None:
    doc = server.api.cellops("openapi.json")
    assert doc["openapi"].startswith("3.")
    for path in [
        "/runs",
        "/runs/{run_id}/executions",
        "/versions/{a}/diff/{b}",
        "/versions/{version_id}/restore",
    ]:
        assert path in doc["paths"], path
    run_schema = doc["components"]["schemas"]["Run"]
    assert {
        "id",
        "notebook",
        "kernel_id",
        "user",
        "started_at",
        "ended_at",
        "git",
        "kernel_spec",
    } <= set(run_schema["properties"])
    page = doc["paths"]["/runs"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]["$ref"]
    assert page.rsplit("/", 1)[1] in doc["components"]["schemas"]


def test_status_reports_tracking_and_the_spool(server: JupyterServer) -> None:
    status = server.api.cellops("status")
    assert (status["mode"], status["tracking"], status["spool_pending"]) == ("embedded", True, 0)
