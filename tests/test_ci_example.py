"""The example pipeline in examples/ci, executed as a CI job would run it.

A copy of the example in a git repository of its own stands for the team's project; its
workflow's commands are run by examples/ci/run_workflow.py (GitHub's own `uses:` steps and
the install step are skipped: cellops is installed from this checkout). The job talks to a
team backend on PostgreSQL as the CI user, and the example's webhook receiver listens on
loopback (private targets allowed by the admin setting) and verifies every signature.

Three pushes: the first model takes `production` (no policy yet); the admin then guards the
alias with an accuracy gate; an under-regularized retrain is refused (the job fails, the
alias stays); a good one is promoted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .support import Api, TeamBackend, free_port, terminate, wait_http
from .team_lab import git

pytestmark = pytest.mark.timeout(600)
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ci"
SECRET = "example-signing-secret"
MODEL = "breast-cancer"
REFUSED = 4  # `cellops promote`: refused by the team's policy


class Pipeline:
    def __init__(self, backend: TeamBackend, repo: Path, tokens: dict[str, str]) -> None:
        self.backend, self.repo, self.tokens = backend, repo, tokens

    def api(self, user: str) -> Api:
        return self.backend.api(self.tokens[user])

    def push(self, **inputs: str) -> subprocess.CompletedProcess[str]:
        """What a push does: the workflow's commands with the CI user's secrets."""
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CELLOPS_")},
            "CELLOPS_BACKEND_URL": self.backend.url,
            "CELLOPS_TOKEN": self.tokens["ci-bot"],
            "GITHUB_RUN_ID": str(int(time.time() * 1000)),
        }
        cmd = [sys.executable, str(self.repo / "examples/ci/run_workflow.py")]
        cmd += ["--skip", "Install cellops"]
        cmd += [a for name, value in inputs.items() for a in ("--input", f"{name}={value}")]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The example's receiver on loopback; answers (its URL, the file of verified events)."""
    tmp = tmp_path_factory.mktemp("receiver")
    port = free_port()
    events = tmp / "events.jsonl"
    with events.open("w") as out, (tmp / "rejected.log").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE / "webhook_receiver.py"), "--port", str(port)],
            env={"CELLOPS_WEBHOOK_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
            stdout=out,
            stderr=err,
        )
    try:
        url = f"http://127.0.0.1:{port}/hooks/cellops"
        wait_http(url, timeout=30, proc=proc)
        yield url, events
    finally:
        terminate(proc)


@pytest.fixture(scope="module")
def pipeline(
    module_pg_url: str, tmp_path_factory: pytest.TempPathFactory, receiver: tuple[str, Path]
) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("ci-example")
    backend = TeamBackend(
        module_pg_url, tmp / "artifacts", extra_args=("--webhook-allow-private-targets",)
    )
    tokens = {
        "ci-bot": backend.add_user("ci-bot", role="editor"),
        "admin": backend.add_user("admin", role="admin"),
    }
    repo = tmp / "project"
    shutil.copytree(EXAMPLE, repo / "examples" / "ci")
    git("init", "-q", repo)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "training pipeline", cwd=repo)
    backend.start()
    try:
        hook = backend.api(tokens["admin"]).request(
            "POST",
            "cellops/api/v1/webhooks",
            json={
                "url": receiver[0],
                "events": ["run.finished", "model_version.created", "alias.moved"],
                "secret": SECRET,
            },
        )
        assert hook.status_code == 201, hook.text
        yield Pipeline(backend, repo, tokens)
    finally:
        backend.stop()


def received(events: Path, predicate: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The verified events the receiver printed, once ``predicate`` holds for them."""
    deadline = time.monotonic() + timeout
    while True:
        lines = events.read_text().splitlines()
        got = [json.loads(line) for line in lines if line.strip()]
        if predicate(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def production(pipeline: Pipeline) -> int | None:
    model = pipeline.api("admin").cellops(f"models/{MODEL}")
    return model["aliases"].get("production")


def test_pushes_record_runs_and_promotion_follows_the_policy(
    pipeline: Pipeline, receiver: tuple[str, Path]
) -> None:
    first = pipeline.push()
    assert first.returncode == 0, first.stdout + first.stderr
    assert production(pipeline) == 1

    # The run is a headless CI run, with its parameters and job; the version's lineage
    # points at it.
    runs = pipeline.api("admin").cellops("runs")["items"]
    (run,) = [r for r in runs if r["source"] == "headless"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=pipeline.repo, capture_output=True, text=True
    ).stdout.strip()
    assert run["ci"]["system"] == "github"
    assert run["ci"]["commit"] == head
    assert run["ci"]["url"].startswith("https://github.com/")
    assert run["parameters"]["C"] == 1.0
    assert run["outcome"] == "ok"
    version = pipeline.api("admin").cellops(f"models/{MODEL}/versions/1")
    assert version["lineage"]["run_id"] == run["id"]
    assert version["metrics"]["accuracy"] > 0.95

    policy = {"protected_aliases": {"production": {
        "min_approvals": 0,
        "metric_gates": [{"metric": "accuracy", "op": ">=", "value": 0.95}],
    }}}  # fmt: skip
    put = pipeline.api("admin").request("PUT", f"cellops/api/v1/models/{MODEL}/policy", json=policy)
    assert put.status_code == 200, put.text

    # Barely trained: the gate refuses it, the job fails at the promote step, the alias stays.
    weak = pipeline.push(C="0.00001")
    assert weak.returncode == REFUSED, weak.stdout + weak.stderr
    assert "-- failed (4): Promote to production" in weak.stdout
    assert "FAIL" in weak.stdout and "accuracy" in weak.stdout
    assert production(pipeline) == 1

    good = pipeline.push(C="0.5")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "PASS" in good.stdout
    assert production(pipeline) == 3

    # Every event reached the receiver with a valid signature (it prints only those).
    _, events = receiver

    def complete(got: list[dict[str, Any]]) -> bool:
        types = [e["type"] for e in got]
        return (types.count("run.finished"), types.count("model_version.created"),
                types.count("alias.moved")) == (3, 3, 2)  # fmt: skip

    got = received(events, complete)
    assert complete(got), [e["type"] for e in got]
    moved = sorted(e["data"].get("version") for e in got if e["type"] == "alias.moved")
    assert moved == [1, 3]
    finished = [e for e in got if e["type"] == "run.finished"]
    assert {e["data"]["outcome"] for e in finished} == {"ok"}
    assert all(e["actor"] == "ci-bot" for e in got)


def test_the_receiver_refuses_a_forged_or_replayed_request(receiver: tuple[str, Path]) -> None:
    url, events = receiver
    body = json.dumps({"id": "1", "type": "alias.moved", "at": "", "actor": "x", "data": {}})
    now = str(int(time.time()))

    def post(timestamp: str, signature: str) -> int:
        headers = {
            "X-Cellops-Timestamp": timestamp,
            "X-Cellops-Signature": signature,
            "X-Cellops-Delivery": "forged",
            "Content-Type": "application/json",
        }
        return requests.post(url, data=body, headers=headers, timeout=10).status_code

    def sign(secret: str, timestamp: str) -> str:
        mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
        return "sha256=" + mac.hexdigest()

    assert post(now, sign("not-the-secret", now)) == 401
    stale = str(int(time.time()) - 3600)
    assert post(stale, sign(SECRET, stale)) == 401  # a captured request, replayed later
    assert post(now, "") == 401
    assert all(e.get("delivery") != "forged" for e in received(events, lambda _: True, 0))
    assert post(now, sign(SECRET, now)) == 200  # the receiver itself works
