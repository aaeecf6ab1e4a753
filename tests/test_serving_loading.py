"""Issue 12, point 4: a serving worker loads a model only from the content-addressed blob
store, after its sha256 is verified, with the server's own allow-list; the deploy-time
check prediction refuses a model that cannot predict on its signature's input."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from cellops.serialize import dumps
from cellops_server.serving.loading import RefusedModel, check_prediction, load_verified
from cellops_server.store.blobs import FileBlobStore
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from .serving_models import Served, frame_pipeline, iris


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def iris_model(artifacts: Path) -> Served:
    return iris(artifacts)


def test_a_stored_model_loads_and_predicts_like_the_original(artifacts: Path) -> None:
    X, y = load_iris(return_X_y=True)
    original = LogisticRegression(max_iter=1000).fit(X, y)
    sha = FileBlobStore(artifacts).put(dumps(original))
    loaded = load_verified(str(artifacts), sha)
    assert loaded is not original
    np.testing.assert_array_equal(loaded.predict(X), original.predict(X))


def test_check_prediction_accepts_a_good_model(iris_model: Served, artifacts: Path) -> None:
    check_prediction(iris_model.model, iris_model.signature)
    without_example = {k: v for k, v in iris_model.signature.items() if k != "example"}
    check_prediction(iris_model.model, without_example)  # zeros of the signature's shape
    check_prediction(iris_model.model, None)  # the model's own n_features_in_
    frame = frame_pipeline(artifacts)
    check_prediction(frame.model, frame.signature)


def test_check_prediction_refuses_a_model_that_does_not_fit_its_signature(
    iris_model: Served,
) -> None:
    wrong = copy.deepcopy(iris_model.signature)
    wrong["shape"] = [None, 3]
    wrong["example"] = [row[:3] for row in wrong["example"]]
    with pytest.raises(RefusedModel, match="check prediction") as refused:
        check_prediction(iris_model.model, wrong)
    assert "3 features" in str(refused.value)


def test_an_artifact_missing_from_the_store(tmp_path: Path) -> None:
    with pytest.raises(RefusedModel, match="not in the artifact store"):
        load_verified(tmp_path, "ab" * 32)
    with pytest.raises(RefusedModel, match="not in the artifact store"):
        load_verified(tmp_path / "nowhere", "ab" * 32)
    assert not (tmp_path / "nowhere").exists()  # loading never creates a store
