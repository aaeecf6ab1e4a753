"""Issue 9, item 1: a crafted model file must not run code in whoever loads it.

Each attack is a real skops file an editor could register for teammates to load: a
reference to numpy's exec helper, a scikit-learn test helper that starts a subprocess, a
LogisticRegression that predicts correctly but runs code while it is loaded, and trees
whose node arrays send scikit-learn's compiled code out of bounds. Each is first shown to be
real: skops itself, told to trust every type the file names, runs it (a subprocess creates
the marker file, or dies of a signal). Then it is refused by the team registry over HTTP
(SQLite and PostgreSQL: 400, nothing created), by ``cellops.serialize.loads``, and by a
teammate's ``cellops.load`` of a version registered before the registry checked; the marker
never appears. Ordinary models still round-trip and register.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from cellops.client import reset_client
from cellops.serialize import UnsafeModelError, check, dumps, loads
from cellops_server.registry import Registry
from cellops_server.schemas import ModelVersionCreate
from cellops_server.store import Store
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from .conftest import API, Team

EXEC = "numpy.testing._private.utils.runstring"  # def runstring(astr, dict): exec(astr, dict)
SUBPROCESS = "sklearn.utils._testing.assert_run_python_script_without_output"
FAR = 10**9  # an index far outside any array: reading there faults


def payload(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def training_data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(200, 5, random_state=0)


# -- crafting skops files -------------------------------------------------------------------


def rewrite(
    data: bytes,
    schema: Callable[[dict[str, Any]], None] = lambda s: None,
    arrays: Callable[[np.ndarray], None] | None = None,
    member: str | None = None,
) -> bytes:
    """A copy of a skops file with its schema edited in place, and/or one array member."""
    source = zipfile.ZipFile(io.BytesIO(data))
    tree = json.loads(source.read("schema.json"))
    schema(tree)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            body = source.read(name)
            if name == "schema.json":
                body = json.dumps(tree).encode()
            elif name == member and arrays is not None:
                array = np.load(io.BytesIO(body), allow_pickle=False)
                arrays(array)
                buffer = io.BytesIO()
                np.save(buffer, array, allow_pickle=False)
                body = buffer.getvalue()
            target.writestr(name, body)
    return out.getvalue()


def json_node(value: Any) -> dict[str, Any]:
    return {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
    }


def empty_dict_node() -> dict[str, Any]:
    return {
        "__class__": "dict",
        "__module__": "builtins",
        "__loader__": "DictNode",
        "content": {},
        "key_types": {
            "__class__": "list",
            "__module__": "builtins",
            "__loader__": "ListNode",
            "content": [],
        },
    }


def call_node(function: str, *args: dict[str, Any]) -> dict[str, Any]:
    """skops calls ``function(*args)`` to build this node (ConstructorFromReduceNode)."""
    module, name = function.rsplit(".", 1)
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": list(args),
        },
    }


def attrs(schema: dict[str, Any]) -> dict[str, Any]:
    """The attribute dict (DictNode) of the file's top object."""
    return schema["content"]


def tree_member(schema: dict[str, Any], estimator: int | None = None) -> str:
    """The .npy member holding a decision tree's nodes (``estimator``: a forest's member)."""
    owner = schema
    if estimator is not None:
        owner = attrs(schema)["content"]["estimators_"]["content"][estimator]
    return attrs(owner)["content"]["tree_"]["content"]["content"]["nodes"]["file"]


def crafted_exec_reference(marker: Path) -> bytes:
    """A FunctionTransformer whose function is numpy's exec helper: transform(code) runs it."""
    X, _ = training_data()
    return sio.dumps(FunctionTransformer(func=_runstring(), kw_args={"dict": {}}).fit(X))


def crafted_subprocess_helper(marker: Path) -> bytes:
    """A LogisticRegression whose attribute names are typed by a test helper that runs its
    argument as a Python script in a subprocess: skops calls it while loading."""
    X, y = training_data()

    def poison(schema: dict[str, Any]) -> None:
        attributes = attrs(schema)
        attributes["content"][payload(marker)] = json_node(0)
        helper = {"__class__": SUBPROCESS.rsplit(".", 1)[1], "__loader__": "TypeNode"}
        helper["__module__"] = SUBPROCESS.rsplit(".", 1)[0]
        attributes["key_types"]["content"].append(helper)

    return rewrite(sio.dumps(LogisticRegression().fit(X, y)), poison)


def crafted_poisoned_logistic_regression(marker: Path) -> bytes:
    """A LogisticRegression that predicts correctly, with one more attribute: skops builds
    it by calling numpy's exec helper on the payload."""
    X, y = training_data()

    def poison(schema: dict[str, Any]) -> None:
        attributes = attrs(schema)
        attributes["content"]["calibration_"] = call_node(
            EXEC, json_node(payload(marker)), empty_dict_node()
        )
        attributes["key_types"]["content"].append(
            {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}
        )

    return rewrite(sio.dumps(LogisticRegression().fit(X, y)), poison)


def crafted_tree_children(marker: Path) -> bytes:
    """A decision tree whose root's left child is far outside its node array."""
    X, y = training_data()
    data = sio.dumps(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y))
    member = tree_member(_schema(data))
    return rewrite(data, arrays=lambda nodes: _set(nodes, "left_child", 0, FAR), member=member)


def crafted_forest_features(marker: Path) -> bytes:
    """A random forest whose second tree splits on a feature far past the input's width."""
    X, y = training_data()
    data = sio.dumps(RandomForestClassifier(n_estimators=2, max_depth=3, random_state=0).fit(X, y))
    member = tree_member(_schema(data), estimator=1)
    return rewrite(data, arrays=lambda nodes: _set(nodes, "feature", 0, FAR), member=member)


def crafted_hist_gradient_boosting_children(marker: Path) -> bytes:
    """A HistGradientBoosting model whose first predictor's root points far past its nodes."""
    X, y = training_data()
    data = sio.dumps(HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y))
    predictors = attrs(_schema(data))["content"]["_predictors"]["content"]
    member = attrs(predictors[0]["content"][0])["content"]["nodes"]["file"]
    return rewrite(data, arrays=lambda nodes: _set(nodes, "left", 0, FAR), member=member)


def crafted_tree_cycle(marker: Path) -> bytes:
    """A decision tree whose first split points back at the root: predict never returns."""
    X, y = training_data()
    data = sio.dumps(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y))
    return rewrite(
        data,
        arrays=lambda nodes: _set(nodes, "right_child", 1, 0),
        member=tree_member(_schema(data)),
    )


def crafted_tree_shallow_depth(marker: Path) -> bytes:
    """A decision tree claiming depth 0: decision_path sizes its output by it, then writes
    past the end."""
    X, y = training_data()
    data = sio.dumps(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y))

    def understate(schema: dict[str, Any]) -> None:
        tree = attrs(schema)["content"]["tree_"]["content"]["content"]
        tree["max_depth"] = json_node(0)

    return rewrite(data, understate)


def _runstring() -> Any:
    from numpy.testing._private.utils import runstring

    return runstring


def _schema(data: bytes) -> dict[str, Any]:
    return json.loads(zipfile.ZipFile(io.BytesIO(data)).read("schema.json"))


def _set(nodes: np.ndarray, field: str, index: int, value: int) -> None:
    nodes[field][index] = value


# -- the attacks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    name: str
    craft: Callable[[Path], bytes]
    # What a teammate does with the loaded model ("model", "X", "code" are defined).
    use: str
    # "marker": the payload creates the marker file; "crash": the process dies of a signal.
    effect: str


ATTACKS = [
    Attack("exec_function_reference", crafted_exec_reference, "model.transform(code)", "marker"),
    Attack("subprocess_test_helper", crafted_subprocess_helper, "", "marker"),
    Attack(
        "poisoned_logistic_regression",
        crafted_poisoned_logistic_regression,
        "assert (model.predict(X) == expected).all()",
        "marker",
    ),
    Attack("tree_child_out_of_range", crafted_tree_children, "model.predict(X)", "crash"),
    Attack("forest_feature_out_of_range", crafted_forest_features, "model.predict(X)", "crash"),
    Attack(
        "hist_gradient_boosting_child_out_of_range",
        crafted_hist_gradient_boosting_children,
        "model.predict(X)",
        "crash",
    ),
]
# Also refused, shown by their structure alone (their effect is a hang and heap corruption).
STRUCTURE_ONLY = [
    Attack("tree_cycle", crafted_tree_cycle, "model.predict(X)", "hang"),
    Attack("tree_understated_depth", crafted_tree_shallow_depth, "model.decision_path(X)", "heap"),
]
EVERY_ATTACK = ATTACKS + STRUCTURE_ONLY

PROOF = """
import sys
import numpy as np
import skops.io as sio

artifact, inputs, marker = sys.argv[1:4]
data = open(artifact, "rb").read()
model = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
print("loaded", flush=True)
arrays = np.load(inputs)
X, expected = arrays["X"], arrays["expected"]
code = "open(%r, 'w').close()" % marker
{use}
print("used", flush=True)
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("crafted")


def artifact_for(attack: Attack, workdir: Path, purpose: str) -> tuple[bytes, Path]:
    """The attack's file with its own marker (one per purpose, so no test sees another's)."""
    marker = workdir / f"{attack.name}-{purpose}.marker"
    return attack.craft(marker), marker


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_crafted_model_runs_under_skops_trusting_every_type(attack: Attack, workdir: Path) -> None:
    """The attack is real: what the file names, trusted, runs its payload or faults."""
    data, marker = artifact_for(attack, workdir, "proof")
    artifact = workdir / f"{attack.name}.skops"
    artifact.write_bytes(data)
    X, y = training_data()
    expected = LogisticRegression().fit(X, y).predict(X)
    inputs = workdir / "inputs.npz"
    np.savez(inputs, X=X, expected=expected)
    script = PROOF.format(use=attack.use)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(artifact), str(inputs), str(marker)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "loaded" in proc.stdout, proc.stderr[-2000:]
    if attack.effect == "marker":
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert marker.exists()
    else:
        assert proc.returncode < 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])


@pytest.mark.parametrize("attack", EVERY_ATTACK, ids=lambda a: a.name)
def test_loader_refuses_crafted_model(attack: Attack, workdir: Path) -> None:
    data, marker = artifact_for(attack, workdir, "loader")
    with pytest.raises(UnsafeModelError) as refused:
        loads(data)
    assert refused.value.refused or refused.value.problems
    assert not marker.exists()
    # Vouching for every name the file holds changes nothing: these are never loadable.
    with pytest.raises(UnsafeModelError):
        loads(data, trusted=[*sio.get_untrusted_types(data=data), EXEC, SUBPROCESS])
    assert not marker.exists()


def test_refusals_say_what_is_refused_and_why(workdir: Path) -> None:
    data, _ = artifact_for(ATTACKS[2], workdir, "message")
    with pytest.raises(UnsafeModelError) as poisoned:
        check(data)
    assert poisoned.value.refused == [EXEC]
    assert "no trusted= list makes it loadable" in str(poisoned.value)
    data, _ = artifact_for(ATTACKS[3], workdir, "message")
    with pytest.raises(UnsafeModelError) as tree:
        check(data, trusted=["sklearn.tree._tree.Tree"])
    assert tree.value.refused == []
    [problem] = tree.value.problems
    assert problem.startswith(f"sklearn.tree._tree.Tree: node 0 has left child {FAR}, outside (0, ")
    assert "read memory out of bounds" in str(tree.value)


# -- the registry -------------------------------------------------------------------------------


def model_names(team: Team) -> list[str]:
    return [m["name"] for m in team.as_("admin").cellops("models", limit=500)["items"]]


def register(team: Team, name: str, data: bytes, flavor: str = "sklearn") -> Any:
    alice = team.as_("alice")
    uploaded = alice.put_artifact(data)
    assert uploaded.status_code in (200, 201), uploaded.text
    body = {"artifact": hashlib.sha256(data).hexdigest(), "flavor": flavor}
    return alice.request("POST", f"{API}/models/{name}/versions", json=body)


@pytest.mark.parametrize("attack", EVERY_ATTACK, ids=lambda a: a.name)
def test_registry_refuses_crafted_model(attack: Attack, team: Team, workdir: Path) -> None:
    data, marker = artifact_for(attack, workdir, "registry")
    before = model_names(team)
    # Declaring another flavor does not skip the check: the bytes are a skops file.
    for flavor in ("sklearn", "onnx"):
        r = register(team, f"crafted-{attack.name}", data, flavor)
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["error"].startswith(("this model contains", "its tree node storage")), body
        assert body["detail"]["refused"] or body["detail"]["problems"], body
    assert model_names(team) == before
    missing = team.as_("alice").request("GET", f"{API}/models/crafted-{attack.name}")
    assert missing.status_code == 404
    assert not marker.exists()


class RegistryBeforeTheCheck(Registry):
    """The registry as it was before this issue: it stored any uploaded artifact."""

    def _check_artifact(self, sha: str) -> None:
        return None


@pytest.fixture
def as_alice(team: Team, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's ``cellops`` client talks to the team backend as alice."""
    monkeypatch.setenv("CELLOPS_URL", team.url)
    monkeypatch.setenv("CELLOPS_TOKEN", team.tokens["alice"])
    reset_client()
    yield
    reset_client()


def test_teammates_cellops_load_refuses_versions_registered_before_the_check(
    team: Team, workdir: Path, as_alice: None
) -> None:
    import cellops

    store = Store(team.db_url, str(team.artifacts))
    try:
        old_registry = RegistryBeforeTheCheck(store)
        markers = []
        for attack in EVERY_ATTACK:
            data, marker = artifact_for(attack, workdir, "legacy")
            markers.append(marker)
            assert team.as_("bob").put_artifact(data).status_code in (200, 201)
            body = ModelVersionCreate(artifact=hashlib.sha256(data).hexdigest(), flavor="sklearn")
            old_registry.create_version("legacy-crafted", body, created_by="bob")
    finally:
        store.close()
    versions = cellops.list_versions("legacy-crafted")
    assert len(versions) == len(EVERY_ATTACK)
    for version in versions:
        with pytest.raises(UnsafeModelError):
            cellops.load("legacy-crafted", version=version.version)
    assert not any(m.exists() for m in markers)


OWN_MODULE = """
from sklearn.base import BaseEstimator, TransformerMixin


class Doubler(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return X * 2
"""


def test_own_types_register_and_load_only_when_trusted(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trusted= still admits the user's own importable types (and only those)."""
    (tmp_path / "team_transforms.py").write_text(OWN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    from team_transforms import Doubler  # type: ignore[import-not-found]

    X, y = training_data()
    model = make_pipeline(Doubler(), LogisticRegression()).fit(X, y)
    with pytest.raises(UnsafeModelError, match=r"team_transforms\.Doubler"):
        dumps(model)
    data = dumps(model, trusted=["team_transforms.Doubler"])
    # The registry cannot vouch for the author's code; it stores it, and each loader decides.
    assert register(team, "own-types", data).status_code == 201
    with pytest.raises(UnsafeModelError, match=r"team_transforms\.Doubler"):
        loads(data)
    back = loads(data, trusted=["team_transforms.Doubler"])
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


# -- ordinary models -------------------------------------------------------------------------


def ordinary_models() -> dict[str, tuple[Any, np.ndarray]]:
    """Fitted models people register, with the input they predict on."""
    X, y = training_data()
    category = (X[:, 0] > 0).astype(int)
    with_category = np.column_stack([X, category])
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression()),
        {"logisticregression__C": [0.1, 1.0]},
        cv=3,
        scoring="roc_auc",
    ).fit(X, y)
    column = ColumnTransformer(
        [("scaled", StandardScaler(), [0, 1, 2, 3, 4]), ("onehot", OneHotEncoder(), [5])]
    )
    return {
        "log1p_pipeline": (
            make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()).fit(abs(X), y),
            abs(X),
        ),
        "column_transformer": (
            make_pipeline(column, LogisticRegression()).fit(with_category, y),
            with_category,
        ),
        "random_forest": (RandomForestClassifier(20, random_state=0).fit(X, y), X),
        "hist_gradient_boosting": (
            HistGradientBoostingClassifier(max_iter=10, categorical_features=[5]).fit(
                with_category, y
            ),
            with_category,
        ),
        "grid_search": (search, X),
        "grid_search_best_estimator": (search.best_estimator_, X),
    }


@pytest.fixture(scope="module")
def ordinary() -> dict[str, tuple[Any, np.ndarray]]:
    return ordinary_models()


ORDINARY = [
    "log1p_pipeline",
    "column_transformer",
    "random_forest",
    "hist_gradient_boosting",
    "grid_search",
    "grid_search_best_estimator",
]


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_model_round_trips(name: str, ordinary: dict[str, Any]) -> None:
    model, X = ordinary[name]
    back = loads(dumps(model))
    assert type(back) is type(model)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_model_registers(name: str, ordinary: dict[str, Any], team: Team) -> None:
    model, _ = ordinary[name]
    r = register(team, f"ordinary-{name}", dumps(model))
    assert r.status_code == 201, r.text
    assert r.json()["version"] >= 1
