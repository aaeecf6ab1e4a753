"""Real scikit-learn models saved with cellops' skops format into a real blob store, loaded
back the way a serving worker loads them (shared by the serving protocol and loading tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cellops.registry import signature
from cellops.serialize import dumps
from cellops_server.serving.loading import load_verified
from cellops_server.serving.protocols import InferenceRequest
from cellops_server.store.blobs import FileBlobStore


@dataclass
class Served:
    """A model as a worker has it (loaded from the store), with its signature and data."""

    model: Any
    signature: dict[str, Any] | None
    X: Any  # training inputs (ndarray or DataFrame)
    sha: str


def store_and_load(artifacts: Path, model: Any, example: Any, X: Any) -> Served:
    sha = FileBlobStore(artifacts).put(dumps(model))
    return Served(load_verified(artifacts, sha), signature(model, example), X, sha)


def iris(artifacts: Path) -> Served:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    return store_and_load(artifacts, LogisticRegression(max_iter=1000).fit(X, y), X[:5], X)


def breast_cancer(artifacts: Path) -> Served:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    return store_and_load(artifacts, LogisticRegression(solver="liblinear").fit(X, y), X[:5], X)


def frame_pipeline(artifacts: Path) -> Served:
    """A pipeline fitted on a DataFrame: named numeric columns plus a text category."""
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = load_iris(as_frame=True)
    df = data.frame.drop(columns="target").rename(columns=lambda c: c.replace(" (cm)", ""))
    df.columns = [c.replace(" ", "_") for c in df.columns]
    df["site"] = np.where(np.arange(len(df)) % 3 == 0, "north", "south")
    numeric = [c for c in df.columns if c != "site"]
    model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), ["site"])]),
        LogisticRegression(max_iter=1000),
    ).fit(df, data.target)
    return store_and_load(artifacts, model, df.head(5), df)


def v2(served: Served, body: bytes, header_length: int | None = None) -> InferenceRequest:
    return InferenceRequest(
        "v2", body, "application/json", "dep", 3, served.signature, header_length
    )


def mlflow(served: Served, body: bytes, content_type: str = "application/json") -> InferenceRequest:
    return InferenceRequest("mlflow", body, content_type, "dep", 3, served.signature)
