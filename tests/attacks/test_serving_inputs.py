"""Issue 12, point 4: what an attacker can hand a serving worker.

Crafted artifacts (a skops file naming os.system, builtins.eval, numpy's exec helper or a
module that acts when imported; a pickle; a zip bomb; an altered file; a digest with a
newline or '../') are refused before anything they name is imported or run: the marker
files their payloads would write never appear. Each payload is first shown to be real:
skops told to trust everything, or pickle, runs it in a subprocess. Hostile request bodies
get a 4xx whose error names the problem, never a 500.
"""

from __future__ import annotations

import json
import pickle
import random
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from cellops_server.serving.loading import RefusedModel, load_verified
from cellops_server.serving.protocols import InferenceRequest, infer
from cellops_server.store.blobs import FileBlobStore
from sklearn.linear_model import LogisticRegression

from ..serving_models import Served, frame_pipeline, iris, mlflow, v2
from .test_crafted_models import (
    attrs,
    call_node,
    crafted_poisoned_logistic_regression,
    json_node,
    payload,
    rewrite,
    training_data,
)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


# -- crafted artifacts ------------------------------------------------------------------------


def with_attribute(node: dict[str, Any]) -> bytes:
    """A fitted LogisticRegression with one more attribute, built by ``node``."""
    X, y = training_data()

    def poison(schema: dict[str, Any]) -> None:
        attributes = attrs(schema)
        attributes["content"]["calibration_"] = node
        attributes["key_types"]["content"].append(
            {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}
        )

    return rewrite(sio.dumps(LogisticRegression().fit(X, y)), poison)


def os_system(marker: Path) -> bytes:
    return with_attribute(call_node("os.system", json_node(f"touch {marker}")))


def builtins_eval(marker: Path) -> bytes:
    return with_attribute(call_node("builtins.eval", json_node(payload(marker))))


def importing_module(marker: Path) -> bytes:
    """Names a class of a module that writes the marker when it is imported."""
    module = f"h2_evil_{marker.parent.name}"
    (marker.parent / f"{module}.py").write_text(f"{payload(marker)}\nclass Thing: pass\n")
    node = {"__class__": "Thing", "__module__": module, "__loader__": "TypeNode"}
    return with_attribute(node)


CRAFTED: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "os_system": (os_system, "os.system"),
    "builtins_eval": (builtins_eval, "builtins.eval"),
    "numpy_exec_helper": (crafted_poisoned_logistic_regression, "runstring"),
    "module_acting_on_import": (importing_module, "h2_evil_"),
}


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, Path]]:
    """Each attack's file and marker; shown to be real first: skops, told to trust every
    name the file holds, runs each payload (in one subprocess, so nothing leaks here)."""
    files = {}
    for name, (craft, _) in CRAFTED.items():
        folder = tmp_path_factory.mktemp(name)
        marker = folder / "marker"
        data = craft(marker)
        (folder / "attack.skops").write_bytes(data)
        files[name] = (data, marker)
    code = (
        "import sys, skops.io as sio\n"
        "for folder in sys.argv[1:]:\n"
        "    sys.path.insert(0, folder)\n"
        "    data = open(folder + '/attack.skops', 'rb').read()\n"
        "    try: sio.loads(data, trusted=sio.get_untrusted_types(data=data))\n"
        "    except Exception: pass\n"
    )
    folders = [str(marker.parent) for _, marker in files.values()]
    subprocess.run([sys.executable, "-c", code, *folders], timeout=120, check=True)
    for name, (_, marker) in files.items():
        assert marker.exists(), f"{name} did not run its payload: the test would prove nothing"
        marker.unlink()
    return files


@pytest.mark.parametrize("attack", sorted(CRAFTED))
def test_crafted_skops_files_are_refused_and_run_nothing(
    attack: str, artifacts: Path, crafted: dict[str, tuple[bytes, Path]]
) -> None:
    data, marker = crafted[attack]
    named = CRAFTED[attack][1]
    sha = FileBlobStore(artifacts).put(data)
    sys.path.insert(0, str(marker.parent))  # the module-on-import attack would find its module
    try:
        with pytest.raises(RefusedModel) as refused:
            load_verified(artifacts, sha)
    finally:
        sys.path.remove(str(marker.parent))
    assert named in str(refused.value)
    assert any(named in name for name in refused.value.refused)
    assert not marker.exists()
    assert not any(m.startswith("h2_evil_") for m in sys.modules)


class _Opens:
    """Unpickling this calls open(marker, 'w'): what any pickle can make its loader do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_a_pickle_is_never_loaded(artifacts: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    data = pickle.dumps(_Opens(marker), protocol=4)
    code = "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())"
    (tmp_path / "model.pkl").write_bytes(data)
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.pkl")], check=True)
    assert marker.exists()  # the payload is real
    marker.unlink()
    sha = FileBlobStore(artifacts).put(data)
    with pytest.raises(RefusedModel, match="pickle is never loaded"):
        load_verified(artifacts, sha)
    assert not marker.exists()


def test_files_that_are_not_skops_are_refused(artifacts: Path) -> None:
    blobs = FileBlobStore(artifacts)
    plain = blobs.put(b"def predict(X): return X\n")
    with pytest.raises(RefusedModel, match="not a skops file"):
        load_verified(artifacts, plain)
    archive = Path(artifacts / "other.zip")
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("model.json", "{}")
    with pytest.raises(RefusedModel, match="not a skops file"):
        load_verified(artifacts, blobs.put(archive.read_bytes()))


def test_a_zip_bomb_schema_is_refused(artifacts: Path, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.skops"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "schema.json", b'{"__loader__": "ObjectNode", "x": "' + b" " * (40 << 20) + b'"}'
        )
    assert bomb.stat().st_size < 1 << 20
    sha = FileBlobStore(artifacts).put(bomb.read_bytes())
    with pytest.raises(RefusedModel, match="expands"):
        load_verified(artifacts, sha)


def test_an_altered_artifact_is_refused(artifacts: Path) -> None:
    X, y = training_data()
    blobs = FileBlobStore(artifacts)
    sha = blobs.put(sio.dumps(LogisticRegression().fit(X, y)))
    other = sio.dumps(LogisticRegression(C=0.01).fit(X, y))
    blobs.path_for(sha).write_bytes(other)  # swapped on disk after registration
    with pytest.raises(RefusedModel, match="altered"):
        load_verified(artifacts, sha)


@pytest.mark.parametrize(
    "digest",
    [
        "ab" * 32 + "\n",
        "../" + "a" * 61,
        "../../../../etc/passwd",
        "AB" * 32,
        "ab" * 31,
        "ab" * 32 + "/../x",
        "",
        None,
        123,
    ],
)
def test_digests_that_are_not_digests(artifacts: Path, digest: Any) -> None:
    with pytest.raises(RefusedModel, match="not an artifact id"):
        load_verified(artifacts, digest)


# -- hostile requests -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(artifacts: Path) -> Served:
    return iris(artifacts)


@pytest.fixture(scope="module")
def frame(artifacts: Path) -> Served:
    return frame_pipeline(artifacts)


def tensor_body(**item: Any) -> bytes:
    base = {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
    return json.dumps({"inputs": [{**base, **item}]}).encode()


def deep(levels: int) -> Any:
    value: Any = [5.1, 3.5, 1.4, 0.2]
    for _ in range(levels):
        value = [value]
    return value


HOSTILE: dict[str, tuple[str, bytes, str, int, str]] = {
    # name: (protocol, body, content type, status, a word the error must contain)
    "truncated_json": ("v2", b'{"inputs": [', "", 400, "not valid JSON"),
    "not_utf8": ("v2", b'\xff\xfe{"inputs"', "", 400, "JSON"),
    "json_list": ("v2", b"[1, 2]", "", 400, "inputs"),
    "no_inputs": ("v2", b'{"inputs": []}', "", 400, "inputs"),
    "shape_product": ("v2", tensor_body(shape=[2, 4]), "", 400, "8 values"),
    "negative_shape": ("v2", tensor_body(shape=[-1, 4]), "", 400, "shape"),
    "float_shape": ("v2", tensor_body(shape=[1.0, 4]), "", 400, "shape"),
    "bytes_for_numbers": (
        "v2",
        tensor_body(datatype="BYTES", data=["5.1", "3.5", "1.4", "0.2"]),
        "",
        400,
        "BYTES",
    ),
    "text_in_fp32": (
        "v2",
        tensor_body(datatype="FP32", data=["a", "b", "c", "d"]),
        "",
        400,
        "numbers",
    ),
    "object_data": ("v2", tensor_body(data={"a": 1}), "", 400, "numbers"),
    "unknown_datatype": ("v2", tensor_body(datatype="FP128"), "", 400, "FP128"),
    "int8_overflow": ("v2", tensor_body(datatype="INT8", data=[300, 1, 1, 1]), "", 400, "range"),
    "fraction_in_int": ("v2", tensor_body(datatype="INT32"), "", 400, "integers"),
    "million_rows_claimed": ("v2", tensor_body(shape=[1_000_000, 4]), "", 413, "1000000 rows"),
    "nested_deep": ("v2", tensor_body(data=deep(20)), "", 400, "nested"),
    "nested_deeper_than_numpy": ("v2", tensor_body(data=deep(70)), "", 400, "input 'x'"),
    "json_recursion": (
        "mlflow",
        b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "application/json",
        400,
        "nested",
    ),
    "infinity": (
        "v2",
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [Infinity, 1, 1, 1]}]}',
        "",
        400,
        "infinite",
    ),
    "null_for_a_model_without_nan": ("v2", tensor_body(data=[None, 1, 1, 1]), "", 400, "feature 0"),
    "unknown_output": (
        "v2",
        json.dumps(
            {"inputs": json.loads(tensor_body())["inputs"], "outputs": [{"name": "explain"}]}
        ).encode(),
        "",
        400,
        "explain",
    ),
    "binary_size_past_the_end": (
        "v2",
        tensor_body(parameters={"binary_data_size": 32}),
        "",
        400,
        "binary",
    ),
    "ragged_rows": (
        "mlflow",
        b'{"instances": [[1, 2, 3, 4], [1, 2]]}',
        "application/json",
        400,
        "regular",
    ),
    "scalars_for_rows": ("mlflow", b'{"instances": [1, 2, 3, 4]}', "application/json", 400, "rows"),
    "empty_rows": ("mlflow", b'{"instances": []}', "application/json", 400, "no rows"),
    "mlflow_not_json": ("mlflow", b"instances=1", "application/json", 400, "not valid JSON"),
    "csv_wrong_field_count": ("mlflow", b"a,b,c,d\n1,2,3,4\n1,2,3\n", "text/csv", 400, "line 3"),
    "csv_text": ("mlflow", b"a,b,c,d\n1,2,x,4\n", "text/csv", 400, "'c' line 2"),
    "nested_column": (
        "mlflow",
        b'{"inputs": {"a": [[1, 2], [3, 4]], "b": [1, 2], "c": [1, 2], "d": [1, 2]}}',
        "application/json",
        400,
        "one value per row",
    ),
    "csv_empty": ("mlflow", b"", "text/csv", 400, "empty"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bodies_get_a_4xx_naming_the_problem(model: Served, case: str) -> None:
    protocol, body, content_type, status, word = HOSTILE[case]
    request = InferenceRequest(
        protocol,
        body,
        content_type or "application/json",
        "dep",
        1,
        model.signature,  # type: ignore[arg-type]
    )
    result = infer(model.model, request)
    error = json.loads(result.body)["error"]
    assert (result.status, word in error) == (status, True), error
    assert result.rows == 0


def test_a_million_rows_sent_are_refused_before_decoding(model: Served) -> None:
    body = b'{"instances": [' + b",".join([b"0"] * 1_000_000) + b"]}"
    result = infer(model.model, mlflow(model, body))
    assert result.status == 413 and b"at most 10000" in result.body


def test_a_binary_header_longer_than_the_body(model: Served) -> None:
    result = infer(model.model, v2(model, tensor_body(), header_length=10**6))
    assert result.status == 400 and b"Inference-Header-Content-Length" in result.body


def test_an_unknown_category_is_the_callers_problem_not_a_500(frame: Served) -> None:
    record = frame.X.iloc[0].to_dict()
    record["site"] = "west"
    result = infer(frame.model, mlflow(frame, json.dumps({"dataframe_records": [record]}).encode()))
    assert result.status == 400, result.body
    assert b"west" in result.body


@pytest.mark.parametrize("value", [{"$where": "1"}, 1.5, True, [1]])
def test_other_than_text_in_a_text_column(frame: Served, value: Any) -> None:
    record = frame.X.iloc[0].to_dict()
    record["site"] = value
    result = infer(frame.model, mlflow(frame, json.dumps({"dataframe_records": [record]}).encode()))
    assert result.status == 400, result.body
    assert "'site' must hold" in json.loads(result.body)["error"]


def test_a_model_that_raises_is_a_500_with_its_reason(model: Served) -> None:
    class Broken:
        n_features_in_ = 4

        def predict(self, X: np.ndarray) -> np.ndarray:
            raise RuntimeError("disk on fire")

    result = infer(Broken(), v2(model, tensor_body()))
    assert result.status == 500
    assert json.loads(result.body) == {"error": "the model raised RuntimeError: disk on fire"}


ODD_VALUES: list[Any] = [
    None, True, -1, 0, 1.5, 10**30, "x", "", [], {}, [[]], [None], [[1, "a"]], [{"a": 1}],
    ["FP64"], [1, 2, 3, 4], [[1, 2, 3, 4]], {"a": [1]}, "BYTES", "INT8", [-1, 4], [1, 4],
]  # fmt: skip


def mutations(seed: int) -> list[tuple[str, bytes]]:
    """Valid bodies of both protocols with one or two fields replaced by odd values."""
    rng = random.Random(seed)
    bodies = []
    for _ in range(300):
        item: dict[str, Any] = {
            "name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]
        }  # fmt: skip
        for key in rng.sample(sorted(item), rng.randint(1, 2)):
            item[key] = rng.choice(ODD_VALUES)
        outputs = rng.choice([None, [{"name": "predict"}], [{"name": rng.choice(ODD_VALUES)}]])
        v2_body: dict[str, Any] = {"inputs": [item]}
        if outputs is not None:
            v2_body["outputs"] = outputs
        bodies.append(("v2", json.dumps(v2_body).encode()))
        key = rng.choice(["instances", "inputs", "dataframe_split", "dataframe_records"])
        value = rng.choice(
            [*ODD_VALUES, {"columns": rng.choice(ODD_VALUES), "data": rng.choice(ODD_VALUES)}]
        )
        bodies.append(("mlflow", json.dumps({key: value}).encode()))
    return bodies


def test_odd_values_anywhere_never_make_a_500(model: Served, frame: Served) -> None:
    for served in (model, frame):
        for protocol, body in mutations(12):
            request = InferenceRequest(
                protocol,  # type: ignore[arg-type]
                body,
                "application/json",
                "dep",
                1,
                served.signature,
            )
            result = infer(served.model, request)
            assert result.status in (200, 400, 413), (body, result.body)
            if result.status != 200:
                assert json.loads(result.body)["error"]
