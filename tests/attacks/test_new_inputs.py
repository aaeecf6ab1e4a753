"""Attacks on the inputs the notebook-identity and registration work added: the
``Idempotency-Key`` header, a log batch's ``at`` and the ``owner``/``repo``/``repo_path``
query parameters. Each is refused with a 4xx that says what to fix, and changes nothing.
"""

from __future__ import annotations

import hashlib
import http.client
import uuid
from urllib.parse import quote

import pytest
import requests
import skops.io
from sklearn.linear_model import LogisticRegression

from .conftest import API, Team


def register(team: Team, member: str, name: str, key: str, C: float) -> requests.Response:
    data = skops.io.dumps(LogisticRegression(C=C))
    assert team.as_(member).put_artifact(data).status_code in (200, 201)
    body = {"artifact": hashlib.sha256(data).hexdigest(), "flavor": "sklearn"}
    api = team.as_(member)
    return requests.post(
        f"{api.base}/{API}/models/{name}/versions",
        json=body,
        headers={**api.headers, "Idempotency-Key": key},
        timeout=30,
    )


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "é-accent", "space inside"], ids=repr)
def test_malformed_idempotency_key_is_refused_and_registers_nothing(team: Team, key: str) -> None:
    name = f"keyed-{uuid.uuid4().hex[:8]}"
    r = register(team, "alice", name, key, 1.0)
    assert r.status_code == 400, r.text
    assert "Idempotency-Key" in r.json()["error"]
    assert team.as_("alice").request("GET", f"{API}/models/{name}").status_code == 404


def test_replaying_a_teammates_key_with_another_model_creates_nothing(team: Team) -> None:
    name, key = f"shared-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    first = register(team, "alice", name, key, 1.0)
    assert first.status_code == 201, first.text
    forged = register(team, "bob", name, key, 99.0)  # same key, another artifact
    assert forged.status_code == 422, forged.text
    versions = team.as_("vera").cellops(f"models/{name}/versions")["items"]
    assert [(v["version"], v["created_by"]) for v in versions] == [(1, "alice")]
    assert versions[0]["artifact"] == first.json()["artifact"]


@pytest.mark.parametrize(
    "at", ["2999-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "not a time", 10**20], ids=repr
)
def test_log_batch_from_the_future_or_no_time_is_refused(team: Team, at: object) -> None:
    msg_id = f"future-{uuid.uuid4().hex[:8]}"
    body = {"msg_id": msg_id, "metrics": {"accuracy": 0.5}, "at": at}
    r = team.as_("alice").request("POST", f"{API}/logs", json=body)
    assert r.status_code == 400, r.text
    assert "at" in str(r.json()["detail"]) or "at" in r.json()["error"]


@pytest.mark.parametrize("resource", ["runs", "versions", "executions"])
@pytest.mark.parametrize(
    "params",
    [
        {"owner": "x" * 10_000},
        {"owner": "nul\x00"},
        {"repo": "%ED%A0%80", "repo_path": "a.ipynb"},  # a lone surrogate, UTF-8 encoded
        {"repo": "git@host:org/x.git", "repo_path": "../" * 2000},
        {"repo": "git@host:org/x.git"},  # a repository without a path in it
    ],
    ids=["long-owner", "nul-owner", "surrogate-repo", "deep-repo-path", "repo-alone"],
)
def test_crafted_identity_parameters_answer_4xx_never_5xx(
    team: Team, resource: str, params: dict[str, str]
) -> None:
    query = "&".join(f"{k}={quote(v, safe='%')}" for k, v in params.items())
    r = team.as_("vera").request("GET", f"{API}/{resource}?notebook=analysis.ipynb&{query}")
    assert 200 <= r.status_code < 500, r.text
    if r.status_code == 200:  # nothing of anyone else's answers a made-up identity
        assert r.json()["items"] == []
    else:
        assert r.json()["error"]


@pytest.mark.parametrize(
    "length", ["²", "9" * 5000, "-1"], ids=["superscript", "5000-digits", "neg"]
)
@pytest.mark.parametrize("path", [f"artifacts/{'0' * 64}", "ingest"])
def test_crafted_content_length_is_a_4xx_never_a_500(team: Team, path: str, length: str) -> None:
    host, port = team.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("PUT" if path.startswith("artifacts") else "POST", f"/{API}/{path}")
        conn.putheader("Authorization", f"token {team.tokens['alice']}")
        conn.putheader("Content-Length", length)
        conn.endheaders()
        status = conn.getresponse().status
    finally:
        conn.close()
    assert 400 <= status < 500, status
