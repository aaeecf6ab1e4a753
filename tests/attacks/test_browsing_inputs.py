"""Attacks on the inputs issue 10's sidebar work added: run filters and sorts, the team
notebooks' search, a notebook's cells, archiving and deleting models, and the kernels'
backlog reports. Each answers a 4xx that says what to fix (or nothing matches), and what
is stored stays as it was.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
from cellops_server.kernel_backlog import MAX_KERNELS, KernelBacklogs

from .conftest import API, Team
from .seed import register, seed_history

INJECTIONS = ["x' OR '1'='1", "a'; DROP TABLE runs;--", '") OR 1=1 --', "%", "_"]


@pytest.fixture(scope="module")
def alices_notebook(team: Team) -> str:
    notebook = f"browsing-{uuid.uuid4().hex[:8]}.ipynb"
    seed_history(team.as_("alice"), notebook, f"run-{notebook}")
    return notebook


def runs_of(team: Team, notebook: str, **params: object) -> list[dict[str, object]]:
    r = team.as_("vera").request("GET", f"{API}/runs", params={"notebook": notebook, **params})
    assert r.status_code in (200, 400), r.text
    return r.json()["items"] if r.status_code == 200 else []


@pytest.mark.parametrize("name", INJECTIONS, ids=repr)
def test_sql_in_run_filter_names_matches_nothing_and_breaks_nothing(
    team: Team, alices_notebook: str, name: str
) -> None:
    for params in (
        {"metric": f"{name}>0"},
        {"param": f"{name}=1"},
        {"tag": name},
        {"sort": f"-metric:{name}"},
    ):
        matched = runs_of(team, alices_notebook, **params)
        # A sort names no filter: the run is listed; a filter on a name nobody logged
        # matches no run (and never every run).
        assert len(matched) == (1 if "sort" in params else 0), params
    assert len(runs_of(team, alices_notebook)) == 1  # the table is intact


@pytest.mark.parametrize("text", INJECTIONS, ids=repr)
def test_sql_in_the_notebooks_search_and_owner_matches_nothing(
    team: Team, alices_notebook: str, text: str
) -> None:
    bob = team.as_("bob")
    for params in ({"q": f"{text}nothing-has-this"}, {"owner": text}):
        r = bob.request("GET", f"{API}/notebooks", params=params)
        assert r.status_code == 200, r.text
        assert r.json()["items"] == [], params
    listed = bob.get(f"{API}/notebooks", q="browsing-")["items"]
    assert alices_notebook in {n["path"] for n in listed}


@pytest.mark.parametrize(
    "path", ["notebooks/1%20OR%201=1/cells", "notebooks/-1/cells", "notebooks/1.5/cells"]
)
def test_a_notebook_id_must_be_an_integer(team: Team, path: str) -> None:
    r = team.as_("vera").request("GET", f"{API}/{path}")
    assert r.status_code in (400, 404), r.text
    assert "error" in r.json()


@pytest.mark.parametrize("version", ["-1", "0", "abc", "99999999999999999999"])
def test_a_notebook_version_out_of_range_is_refused(
    team: Team, alices_notebook: str, version: str
) -> None:
    bob = team.as_("bob")
    (listed,) = bob.get(f"{API}/notebooks", q=alices_notebook)["items"]
    r = bob.request("GET", f"{API}/notebooks/{listed['id']}/cells", params={"version": version})
    assert r.status_code in (400, 404), r.text
    assert "error" in r.json()


@pytest.mark.parametrize(
    "name", ["../../etc", "..", "a/b", "x" * 300, "%00", "ev il"], ids=lambda n: repr(n[:20])
)
def test_deleting_a_model_by_a_crafted_name_deletes_nothing(team: Team, name: str) -> None:
    kept = f"kept-{uuid.uuid4().hex[:8]}"
    assert register(team.as_("alice"), kept).status_code == 201
    r = team.as_("alice").request("DELETE", f"{API}/models/{quote(name, safe='')}")
    assert r.status_code in (400, 404), r.text
    assert team.as_("vera").cellops(f"models/{kept}/versions")["items"][0]["version"] == 1


def test_a_viewer_cannot_archive_or_delete_and_archived_must_be_a_boolean(team: Team) -> None:
    name = f"guarded-{uuid.uuid4().hex[:8]}"
    assert register(team.as_("alice"), name).status_code == 201
    vera = team.as_("vera")
    for method, path, body in (
        ("DELETE", f"models/{name}/versions/1", None),
        ("DELETE", f"models/{name}", None),
        ("PATCH", f"models/{name}", {"archived": True}),
        ("PATCH", f"models/{name}/versions/1", {"archived": True}),
    ):
        r = vera.request(method, f"{API}/{path}", json=body)
        assert r.status_code == 403, (method, path, r.text)
    for bad in ("yes", 1, None):
        r = team.as_("alice").request("PATCH", f"{API}/models/{name}", json={"archived": bad})
        assert r.status_code == 400, (bad, r.text)
    version = vera.cellops(f"models/{name}/versions/1")
    assert version["archived"] is False


def test_the_team_backend_takes_no_kernel_backlog_reports(team: Team) -> None:
    # Kernels report to their own Jupyter server; the shared backend has no such route.
    body = {"kernel": "k", "pending": 5}
    r = team.as_("alice").request("POST", f"{API}/status/kernels", json=body)
    assert r.status_code in (404, 405), r.text
    assert team.as_("alice").cellops("status").get("kernel_pending", 0) == 0


def test_a_flood_of_kernel_reports_is_bounded() -> None:
    backlogs = KernelBacklogs(clock=lambda: 0.0)
    for i in range(MAX_KERNELS * 3):
        backlogs.report(f"kernel-{i}", 1, "backend down")
    pending, error = backlogs.summary()
    assert pending == MAX_KERNELS and error == "backend down"
