"""The model registry through the team backend on PostgreSQL, from kernels, as users do it.

Alice, Bob and Vera (a viewer) each run their own Jupyter server pointed at one
`cellops serve` backend. Their kernels get no cellops settings but what their server
gives them, so every `cellops` call goes kernel -> own Jupyter server -> backend.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .support import CELLOPS_CLIENT_ENV, JupyterServer, KernelClient, TeamBackend, execute_headless
from .test_kernel_library import last_json
from .test_kernel_library import run as run_cell
from .test_team import start_backend

API = "cellops/api/v1"
MODEL = "team-iris"
NOTEBOOK = "train.ipynb"

# The same rows in every kernel: the bundled iris data, split with a fixed seed.
DATA = (
    "from sklearn.datasets import load_iris\n"
    "from sklearn.model_selection import train_test_split\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=7)"
)
PREDICT = "print(json.dumps({{'pred': {m}.predict(X_test).tolist(), 'proba': {m}.predict_proba(X_test).tolist()}}))"

ALICE_CELLS = [
    "import json\nimport cellops\ncellops.autolog()\n"
    "from sklearn.linear_model import LogisticRegression",
    DATA,
    # v1: trained, evaluated and registered in one cell (autolog records the fit there)
    "model = LogisticRegression(C=1.0, max_iter=1000).fit(X_train, y_train)\n"
    "cellops.log_metrics({'accuracy': model.score(X_test, y_test)})\n"
    f"mv = cellops.register(model, '{MODEL}')\n"
    "print(json.dumps({'version': mv.version, 'accuracy': mv.metrics['accuracy']}))",
    PREDICT.format(m="model"),
    # v2: a more regularized model, registered as the champion
    "strong = LogisticRegression(C=0.05, max_iter=1000).fit(X_train, y_train)\n"
    "cellops.log_metrics({'accuracy': strong.score(X_test, y_test)})\n"
    f"mv2 = cellops.register(strong, '{MODEL}', alias='champion')\n"
    "print(json.dumps({'version': mv2.version, 'aliases': mv2.aliases}))",
    PREDICT.format(m="strong"),
]
REGISTER_V1, REGISTER_V2 = 2, 4

# A refusal must come back as an exception with a message, printed here (a hang times out).
REFUSED = """
try:
    {call}
    print(json.dumps({{"registered": True}}))
except Exception as e:
    print(json.dumps({{"type": type(e).__name__, "status": getattr(e, "status", None),
                      "message": str(e)}}))
"""


def member(backend: TeamBackend, tmp: Path, name: str) -> JupyterServer:
    """A member's Jupyter server in team-client mode; its kernels get no cellops settings
    but the ones the server advertises (CELLOPS_SERVER_URL/TOKEN)."""
    env = {"CELLOPS_BACKEND_URL": backend.url, "CELLOPS_TOKEN": backend.tokens[name]}  # type: ignore[attr-defined]
    server = JupyterServer(tmp / name, env=env)
    for var in CELLOPS_CLIENT_ENV:
        if var != "CELLOPS_TOKEN":  # the server's own setting: its token for the backend
            server.env.pop(var, None)
    return server.start()


@pytest.fixture(scope="module")
def team(module_pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("team-registry")
    backend = start_backend(module_pg_url, tmp)
    names = ("alice", "bob", "vera")
    with ThreadPoolExecutor(len(names)) as pool:
        futures = {n: pool.submit(member, backend, tmp, n) for n in names}
    try:
        yield {"backend": backend, **{n: f.result() for n, f in futures.items()}}
    finally:
        for f in futures.values():
            if f.exception() is None:
                f.result().stop()
        backend.stop()


def api_as(team: dict[str, Any], name: str) -> Any:
    backend: TeamBackend = team["backend"]
    return backend.api(backend.tokens[name])  # type: ignore[attr-defined]


def open_kernel(server: JupyterServer, path: str) -> KernelClient:
    return server.connect(server.new_session(path))


@pytest.fixture(scope="module")
def alice(team: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Alice trains and registers two versions in a kernel of her server."""
    server: JupyterServer = team["alice"]
    client = open_kernel(server, NOTEBOOK)
    cell_ids = [str(uuid.uuid4()) for _ in ALICE_CELLS]
    results = [
        run_cell_in(client, code, cell_id)
        for code, cell_id in zip(ALICE_CELLS, cell_ids, strict=True)
    ]
    where = run_cell(
        client,
        "c = cellops.client()\nprint(json.dumps({'url': c.url, 'source': c.source}))",
    )
    yield {
        "client": client,
        "cell_ids": cell_ids,
        "results": results,
        "client_config": last_json(where["stdout"]),
        "v1": last_json(results[REGISTER_V1]["stdout"]),
        "v2": last_json(results[REGISTER_V2]["stdout"]),
        "pred_v1": last_json(results[REGISTER_V1 + 1]["stdout"]),
        "pred_v2": last_json(results[REGISTER_V2 + 1]["stdout"]),
    }
    client.close()


def run_cell_in(client: KernelClient, code: str, cell_id: str) -> dict[str, Any]:
    """Run a cell as JupyterLab does (with its cell id); it must succeed."""
    result = client.execute(code, cell_id=cell_id, timeout=120)
    stream = "".join(
        o["text"] for o in result["outputs"] if o["type"] == "stream" and o["name"] == "stdout"
    )
    error = next((o for o in result["outputs"] if o["type"] == "error"), None)
    assert result["reply"]["status"] == "ok", "\n".join(error["traceback"] if error else [])
    return {"msg_id": result["msg_id"], "stdout": stream}


def version_count(team: dict[str, Any]) -> int:
    return len(api_as(team, "bob").cellops(f"models/{MODEL}/versions")["items"])


def test_registry_through_the_team_backend_from_kernels(
    team: dict[str, Any], alice: dict[str, Any]
) -> None:
    backend_alice, backend_bob = api_as(team, "alice"), api_as(team, "bob")

    # Alice's kernel found her Jupyter server by itself (no CELLOPS_URL), which forwards.
    assert alice["client_config"] == {
        "url": team["alice"].url + "/",
        "source": "by the Jupyter server that started this kernel",
    }
    assert team["alice"].api.cellops("status")["mode"] == "team-client"
    assert alice["v1"]["version"] == 1 and alice["v2"] == {"version": 2, "aliases": ["champion"]}
    assert alice["pred_v1"]["proba"] != alice["pred_v2"]["proba"]  # the alias check can fail

    # On the backend (Bob's token): both versions, by Alice, with what the cells logged.
    versions = backend_bob.wait_for(
        f"models/{MODEL}/versions",
        lambda b: len(b["items"]) == 2 and all(v["lineage"]["version_id"] for v in b["items"]),
    )["items"]
    by_number = {v["version"]: v for v in versions}
    assert set(by_number) == {1, 2}
    assert backend_bob.cellops(f"models/{MODEL}")["aliases"] == {"champion": 2}
    for number, C, cell in ((1, 1.0, REGISTER_V1), (2, 0.05, REGISTER_V2)):
        v = by_number[number]
        assert v["created_by"] == "alice"
        assert v["params"]["C"] == C and v["params"]["max_iter"] == 1000
        assert 0.5 < v["metrics"]["accuracy"] <= 1.0
        assert "training_score" in v["metrics"]  # autolog's, from the fit in the same cell
        assert v["signature"]["shape"] == [None, 4] and v["signature"]["dtype"] == "float64"
        lineage = v["lineage"]
        assert lineage["notebook"] == NOTEBOOK
        assert lineage["msg_id"] == alice["results"][cell]["msg_id"]

        # The lineage points at the execution the backend recorded for the registering cell.
        executions = backend_alice.wait_for(
            "executions",
            lambda b, cell=cell: any(e["status"] == "ok" for e in b["items"]),
            notebook=NOTEBOOK,
            cell=alice["cell_ids"][cell],
        )["items"]
        [execution] = executions
        assert execution["msg_id"] == alice["results"][cell]["msg_id"]
        assert (lineage["execution_id"], lineage["run_id"]) == (
            execution["id"],
            execution["run_id"],
        )
        assert execution["code"] == ALICE_CELLS[cell]
        # ...and at the notebook as it stood right after that cell ran.
        snapshot = backend_alice.cellops(f"versions/{lineage['version_id']}")
        assert snapshot["metadata"]["cellops"]["notebook"] == NOTEBOOK
        assert snapshot["metadata"]["cellops"]["version"] == execution["version"]
        assert [c["id"] for c in snapshot["cells"]] == alice["cell_ids"][: cell + 1]
        assert snapshot["cells"][-1]["source"] == ALICE_CELLS[cell]
    assert by_number[1]["metrics"]["accuracy"] == alice["v1"]["accuracy"]
    run = backend_alice.cellops(f"runs/{by_number[1]['lineage']['run_id']}")
    assert run["user"] == "alice" and run["notebook"] == NOTEBOOK

    # Bob's kernel loads the champion and predicts what Alice's champion predicts.
    bob = open_kernel(team["bob"], "reuse.ipynb")
    loaded = run_cell(
        bob,
        f"import json\nimport cellops\n{DATA}\n"
        f"champion = cellops.load('{MODEL}', alias='champion')\n" + PREDICT.format(m="champion"),
    )
    assert last_json(loaded["stdout"]) == alice["pred_v2"]
    bob.close()

    # Bad input from Alice's kernel: a clear error each time, nothing registered.
    client: KernelClient = alice["client"]
    unfitted = run_cell(
        client, REFUSED.format(call=f"cellops.register(LogisticRegression(), '{MODEL}')")
    )
    out = last_json(unfitted["stdout"])
    assert out.get("type") == "TypeError" and "unfitted" in out["message"], out
    assert "call .fit() first" in out["message"]
    lam = run_cell(
        client,
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import FunctionTransformer\n"
        "pipe = make_pipeline(FunctionTransformer(lambda x: x), LogisticRegression(max_iter=1000))"
        ".fit(X_train, y_train)\n" + REFUSED.format(call=f"cellops.register(pipe, '{MODEL}')"),
    )
    out = last_json(lam["stdout"])
    assert out.get("type") == "UnsafeModelError" and "<lambda>" in out["message"], out
    assert "replace the lambda" in out["message"]
    assert version_count(team) == 2

    # Vera is a viewer: refused from her kernel, and by the backend directly, with JSON.
    vera = open_kernel(team["vera"], "look.ipynb")
    refused = run_cell(
        vera,
        f"import json\nimport cellops\n{DATA}\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "m = LogisticRegression(max_iter=1000).fit(X_train, y_train)\n"
        + REFUSED.format(call=f"cellops.register(m, '{MODEL}', alias='champion')"),
    )
    vera.close()
    out = last_json(refused["stdout"])
    # PermissionDenied is the RegistryError a 403 raises (also a PermissionError).
    assert out.get("type") == "PermissionDenied" and out["status"] == 403, out
    assert "you are not allowed to upload artifacts" in out["message"]
    assert "your role on this server does not allow it" in out["message"]
    viewer = api_as(team, "vera")
    body = {"artifact": by_number[1]["artifact"], "flavor": "sklearn", "alias": "champion"}
    r = viewer.request("POST", f"{API}/models/{MODEL}/versions", json=body)
    assert r.status_code == 403 and "not authorized" in r.json()["error"], r.text
    assert viewer.cellops(f"models/{MODEL}")["aliases"] == {"champion": 2}  # she can read
    assert version_count(team) == 2


def test_minimal_lineage_notebook_from_bobs_server_reruns_headless(
    team: dict[str, Any], alice: dict[str, Any]
) -> None:

    bob: JupyterServer = team["bob"]
    path = f"models/{MODEL}/versions/1/notebook"
    minimal = bob.api.wait_for(path, lambda b: True, minimal="true")  # 409 until recorded
    nbformat.validate(nbformat.from_dict(minimal))
    assert minimal["metadata"]["cellops"]["model_variable"] == "model"
    sources = [c["source"] for c in minimal["cells"]]
    assert not any("cellops" in s for s in sources), sources
    assert not any("strong" in s for s in sources), sources  # v2's cells came after v1

    nb = nbformat.from_dict(minimal)
    nb.cells.append(nbformat.v4.new_code_cell("import json\n" + PREDICT.format(m="model")))
    backend: TeamBackend = team["backend"]
    execute_headless(nb, CELLOPS_URL=backend.url, CELLOPS_TOKEN=backend.tokens["bob"])  # type: ignore[attr-defined]
    printed = nb.cells[-1].outputs[0]["text"]
    assert json.loads(printed) == alice["pred_v1"]
    assert version_count(team) == 2  # re-running the notebook registered nothing
