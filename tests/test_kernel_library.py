"""`import cellops` in a real kernel of a real Jupyter server: logging, register, load.

The kernel finds its server with no configuration (the env the Jupyter server gives
the kernels it starts); the store is SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from .support import CELLOPS_CLIENT_ENV as CLEAN_ENV
from .support import JupyterServer, KernelClient, free_port

TRAIN = """
import json, warnings
import cellops
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=1000).fit(X, y)
"""


def run(client: KernelClient, code: str, ok: bool = True) -> dict[str, Any]:
    """Execute a cell; answers {msg_id, stdout, stderr, error}."""
    result = client.execute(code, timeout=120)
    stream = {"stdout": "", "stderr": ""}
    for out in result["outputs"]:
        if out["type"] == "stream":
            stream[out["name"]] += out["text"]
    error = next((o for o in result["outputs"] if o["type"] == "error"), None)
    if ok:
        assert result["reply"]["status"] == "ok", "\n".join(error["traceback"] if error else [])
    return {"msg_id": result["msg_id"], **stream, "error": error}


def last_json(text: str) -> Any:
    return json.loads(text.strip().splitlines()[-1])


def test_register_load_and_lineage(kernel_server: JupyterServer) -> None:
    client = kernel_server.connect(kernel_server.new_session("iris.ipynb"))
    run(client, TRAIN)
    reg = run(
        client,
        """
cellops.log_params({"C": model.C, "solver": model.solver})
cellops.log_metrics({"accuracy": model.score(X, y)})
cellops.log_metrics({"loss": 0.5}, step=1)
cellops.log_metrics({"loss": 0.25}, step=2)
cellops.set_tags({"stage": "baseline"})
mv = cellops.register(model, "iris", alias="champion", input_example=X[:3])
html = mv._repr_html_()
print(json.dumps({"flushed": cellops.flush(10), "version": mv.version, "aliases": mv.aliases,
                  "html": "iris" in html and "accuracy" in html and "champion" in html}))
""",
    )
    out = last_json(reg["stdout"])
    assert out == {"flushed": True, "version": 1, "aliases": ["champion"], "html": True}

    loaded = run(
        client,
        """
same = lambda m: bool((m.predict(X) == model.predict(X)).all())
print(json.dumps([same(cellops.load("iris")), same(cellops.load("iris", alias="champion")),
                  same(cellops.load("iris", version=1))]))
""",
    )
    assert last_json(loaded["stdout"]) == [True, True, True]

    versions = kernel_server.api.wait_for(
        "models/iris/versions", lambda b: b["items"] and b["items"][0]["lineage"]["execution_id"]
    )["items"]
    [v1] = versions
    accuracy = v1["metrics"]["accuracy"]
    assert v1["version"] == 1 and v1["aliases"] == ["champion"] and 0.9 < accuracy <= 1.0
    assert v1["flavor"] == "sklearn" and v1["params"]["max_iter"] == 1000
    assert set(v1["library_versions"]) >= {"sklearn", "numpy", "skops", "python"}
    assert v1["signature"]["shape"] == [None, 4] and v1["signature"]["dtype"] == "float64"
    assert v1["tags"] == {"stage": "baseline"}
    lineage = v1["lineage"]
    assert lineage["msg_id"] == reg["msg_id"]
    assert lineage["run_id"] is not None and lineage["notebook"] == "iris.ipynb"
    assert lineage["data_fingerprints"] == []

    # The values logged from the cell are attached to that cell's execution record.
    execution = kernel_server.api.cellops(f"executions/{lineage['execution_id']}")
    assert execution["msg_id"] == reg["msg_id"]
    logs = kernel_server.api.cellops(f"executions/{lineage['execution_id']}/logs")
    assert logs["params"] == {"C": 1.0, "solver": "lbfgs"}
    assert logs["tags"] == {"stage": "baseline"}
    assert [p["value"] for p in logs["metrics"]["accuracy"]] == [accuracy]
    assert [(p["step"], p["value"]) for p in logs["metrics"]["loss"]] == [(1, 0.5), (2, 0.25)]

    model = kernel_server.api.cellops("models/iris")
    assert model["latest_version"] == 1 and model["aliases"] == {"champion": 1}

    # A second registration is version 2; the alias stays on version 1.
    run(client, 'print(cellops.register(model, "iris").version)')
    model = kernel_server.api.cellops("models/iris")
    assert model["latest_version"] == 2 and model["aliases"] == {"champion": 1}

    # Aliases move and go, descriptions and tags change, from the notebook.
    run(
        client,
        """
cellops.set_alias("iris", "champion", 2)
cellops.update_version("iris", 1, description="baseline, all features", tags={"stage": "retired"})
cellops.delete_alias("iris", "champion")
""",
    )
    assert kernel_server.api.cellops("models/iris")["aliases"] == {}
    v1 = kernel_server.api.cellops("models/iris/versions/1")
    assert v1["description"] == "baseline, all features" and v1["tags"] == {"stage": "retired"}
    nothing = run(client, 'cellops.update_version("iris", 1)', ok=False)["error"]
    assert nothing["ename"] == "ValueError" and "description= and/or tags=" in nothing["evalue"]
    client.close()


def test_unsafe_and_non_models_are_refused(kernel_server: JupyterServer) -> None:
    client = kernel_server.connect(kernel_server.new_session("unsafe.ipynb"))
    run(client, TRAIN)
    before = kernel_server.api.cellops("models")["items"]
    unsafe = run(
        client,
        """
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
pipe = make_pipeline(FunctionTransformer(lambda x: x), LogisticRegression(max_iter=1000)).fit(X, y)
cellops.register(pipe, "unsafe")
""",
        ok=False,
    )["error"]
    assert unsafe["ename"] == "UnsafeModelError"
    assert "<lambda>" in unsafe["evalue"] and "replace the lambda" in unsafe["evalue"]

    not_a_model = run(client, 'cellops.register({"a": 1}, "dict")', ok=False)["error"]
    assert (not_a_model["ename"], not_a_model["evalue"]) == (
        "TypeError",
        "register() needs a fitted scikit-learn estimator or pipeline; got builtins.dict",
    )
    unfitted = run(client, 'cellops.register(LogisticRegression(), "raw")', ok=False)["error"]
    assert "unfitted" in unfitted["evalue"] and "call .fit() first" in unfitted["evalue"]
    bad_name = run(client, 'cellops.register(model, "../etc")', ok=False)["error"]
    assert bad_name["ename"] == "ValueError" and "model name" in bad_name["evalue"]

    assert kernel_server.api.cellops("models")["items"] == before
    client.close()


def test_logging_survives_an_unreachable_server(kernel_server: JupyterServer) -> None:
    client = kernel_server.connect(kernel_server.new_session("offline.ipynb"))
    dead = f"http://127.0.0.1:{free_port()}/"
    first = run(
        client,
        f"""
import logging, os, time, statistics
os.environ["CELLOPS_URL"] = "{dead}"  # explicit settings win over the Jupyter server's
import cellops
seen = []
handler = logging.Handler()
handler.emit = lambda record: seen.append(record.getMessage())
logging.getLogger("cellops").addHandler(handler)
times = []
for i in range(50):
    t = time.perf_counter()
    cellops.log_metrics({{"m": i}}, step=i)
    times.append(time.perf_counter() - t)
print(cellops.flush(2), statistics.median(times))
""",
    )
    flushed, median = first["stdout"].split()
    assert flushed == "False" and float(median) < 0.001
    second = run(client, 'cellops.log_params({"p": 1}); print(cellops.flush(1))')
    assert second["stdout"].strip() == "False"
    # "Kept for later" is no news the notebook should save: it goes to the `cellops` logger.
    assert first["stderr"] + second["stderr"] == ""
    warnings = json.loads(run(client, "import json; print(json.dumps(seen))")["stdout"])
    unreachable = [w for w in warnings if "the server is unreachable" in w]
    assert len(unreachable) == 1, warnings
    assert "records buffered and sent when it is back" in unreachable[0]
    client.close()


def test_values_logged_while_the_server_is_down_keep_their_time(
    kernel_server: JupyterServer,
) -> None:
    client = kernel_server.connect(kernel_server.new_session("offline-time.ipynb"))
    dead = f"http://127.0.0.1:{free_port()}/"
    out = run(
        client,
        f"""
import json, os
from datetime import datetime, timezone
os.environ["CELLOPS_URL"] = "{dead}"
import cellops
cellops.reset_client()
before = datetime.now(timezone.utc)
cellops.log_metrics({{"loss": 0.5}})
print(cellops.flush(1))  # the server is down: the value waits in the buffer for a second
down_until = datetime.now(timezone.utc)
del os.environ["CELLOPS_URL"]  # back to the Jupyter server that started this kernel
cellops.reset_client()
print(cellops.flush(20))
print(json.dumps({{"before": before.isoformat(), "down_until": down_until.isoformat()}}))
""",
    )
    lines = out["stdout"].split()
    assert lines[:2] == ["False", "True"], out
    times = {k: datetime.fromisoformat(v) for k, v in last_json(out["stdout"]).items()}
    client.close()

    def find(body: dict[str, Any]) -> Any:
        return next((e["id"] for e in body["items"] if e["msg_id"] == out["msg_id"]), None)

    body = kernel_server.api.wait_for("executions", find, notebook="offline-time.ipynb")
    logs = kernel_server.api.cellops(f"executions/{find(body)}/logs")
    [point] = logs["metrics"]["loss"]
    # The time it was logged, not the time it arrived (after the server came back).
    at = datetime.fromisoformat(point["at"])
    assert times["before"] <= at < times["down_until"], (point, times)


def test_bad_input_is_the_users_error(kernel_server: JupyterServer) -> None:
    client = kernel_server.connect(kernel_server.new_session("bad.ipynb"))
    run(client, "import cellops")
    for code, words in [
        ('cellops.log_metrics({"loss": float("nan")})', "must be finite"),
        ('cellops.log_metrics({"loss": "low"})', "must be a number"),
        ('cellops.log_params({1: "x"})', "names must be non-empty strings"),
        ('cellops.log_metrics({"k" * 300: 1.0})', "the limit is 250"),
        ('cellops.log_metrics({"a": 1}, step="one")', "step must be an int"),
    ]:
        error = run(client, code, ok=False)["error"]
        assert error["ename"] == "ValueError" and words in error["evalue"], (code, error["evalue"])
    client.close()


# -- without a Jupyter server -----------------------------------------------------------


def python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )


def test_outside_jupyter_says_which_variables_to_set() -> None:
    proc = python(
        "import cellops\n"
        "try:\n"
        "    cellops.log_metrics({'a': 1.0})\n"
        "except cellops.CellopsConfigError as e:\n"
        "    print(e)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "set CELLOPS_URL (e.g. http://localhost:8888/) and CELLOPS_TOKEN" in proc.stdout

    # Configured but not in a kernel: there is no cell to attach values to.
    proc = python(
        "import cellops\ncellops.log_metrics({'a': 1.0})", CELLOPS_URL="http://127.0.0.1:9/"
    )
    assert (
        "CellopsError" in proc.stderr and "call it from a cell of a Jupyter kernel" in proc.stderr
    )


def test_import_is_light() -> None:
    proc = python(
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import cellops\n"
        "print(time.perf_counter() - t)\n"
        "heavy = {'sklearn', 'numpy', 'skops', 'IPython', 'tornado', 'sqlalchemy', 'requests',"
        " 'cellops_server', 'urllib.request', 'ipywidgets'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    seconds, loaded = proc.stdout.splitlines()
    assert loaded == "[]", loaded
    assert float(seconds) < 0.15


def test_serialization_allow_list(tmp_path: Path) -> None:
    import numpy as np
    from cellops.serialize import UnsafeModelError, dumps, loads, untrusted
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    # An allow-list by name, not by library: sklearn.x.Y is not a scikit-learn estimator.
    assert untrusted(["sklearn.x.Y", "numpy.dtype", "builtins.eval", "mypkg.f", "__main__.f"]) == [
        "sklearn.x.Y",
        "builtins.eval",
        "mypkg.f",
        "__main__.f",
    ]
    assert untrusted(["mypkg.f"], trusted := ["mypkg.f"]) == [] and trusted

    X = np.arange(12.0).reshape(4, 3)
    pipe = make_pipeline(FunctionTransformer(np.log1p), StandardScaler()).fit(X)
    back = loads(dumps(pipe))
    assert np.allclose(back.transform(X), pipe.transform(X))
    with pytest.raises(UnsafeModelError, match="lambda"):
        dumps(make_pipeline(FunctionTransformer(lambda x: x)).fit(X))
    assert not math.isnan(float(back.transform(X)[0, 0]))
