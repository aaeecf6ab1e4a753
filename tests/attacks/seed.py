"""What the attack modules put in a team backend before attacking it."""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from ..records import execution, run
from ..support import Api

API = "cellops/api/v1"
# Not a skops file: "bytes" is a flavor no server-side model check reads.
ARTIFACT = b"model bytes of an attack test"
ARTIFACT_SHA = hashlib.sha256(ARTIFACT).hexdigest()


def register(api: Api, name: str, alias: str | None = None) -> requests.Response:
    """Upload the test artifact (once) and register it as a new version of ``name``."""
    uploaded = api.put_artifact(ARTIFACT)
    assert uploaded.status_code in (200, 201), uploaded.text
    body: dict[str, Any] = {"artifact": ARTIFACT_SHA, "flavor": "bytes"}
    if alias is not None:
        body["alias"] = alias
    return api.request("POST", f"{API}/models/{name}/versions", json=body)


def ingest(api: Api, records: list[dict[str, Any]]) -> None:
    r = api.request("POST", f"{API}/ingest", json={"records": records})
    assert r.status_code == 200, r.text


def seed_history(api: Api, notebook: str, run_key: str, executions: int = 3) -> int:
    """A run of ``notebook`` whose every execution changes its one cell (so each makes a
    version); answers the run's id."""
    records = [run(run_key, notebook, kernel_id=f"kernel-{run_key}")]
    records += [
        execution(seq, f"x = {seq}", "c1", run_key, notebook, msg_id=f"{run_key}-{seq}")
        for seq in range(1, executions + 1)
    ]
    ingest(api, records)
    runs = api.get(f"{API}/runs", notebook=notebook)["items"]
    assert runs, f"no run of {notebook} stored"
    return runs[0]["id"]
