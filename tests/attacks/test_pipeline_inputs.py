"""Attacks on what issue 13's pipelines let a client send: crafted promotion bodies (the
alias, the version, the flags) and the API `cellops run` serves its kernel on loopback.
Each crafted request is refused with a 4xx JSON error, and no alias moves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..reviewing import API, error_of, new_model, registered
from ..support import run_coroutine
from .conftest import Team

CRAFTED = [
    ({"version": "1", "alias": "production"}, "version"),  # a string is not a number
    ({"version": -1, "alias": "production"}, "version"),
    ({"version": 10**30, "alias": "production"}, "version"),
    ({"version": 1, "alias": "production\n"}, "alias"),  # never a second "production"
    ({"version": 1, "alias": "../production"}, "alias"),
    ({"version": 1, "alias": "x" * 10_000}, "alias"),
    ({"version": 1, "alias": "production", "dry_run": "yes"}, "dry_run"),
    ({"version": 1, "alias": "production", "override": "because"}, "override"),
    ({"alias": "production"}, "version"),
]


@pytest.fixture(scope="module")
def model(team: Team) -> Iterator[str]:
    name = new_model()
    registered(team.as_("alice"), name)
    yield name


@pytest.mark.parametrize(("body", "names"), CRAFTED)
def test_crafted_promotions_are_400_and_move_nothing(
    team: Team, model: str, body: dict[str, Any], names: str
) -> None:
    r = team.as_("alice").request("POST", f"{API}/models/{model}/promotions", json=body)
    said = error_of(r, 400)
    assert names in (said["error"] + str(said["detail"])).lower(), said
    assert team.as_("vera").get(f"{API}/models/{model}")["aliases"] == {}


def test_promotions_from_below_editor_are_refused_even_as_dry_runs(team: Team, model: str) -> None:
    for who in ("vera", "cora"):  # viewer, commenter
        for dry in (False, True):
            body = {"version": 1, "alias": "production", "dry_run": dry}
            r = team.as_(who).request("POST", f"{API}/models/{model}/promotions", json=body)
            error_of(r, 403)
    assert team.as_("vera").get(f"{API}/models/{model}")["aliases"] == {}


def test_the_api_of_a_headless_run_answers_its_token_only(tmp_path: Any) -> None:
    """Any local process can reach 127.0.0.1: only the run's own token is let in."""
    from cellops_server.headless.service import serve_api
    from cellops_server.store import Store

    store = Store(f"sqlite:///{tmp_path / 'cellops.db'}", str(tmp_path / "artifacts"))

    async def answers() -> dict[str, int]:
        api = serve_api(store, str(tmp_path), 1 << 20)
        try:
            status = f"{api.url}cellops/api/v1/status"
            tries = {
                "none": {},
                "wrong": {"Authorization": "token " + "0" * len(api.token)},
                "prefix": {"Authorization": f"token {api.token[:-1]}"},
                "right": {"Authorization": f"token {api.token}"},
            }
            from tornado.httpclient import AsyncHTTPClient

            client = AsyncHTTPClient()
            out = {}
            for name, headers in tries.items():
                reply = await client.fetch(status, headers=headers, raise_error=False)
                out[name] = reply.code
            return out
        finally:
            api.stop()

    try:
        assert run_coroutine(answers()) == {"none": 401, "wrong": 401, "prefix": 401, "right": 200}
    finally:
        store.close()
