"""Finding runs: GET /runs filtered by metric, param and tag, sorted by a metric, with each
run's number and latest logged values — on a team backend over SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from . import records as rec
from .attacks.conftest import API, Team, member_server
from .attacks.ingesting import ingest

NB = "search.ipynb"

# run key → (start offset in minutes, [(metrics, params, tags) logged by one cell each])
RUNS: dict[str, tuple[int, list[tuple[dict[str, float], dict[str, Any], dict[str, str]]]]] = {
    # Sent first but started last: numbers follow start order, not arrival.
    "r-late": (30, [({"accuracy": 0.80}, {"alpha": "0.1", "fit_intercept": False}, {})]),
    "r-base": (
        0,
        [
            ({"accuracy": 0.70}, {"alpha": 0.1, "solver": "lbfgs"}, {"baseline": "yes"}),
            ({"accuracy": 0.95, "loss": 0.2}, {}, {}),  # the latest value counts
        ],
    ),
    "r-mid": (10, [({"accuracy": 0.91}, {"alpha": 1, "note": None}, {"stage": "baseline"})]),
    "r-none": (20, [({}, {"alpha": 0.5}, {"stage": "candidate"})]),
}


def _send(team: Team) -> None:
    for key, (minutes, cells) in RUNS.items():
        start = rec.T0 + timedelta(minutes=minutes)
        records: list[dict[str, Any]] = [
            rec.run(key, NB, kernel_id=f"k-{key}", user="alice", started_at=start.isoformat())
        ]
        records += [
            rec.execution(i, f"step({i})", f"c{i}", key, NB, started_at=start.isoformat())
            for i in range(1, len(cells) + 1)
        ]
        ingest(team, "alice", records)
        for i, (metrics, params, tags) in enumerate(cells, 1):
            body = {"msg_id": f"{key}-msg-{i}", "metrics": metrics, "params": params, "tags": tags}
            r = team.as_("alice").request("POST", f"{API}/logs", json=body)
            assert r.status_code in (200, 201), r.text


@pytest.fixture(scope="module")
def seeded(team: Team) -> Team:
    _send(team)
    return team


def _runs(team: Team, member: str = "vera", **params: Any) -> list[dict[str, Any]]:
    r = team.as_(member).request("GET", f"{API}/runs", params={"notebook": NB, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _keys(runs: list[dict[str, Any]]) -> list[str]:
    return [r["kernel_id"].removeprefix("k-") for r in runs]


def test_runs_carry_number_and_latest_values(seeded: Team) -> None:
    by_key = {r["kernel_id"].removeprefix("k-"): r for r in _runs(seeded)}
    assert {k: r["number"] for k, r in by_key.items()} == {
        "r-base": 1,
        "r-mid": 2,
        "r-none": 3,
        "r-late": 4,
    }
    base = by_key["r-base"]
    assert base["metrics"] == {"accuracy": 0.95, "loss": 0.2}
    assert base["params"] == {"alpha": 0.1, "solver": "lbfgs"}
    assert base["tags"] == {"baseline": "yes"}
    assert by_key["r-mid"]["params"] == {"alpha": 1, "note": None}
    assert by_key["r-none"]["metrics"] == {}
    one = seeded.as_("vera").cellops(f"runs/{base['id']}")
    assert (one["number"], one["metrics"]["accuracy"]) == (1, 0.95)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("accuracy>0.9", {"r-base", "r-mid"}),
        ("accuracy>=0.91", {"r-base", "r-mid"}),
        ("accuracy<0.9", {"r-late"}),  # r-base's earlier 0.70 no longer counts
        ("accuracy<=0.8", {"r-late"}),
        ("accuracy=0.95", {"r-base"}),
        ("loss < 1", {"r-base"}),
        ("f1>0", set()),
    ],
)
def test_metric_filter(seeded: Team, metric: str, expected: set[str]) -> None:
    assert set(_keys(_runs(seeded, metric=metric))) == expected


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        ("alpha=0.1", {"r-base"}),  # the number; r-late logged the text "0.1"
        ("alpha='0.1'", {"r-late"}),
        ("alpha=1", {"r-mid"}),
        ("alpha=1.0", {"r-mid"}),  # numbers compare as numbers
        ("fit_intercept=False", {"r-late"}),
        ("fit_intercept=true", set()),
        ("note=None", {"r-mid"}),
        ("solver=lbfgs", {"r-base"}),
    ],
)
def test_param_filter(seeded: Team, param: str, expected: set[str]) -> None:
    assert set(_keys(_runs(seeded, param=param))) == expected


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("baseline", {"r-base", "r-mid"}),  # a tag named so, or a tag valued so
        ("stage=baseline", {"r-mid"}),
        ("stage", {"r-mid", "r-none"}),
        ("stage=production", set()),
    ],
)
def test_tag_filter(seeded: Team, tag: str, expected: set[str]) -> None:
    assert set(_keys(_runs(seeded, tag=tag))) == expected


def test_filters_combine(seeded: Team) -> None:
    runs = _runs(seeded, metric=["accuracy>0.85", "accuracy<0.93"], tag="baseline")
    assert _keys(runs) == ["r-mid"]
    assert _keys(_runs(seeded, metric="accuracy>0.5", param="alpha=0.1")) == ["r-base"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-metric:accuracy", ["r-base", "r-mid", "r-late", "r-none"]),
        ("metric:accuracy", ["r-late", "r-mid", "r-base", "r-none"]),
        ("started", ["r-late", "r-base", "r-mid", "r-none"]),  # arrival order: run ids
    ],
)
def test_sort_pages_through_every_run_once(seeded: Team, sort: str, expected: list[str]) -> None:
    whole = _keys(_runs(seeded, sort=sort))
    assert whole == expected
    seen: list[str] = []
    cursor = None
    while True:
        params = {
            "notebook": NB,
            "sort": sort,
            "limit": 1,
            **({"cursor": cursor} if cursor else {}),
        }
        page = seeded.as_("vera").get(f"{API}/runs", **params)
        seen += _keys(page["items"])
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == expected


def test_default_order_is_newest_first(seeded: Team) -> None:
    runs = _runs(seeded)
    assert [r["id"] for r in runs] == sorted((r["id"] for r in runs), reverse=True)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"metric": "accuracy"}, "NAME OP NUMBER"),
        ({"metric": "accuracy>high"}, "'high' is not a finite number"),
        ({"metric": "accuracy>nan"}, "not a finite number"),
        ({"metric": ">0.9"}, "names no metric"),
        ({"param": "alpha"}, "NAME=VALUE"),
        ({"param": "=3"}, "names no param"),
        ({"tag": ""}, "names no tag"),
        ({"sort": "accuracy"}, "metric:NAME"),
        ({"sort": "metric:"}, "metric:NAME"),
        ({"metric": [f"m{i}>0" for i in range(21)]}, "at most 20 metric filters"),
        ({"sort": "-metric:accuracy", "cursor": "WzEsMl0"}, "cursor"),
    ],
)
def test_bad_expressions_are_400_naming_the_problem(
    seeded: Team, params: dict[str, Any], says: str
) -> None:
    r = seeded.as_("vera").request("GET", f"{API}/runs", params={"notebook": NB, **params})
    assert r.status_code == 400, r.text
    assert says in r.json()["error"]


def test_filters_are_documented_in_openapi(seeded: Team) -> None:
    doc = seeded.as_("vera").cellops("openapi.json")
    names = {p["name"] for p in doc["paths"]["/runs"]["get"]["parameters"]}
    assert {"metric", "param", "tag", "sort"} <= names


def test_filters_pass_through_a_members_jupyter_server(seeded: Team, tmp_path: Path) -> None:
    """The browser asks its own Jupyter server, which forwards to the team backend."""
    server = member_server(seeded, tmp_path, "bob")
    try:
        r = server.api.request(
            "GET",
            f"{API}/runs",
            params={"notebook": NB, "metric": "accuracy>=0.8", "sort": "metric:accuracy"},
        )
        assert r.status_code == 200, r.text
        assert _keys(r.json()["items"]) == ["r-late", "r-mid", "r-base"]
        bad = server.api.request("GET", f"{API}/runs", params={"notebook": NB, "param": "x"})
        assert bad.status_code == 400 and "NAME=VALUE" in bad.json()["error"]
    finally:
        server.stop()
