"""The lineage notebook: the backward slice (pure), the store query (SQLite + PostgreSQL),
and end to end: a real kernel registers a model, the minimal notebook re-runs headless
with nbclient to the same predictions."""

from __future__ import annotations

import ast
import hashlib
import json
from typing import Any

import nbformat
import pytest
from cellops_server.registry import Registry
from cellops_server.registry.lineage import (
    NotYetRecorded,
    lineage_notebook,
    minimal_cells,
    model_variable,
    registered_model_name,
    registered_names,
    strip_cellops,
)
from cellops_server.schemas import LineageIn, ModelVersionCreate
from cellops_server.store import NotFound, Store

from .records import execution, run
from .support import JupyterServer, execute_headless
from .test_kernel_library import last_json
from .test_kernel_library import run as run_cell

# -- the slice -------------------------------------------------------------------------


def kept(cells: list[str]) -> list[int]:
    return minimal_cells(cells)


def test_slice_keeps_definitions_and_drops_unused_cells() -> None:
    cells = [
        "import numpy as np\nimport pandas as pd",  # 0: np used by 3, pd unused...
        "X = np.arange(10).reshape(5, 2)",  # 1
        "unused = pd.DataFrame({'a': [1]})\nprint(unused)",  # 2: defines an unused name
        "y = X.sum(axis=1)",  # 3
        "cellops.register(y, 'm')",  # 4
    ]
    assert kept(cells) == [0, 1, 3, 4]


def test_slice_follows_mutations() -> None:
    cells = [
        "from sklearn.linear_model import LinearRegression",
        "model = LinearRegression()",
        "model.fit(X, y)",  # a method call mutates model: kept, and X, y become needed
        "X, y = [[1], [2]], [1, 2]",  # defined after the fit: not a dependency of it
        "df = {}",
        "df['a'] = 1",  # subscript assignment mutates df, but df is not needed
        "import numpy as np\nnp.random.seed(0)",  # a global seed: always kept
        "cellops.register(model, 'm')",
    ]
    assert kept(cells) == [0, 1, 2, 6, 7]
    # With X, y defined before the fit, they are kept; the item assignment on a needed name too.
    cells = [
        "X, y = [[1], [2]], [1, 2]",
        "params = {}",
        "params['fit_intercept'] = False",
        "from sklearn.linear_model import LinearRegression",
        "model = LinearRegression(**params)",
        "model.fit(X, y)",
        "cellops.register(model, 'm')",
    ]
    assert kept(cells) == [0, 1, 2, 3, 4, 5, 6]


def test_slice_redefinition_hides_earlier_definitions() -> None:
    cells = [
        "a = 1",  # overwritten by cell 1 before anything reads it
        "a = 2",
        "b = a + 1",
        "b += 1",  # augmented assignment reads b: cell 2 stays
        "cellops.register(b, 'm')",
    ]
    assert kept(cells) == [1, 2, 3, 4]
    # A conditional rebinding does not hide the earlier value.
    cells = ["a = 1", "if flag:\n    a = 2", "flag = True", "cellops.register(a, 'm')"]
    assert kept(cells) == [0, 1, 3]  # flag is defined *after* cell 1, so cell 2 is not needed


def test_slice_imports_functions_walrus_and_with() -> None:
    cells = [
        "import os",  # unused
        "from math import sqrt as root",
        "def scale(v):\n    return root(v)",  # the body's names are needed when called
        "with open('f') as fh:\n    raw = fh.read()",
        "if (n := len(raw)) > 0:\n    pass",
        "for i in range(3):\n    last = i",
        "value = scale(n) + last",
        "mv = cellops.register(value, 'm')",
    ]
    assert kept(cells) == [1, 2, 3, 4, 5, 6, 7]


def test_slice_treats_calls_on_imported_names_as_reads() -> None:
    cells = [
        "import json\nimport numpy as np\nfrom sklearn.linear_model import Ridge",
        "X, y = [[1], [2]], [1, 2]",
        "other = np.ones(3)\nprint(json.dumps(other.tolist()))",  # unrelated; reads json, np
        "import sklearn\nsklearn.set_config(assume_finite=True)",  # global config: kept
        "model = Ridge().fit(X, y)\nprint(json.dumps(np.mean(y)))",
        "cellops.register(model, 'm')",
    ]
    assert kept(cells) == [0, 1, 3, 4, 5]
    # A name bound by an assignment is an object, whose method calls may mutate it.
    cells = ["import json", "json = {}", "json.update(a=1)", "cellops.register(json, 'm')"]
    assert kept(cells) == [1, 2, 3]


def test_slice_keeps_cells_it_cannot_read() -> None:
    cells = [
        "x = 1",
        "%time y = 2",  # a line magic is blanked: the cell defines nothing, dropped
        "%%bash\necho hi",  # a cell magic: the rest is not Python, kept conservatively
        "z = x",
        "cellops.register(z, 'm')",
    ]
    assert kept(cells) == [0, 2, 3, 4]
    assert kept(
        ["!pip install x\nimport json", "d = json.dumps({})", "cellops.register(d, 'm')"]
    ) == [
        0,
        1,
        2,
    ]


def test_strip_cellops_keeps_the_rest_of_the_cell() -> None:
    assert strip_cellops("import cellops\nimport os") == "import os"
    assert strip_cellops("import os, cellops\nx = 1") == "import os\nx = 1"
    assert strip_cellops("x = 1; cellops.log_params({'a': 1}); y = 2") == "x = 1; y = 2"
    assert strip_cellops("mv = cellops.register(\n    model,\n    'rf',\n)\nprint(1)") == "print(1)"
    assert strip_cellops("for i in range(3):\n    cellops.log_metrics({'i': i}, step=i)") == (
        "for i in range(3):\n    pass"
    )
    assert strip_cellops("import cellops as co\nco.set_tags({'a': 'b'})\nz = 3") == "z = 3"
    assert strip_cellops("from cellops import register\nregister(m, 'x')\nm2 = 3") == "m2 = 3"
    assert strip_cellops("cellops.widgets.ModelCard(model)") == ""
    # What reads a removed call's result goes too (it would fail without the server).
    assert (
        strip_cellops("mv = cellops.register(m, 'x')\nprint(mv.version)\nv = mv.version\nw = v")
        == ""
    )
    assert strip_cellops("%matplotlib inline\ncellops.flush()") == "%matplotlib inline"
    assert strip_cellops("print('cellops.register(x)')") == "print('cellops.register(x)')"

    # In the registering cell, the call becomes a comment saying what it registered; the
    # rest of the cell stays, and what reads the call's result still goes.
    def note(call: ast.Call) -> str:
        return f"registered {registered_model_name(call)}"

    assert strip_cellops(
        "mv = cellops.register(\n    rf,\n    'rf',\n)\nprint(mv.version)\nscore = 1",
        register_note=note,
    ) == ("# registered rf\nscore = 1")
    assert strip_cellops("x = 1; cellops.register(m, name='a'); y = 2", register_note=note) == (
        "x = 1; y = 2  # registered a"
    )
    assert strip_cellops("if ok:\n    cellops.register(m, 'b')", register_note=note) == (
        "if ok:\n    pass  # registered b"
    )
    assert strip_cellops("cellops.log_metrics({'a': 1})\nz = 3", register_note=note) == "z = 3"
    assert registered_names("mv = cellops.register(models[k], 'rf')") == {"models", "k"}
    assert registered_names("cellops.register(model=est, name='rf')") == {"est"}
    assert model_variable("mv = cellops.register(rf, 'rf', alias='champion')") == "rf"
    assert model_variable("cellops.register(models[0], 'rf')") is None


# -- from the store --------------------------------------------------------------------


def _seed(store: Store) -> None:
    cells = [
        ("import cellops\nimport math", "ok"),
        ("a = math.sqrt(16)", "ok"),
        ("boom = 1 / 0", "error"),
        ("unrelated = 'x'", "ok"),
        ("b = a * 2\ncellops.log_metrics({'b': b})", "ok"),
        ("mv = cellops.register(b, 'm')", "running"),  # read while it runs: still in
        ("after = 1", "ok"),  # ran after the registration: never in the notebook
    ]
    records = [run()]
    for seq, (code, status) in enumerate(cells, start=1):
        extra: dict[str, Any] = {"status": status}
        if status == "error":
            extra["error"] = {"ename": "ZeroDivisionError", "evalue": "division by zero"}
        records.append(execution(seq, code, f"cell-{seq}", **extra))
    store.ingest_json(records)


def _register(store: Store, msg_id: str | None) -> None:
    registry = Registry(store)
    data = b"model bytes"
    sha = hashlib.sha256(data).hexdigest()
    if registry.artifacts.size(sha) is None:
        up = registry.artifacts.upload(sha, 1 << 20)
        up.write(data)
        up.finish()
    registry.create_version(
        "m", ModelVersionCreate(artifact=sha, flavor="sklearn", lineage=LineageIn(msg_id=msg_id))
    )


def test_notebook_from_the_store(store: Store) -> None:
    _register(store, "run-1-msg-6")  # the kernel registers before the writer stores the cell
    with pytest.raises(NotYetRecorded, match="not recorded yet"):
        lineage_notebook(store, "m", 1, minimal=False)
    _seed(store)

    full = lineage_notebook(store, "m", 1, minimal=False)
    nbformat.validate(nbformat.from_dict(full))
    sources = [c["source"] for c in full["cells"]]
    # The registering cell says what it registered, rather than being left empty.
    note = "# registered here as model 'm' version 1 (call removed: re-runs need no server)"
    assert sources == ["import math", "a = math.sqrt(16)", "unrelated = 'x'", "b = a * 2", note]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in full["cells"])
    meta = full["metadata"]["cellops"]
    assert full["metadata"]["kernelspec"]["name"] == "python3"
    assert meta["model"] == "m" and meta["version"] == 1 and meta["minimal"] is False
    assert meta["notebook"] == "nb.ipynb" and meta["model_variable"] == "b"
    assert meta["execution_id"] and meta["run_id"]
    assert [s["seq"] for s in meta["skipped_failed_cells"]] == [3]

    minimal = lineage_notebook(store, "m", 1, minimal=True)
    nbformat.validate(nbformat.from_dict(minimal))
    assert [c["source"] for c in minimal["cells"]] == [
        "import math",
        "a = math.sqrt(16)",
        "b = a * 2",
        note,
    ]
    assert minimal["metadata"]["cellops"]["minimal"] is True

    _register(store, None)  # registered outside a kernel: no lineage to show
    with pytest.raises(NotFound, match="no lineage"):
        lineage_notebook(store, "m", 2, minimal=False)
    with pytest.raises(NotFound):
        lineage_notebook(store, "m", 9, minimal=False)


# -- end to end: a real kernel, then nbclient --------------------------------------------

CELLS = [
    "import json\nimport cellops\nfrom sklearn.datasets import load_iris\n"
    "from sklearn.ensemble import RandomForestClassifier\n"
    "from sklearn.model_selection import train_test_split",
    "X, y = load_iris(return_X_y=True)",
    "greeting = 'hello'\nprint(greeting.upper())",
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=7)",
    "model = RandomForestClassifier(n_estimators=20, random_state=0)\nmodel.fit(X_train, y_train)\n"
    "cellops.log_metrics({'accuracy': model.score(X_test, y_test)})",
    "mv = cellops.register(model, 'rf')\n"
    "print(json.dumps({'v': mv.version, 'pred': model.predict(X_test).tolist()}))",
]


def test_minimal_notebook_reproduces_the_predictions(kernel_server: JupyterServer) -> None:
    client = kernel_server.connect(kernel_server.new_session("train.ipynb"))
    results = [run_cell(client, code) for code in CELLS[:-1]]
    run_cell(client, "1 / 0", ok=False)  # a failing cell: left out of both notebooks
    results.append(run_cell(client, CELLS[-1]))
    client.close()
    out = last_json(results[-1]["stdout"])
    path = f"models/rf/versions/{out['v']}/notebook"

    full = kernel_server.api.wait_for(path, lambda b: True)  # 409 until the execution is stored
    nbformat.validate(nbformat.from_dict(full))
    assert len(full["cells"]) == len(CELLS), json.dumps(full)[
        -3000:
    ]  # every ok cell, in order; the error left out
    assert "greeting" in full["cells"][2]["source"]
    assert all("cellops" not in c["source"] for c in full["cells"])
    meta = full["metadata"]["cellops"]
    assert meta["model_variable"] == "model" and meta["notebook"] == "train.ipynb"
    assert len(meta["skipped_failed_cells"]) == 1
    assert meta["skipped_failed_cells"][0]["status"] == "error"

    minimal = kernel_server.api.cellops(path, minimal="true")
    sources = [c["source"] for c in minimal["cells"]]
    assert not any("greeting" in s for s in sources), sources
    assert not any("cellops" in s for s in sources), sources
    assert len(sources) == 5  # imports, data, split, fit, and the registering cell...
    assert sources[-1].startswith(f"# registered here as model 'rf' version {out['v']}")

    # Headless, with no cellops server configured: the notebook must not need one.
    nb = nbformat.from_dict(minimal)
    variable = nb.metadata["cellops"]["model_variable"]
    nb.cells.append(
        nbformat.v4.new_code_cell(f"print(json.dumps({variable}.predict(X_test).tolist()))")
    )
    execute_headless(nb)
    printed = nb.cells[-1].outputs[0]["text"]
    assert json.loads(printed) == out["pred"]


TWO_MODELS = [
    "import json\nimport cellops\nfrom sklearn.datasets import load_iris\n"
    "from sklearn.model_selection import train_test_split",
    "X, y = load_iris(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=7)",
    "from sklearn.ensemble import RandomForestClassifier\n"
    "forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X_train, y_train)\n"
    "print(json.dumps({'forest': forest.score(X_test, y_test)}))",
    "mv = cellops.register(forest, 'forest')\n"
    "print(json.dumps({'v': mv.version, 'pred': forest.predict(X_test).tolist()}))",
    "from sklearn.linear_model import LogisticRegression\n"
    "logistic = LogisticRegression(max_iter=500).fit(X_train, y_train)\n"
    "print(json.dumps({'logistic': logistic.score(X_test, y_test)}))",
    "mv = cellops.register(logistic, 'logistic')\n"
    "print(json.dumps({'v': mv.version, 'pred': logistic.predict_proba(X_test).round(6).tolist()}))",
]


def test_each_of_two_models_gets_only_its_own_training(kernel_server: JupyterServer) -> None:
    """Two models trained in one notebook: each minimal notebook holds the shared data cells
    and its own training, never the other model's, and re-runs to the same predictions."""
    client = kernel_server.connect(kernel_server.new_session("two_models.ipynb"))
    results = [run_cell(client, code) for code in TWO_MODELS]
    client.close()
    registered = {
        "forest": (last_json(results[3]["stdout"]), "forest.predict(X_test).tolist()"),
        "logistic": (
            last_json(results[5]["stdout"]),
            "logistic.predict_proba(X_test).round(6).tolist()",
        ),
    }
    for name, (out, prediction) in registered.items():
        other = "logistic" if name == "forest" else "forest"
        path = f"models/{name}/versions/{out['v']}/notebook"
        kernel_server.api.wait_for(path, lambda b: True)  # 409 until the execution is stored
        minimal = kernel_server.api.cellops(path, minimal="true")
        sources = [c["source"] for c in minimal["cells"]]
        assert len(sources) == 4, sources  # imports, data, its training, its registration
        assert f"{name} = " in sources[2], sources
        assert not any(other in s for s in sources), sources
        assert sources[-1] == (
            f"# registered here as model {name!r} version {out['v']} "
            "(call removed: re-runs need no server)"
        )

        nb = nbformat.from_dict(minimal)  # headless, no cellops server configured
        nb.cells.append(nbformat.v4.new_code_cell(f"print(json.dumps({prediction}))"))
        execute_headless(nb)
        assert json.loads(nb.cells[-1].outputs[-1]["text"]) == out["pred"], name
