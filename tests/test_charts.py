"""Metric charts and param notation of the Compare widget, in a real kernel of a real
Jupyter server: the chart is a Vega-Lite v5 spec (JupyterLab's own renderer draws it;
ui-tests/test_metric_chart.py and test_model_card.py see it drawn), params are Python
literals, the same as the sidebar's (extension/src/sidebar/format.ts).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator
from typing import Any

import pytest
from cellops.formatting import MISSING, format_param

from .support import JupyterServer, KernelClient, zero_config_server
from .test_kernel_library import TRAIN, last_json, run

VEGA_LITE = "application/vnd.vegalite.v5+json"
STEPS = {"v1": [0.5, 0.7, 0.8], "v2": [0.6, 0.9, 0.95]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    with zero_config_server(tmp_path_factory.mktemp("charts")) as srv:
        yield srv


@pytest.fixture(scope="module")
def kernel(server: JupyterServer) -> Iterator[KernelClient]:
    client = server.connect(server.new_session("charts.ipynb"))
    run(client, TRAIN + "from cellops.widgets import Compare\n")
    yield client
    client.close()


def compare(kernel: KernelClient, argument: str) -> dict[str, Any]:
    shown = run(
        kernel,
        f"""
cellops.flush(10)
cmp = Compare({argument})
print(json.dumps({{"table": cmp.table.value, "status": cmp.status.value,
                   "outputs": cmp.plot.outputs}}))
""",
    )
    return last_json(shown["stdout"])


def spec_of(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The one output's Vega-Lite spec, checked against what a v5 line chart needs."""
    (output,) = outputs
    assert output["output_type"] == "display_data"
    assert output["data"]["text/plain"]  # shown where no renderer draws the chart
    assert output["metadata"][VEGA_LITE]["embed_options"]["renderer"] == "svg"
    spec = output["data"][VEGA_LITE]
    assert spec["$schema"] == "https://vega.github.io/schema/vega-lite/v5.json"
    assert spec["mark"] == {"type": "line", "point": True, "tooltip": True}
    assert isinstance(spec["width"], int) and isinstance(spec["height"], int)
    return spec


def test_compare_charts_the_steps_of_each_version(
    server: JupyterServer, kernel: KernelClient
) -> None:
    for values in STEPS.values():  # one cell per version: train, log each epoch, register
        run(
            kernel,
            f"for step, acc in enumerate({values!r}):\n"
            "    cellops.log_metrics({'accuracy': acc}, step=step)\n"
            "cellops.register(model, 'stepped')\n",
        )
    server.api.wait_for(
        "models/stepped/versions",
        lambda b: len(b["items"]) == 2 and all(v["lineage"]["execution_id"] for v in b["items"]),
    )
    out = compare(kernel, "'stepped'")
    assert out["status"] == ""
    spec = spec_of(out["outputs"])
    assert spec["encoding"]["x"] == {
        "field": "step",
        "type": "quantitative",
        "title": "step",
        "axis": {"values": [0, 1, 2], "format": "d"},  # a tick at each logged step
    }
    assert (
        spec["encoding"]["y"]["field"] == "value" and spec["encoding"]["y"]["title"] == "accuracy"
    )
    assert spec["encoding"]["color"]["field"] == "version"
    assert spec["encoding"]["color"]["type"] == "nominal"
    assert spec["data"]["values"] == [
        {"version": f"stepped {label}", "step": step, "value": value}
        for label, values in STEPS.items()
        for step, value in enumerate(values)
    ]
    assert "stepped v2: 3 steps, last 0.95 at step 2" in out["outputs"][0]["data"]["text/plain"]


def test_compare_executions_charts_their_series(
    server: JupyterServer, kernel: KernelClient
) -> None:
    # One cell logs with explicit steps, one without: its values take their positions.
    a = run(
        kernel,
        "cellops.log_metrics({'loss': 1.0}, step=10)\ncellops.log_metrics({'loss': 0.4}, step=20)",
    )
    b = run(kernel, "for v in (0.9, 0.5, 0.3):\n    cellops.log_metrics({'loss': v})")
    ids = [execution_id(server, r["msg_id"]) for r in (a, b)]
    spec = spec_of(compare(kernel, repr(ids))["outputs"])
    assert spec["data"]["values"] == [
        {"version": f"execution {ids[0]}", "step": 10, "value": 1.0},
        {"version": f"execution {ids[0]}", "step": 20, "value": 0.4},
        {"version": f"execution {ids[1]}", "step": 0, "value": 0.9},
        {"version": f"execution {ids[1]}", "step": 1, "value": 0.5},
        {"version": f"execution {ids[1]}", "step": 2, "value": 0.3},
    ]
    assert spec["encoding"]["color"]["legend"] == {"orient": "bottom"}  # two series


def test_compare_without_metrics_says_so(server: JupyterServer, kernel: KernelClient) -> None:
    a = run(kernel, "cellops.log_params({'solver': 'adam'})")
    out = compare(kernel, repr([execution_id(server, a["msg_id"])]))
    (output,) = out["outputs"]
    assert VEGA_LITE not in output["data"] and output["data"]["text/plain"] == "no metrics logged"


PARAMS = [
    {"solver": "adam", "early": True, "alpha": 1e-7, "layers": [64, 32], "seed": None},
    {"solver": "it's", "early": False, "alpha": 0.001, "layers": [128], "extra": 0.5},
]


def test_params_are_python_literals_and_missing_is_a_dash(
    server: JupyterServer, kernel: KernelClient
) -> None:
    runs = [run(kernel, f"cellops.log_params({params!r})") for params in PARAMS]
    ids = [execution_id(server, r["msg_id"]) for r in runs]
    table = compare(kernel, repr(ids))["table"]
    rows = {
        "solver": ["'adam'", '"it\'s"'],
        "early": ["True", "False"],
        "alpha": ["1e-7", "0.001"],
        # log_params records a list as its text (registered versions keep lists as lists).
        "layers": ["'[64, 32]'", "'[128]'"],
        "seed": ["None", MISSING],
        "extra": [MISSING, "0.5"],
    }
    for key, cells in rows.items():
        expected = f"<th>{key}</th>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
        assert expected in table, (expected, table)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "None"),
        (True, "True"),
        (3, "3"),
        (1.0, "1"),  # JSON does not keep 1.0 apart from 1; the sidebar cannot either
        (0.1, "0.1"),
        (1e-7, "1e-7"),  # where JavaScript's String(number) switches to exponents
        (1.5e-6, "0.0000015"),
        (1e21, "1e+21"),
        (123456789.125, "123456789.125"),
        (-2.5, "-2.5"),
        (math.inf, "inf"),
        ("adam", "'adam'"),
        ("it's", '"it\'s"'),
        ("both ' and \"", "'both \\' and \"'"),
        ("tab\there\n", "'tab\\there\\n'"),
        ("\x01", "'\\x01'"),
        ([1, "a", None, [True]], "[1, 'a', None, [True]]"),
        ({"a": 1, "b": [0.5]}, "{'a': 1, 'b': [0.5]}"),
    ],
)
def test_format_param_rules(value: Any, shown: str) -> None:
    # These are the rules formatParam in extension/src/sidebar/format.ts applies too.
    assert format_param(value) == shown


def execution_id(server: JupyterServer, msg_id: str) -> int:
    def find(body: dict[str, Any]) -> Any:
        return next((e["id"] for e in body["items"] if e["msg_id"] == msg_id), None)

    body = server.api.wait_for("executions", find, notebook="charts.ipynb", limit=500)
    return int(find(body))
