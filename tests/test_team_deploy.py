"""Deploying to the team backend: `cellops serve --serving-port P` supervises the serving
listener, so a member's kernel deploys to the shared backend and every member reaches the
endpoint.

Alice (editor) runs her own Jupyter server pointed at the backend on PostgreSQL; her
kernel gets no cellops settings but what her server gives it. Vera is a viewer: her
member token may call the endpoint but not change deployments. After the backend
restarts, the deployment comes back by itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .support import KernelClient, TeamBackend, free_port
from .test_deploy_kernel import HELPERS, WAIT, run
from .test_kernel_library import TRAIN, last_json
from .test_team_registry import member

pytestmark = pytest.mark.timeout(600)
MODEL = "team-deploy-iris"


@pytest.fixture(scope="module")
def backend(module_pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamBackend]:
    tmp = tmp_path_factory.mktemp("team-deploy")
    serving_port = free_port()
    team = TeamBackend(
        module_pg_url, tmp / "artifacts", extra_args=("--serving-port", str(serving_port))
    )
    team.serving_url = f"http://127.0.0.1:{serving_port}"  # type: ignore[attr-defined]
    team.tokens = {  # type: ignore[attr-defined]
        "alice": team.add_user("alice"),
        "vera": team.add_user("vera", role="viewer"),
    }
    team.start()
    yield team
    team.stop()


@pytest.fixture(scope="module")
def alice(backend: TeamBackend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelClient]:
    server = member(backend, tmp_path_factory.mktemp("alice"), "alice")
    client = server.connect(server.new_session("deploy.ipynb"))
    try:
        run(client, TRAIN + HELPERS)
        yield client
    finally:
        client.close()
        server.stop()


def infer(url: str, token: str, rows: list[list[float]]) -> requests.Response:
    return requests.post(
        f"{url}/deployments/{MODEL}/invocations",
        json={"inputs": rows},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def wait_serving(url: str, token: str, rows: list[list[float]], seconds: float) -> Any:
    """The endpoint's answer once it serves again (the listener starts with the backend)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            r = infer(url, token, rows)
            if r.status_code == 200:
                return r.json()
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the deployment did not come back after the backend restarted")
        time.sleep(0.2)


def test_a_member_deploys_to_the_shared_backend(
    backend: TeamBackend, alice: KernelClient, tmp_path: Path
) -> None:
    serving_url: str = backend.serving_url  # type: ignore[attr-defined]
    out = last_json(
        run(
            alice,
            f"mv = cellops.register(model, {MODEL!r}, alias='champion')\n"
            f"dep = cellops.deploy({MODEL!r}, alias='champion', wait=WAIT)\n"
            "again = cellops.get_deployment(dep.name)\n"
            "print(json.dumps({'url': dep.url, 'state': dep.state, 'key': dep.key,\n"
            "    'same': bool((dep.predict(X) == model.predict(X)).all()),\n"
            "    'fetched': bool((again.predict(X[:3]) == model.predict(X[:3])).all()),\n"
            "    'expected': model.predict(X[:3]).tolist(), 'rows': X[:3].tolist()}))",
        )["stdout"]
    )
    # The endpoint is the backend's serving listener, not Alice's Jupyter server.
    assert out["url"] == f"{serving_url}/deployments/{MODEL}/invocations"
    assert out["state"] == "ready" and out["same"] and out["fetched"]

    # Any member reaches it: the key, or a member's own token (Vera is a viewer).
    vera = backend.tokens["vera"]  # type: ignore[attr-defined]
    for token in (out["key"], vera):
        r = infer(serving_url, token, out["rows"])
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": out["expected"]}
    assert infer(serving_url, "not-a-member", out["rows"]).status_code == 401

    # A viewer may look but not change it.
    api = backend.api(vera)
    assert api.cellops(f"deployments/{MODEL}")["state"] == "ready"
    refused = api.request(
        "PATCH",
        f"cellops/api/v1/deployments/{MODEL}",
        json={"traffic": [{"version": 1, "percent": 100}]},
    )
    assert refused.status_code == 403, refused.text

    # The backend restarts (and with it the listener): the deployment comes back by itself,
    # with the same key.
    backend.stop()
    backend.start()
    assert wait_serving(serving_url, out["key"], out["rows"], WAIT) == {
        "predictions": out["expected"]
    }
