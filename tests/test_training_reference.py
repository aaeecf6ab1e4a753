"""Training references: summarized in the kernel, sent with a version, validated and stored.

Real data (scikit-learn's bundled datasets), the real kernel library registering against a
real `cellops serve` on SQLite and PostgreSQL, and the store read back.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from cellops import reference as summaries
from cellops_server.store import create_engine
from cellops_server.store.tables import models, training_references
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression

from .attacks.conftest import Team

API = "cellops/api/v1"


def iris_frame() -> pd.DataFrame:
    data = load_iris(as_frame=True)
    frame = data.data.copy()
    frame["species"] = pd.Categorical(data.target_names[data.target])
    frame["wide"] = frame["sepal width (cm)"] > 3.0
    return frame


# -- summarize ----------------------------------------------------------------------------


def test_numeric_features_have_bins_moments_and_quantiles() -> None:
    frame = iris_frame()
    summary = summaries.summarize(frame)
    summaries.check(summary)
    assert summary["columns"] == [str(c) for c in frame.columns]
    length = summary["features"]["petal length (cm)"]
    values = frame["petal length (cm)"].to_numpy()
    assert length["kind"] == "numeric" and length["count"] == 150 and length["missing"] == 0
    assert length["mean"] == pytest.approx(values.mean(), rel=1e-6)
    assert length["std"] == pytest.approx(values.std(), rel=1e-6)
    assert (length["min"], length["max"]) == (values.min(), values.max())
    # The fractions are what the bins hold of the data, and sum to 1.
    counts = np.bincount(
        summaries.bin_index(values, length["edges"]), minlength=len(length["fractions"])
    )
    assert np.allclose(counts / 150, length["fractions"], atol=1e-6)
    assert sum(length["fractions"]) == pytest.approx(1.0, abs=1e-5)
    assert length["quantiles"] == sorted(length["quantiles"])
    assert len(length["quantiles"]) <= 200


def test_categorical_and_bool_features_have_frequencies() -> None:
    summary = summaries.summarize(iris_frame())
    species = summary["features"]["species"]
    assert species["kind"] == "categorical"
    assert species["frequencies"] == pytest.approx(
        {"setosa": 1 / 3, "versicolor": 1 / 3, "virginica": 1 / 3, "other": 0.0}, abs=1e-6
    )
    assert set(summary["features"]["wide"]["frequencies"]) == {"true", "false", "other"}


def test_many_categories_keep_the_top_50_and_other() -> None:
    rng = np.random.default_rng(3)
    codes = rng.zipf(1.5, size=20_000) % 500
    frame = pd.DataFrame({"code": [f"c{c}" for c in codes], "x": rng.normal(size=20_000)})
    frame.loc[::10, "code"] = None
    feature = summaries.summarize(frame)["features"]["code"]
    assert len(feature["frequencies"]) == 51 and feature["missing"] == 2_000
    assert feature["frequencies"]["other"] > 0
    assert sum(feature["frequencies"].values()) == pytest.approx(1.0, abs=1e-5)


def test_arrays_missing_values_and_column_names() -> None:
    X = load_breast_cancer().data.copy()
    X[::7, 3] = np.nan
    summary = summaries.summarize(X, [f"f{i}" for i in range(X.shape[1])])
    summaries.check(summary)
    assert summary["columns"][:2] == ["f0", "f1"]
    assert summary["features"]["f3"]["missing"] == len(X[::7])
    assert summary["features"]["f3"]["count"] == len(X) - len(X[::7])
    with pytest.raises(ValueError, match="columns names 2 features; the data has 30"):
        summaries.summarize(X, ["a", "b"])


def test_many_rows_by_500_columns_stay_small() -> None:
    # The summary's size depends on the columns, not the rows (speed: benchmarks, not here).
    rng = np.random.default_rng(0)
    block = rng.standard_normal((10_000, 500), dtype=np.float32) * rng.uniform(0.5, 50, 500).astype(
        np.float32
    )
    big = np.tile(block, (20, 1))  # 200,000 rows without 100M draws
    summary = summaries.summarize(big)
    del big
    size = len(json.dumps(summary))
    summaries.check(summary)
    assert summary["rows"] == 200_000 and len(summary["features"]) == 500
    assert size < 1_000_000, size
    first = summary["features"]["0"]
    assert first["mean"] == pytest.approx(float(block[:, 0].mean()), rel=1e-4, abs=1e-4)


def test_wide_categorical_data_stays_under_the_cap() -> None:
    labels = np.array([f"{'long label ' * 20}{i}" for i in range(100)], dtype=object)
    frame = pd.DataFrame({f"c{j}": labels[(np.arange(2_000) * (j + 1)) % 100] for j in range(1200)})
    summary = summaries.summarize(frame)
    summaries.check(summary)  # would raise past MAX_BYTES
    assert len(summary["features"]) == summaries.MAX_FEATURES
    assert summary["omitted_columns"] == 200


# -- check: what the server refuses -------------------------------------------------------

MALFORMED: list[tuple[str, Any, str]] = [
    ("not an object", lambda s: [1, 2], "must be an object"),
    ("NaN", lambda s: _set(s, ["features", "a", "mean"], float("nan")), "without NaN"),
    ("wrong version", lambda s: {**s, "version": 99}, "version must be 1"),
    ("no features", lambda s: {**s, "features": {}}, "non-empty object"),
    ("unsorted edges", lambda s: _set(s, ["features", "a", "edges"], [3.0, 1.0]), "increasing"),
    ("bad fraction", lambda s: _set(s, ["features", "a", "fractions", 0], 7), "fractions"),
    ("unknown kind", lambda s: _set(s, ["features", "a", "kind"], "text"), "kind must be"),
    ("columns mismatch", lambda s: {**s, "columns": ["a", "zzz"]}, "columns must list"),
    ("string count", lambda s: _set(s, ["features", "a", "count"], "9"), "count must be"),
]


def _set(summary: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(summary)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def small_summary() -> dict[str, Any]:
    frame = pd.DataFrame({"a": np.arange(100.0), "b": ["x", "y"] * 50})
    return summaries.summarize(frame)


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_check_says_what_is_wrong(case: tuple[str, Any, str]) -> None:
    _, make, message = case
    with pytest.raises(ValueError, match=message):
        summaries.check(make(small_summary()))


# -- registration through a team backend (SQLite and PostgreSQL) --------------------------


@pytest.fixture(scope="module")
def kernel_library(team: Team) -> Iterator[Any]:
    """The kernel library of this process, pointed at the team backend as alice."""
    import os

    import cellops

    saved = {k: os.environ.get(k) for k in ("CELLOPS_URL", "CELLOPS_TOKEN")}
    os.environ["CELLOPS_URL"] = team.url + "/"
    os.environ["CELLOPS_TOKEN"] = team.tokens["alice"]
    cellops.reset_client()
    yield cellops
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    cellops.reset_client()


@pytest.fixture(scope="module")
def engine(team: Team) -> Iterator[sa.Engine]:
    e = create_engine(team.db_url)
    yield e
    e.dispose()


def stored(engine: sa.Engine, model: str, version: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        return conn.scalar(
            sa.select(training_references.c.summary)
            .join(models, models.c.id == training_references.c.model_id)
            .where(models.c.name == model, training_references.c.model_version == version)
        )


def test_an_explicit_reference_round_trips(kernel_library: Any, engine: sa.Engine) -> None:
    frame = iris_frame()
    X, y = frame.drop(columns=["species", "wide"]), frame["species"]
    model = LogisticRegression(max_iter=500).fit(X, y)
    mv = kernel_library.register(model, "ref-explicit", reference=X)
    assert stored(engine, "ref-explicit", mv.version) == summaries.summarize(X)


def test_autolog_training_data_is_the_default_reference(
    kernel_library: Any, engine: sa.Engine
) -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train = X.iloc[:400]
    kernel_library.autolog()
    try:
        model = LogisticRegression(max_iter=5000).fit(X_train, y.iloc[:400])
    finally:
        kernel_library.autolog(disable=True)
    mv = kernel_library.register(model, "ref-autolog")
    summary = stored(engine, "ref-autolog", mv.version)
    assert summary is not None and summary["source"] == "training"
    assert summary["rows"] == 400 and summary["columns"] == list(X.columns)


def test_without_training_data_the_input_example_is_used_and_noted(
    kernel_library: Any, engine: sa.Engine
) -> None:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)  # autolog off: no X remembered
    mv = kernel_library.register(model, "ref-example", input_example=X[:20])
    summary = stored(engine, "ref-example", mv.version)
    assert summary is not None and summary["source"] == "input_example" and summary["rows"] == 20
    none = kernel_library.register(model, "ref-example", input_example=X[:20], reference=False)
    assert stored(engine, "ref-example", none.version) is None


def test_a_bad_explicit_reference_is_refused_in_the_kernel(kernel_library: Any) -> None:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    with pytest.raises(ValueError, match="version must be 1"):
        kernel_library.register(model, "ref-bad-kernel", reference={"features": {}, "version": 0})


def _post_version(team: Team, name: str, reference: Any) -> Any:
    api = team.as_("alice")
    X, y = load_iris(return_X_y=True)
    import cellops.serialize

    data = cellops.serialize.dumps(LogisticRegression(max_iter=500).fit(X, y), ())
    sha = hashlib.sha256(data).hexdigest()
    assert api.put_artifact(data, sha).status_code in (200, 201)
    body = {"artifact": sha, "flavor": "sklearn", "reference": reference}
    return api.request("POST", f"{API}/models/{name}/versions", json=body)


def _oversized() -> dict[str, Any]:
    """Valid features (long category labels), together just over the 1,000,000-byte cap;
    the body stays under the endpoint's 2 MiB, so the reference check answers."""
    labels = [f"{i:02d}" + "x" * 62 for i in range(50)]
    summary = summaries.summarize(pd.DataFrame({"c": labels * 2}))
    feature = summary["features"]["c"]
    i = 0
    while len(json.dumps(summary, separators=(",", ":"))) <= 1_000_000:
        summary["features"][f"f{i}"] = feature
        summary["columns"].append(f"f{i}")
        i += 1
    return summary


@pytest.mark.parametrize(
    ("what", "reference", "message"),
    [
        ("oversized", _oversized(), "bytes of JSON; at most 1,000,000"),
        ("malformed", MALFORMED[4][1](small_summary()), "edges must be strictly increasing"),
        ("not a summary", {"hello": "world"}, "reference.version must be 1"),
    ],
)
def test_a_bad_reference_is_a_400_and_nothing_is_stored(
    team: Team, engine: sa.Engine, what: str, reference: Any, message: str
) -> None:
    name = f"ref-refused-{what.replace(' ', '-')}"
    r = _post_version(team, name, reference)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    with engine.connect() as conn:
        assert (
            conn.scalar(sa.select(sa.func.count()).select_from(models).where(models.c.name == name))
            == 0
        )
    assert team.as_("alice").request("GET", f"{API}/models/{name}").status_code == 404


def test_a_good_reference_through_the_api_and_deleting_the_model_removes_it(
    team: Team, engine: sa.Engine
) -> None:
    summary = small_summary()
    r = _post_version(team, "ref-api", summary)
    assert r.status_code == 201, r.text
    assert stored(engine, "ref-api", r.json()["version"]) == summary
    model_id = None
    with engine.connect() as conn:
        model_id = conn.scalar(sa.select(models.c.id).where(models.c.name == "ref-api"))
    assert team.as_("alice").request("DELETE", f"{API}/models/ref-api").status_code == 204
    with engine.connect() as conn:
        left = conn.scalar(
            sa.select(sa.func.count())
            .select_from(training_references)
            .where(training_references.c.model_id == model_id)
        )
    assert left == 0
