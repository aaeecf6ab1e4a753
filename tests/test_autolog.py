"""cellops.autolog() in a real kernel of a real Jupyter server: what each fit records.

Every outermost scikit-learn fit of a cell lands in that cell's execution logs
(params, fit duration, training score, search results), nested fits are not recorded
again, user code sees the same results and exceptions, and register() picks up the
training data's fingerprint and signature. The store is SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .support import JupyterServer, KernelClient, zero_config_server
from .test_kernel_library import last_json, run

SETUP = """
import json
import cellops
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
X, y = load_iris(return_X_y=True)
"""


def logs_by_msg_id(kernel_server: JupyterServer, notebook: str, msg_ids: list[str]) -> list[dict]:
    """The logs of each cell's execution record (waiting for the writer to record them)."""
    body = kernel_server.api.wait_for(
        "executions",
        lambda b: set(msg_ids) <= {e["msg_id"] for e in b["items"]},
        notebook=notebook,
        limit=200,
    )
    ids = {e["msg_id"]: e["id"] for e in body["items"]}
    return [kernel_server.api.cellops(f"executions/{ids[m]}/logs") for m in msg_ids]


def values(logs: dict[str, Any], metric: str) -> list[float]:
    return [p["value"] for p in logs["metrics"].get(metric, [])]


def test_each_fit_is_recorded_once_on_its_cell(kernel_server: JupyterServer) -> None:
    client = kernel_server.connect(kernel_server.new_session("auto.ipynb"))
    run(client, SETUP + "cellops.autolog()")
    lr = run(
        client,
        "model = LogisticRegression(max_iter=1000, C=0.5)\n"
        "print(json.dumps(model.fit(X, y) is model))",
    )
    assert last_json(lr["stdout"]) is True
    pipe = run(
        client,
        'pipe = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(C=2.0))])\n'
        "print(json.dumps(pipe.fit(X, y) is pipe))",
    )
    assert last_json(pipe["stdout"]) is True
    grid = run(
        client,
        'search = GridSearchCV(LogisticRegression(max_iter=1000), {"C": [0.01, 1.0]}, cv=3)\n'
        "search.fit(X, y)\n"
        "print(json.dumps([search.best_params_['C'], search.best_score_]))",
    )
    best_c, best_score = last_json(grid["stdout"])
    cv = run(
        client,
        "scores = cross_val_score(LogisticRegression(max_iter=1000), X, y, cv=3)\n"
        "print(json.dumps([float(scores.mean()), float(scores.std())]))",
    )
    cv_mean, cv_std = last_json(cv["stdout"])
    scored = run(
        client,
        "print(json.dumps([pipe.score(X[:50], y[:50]), model.score(X, y), search.score(X, y)]))",
    )
    run(client, "assert cellops.flush(10)")

    lr_logs, pipe_logs, grid_logs, cv_logs, score_logs = logs_by_msg_id(
        kernel_server,
        "auto.ipynb",
        [lr["msg_id"], pipe["msg_id"], grid["msg_id"], cv["msg_id"], scored["msg_id"]],
    )

    assert lr_logs["params"]["C"] == 0.5 and lr_logs["params"]["max_iter"] == 1000
    assert lr_logs["params"]["solver"] == "lbfgs"
    assert lr_logs["tags"]["estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    [duration] = values(lr_logs, "fit_duration_ms")
    assert 0 < duration < 60_000
    [score] = values(lr_logs, "training_score")
    assert 0.9 < score <= 1.0

    # The pipeline is one record: its own params, none of the inner LogisticRegression's.
    assert "steps" in pipe_logs["params"] and "StandardScaler" in pipe_logs["params"]["steps"]
    assert not {"C", "max_iter", "solver", "with_mean"} & set(pipe_logs["params"])
    assert len(values(pipe_logs, "fit_duration_ms")) == 1
    assert len(values(pipe_logs, "training_score")) == 1
    assert pipe_logs["tags"]["estimator"].endswith(".Pipeline")

    # The search: its params, the best ones, the best score and the CV table; its
    # candidates' fits (2 x 3 folds + the refit) are not recorded.
    assert grid_logs["params"]["best.C"] == best_c == 1.0 and grid_logs["params"]["cv"] == 3
    assert values(grid_logs, "best_score") == [pytest.approx(best_score)]
    assert len(values(grid_logs, "fit_duration_ms")) == 1
    table = json.loads(grid_logs["tags"]["cv_results"])
    assert [row["params"]["C"] for row in table] == [1.0, 0.01]  # best first
    assert table[0]["rank"] == 1 and table[0]["mean_test_score"] == pytest.approx(best_score)

    assert values(cv_logs, "cv_score_mean") == [pytest.approx(cv_mean)]
    assert values(cv_logs, "cv_score_std") == [pytest.approx(cv_std)]
    assert "fit_duration_ms" not in cv_logs["metrics"] and cv_logs["params"] == {}

    # score() calls the user makes are recorded, each once (a pipeline's or a search's
    # inner score is not); the scoring inside fit and cross_val_score is not.
    assert values(score_logs, "score") == pytest.approx(last_json(scored["stdout"]))
    assert not {"score"} & (set(lr_logs["metrics"]) | set(cv_logs["metrics"]))
    client.close()


def test_register_gets_fingerprints_and_signature(kernel_server: JupyterServer) -> None:
    client = kernel_server.connect(kernel_server.new_session("fp.ipynb"))
    run(client, SETUP + "cellops.autolog()")
    reg = run(
        client,
        """
import hashlib
model = LogisticRegression(max_iter=1000).fit(X, y)
mv = cellops.register(model, "auto-iris")
sha = "sha256:" + hashlib.sha256(f"{X.dtype.str}{X.shape}".encode() + X.tobytes()).hexdigest()
print(json.dumps({"version": mv.version, "sha": sha}))
""",
    )
    out = last_json(reg["stdout"])
    v1 = kernel_server.api.cellops(f"models/auto-iris/versions/{out['version']}")
    x_print, y_print = v1["lineage"]["data_fingerprints"]
    assert x_print == {
        "role": "X",
        "type": "ndarray",
        "shape": [150, 4],
        "dtype": "float64",
        "hash": out["sha"],
    }
    assert y_print["role"] == "y" and y_print["shape"] == [150]
    assert y_print["hash"].startswith("sha256:") and len(y_print["hash"]) == 7 + 64
    assert v1["signature"] == {"type": "ndarray", "shape": [None, 4], "dtype": "float64"}

    # The search's best estimator was trained on the same data: registering it keeps that.
    best = run(
        client,
        """
search = GridSearchCV(LogisticRegression(max_iter=1000), {"C": [0.5, 1.0]}, cv=3).fit(X[:, :2], y)
print(cellops.register(search.best_estimator_, "auto-best").version)
""",
    )
    [vb] = kernel_server.api.cellops("models/auto-best/versions")["items"]
    assert best["error"] is None and vb["lineage"]["data_fingerprints"][0]["shape"] == [150, 2]
    assert vb["signature"]["shape"] == [None, 2]
    client.close()


def error_of(client: KernelClient, code: str) -> tuple[str, str]:
    error = run(client, code, ok=False)["error"]
    assert error is not None, code
    return error["ename"], error["evalue"]


def test_user_code_sees_the_same_results_and_errors(kernel_server: JupyterServer) -> None:
    client = kernel_server.connect(kernel_server.new_session("same.ipynb"))
    run(client, SETUP)
    bad_fit = "LogisticRegression().fit(X, y[:10])"
    bad_pipe = 'Pipeline([("lr", LogisticRegression(C=-1))]).fit(X, y)'
    without = [error_of(client, bad_fit), error_of(client, bad_pipe)]
    run(client, "cellops.autolog()")
    with_autolog = [error_of(client, bad_fit), error_of(client, bad_pipe)]
    assert with_autolog == without
    assert without[0][0] == "ValueError" and "inconsistent numbers of samples" in without[0][1]
    # A failed fit leaves the depth counter at zero: the next fit is recorded.
    after = run(client, "LogisticRegression(max_iter=1000, C=3.0).fit(X, y); cellops.flush(10)")
    [logs] = logs_by_msg_id(kernel_server, "same.ipynb", [after["msg_id"]])
    assert logs["params"]["C"] == 3.0

    # A failure inside autolog itself is swallowed, reported once, and the fit is unaffected.
    broken = run(
        client,
        """
import sys
recorder = sys.modules["cellops.autolog.sklearn"]
real = recorder._params
recorder._params = lambda estimator: 1 / 0
try:
    first = LogisticRegression(max_iter=1000)
    results = [first.fit(X, y) is first, LogisticRegression(max_iter=1000).fit(X, y).score(X, y)]
finally:
    recorder._params = real
print(json.dumps(results))
""",
    )
    same, score = last_json(broken["stdout"])
    assert same is True and 0.9 < score <= 1.0
    warnings = [line for line in broken["stderr"].splitlines() if "autolog could not" in line]
    assert len(warnings) == 1 and "ZeroDivisionError" in warnings[0], broken["stderr"]

    # disable() puts the original methods back.
    restored = run(
        client,
        """
cellops.autolog(disable=True)
from sklearn.linear_model._logistic import LogisticRegression as L
print(json.dumps([getattr(L.fit, "__cellops_autolog__", False),
                  getattr(Pipeline.fit, "__cellops_autolog__", False)]))
""",
    )
    assert last_json(restored["stdout"]) == [False, False]
    client.close()


@pytest.fixture(scope="module")
def autolog_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A server whose administrator turned autolog on for every kernel."""
    args = ["--CellopsConfig.autolog=True"]
    tmp = tmp_path_factory.mktemp("autolog-setting")
    with zero_config_server(tmp, drop=("CELLOPS_AUTOLOG",), extra_args=args) as srv:
        yield srv


def test_server_setting_enables_autolog_lazily_in_every_kernel(
    autolog_server: JupyterServer,
) -> None:
    client = autolog_server.connect(autolog_server.new_session("env.ipynb"))
    started = run(client, 'import cellops, json, os, sys\nprint(os.environ["CELLOPS_AUTOLOG"])')
    assert started["stdout"].strip() == "1"
    # import cellops did not import scikit-learn, nor did a cell that does not use it.
    light = run(client, 'print(json.dumps("sk" + "learn" in sys.modules))')
    assert last_json(light["stdout"]) is False
    fit = run(
        client,
        """
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
X, y = load_iris(return_X_y=True)
DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
cellops.flush(10)
""",
    )
    [logs] = logs_by_msg_id(autolog_server, "env.ipynb", [fit["msg_id"]])
    assert logs["params"]["max_depth"] == 2 and len(values(logs, "fit_duration_ms")) == 1
    client.close()
