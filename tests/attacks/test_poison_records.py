"""Issue 9, item 3: one record the store cannot hold used to stop all recording, forever.

PostgreSQL text and JSONB cannot hold NUL; the API called the DataError "store unavailable"
(503) and writers retried the same batch without end. Now NULs in free text are stored
faithfully on both stores, NULs in identifiers are refused with a reason, and a record the
store refuses anyway is set aside (kept, logged, reported) while the rest of its batch lands.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
import skops.io
from sklearn.linear_model import LogisticRegression

from ..records import execution, run
from ..support import JupyterServer
from .conftest import API, Team
from .ingesting import executions_of, ingest, rejected_from

NUL_CODE = "blob = b'\x00\x01'  # pasted from a hexdump: \x00"
NUL_OUTPUTS = [
    {"output_type": "stream", "name": "stdout", "text": "header\x00\x00payload\n"},
    {"output_type": "execute_result", "data": {"text/plain": "'\x00'", "x\x00key": "v"}},
]
NUL_ERROR = {"ename": "ValueError", "evalue": "embedded null byte: '\x00'", "traceback": ["\x00"]}


def batch(tag: str, *middle: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """A run, a good execution, ``middle``, another good execution; answers the notebook."""
    notebook, key = f"poison/{tag}.ipynb", f"run-{tag}"
    records = [
        run(key, notebook, git={"branch": "main\x00", "dirty": False}),
        execution(1, "a = 1", "c1", key, notebook, msg_id=f"{tag}-1"),
        *middle,
        execution(9, "z = 26", "c9", key, notebook, msg_id=f"{tag}-9"),
    ]
    return notebook, records


def test_nul_in_code_and_outputs_between_good_records_all_land_intact(team: Team) -> None:
    tag = uuid.uuid4().hex[:8]
    notebook, records = batch(
        tag,
        execution(
            2,
            NUL_CODE,
            "c2",
            f"run-{tag}",
            f"poison/{tag}.ipynb",
            msg_id=f"{tag}-2",
            status="error",
            outputs=NUL_OUTPUTS,
            error=NUL_ERROR,
        ),
    )
    answer = ingest(team, "alice", records)
    assert answer == {"accepted": 4, "rejected": []}
    newest_first = executions_of(team, notebook)
    assert [e["msg_id"] for e in newest_first] == [f"{tag}-9", f"{tag}-2", f"{tag}-1"]
    nul = newest_first[1]
    assert nul["code"] == NUL_CODE
    assert nul["outputs"] == NUL_OUTPUTS
    assert nul["error"] == NUL_ERROR
    (r,) = team.as_("vera").cellops("runs", notebook=notebook)["items"]
    assert r["git"] == {"branch": "main\x00", "dirty": False}


def test_nul_in_model_params_description_and_logged_values_round_trips(team: Team) -> None:
    tag = uuid.uuid4().hex[:8]
    ingest(team, "alice", batch(tag)[1])
    alice = team.as_("alice")
    logged = alice.request(
        "POST", f"{API}/logs", json={"msg_id": f"{tag}-1", "params": {"sep": "\x00"}}
    )
    assert logged.status_code == 201, logged.text
    data = skops.io.dumps(LogisticRegression(C=0.25))
    assert alice.put_artifact(data).status_code in (200, 201)
    body = {
        "artifact": hashlib.sha256(data).hexdigest(),
        "flavor": "sklearn",
        "params": {"sep": "\x00", "names": ["a\x00b"]},
        "description": "trained on\x00 the raw dump",
        "lineage": {"msg_id": f"{tag}-1"},
    }
    created = alice.request("POST", f"{API}/models/nul-{tag}/versions", json=body)
    assert created.status_code == 201, created.text

    version = alice.cellops(f"models/nul-{tag}/versions/1")
    assert version["params"] == body["params"]
    assert version["description"] == body["description"]
    execution_id = version["lineage"]["execution_id"]
    assert alice.cellops(f"executions/{execution_id}/logs")["params"] == {"sep": "\x00"}


def test_nul_in_an_identifier_is_refused_with_the_field_named(team: Team) -> None:
    tag = uuid.uuid4().hex[:8]
    notebook, records = batch(tag)
    records[1]["cell_id"] = "c\x001"
    r = team.as_("alice").request("POST", f"{API}/ingest", json={"records": records})
    assert r.status_code == 400, r.text
    assert "cell_id must not contain NUL" in json.dumps(r.json()["detail"])
    assert executions_of(team, notebook) == []  # nothing of the batch: the sender fixes it


# SQLite keeps every value that passes validation: only PostgreSQL has one to refuse.
@pytest.mark.parametrize("team", ["postgresql"], indirect=True)
def test_value_the_store_cannot_hold_is_set_aside_and_the_rest_land(team: Team) -> None:
    tag = uuid.uuid4().hex[:8]
    # Within the 1,024 characters validation allows, yet past PostgreSQL's index row limit
    # (2,704 bytes): 4-byte characters that do not compress.
    rng = random.Random(tag)
    huge = "".join(chr(rng.randint(0x10000, 0x3FFFF)) for _ in range(1000)) + ".ipynb"
    # An execution is filed under its run's notebook: its own path counts only for a run the
    # store never saw (whose notebook it then names).
    notebook, records = batch(tag, execution(2, "b = 2", "c2", f"lost-run-{tag}", huge))
    answer = ingest(team, "alice", records)
    assert answer["accepted"] == 3
    (rejected,) = answer["rejected"]
    assert rejected["index"] == 2 and "index row size" in rejected["reason"], answer
    assert [e["msg_id"] for e in executions_of(team, notebook)] == [f"{tag}-9", f"{tag}-1"]
    (kept,) = [r for r in rejected_from(team.db_url, "alice") if tag in r.record]
    assert json.loads(kept.record)["notebook"] == huge


# -- the embedded writer (a Jupyter server on its own store) --------------------------------


def spool_segment(server: JupyterServer) -> Path:
    return max((server.home / "spool" / "0").glob("spool-*.jsonl"))


def test_embedded_writer_keeps_recording_after_poison_records(
    kernel_server: JupyterServer,
) -> None:
    notebook = f"poison-{uuid.uuid4().hex[:8]}.ipynb"
    client = kernel_server.connect(kernel_server.new_session(notebook))
    first = client.execute("a = 1", "c1")["msg_id"]
    # The kernel refuses source with NUL (a SyntaxError): its record holds the NUL all the same.
    nul = client.execute("s = 'x\x00y'", "c2")["msg_id"]
    # A record no store can hold (a lone surrogate cannot be encoded), as a spool line.
    poison = execution(1, "bad = '\ud800'", "p1", f"poison-run-{notebook}", f"other-{notebook}")
    with open(spool_segment(kernel_server), "a", encoding="ascii") as spool:
        spool.write(json.dumps(poison) + "\n")
    last = client.execute("b = 2", "c3")["msg_id"]
    client.close()

    stored = kernel_server.api.wait_for(
        "executions",
        lambda body: {first, nul, last} <= {e["msg_id"] for e in body["items"]},
        timeout=30,
        notebook=notebook,
    )
    codes = {e["msg_id"]: e["code"] for e in stored["items"]}
    assert codes[nul] == "s = 'x\x00y'"
    set_aside = (spool_segment(kernel_server).parent / "spool-rejected.jsonl").read_text()
    assert poison["msg_id"] in set_aside
    db_url = kernel_server.env.get("CELLOPS_DB_URL") or f"sqlite:///{kernel_server.home}/cellops.db"
    assert any(poison["msg_id"] in r.record for r in rejected_from(db_url, None))
