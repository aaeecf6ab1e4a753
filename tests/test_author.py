"""Who is recorded as the author in embedded mode: one stable name per Jupyter server.

jupyter_server's token login makes a new random "Anonymous …" user per request; cellops
records the OS user instead, and the Jupyter user's name when an identity provider (like
JupyterHub's) names a person.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from .support import JupyterServer
from .test_registry import MODEL, MODEL_SHA

API = "cellops/api/v1"
WORKTREE = Path(__file__).resolve().parent.parent


def authors(server: JupyterServer, name: str) -> tuple[list[str], str]:
    """Who registered two versions of ``name`` and who ran a cell, as the API says."""
    assert server.api.put_artifact(MODEL).status_code in (200, 201)
    body = {"artifact": MODEL_SHA, "flavor": "sklearn"}
    for _ in range(2):  # two requests: two anonymous users, if Jupyter's id were recorded
        r = server.api.request("POST", f"{API}/models/{name}/versions", json=body)
        assert r.status_code == 201, r.text
    created_by = [v["created_by"] for v in server.api.cellops(f"models/{name}/versions")["items"]]
    client = server.connect(server.new_session(f"{name}.ipynb"))
    client.execute("1", cell_id="c1")
    client.close()
    run = server.api.wait_for("runs", lambda b: b["items"], notebook=f"{name}.ipynb")["items"][0]
    return created_by, run["user"]


def test_token_login_records_the_os_user(tmp_path: Path) -> None:
    server = JupyterServer(tmp_path).start()
    try:
        created_by, run_user = authors(server, "by-os-user")
    finally:
        server.stop()
    assert created_by == [getpass.getuser()] * 2
    assert run_user == getpass.getuser()


def test_a_named_jupyter_user_is_recorded(tmp_path: Path) -> None:
    provider = "tests.named_identity.NamedIdentityProvider"
    path = os.pathsep.join(p for p in (str(WORKTREE), os.environ.get("PYTHONPATH")) if p)
    server = JupyterServer(
        tmp_path,
        env={"PYTHONPATH": path},
        extra_args=[f"--ServerApp.identity_provider_class={provider}"],
    ).start()
    try:
        created_by, run_user = authors(server, "by-dana")
    finally:
        server.stop()
    assert created_by == ["dana", "dana"] and run_user == "dana"
