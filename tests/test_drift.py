"""Drift of served requests against the training data: statistics, samples, the API.

Real data (scikit-learn's breast cancer set, with a categorical column made from it),
numpy-made shifts, the store on SQLite and PostgreSQL, and a real `cellops serve`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from cellops.reference import summarize
from cellops.serialize import dumps
from cellops_server.config import CellopsConfig
from cellops_server.monitoring.drift import Thresholds, drift
from cellops_server.monitoring.samples import add_samples, recent_samples
from cellops_server.store import Store, create_engine
from cellops_server.store.tables import deployment_events, deployments, models
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from .attacks.conftest import Team

API = "cellops/api/v1"
SHIFTED = [2, 5]  # numeric features moved by the shift (indexes into the columns)


def data() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Training and held-out rows: 10 numeric features and a categorical one ("size",
    binned from the mean area, so it is a real property of each row)."""
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.data.iloc[:, :10].copy()
    frame["size"] = pd.cut(
        frame["mean area"], [0, 420, 700, np.inf], labels=["small", "medium", "large"]
    ).astype(str)
    X_train, X_test, y_train, _ = train_test_split(
        frame, bunch.target, test_size=0.4, random_state=0
    )
    return X_train, X_test, y_train


def shifted(rows: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``rows`` with features 2 and 5 moved by one training std and "size" re-drawn
    mostly "large"; every other feature as it was."""
    out = rows.copy()
    rng = np.random.default_rng(seed)
    for j in SHIFTED:
        column = out.columns[j]
        out[column] = out[column] + out[column].std() * 1.0
    out["size"] = rng.choice(["small", "medium", "large"], size=len(out), p=[0.1, 0.2, 0.7])
    return out


def drifted_features(report: Any) -> list[str]:
    return sorted(f.feature for f in report.features if f.drifted)


# -- the statistics -----------------------------------------------------------------------


def test_held_out_rows_of_the_training_distribution_do_not_drift() -> None:
    X_train, X_test, _ = data()
    report = drift(summarize(X_train), X_test.values.tolist())
    assert report.drifted is False, [
        (f.feature, [(t.test, t.statistic, t.threshold) for t in f.tests]) for f in report.features
    ]
    assert report.samples == len(X_test) and len(report.features) == X_train.shape[1]
    assert not [(f.feature, t.test) for f in report.features for t in f.tests if t.drifted]
    for feature in report.features:
        tests = {t.test for t in feature.tests}
        assert tests == (
            {"ks", "psi", "wasserstein"} if feature.kind == "numeric" else {"chi2", "psi"}
        )


def test_exactly_the_shifted_features_drift() -> None:
    X_train, X_test, _ = data()
    reference = summarize(X_train)
    moved = shifted(X_test)
    expected = sorted([X_train.columns[j] for j in SHIFTED] + ["size"])
    # Rows as lists (the serving listener's samples) and as {column: value} records.
    for rows in (moved.values.tolist(), moved.to_dict("records")):
        report = drift(reference, rows)
        assert report.drifted is True
        assert drifted_features(report) == expected
    by_name = {f.feature: f for f in drift(reference, moved.values.tolist()).features}
    ks = next(t for t in by_name[X_train.columns[2]].tests if t.test == "ks")
    assert ks.statistic > ks.threshold and ks.p_value is not None and ks.p_value < 0.01
    chi2 = next(t for t in by_name["size"].tests if t.test == "chi2")
    assert chi2.drifted and chi2.statistic > chi2.threshold


def test_an_unseen_category_drifts() -> None:
    X_train, X_test, _ = data()
    moved = X_test.copy()
    moved["size"] = "gigantic"  # never seen in training
    report = drift(summarize(X_train), moved.values.tolist())
    assert drifted_features(report) == ["size"]


def test_too_few_samples_says_so() -> None:
    X_train, X_test, _ = data()
    report = drift(summarize(X_train), shifted(X_test).values.tolist()[:20])
    assert report.drifted is None and report.features == []
    assert report.message == "not enough samples: 20 in the window, 50 needed"
    # Enough requests, but a feature mostly missing: that feature says so, the rest judge.
    rows = X_test.to_dict("records")
    for row in rows[10:]:
        row["mean radius"] = None
    report = drift(summarize(X_train), rows)
    radius = next(f for f in report.features if f.feature == "mean radius")
    assert radius.drifted is None
    assert radius.reason == "not enough samples: 10 values in the window, 50 needed"
    assert report.drifted is False


def test_thresholds_are_settings() -> None:
    X_train, X_test, _ = data()
    lenient = Thresholds(psi=50.0, wasserstein=50.0, chi2_pvalue=1e-300, ks_pvalue=1e-300)
    assert drift(summarize(X_train), shifted(X_test).values.tolist(), lenient).drifted is False
    assert Thresholds.from_config(CellopsConfig()) == Thresholds()
    strict = Thresholds(min_samples=10_000)
    assert drift(summarize(X_train), X_test.values.tolist(), strict).drifted is None


def test_garbage_in_requests_is_missing_not_a_crash() -> None:
    X_train, X_test, _ = data()
    rows = X_test.values.tolist()
    rows[0][0] = "not a number"
    rows[1] = rows[1][:3]  # a short row
    rows[2][1] = float("inf")
    report = drift(summarize(X_train), rows)
    assert report.drifted is False


# -- samples in the store -----------------------------------------------------------------


def test_samples_are_kept_bounded_per_deployment(store: Store) -> None:
    engine = store.engine
    old = datetime.now(timezone.utc) - timedelta(hours=3)
    assert add_samples(engine, "dep-a", 1, [([1.0, "x"], 0)] * 5, at=old) == 5
    rows = [([float(i), float("nan")], i % 2) for i in range(30)]
    assert add_samples(engine, "dep-a", 2, rows, keep=25) == 30
    add_samples(engine, "dep-b", 1, [({"a": 1}, [0.2, 0.8])] * 3)
    recent = recent_samples(engine, "dep-a", 60)
    # The 25 newest of dep-a (the 3-hour-old ones were pruned first), newest first; NaN → null.
    assert [s.inputs for s in recent] == [[float(i), None] for i in range(29, 4, -1)]
    assert {s.version for s in recent} == {2}
    assert [s.prediction for s in recent[:2]] == [1, 0]
    assert [s.inputs for s in recent_samples(engine, "dep-b", 60)] == [{"a": 1}] * 3
    # Rows that are not (inputs, prediction) with list/object inputs are skipped.
    assert add_samples(engine, "dep-b", 1, [("text", 1), (None, 1), ([1], 2, 3)]) == 0
    with pytest.raises(ValueError, match="window must be between 1 and"):
        recent_samples(engine, "dep-a", 0)


def test_a_window_leaves_older_samples_out(store: Store) -> None:
    engine = store.engine
    add_samples(
        engine, "dep-w", 1, [([1.0], 0)] * 4, at=datetime.now(timezone.utc) - timedelta(minutes=90)
    )
    add_samples(engine, "dep-w", 1, [([2.0], 0)] * 2)
    assert len(recent_samples(engine, "dep-w", 60)) == 2
    assert len(recent_samples(engine, "dep-w", 120)) == 6


# -- the API on a team backend (SQLite and PostgreSQL) ------------------------------------


@pytest.fixture(scope="module")
def engine(team: Team) -> Iterator[sa.Engine]:
    e = create_engine(team.db_url)
    yield e
    e.dispose()


@pytest.fixture(scope="module")
def deployment(team: Team, engine: sa.Engine) -> str:
    """A model version registered with its training reference, and a deployment of it (the
    store's row, as the deployments domain writes it; no serving process is needed here)."""
    X_train, _, y_train = data()
    numeric = X_train.drop(columns=["size"])
    model = LogisticRegression(max_iter=5000).fit(numeric, y_train)
    artifact = dumps(model, ())
    sha = hashlib.sha256(artifact).hexdigest()
    alice = team.as_("alice")
    assert alice.put_artifact(artifact, sha).status_code in (200, 201)
    body = {"artifact": sha, "flavor": "sklearn", "reference": summarize(X_train)}
    r = alice.request("POST", f"{API}/models/drifting/versions", json=body)
    assert r.status_code == 201, r.text
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        model_id = conn.scalar(sa.select(models.c.id).where(models.c.name == "drifting"))
        conn.execute(
            sa.insert(deployments).values(
                name="drifting", model_id=model_id, alias=None,
                traffic=[{"version": 1, "percent": 100}], public=False, state="ready",
                created_by="alice", created_at=now, updated_at=now,
            )
        )  # fmt: skip
    return "drifting"


def get_drift(team: Team, name: str, who: str = "vera", **params: Any) -> Any:
    return team.as_(who).request("GET", f"{API}/deployments/{name}/drift", params=params)


def drift_activity(team: Team) -> list[dict[str, Any]]:
    items = team.as_("vera").cellops("activity", limit=200)["items"]
    return [i for i in items if i["type"] == "deployment.drift_started"]


def test_drift_api_from_not_enough_to_drifted_once(
    team: Team, engine: sa.Engine, deployment: str
) -> None:
    _, X_test, _ = data()
    r = get_drift(team, deployment)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["drifted"] is None and body["window"] == 60
    assert body["versions"][0]["message"] == "not enough samples: 0 in the window, 50 needed"

    predictions = [0] * len(X_test)
    add_samples(engine, deployment, 1, list(zip(X_test.values.tolist(), predictions, strict=True)))
    body = get_drift(team, deployment, window=30).json()
    assert body["drifted"] is False and body["versions"][0]["samples"] == len(X_test)
    assert drift_activity(team) == []

    # Shifted requests take over the window (the unshifted ones are pruned by keep).
    moved = shifted(X_test)
    add_samples(
        engine, deployment, 1, list(zip(moved.values.tolist(), predictions, strict=True)),
        keep=len(moved),
    )  # fmt: skip
    for _ in range(3):  # seen drifting three times: one activity, one event
        body = get_drift(team, deployment).json()
        assert body["drifted"] is True
    report = body["versions"][0]
    assert report["version"] == 1 and report["reference"] == "training"
    expected = sorted([X_test.columns[j] for j in SHIFTED] + ["size"])
    assert sorted(f["feature"] for f in report["features"] if f["drifted"]) == expected
    test = report["features"][2]["tests"][0]
    assert set(test) == {"test", "statistic", "threshold", "p_value", "drifted"}
    started = drift_activity(team)
    assert len(started) == 1
    assert started[0]["model"] == "drifting" and started[0]["data"]["features"] == expected
    with engine.connect() as conn:
        events = conn.execute(
            sa.select(deployment_events.c.data).where(
                deployment_events.c.deployment == deployment,
                deployment_events.c.type == "drift_changed",
            )
        ).all()
    assert [e.data["drifted"] for e in events] == [True]


def test_drift_api_refuses_bad_requests(team: Team, deployment: str) -> None:
    r = get_drift(team, "no-such-deployment")
    assert r.status_code == 404 and "no deployment named 'no-such-deployment'" in r.json()["error"]
    r = get_drift(team, deployment, window="forever")
    assert r.status_code == 400 and "window must be an integer" in r.json()["error"]
    r = get_drift(team, deployment, window=100_000)
    assert r.status_code == 400 and "window must be between 1 and 1440" in r.json()["error"]
    r = get_drift(team, "..")
    assert r.status_code in (400, 404)
    anonymous = team.api("not-a-token").request("GET", f"{API}/deployments/{deployment}/drift")
    assert anonymous.status_code in (401, 403)


def test_a_version_without_reference_says_how_to_get_one(
    team: Team, engine: sa.Engine, deployment: str
) -> None:
    X_train, X_test, y_train = data()
    model = LogisticRegression(max_iter=5000).fit(X_train.drop(columns=["size"]), y_train)
    artifact = dumps(model, ())
    sha = hashlib.sha256(artifact).hexdigest()
    alice = team.as_("alice")
    assert alice.put_artifact(artifact, sha).status_code in (200, 201)
    r = alice.request(
        "POST", f"{API}/models/plain/versions", json={"artifact": sha, "flavor": "sklearn"}
    )
    assert r.status_code == 201, r.text
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        model_id = conn.scalar(sa.select(models.c.id).where(models.c.name == "plain"))
        conn.execute(
            sa.insert(deployments).values(
                name="plain", model_id=model_id, traffic=[{"version": 1, "percent": 100}],
                public=False, state="ready", created_at=now, updated_at=now,
            )
        )  # fmt: skip
    add_samples(engine, "plain", 1, [(row, 0) for row in X_test.values.tolist()])
    body = get_drift(team, "plain").json()
    assert body["drifted"] is None
    assert (
        "has no training reference: register it with reference=X_train"
        in body["versions"][0]["message"]
    )
