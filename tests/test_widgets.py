"""cellops.widgets in a real kernel of a real Jupyter server: ModelCard and Compare.

The kernel clicks the card's button itself (``Button.click()`` runs the same handler a
browser click does); ui-tests/test_model_card.py clicks it in JupyterLab.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support import JupyterServer, KernelClient, zero_config_server
from .test_kernel_library import TRAIN, last_json, run


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    with zero_config_server(tmp_path_factory.mktemp("widgets")) as srv:
        yield srv


@pytest.fixture
def kernel(server: JupyterServer, request: pytest.FixtureRequest) -> Iterator[KernelClient]:
    client = server.connect(server.new_session(f"{request.node.name}.ipynb"))
    run(client, TRAIN + "from cellops.widgets import ModelCard, Compare\n")
    yield client
    client.close()


def versions(server: JupyterServer, name: str) -> list[dict[str, Any]]:
    return server.api.cellops(f"models/{name}/versions")["items"]


SHOW_STATUS = (
    "print(json.dumps({'status': card.status.value, 'disabled': card.register_button.disabled}))"
)


def test_card_registers_with_lineage_to_the_cell_that_showed_it(
    server: JupyterServer, kernel: KernelClient
) -> None:
    shown = run(
        kernel,
        """
cellops.autolog()  # autolog saw the training data: the card knows the input signature
model = LogisticRegression(max_iter=1000).fit(X, y)
cellops.log_metrics({"accuracy": model.score(X, y)})
card = ModelCard(model, name="iris-card", alias="candidate")
print(json.dumps(card.summary.value))
""",
    )
    summary = last_json(shown["stdout"])
    # What the card tells before registering: type, key params, metrics, input.
    for words in ("LogisticRegression", "sklearn.linear_model", "max_iter=1000", "accuracy 0.97"):
        assert words in summary, (words, summary)
    assert "ndarray float64 4 columns" in summary

    clicked = run(kernel, "card.register_button.click()\n" + SHOW_STATUS)
    out = last_json(clicked["stdout"])
    assert not out["disabled"]
    assert "Registered <b>iris-card</b> version <b>1</b>" in out["status"]
    assert 'data-cellops-model="iris-card" data-cellops-version="1"' in out["status"]
    assert "candidate" in out["status"]

    [v1] = server.api.wait_for(
        "models/iris-card/versions",
        lambda b: b["items"] and b["items"][0]["lineage"]["execution_id"],
    )["items"]
    # The click ran in another cell: lineage still points at the cell that made the card.
    assert v1["lineage"]["msg_id"] == shown["msg_id"] != clicked["msg_id"]
    execution = server.api.cellops(f"executions/{v1['lineage']['execution_id']}")
    assert execution["msg_id"] == shown["msg_id"]
    assert v1["aliases"] == ["candidate"] and 0.9 < v1["metrics"]["accuracy"] <= 1
    assert v1["signature"]["shape"] == [None, 4]

    # The model in the registry is the card's model.
    same = run(kernel, 'print((cellops.load("iris-card").predict(X) == model.predict(X)).all())')
    assert same["stdout"].strip() == "True"


def test_card_double_click_registers_one_version(
    server: JupyterServer, kernel: KernelClient
) -> None:
    out = run(
        kernel,
        """
card = ModelCard(LogisticRegression(max_iter=1000).fit(X, y), name="twice")
seen = []  # the button's disabled state as the clicks change it
card.register_button.observe(lambda change: seen.append(change.new), names="disabled")
# A double click: the kernel handles the second click message after the first finished.
card.register_button.click()
card.register_button.click()
print(json.dumps({"seen": seen, "version": card.version.version, "status": card.status.value}))
""",
    )
    got = last_json(out["stdout"])
    assert got["seen"] == [True, False, True, False]  # disabled while each click ran
    assert got["version"] == 1 and "version <b>1</b>" in got["status"]
    assert [v["version"] for v in versions(server, "twice")] == [1]
    # Another name is another registration.
    other = run(kernel, 'card.name.value = "twice-b"\ncard.register_button.click()\n' + SHOW_STATUS)
    assert "Registered <b>twice-b</b> version <b>1</b>" in last_json(other["stdout"])["status"]


def test_card_errors_stay_in_the_card_and_change_nothing(
    server: JupyterServer, kernel: KernelClient
) -> None:
    before = server.api.cellops("models")["items"]
    bad_name = run(
        kernel,
        'card = ModelCard(model, name="no spaces please")\ncard.register_button.click()\n'
        + SHOW_STATUS,
    )
    out = last_json(bad_name["stdout"])
    assert bad_name["error"] is None and bad_name["stderr"] == ""
    assert 'class="cellops-card-error"' in out["status"] and "model name" in out["status"]
    assert not out["disabled"]  # fix the name and click again

    unsafe = run(
        kernel,
        """
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
pipe = make_pipeline(FunctionTransformer(lambda x: x), LogisticRegression(max_iter=1000)).fit(X, y)
card = ModelCard(pipe, name="unsafe")
card.register_button.click()
"""
        + SHOW_STATUS,
    )
    out = last_json(unsafe["stdout"])
    assert "UnsafeModelError" in out["status"] and "replace the lambda" in out["status"]

    unfitted = run(
        kernel,
        "card = ModelCard(LogisticRegression(), name='raw')\n"
        "print(json.dumps({'summary': card.summary.value, 'disabled': card.register_button.disabled}))",
    )
    out = last_json(unfitted["stdout"])
    assert (
        out["disabled"] and "unfitted" in out["summary"] and "call .fit() first" in out["summary"]
    )
    assert server.api.cellops("models")["items"] == before


def test_compare_versions_and_executions(server: JupyterServer, kernel: KernelClient) -> None:
    first = run(
        kernel,
        """
from sklearn.ensemble import RandomForestClassifier
for depth in (1, 4):
    rf = RandomForestClassifier(n_estimators=10, max_depth=depth, random_state=0).fit(X, y)
    cellops.log_metrics({"accuracy": rf.score(X, y), "depth": depth})
    cellops.register(rf, "forest")
print("ok")
""",
    )
    assert first["stdout"].strip() == "ok"
    shown = run(
        kernel,
        """
cmp = Compare("forest")
print(json.dumps({"table": cmp.table.value, "options": list(cmp.metric.options),
                  "chosen": cmp.metric.value, "plot": cmp.plot.outputs, "status": cmp.status.value}))
""",
    )
    out = last_json(shown["stdout"])
    assert out["status"] == ""
    assert out["options"] == ["accuracy", "depth"] and out["chosen"] == "accuracy"
    assert "forest v1" in out["table"] and "forest v2" in out["table"]
    # Only the param that differs gets a row; the others are said once.
    assert "<th>max_depth</th><td>1</td><td>4</td>" in out["table"]
    assert "same in all:" in out["table"] and "n_estimators=10" in out["table"]

    accuracies = [
        v["metrics"]["accuracy"]
        for v in sorted(versions(server, "forest"), key=lambda v: v["version"])
    ]
    assert accuracies[0] < accuracies[1]
    # Logged without steps: the chart is the metric across the versions.
    assert chart_values(out["plot"], "accuracy") == [
        {"version": "forest v1", "value": accuracies[0]},
        {"version": "forest v2", "value": accuracies[1]},
    ]
    replot = run(kernel, 'cmp.metric.value = "depth"\nprint(json.dumps(cmp.plot.outputs))')
    assert chart_values(last_json(replot["stdout"]), "depth") == [
        {"version": "forest v1", "value": 1},
        {"version": "forest v2", "value": 4},
    ]

    # Executions (the ids the sidebar shows) compare what those cells logged.
    a = run(kernel, 'cellops.log_metrics({"loss": 0.5}); cellops.log_params({"lr": 0.1})')
    b = run(kernel, 'cellops.log_metrics({"loss": 0.25}); cellops.log_params({"lr": 0.01})')
    ids = [execution_id(server, r["msg_id"]) for r in (a, b)]
    logged = run(
        kernel,
        f"""
cellops.flush(10)
cmp = Compare({ids!r})
print(json.dumps({{"table": cmp.table.value, "plot": cmp.plot.outputs}}))
""",
    )
    out = last_json(logged["stdout"])
    assert (
        f"execution {ids[0]}" in out["table"]
        and "<th>lr</th><td>0.1</td><td>0.01</td>" in out["table"]
    )
    assert "<th>loss</th><td>0.5</td><td>0.25</td>" in out["table"]
    assert chart_values(out["plot"], "loss") == [
        {"version": f"execution {ids[0]}", "value": 0.5},
        {"version": f"execution {ids[1]}", "value": 0.25},
    ]


def chart_values(outputs: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """The data of the Compare widget's one output, a Vega-Lite chart of ``metric``."""
    (output,) = outputs
    spec = output["data"]["application/vnd.vegalite.v5+json"]
    assert spec["$schema"] == "https://vega.github.io/schema/vega-lite/v5.json"
    assert spec["encoding"]["y"] == {
        "field": "value",
        "type": "quantitative",
        "title": metric,
        "scale": {"zero": False},
        "axis": {"format": "~g"},
    }
    assert metric in output["data"]["text/plain"]
    return spec["data"]["values"]


def test_compare_across_estimator_types_marks_missing_params(
    server: JupyterServer, kernel: KernelClient
) -> None:
    # v1 a LogisticRegression, v2 a RandomForest: each has params the other lacks.
    shown = run(
        kernel,
        """
from sklearn.ensemble import RandomForestClassifier
cellops.register(LogisticRegression(max_iter=1000).fit(X, y), "mixed")
cellops.register(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), "mixed")
cmp = Compare("mixed")
print(json.dumps({"table": cmp.table.value, "status": cmp.status.value}))
""",
    )
    out = last_json(shown["stdout"])
    assert out["status"] == "", out["status"]
    table = out["table"]
    # A param one estimator lacks differs, and the row without it shows an em dash ...
    assert "<th>max_iter</th><td>1000</td><td>—</td>" in table
    assert "<th>n_estimators</th><td>—</td><td>5</td>" in table
    # ... even when the other's value is None (the KeyError of issue 10): "None" is a value.
    assert "<th>max_depth</th><td>—</td><td>None</td>" in table
    # A param both have with one value is still said once.
    assert "same in all:" in table and "class_weight=None" in table


def test_compare_says_what_is_wrong(server: JupyterServer, kernel: KernelClient) -> None:
    missing = run(kernel, 'cmp = Compare("no-such-model")\nprint(json.dumps(cmp.status.value))')
    status = last_json(missing["stdout"])
    assert 'class="cellops-card-error"' in status and "no-such-model" in status
    wrong = run(kernel, "Compare(42)", ok=False)["error"]
    assert wrong["ename"] == "TypeError" and "model name" in wrong["evalue"]


def execution_id(server: JupyterServer, msg_id: str) -> int:
    def find(body: dict[str, Any]) -> Any:
        return next((e["id"] for e in body["items"] if e["msg_id"] == msg_id), None)

    path = "test_compare_versions_and_executions.ipynb"  # the kernel fixture's notebook
    body = server.api.wait_for("executions", find, notebook=path, limit=500)
    return int(find(body))


def test_widgets_load_only_when_used(tmp_path: Path) -> None:
    from .test_kernel_library import python

    proc = python(
        "import sys, cellops\n"
        "before = 'ipywidgets' in sys.modules\n"
        "from cellops.widgets import ModelCard\n"
        "print(before, 'ipywidgets' in sys.modules, cellops.widgets.ModelCard is ModelCard)\n"
    )
    assert proc.stdout.split() == ["False", "True", "True"]
