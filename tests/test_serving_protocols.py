"""Issue 12, point 3: the Open Inference Protocol v2 and MLflow scoring, decoded for real
scikit-learn models loaded from a real blob store; every answer is compared with the model's
own ``predict`` in-process. Bodies are built the way clients build them (tritonclient's own
request builder, MLflow's JSON and CSV formats)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cellops_server.serving.protocols import (
    InferenceRequest,
    InferenceResult,
    infer,
    metadata_v2,
)

from .serving_models import Served, breast_cancer, frame_pipeline, iris, mlflow, v2


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def iris_model(artifacts: Path) -> Served:
    return iris(artifacts)


@pytest.fixture(scope="module")
def cancer(artifacts: Path) -> Served:
    return breast_cancer(artifacts)


@pytest.fixture(scope="module")
def frame(artifacts: Path) -> Served:
    return frame_pipeline(artifacts)


def ok(served: Served, request: InferenceRequest) -> dict[str, Any]:
    result = infer(served.model, request)
    assert result.status == 200, result.body
    return json.loads(result.body)


def refused(served: Served, request: InferenceRequest, status: int = 400) -> str:
    result = infer(served.model, request)
    assert result.status == status, result.body
    assert result.rows == 0 and result.sample is None
    return json.loads(result.body)["error"]


def tensor(name: str, array: np.ndarray, datatype: str) -> dict[str, Any]:
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": array.tolist()}


def body(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"inputs": list(inputs), **extra}).encode()


def outputs(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in answer["outputs"]}


# -- Open Inference Protocol v2 ---------------------------------------------------------------


def test_v2_one_2d_tensor_answers_like_predict(cancer: Served) -> None:
    X = cancer.X[:7]
    answer = ok(cancer, v2(cancer, body(tensor("input-0", X, "FP64"), id="req-1")))
    assert answer["model_name"] == "dep" and answer["model_version"] == "3"
    assert answer["id"] == "req-1"
    predict = outputs(answer)["predict"]
    assert predict["shape"] == [7] and predict["datatype"] == "INT64"
    assert predict["data"] == cancer.model.predict(X).tolist()
    assert set(outputs(answer)) == {"predict"}  # predict_proba only when asked for


@pytest.mark.parametrize(
    "datatype",
    [
        "FP16",
        "FP32",
        "FP64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "BOOL",
    ],
)
def test_v2_every_numeric_datatype(iris_model: Served, datatype: str) -> None:
    np_type = {"BOOL": np.bool_, "FP16": np.float16}.get(datatype) or np.dtype(
        datatype.lower().replace("fp", "float")
    )
    raw = iris_model.X[::10]
    values = raw > 3 if datatype == "BOOL" else np.round(raw).astype(np_type)
    answer = ok(iris_model, v2(iris_model, body(tensor("x", values, datatype))))
    expected = iris_model.model.predict(values.astype(np.float64))
    assert outputs(answer)["predict"]["data"] == expected.tolist()


def test_v2_fractions_in_fp16_and_fp32_are_rounded_as_the_datatype_says(
    iris_model: Served,
) -> None:
    X = iris_model.X[:20]
    for datatype, np_type in (("FP16", np.float16), ("FP32", np.float32)):
        answer = ok(iris_model, v2(iris_model, body(tensor("x", X, datatype))))
        expected = iris_model.model.predict(X.astype(np_type).astype(np.float64))
        assert outputs(answer)["predict"]["data"] == expected.tolist()


def test_v2_shape_is_honoured_for_flat_and_nested_data(iris_model: Served) -> None:
    X = iris_model.X[40:46]
    expected = iris_model.model.predict(X).tolist()
    flat = {"name": "x", "shape": [6, 4], "datatype": "FP64", "data": X.ravel().tolist()}
    nested = {**flat, "data": X.tolist()}
    regrouped = {**flat, "data": X.reshape(3, 8).tolist()}  # row-major, whatever the nesting
    for item in (flat, nested, regrouped):
        assert outputs(ok(iris_model, v2(iris_model, body(item))))["predict"]["data"] == expected


def test_v2_predict_proba_when_asked(iris_model: Served) -> None:
    X = iris_model.X[::30]
    request = v2(
        iris_model,
        body(tensor("x", X, "FP64"), outputs=[{"name": "predict_proba"}, {"name": "predict"}]),
    )
    got = outputs(ok(iris_model, request))
    proba = got["predict_proba"]
    assert proba["datatype"] == "FP64" and proba["shape"] == [len(X), 3]
    np.testing.assert_allclose(
        np.reshape(proba["data"], proba["shape"]), iris_model.model.predict_proba(X)
    )
    assert got["predict"]["data"] == iris_model.model.predict(X).tolist()


def test_v2_one_input_per_column_in_any_order(frame: Served) -> None:
    df = frame.X.iloc[::15]
    columns = list(df.columns)[::-1]  # the request's order is not the model's
    inputs = []
    for i, name in enumerate(columns):
        values = df[name].to_numpy()
        if name == "site":
            item = {"name": name, "shape": [len(df)], "datatype": "BYTES", "data": values.tolist()}
        else:
            shape = [len(df), 1] if i % 2 else [len(df)]  # both [rows] and [rows, 1]
            item = {"name": name, "shape": shape, "datatype": "FP32", "data": values.tolist()}
        inputs.append(item)
    answer = ok(frame, v2(frame, body(*inputs)))
    expected = frame.model.predict(df.astype({c: np.float32 for c in columns if c != "site"}))
    assert outputs(answer)["predict"]["data"] == expected.tolist()


def test_v2_numeric_2d_tensor_for_a_dataframe_model_needs_numbers_in_numeric_columns(
    frame: Served,
) -> None:
    df = frame.X.iloc[:3]
    error = refused(frame, v2(frame, body(tensor("x", df.to_numpy(), "BYTES"))))
    assert "sepal_length" in error and "numbers" in error


def test_v2_missing_and_extra_columns_are_all_named(frame: Served) -> None:
    df = frame.X.iloc[:2]
    inputs = [tensor(c, df[c].to_numpy(), "FP64") for c in ("sepal_length", "sepal_width")]
    inputs.append(tensor("colour", np.array([1.0, 2.0]), "FP64"))
    error = refused(frame, v2(frame, body(*inputs)))
    for name in ("petal_length", "petal_width", "site", "colour"):
        assert name in error


def test_tritonclient_json_and_binary_requests(cancer: Served) -> None:
    http = pytest.importorskip("tritonclient.http")
    from tritonclient.http._utils import _get_inference_request

    X = cancer.X[:5].astype(np.float32)
    expected = cancer.model.predict(X.astype(np.float64)).tolist()
    for binary in (False, True):
        item = http.InferInput("input__0", list(X.shape), "FP32")
        item.set_data_from_numpy(X, binary_data=binary)
        wanted = [
            http.InferRequestedOutput(n, binary_data=False) for n in ("predict", "predict_proba")
        ]
        payload, json_size = _get_inference_request(
            [item], "r7", wanted, 0, False, False, 0, None, None
        )
        assert (json_size is not None) == binary
        answer = ok(cancer, v2(cancer, payload, json_size))
        assert answer["id"] == "r7"
        assert outputs(answer)["predict"]["data"] == expected
        # tritonclient's own result parser reads the answer
        result = http.InferResult(_Response(json.dumps(answer).encode()), False)
        assert result.as_numpy("predict").tolist() == expected
        assert result.as_numpy("predict_proba").shape == (5, 2)


def test_binary_bytes_tensor_per_column(frame: Served) -> None:
    http = pytest.importorskip("tritonclient.http")
    from tritonclient.http._utils import _get_inference_request

    df = frame.X.iloc[5:9]
    items = []
    for name in df.columns:
        if name == "site":
            item = http.InferInput(name, [len(df)], "BYTES")
            item.set_data_from_numpy(df[name].to_numpy().astype(np.object_), binary_data=True)
        else:
            item = http.InferInput(name, [len(df), 1], "FP64")
            item.set_data_from_numpy(df[[name]].to_numpy(np.float64), binary_data=True)
        items.append(item)
    payload, json_size = _get_inference_request(items, "", None, 0, False, False, 0, None, None)
    answer = ok(frame, v2(frame, payload, json_size))
    assert outputs(answer)["predict"]["data"] == frame.model.predict(df).tolist()


class _Response:
    """What tritonclient's InferResult reads from an HTTP response."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def get(self, header: str) -> None:
        return None

    def read(self, length: int = -1) -> bytes:
        return self.data


def test_v2_binary_data_without_its_header_is_a_clear_400(cancer: Served) -> None:
    http = pytest.importorskip("tritonclient.http")
    from tritonclient.http._utils import _get_inference_request

    item = http.InferInput("input__0", [1, 30], "FP64")
    item.set_data_from_numpy(cancer.X[:1], binary_data=True)
    payload, _ = _get_inference_request([item], "", None, 0, False, False, 0, None, None)
    error = refused(cancer, v2(cancer, payload))
    assert "Inference-Header-Content-Length" in error


def test_metadata_from_the_signature(iris_model: Served, frame: Served) -> None:
    meta = metadata_v2("iris", [1, 2], iris_model.signature, iris_model.model)
    assert meta["name"] == "iris" and meta["versions"] == ["1", "2"]
    assert meta["platform"] == "sklearn"
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
    ]
    columns = metadata_v2("f", [1], frame.signature)["inputs"]
    assert [c["name"] for c in columns] == list(frame.X.columns)
    assert columns[0] == {"name": "sepal_length", "datatype": "FP64", "shape": [-1, 1]}
    assert columns[-1]["datatype"] == "BYTES"


# -- MLflow scoring ---------------------------------------------------------------------------


def mlflow_bodies(df: Any) -> dict[str, Any]:
    rows = df.to_numpy().tolist()
    records = df.to_dict(orient="records")
    return {
        "dataframe_split": {"columns": list(df.columns), "data": rows},
        "dataframe_split_index": {"columns": list(df.columns), "index": [7, 8, 9], "data": rows},
        "dataframe_records": records,
        "instances_records": records,
        "inputs_columns": {c: df[c].tolist() for c in reversed(df.columns)},
    }


@pytest.mark.parametrize(
    "form",
    [
        "dataframe_split",
        "dataframe_split_index",
        "dataframe_records",
        "instances_records",
        "inputs_columns",
    ],
)
def test_mlflow_formats_with_named_columns(frame: Served, form: str) -> None:
    df = frame.X.iloc[[0, 60, 120]]
    key = "dataframe_split" if form.startswith("dataframe_split") else form.split("_")[0]
    if form == "dataframe_records":
        key = "dataframe_records"
    answer = ok(frame, mlflow(frame, json.dumps({key: mlflow_bodies(df)[form]}).encode()))
    assert answer == {"predictions": frame.model.predict(df).tolist()}


@pytest.mark.parametrize("key", ["instances", "inputs", "dataframe_split"])
def test_mlflow_rows_for_an_array_model(cancer: Served, key: str) -> None:
    X = cancer.X[100:104]
    value: Any = X.tolist() if key != "dataframe_split" else {"data": X.tolist()}
    answer = ok(cancer, mlflow(cancer, json.dumps({key: value}).encode()))
    assert answer == {"predictions": cancer.model.predict(X).tolist()}


def test_mlflow_csv(frame: Served, iris_model: Served) -> None:
    df = frame.X.iloc[[3, 70, 140]]
    csv_body = df[list(df.columns)[::-1]].to_csv(index=False).encode()
    answer = ok(frame, mlflow(frame, csv_body, "text/csv; charset=utf-8"))
    assert answer == {"predictions": frame.model.predict(df).tolist()}
    X = iris_model.X[:3]
    plain = "a,b,c,d\n" + "\n".join(",".join(map(str, r)) for r in X.tolist())
    answer = ok(iris_model, mlflow(iris_model, plain.encode(), "text/csv"))
    assert answer == {"predictions": iris_model.model.predict(X).tolist()}


def test_mlflow_other_content_types_are_415(iris_model: Served) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
        error = refused(iris_model, mlflow(iris_model, b"{}", content_type), 415)
        assert "application/json" in error and "text/csv" in error


def test_mlflow_exactly_one_format(iris_model: Served) -> None:
    rows = iris_model.X[:1].tolist()
    error = refused(
        iris_model, mlflow(iris_model, json.dumps({"instances": rows, "inputs": rows}).encode())
    )
    assert "exactly one" in error
    error = refused(iris_model, mlflow(iris_model, json.dumps({"rows": rows}).encode()))
    assert "instances" in error and "rows" in error


def test_mlflow_wrong_columns_are_all_named(frame: Served) -> None:
    record = frame.X.iloc[0].to_dict()
    del record["sepal_width"], record["site"]
    record["age"] = 3
    error = refused(frame, mlflow(frame, json.dumps({"dataframe_records": [record]}).encode()))
    assert "sepal_width" in error and "site" in error and "age" in error


def test_text_where_numbers_are_expected_names_the_column(frame: Served) -> None:
    record = frame.X.iloc[0].to_dict()
    record["petal_width"] = "wide"
    error = refused(frame, mlflow(frame, json.dumps({"dataframe_records": [record]}).encode()))
    assert "petal_width" in error and "number" in error


def test_wrong_feature_count(iris_model: Served) -> None:
    error = refused(iris_model, mlflow(iris_model, json.dumps({"instances": [[1, 2, 3]]}).encode()))
    assert "4 features" in error and "3" in error
    error = refused(iris_model, v2(iris_model, body(tensor("x", np.zeros((2, 5)), "FP64"))))
    assert "4 features" in error


# -- what the worker gets back ----------------------------------------------------------------


def test_result_has_rows_and_a_sample(cancer: Served) -> None:
    X = cancer.X[:3]
    result: InferenceResult = infer(cancer.model, v2(cancer, body(tensor("x", X, "FP64"))))
    assert result.rows == 3
    assert result.sample is not None
    rows, predictions = result.sample
    np.testing.assert_allclose(rows, X)
    assert predictions == cancer.model.predict(X).tolist()
    json.dumps(result.sample, allow_nan=False)  # storable as it is


def test_missing_values_for_a_model_that_handles_them(artifacts: Path) -> None:
    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier

    from .serving_models import store_and_load

    X, y = load_iris(return_X_y=True)
    served = store_and_load(
        artifacts, HistGradientBoostingClassifier(max_iter=5).fit(X, y), X[:3], X
    )
    rows = [[5.1, None, 1.4, 0.2], [6.0, 3.0, None, 1.8]]
    answer = ok(served, mlflow(served, json.dumps({"instances": rows}).encode()))
    expected = served.model.predict(np.array(rows, dtype=float))
    assert answer["predictions"] == expected.tolist()


def test_the_fast_path_module_imports_no_pandas() -> None:
    code = "import sys, cellops_server.serving.protocols; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_dataframe_model_registered_without_an_example(frame: Served) -> None:
    """No dtypes recorded: numbers are taken as numbers and text as text."""
    from cellops.registry import signature

    sig = signature(frame.model, None)
    assert sig is not None and sig["type"] == "unknown"
    assert all(c["dtype"] is None for c in sig["columns"])
    served = Served(frame.model, sig, frame.X, frame.sha)
    df = frame.X.iloc[[1, 80, 149]]
    expected = frame.model.predict(df).tolist()
    records = json.dumps({"dataframe_records": df.to_dict(orient="records")}).encode()
    assert ok(served, mlflow(served, records)) == {"predictions": expected}
    csv_body = df.to_csv(index=False).encode()
    assert ok(served, mlflow(served, csv_body, "text/csv")) == {"predictions": expected}
