"""Issue 9, item 2: an editor rewriting other people's history on the team backend.

Every attack goes through real HTTP to a real `cellops serve` (SQLite and PostgreSQL):
alice records her work, bob (another editor) reads what viewers can read and tries to
overwrite, move, end or claim it. Records belong to the member who first sent them.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import requests
import skops.io
from cellops_server.spool import Spool
from cellops_server.writer import RemoteSink, Writer
from sklearn.linear_model import LogisticRegression

from ..records import execution, run
from .conftest import API, Team
from .ingesting import executions_of, ingest, rejected_from

ALICE_OUTPUTS = [{"output_type": "stream", "name": "stdout", "text": "accuracy 0.93\n"}]
FORGED_OUTPUTS = [{"output_type": "stream", "name": "stdout", "text": "accuracy 0.12\n"}]


def alices_notebook(team: Team, **exec_kw: Any) -> tuple[str, str, str]:
    """alice records one run with one execution; answers (notebook, run key, msg_id)."""
    tag = uuid.uuid4().hex[:8]
    notebook, key, msg_id = f"alice/analysis-{tag}.ipynb", f"alice-run-{tag}", f"alice-{tag}"
    records = [
        run(key, notebook, source="alice-server"),
        execution(1, "model.fit(X, y)", run_key=key, notebook=notebook, msg_id=msg_id, **exec_kw),
    ]
    answer = ingest(team, "alice", records)
    assert answer["accepted"] == 2 and not answer.get("rejected"), answer
    return notebook, key, msg_id


def test_bob_resending_alices_msg_id_with_other_outputs_is_refused_and_logged(
    team: Team,
) -> None:
    notebook, alice_key, msg_id = alices_notebook(team, outputs=ALICE_OUTPUTS)
    (seen,) = executions_of(team, notebook)  # what viewers (and so bob) can read
    assert seen["msg_id"] == msg_id
    bob_nb, bob_key = f"bob/{msg_id}.ipynb", f"bob-run-{msg_id}"
    forged = {"status": "error", "outputs": FORGED_OUTPUTS, "msg_id": msg_id}
    answer = ingest(
        team,
        "bob",
        [
            run(bob_key, bob_nb, source="bob-server"),
            # into his own run (moving it), then straight into alice's run
            execution(1, "accuracy = 0.12", run_key=bob_key, notebook=bob_nb, **forged),
            execution(1, "accuracy = 0.12", run_key=alice_key, notebook=notebook, **forged),
        ],
    )
    assert answer["accepted"] == 1  # bob's own run landed
    reasons = {r["index"]: r["reason"] for r in answer["rejected"]}
    assert set(reasons) == {1, 2} and all("alice" in why for why in reasons.values()), answer

    (after,) = executions_of(team, notebook)
    assert (after["status"], after["outputs"], after["run_id"]) == (
        "ok",
        ALICE_OUTPUTS,
        seen["run_id"],
    )
    assert after["code"] == "model.fit(X, y)"
    assert executions_of(team, bob_nb) == []
    # the refusal is kept with who tried, and logged
    kept = [r for r in rejected_from(team.db_url, "bob") if msg_id in r.record]
    assert len(kept) == 2 and all("alice" in r.reason for r in kept)
    assert "sent by bob" in team.log_path.read_text(errors="replace")

    # alice's own update of the same execution still lands
    done = execution(1, "model.fit(X, y)", run_key=alice_key, notebook=notebook, msg_id=msg_id)
    done["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "accuracy 0.95\n"}]
    assert ingest(team, "alice", [done])["accepted"] == 1
    assert executions_of(team, notebook)[0]["outputs"] == done["outputs"]


def test_bob_resending_alices_run_key_is_refused(team: Team) -> None:
    notebook, alice_key, _ = alices_notebook(team)
    ended = run(alice_key, notebook, source="alice-server", ended_at="2026-01-01T12:05:00+00:00")
    ended["git"] = {"commit": "b0b" * 13 + "b", "dirty": True}
    answer = ingest(team, "bob", [ended])
    assert answer["accepted"] == 0 and answer["rejected"][0]["index"] == 0, answer
    (r,) = team.as_("vera").cellops("runs", notebook=notebook)["items"]
    assert (r["user"], r["ended_at"], r["git"]) == ("alice", None, None)

    # the same record from alice lands
    assert ingest(team, "alice", [ended])["accepted"] == 1
    (r,) = team.as_("vera").cellops("runs", notebook=notebook)["items"]
    assert r["ended_at"] is not None and r["git"] == ended["git"]


def test_bob_recovering_alices_server_ends_none_of_her_runs(team: Team) -> None:
    notebook, _, _ = alices_notebook(team, status="running", finished_at=None)
    recover = {
        "kind": "recover",
        "source": "alice-server",  # run sources are visible to nobody, but guessable
        "instance": "bob-was-here",
        "at": "2026-01-01T13:00:00+00:00",
    }
    ingest(team, "bob", [recover])
    assert executions_of(team, notebook)[0]["status"] == "running"
    assert team.as_("vera").cellops("runs", notebook=notebook)["items"][0]["ended_at"] is None


def test_bob_renaming_alices_notebook_is_refused(team: Team) -> None:
    notebook, _, _ = alices_notebook(team)
    stolen = f"bob/{uuid.uuid4().hex[:8]}.ipynb"
    rename = {
        "kind": "rename",
        "from_path": notebook,
        "to_path": stolen,
        "at": "2026-01-02T00:00:00",
    }
    answer = ingest(team, "bob", [rename])
    assert answer["accepted"] == 0 and "other members" in answer["rejected"][0]["reason"], answer
    paths = {n["path"] for n in team.as_("vera").cellops("notebooks", limit=500)["items"]}
    assert notebook in paths and stolen not in paths
    # the folder: same refusal for a notebook under it
    folder_rename = {**rename, "from_path": "alice", "to_path": "bob/stolen-folder"}
    assert ingest(team, "bob", [folder_rename])["accepted"] == 0
    assert len(executions_of(team, notebook)) == 1

    # alice renames her own notebook
    mine = f"alice/renamed-{uuid.uuid4().hex[:8]}.ipynb"
    assert ingest(team, "alice", [{**rename, "to_path": mine}])["accepted"] == 1
    assert len(executions_of(team, mine)) == 1 and executions_of(team, notebook) == []


def test_bob_logging_metrics_onto_alices_execution_is_refused(team: Team) -> None:
    notebook, _, msg_id = alices_notebook(team)
    (execution_row,) = executions_of(team, notebook)
    logs = f"{API}/logs"
    mine = {"msg_id": msg_id, "metrics": {"accuracy": 0.93}, "params": {"C": 1.0}}
    assert team.as_("alice").request("POST", logs, json=mine).status_code == 201
    forged = {"msg_id": msg_id, "metrics": {"accuracy": 0.12}, "params": {"C": 99.0}}
    r = team.as_("bob").request("POST", logs, json=forged)
    assert r.status_code == 403, r.text
    assert "alice" in r.json()["error"]
    logged = team.as_("vera").cellops(f"executions/{execution_row['id']}/logs")
    assert [p["value"] for p in logged["metrics"]["accuracy"]] == [0.93]
    assert logged["params"] == {"C": 1.0}


def upload(team: Team, member: str) -> str:
    """A real (skops) model artifact: the backend verifies what it registers."""
    data = skops.io.dumps(LogisticRegression(C=0.5))
    assert team.as_(member).put_artifact(data).status_code in (200, 201)
    return hashlib.sha256(data).hexdigest()


def register(team: Team, member: str, name: str, msg_id: str) -> requests.Response:
    body = {"artifact": upload(team, member), "flavor": "sklearn", "lineage": {"msg_id": msg_id}}
    return team.as_(member).request("POST", f"{API}/models/{name}/versions", json=body)


def test_bob_registering_a_model_whose_lineage_is_alices_execution_is_refused(
    team: Team,
) -> None:
    _, _, msg_id = alices_notebook(team)
    name = f"stolen-{uuid.uuid4().hex[:8]}"
    r = register(team, "bob", name, msg_id)
    assert r.status_code == 403, r.text
    assert "another member" in r.json()["error"]
    assert team.as_("bob").request("GET", f"{API}/models/{name}").status_code == 404

    # a msg_id not stored yet (the kernel registers before the writer stores the row) is
    # accepted but bound to bob: alice's execution stored later never becomes its lineage
    pending = f"future-{uuid.uuid4().hex[:8]}"
    r = register(team, "bob", name, pending)
    assert r.status_code == 201, r.text
    notebook = f"alice/later-{pending}.ipynb"
    key = f"run-{pending}"
    ingest(
        team,
        "alice",
        [run(key, notebook), execution(1, "fit()", None, key, notebook, msg_id=pending)],
    )
    lineage = team.as_("bob").cellops(f"models/{name}/versions/1")["lineage"]
    assert lineage["msg_id"] == pending and lineage["execution_id"] is None

    # alice's own registrations resolve, stored before or after she registers
    mine = f"alices-{uuid.uuid4().hex[:8]}"
    assert register(team, "alice", mine, msg_id).status_code == 201
    later = f"later-{uuid.uuid4().hex[:8]}"
    assert register(team, "alice", mine, later).status_code == 201
    ingest(
        team,
        "alice",
        [
            run(key + "-2", notebook),
            execution(2, "fit()", None, key + "-2", notebook, msg_id=later),
        ],
    )
    versions = team.as_("alice").cellops(f"models/{mine}/versions")["items"]
    assert all(v["lineage"]["execution_id"] is not None for v in versions), versions


def test_bobs_writer_sets_aside_what_the_backend_refuses_and_moves_on(
    team: Team, tmp_path: Path
) -> None:
    """A team client's writer (real spool, real HTTP) neither retries a refusal nor stops."""
    notebook, _, msg_id = alices_notebook(team)
    spool = Spool(tmp_path / "spool")
    bob_nb = f"bob/{msg_id}.ipynb"
    forged = execution(1, "x = 0", run_key=f"bob-{msg_id}", notebook=bob_nb, msg_id=msg_id)
    for record in (
        run(f"bob-{msg_id}", bob_nb),
        forged,
        execution(2, "y = 1", None, f"bob-{msg_id}", bob_nb),
    ):
        spool.append(record)
    writer = Writer(
        Spool(tmp_path / "spool", reader=True), RemoteSink(team.url, team.tokens["bob"])
    )
    assert writer.drain_once() == 3 and writer.drain_once() == 0  # committed: never retried
    assert [e["code"] for e in executions_of(team, bob_nb)] == ["y = 1"]
    (set_aside,) = (tmp_path / "spool" / "spool-rejected.jsonl").read_text().splitlines()
    assert json.loads(set_aside)["record"]["msg_id"] == msg_id
    assert executions_of(team, notebook)[0]["code"] == "model.fit(X, y)"
    spool.close()
