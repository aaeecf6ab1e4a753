"""Drift of sampled requests against a version's training reference, per feature.

Each test answers a statistic and a threshold, and is over it when ``statistic >
threshold``. Significance alone flags trivial shifts once samples are many, and size alone
flags noise when they are few, so a feature is drifted when both say so:

- numeric: KS (two-sample, samples against the reference's quantile points; its threshold
  is the critical KS distance of ``ks_pvalue`` for these sample sizes) and a material
  shift: PSI over the reference's decile bins, or the Wasserstein distance in reference
  standard deviations.
- categorical: chi² of the category counts against the reference frequencies (threshold:
  the critical value of ``chi2_pvalue``) and PSI over the categories.

Below ``min_samples`` requests (or values of a feature) nothing is judged: ``drifted`` is
None and the report says how many samples there are and how many are needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import sqlalchemy as sa
from cellops.reference import OTHER, bin_index, label

from ..schemas import DeploymentDrift, DriftReport, DriftTest, FeatureDrift
from ..store import NotFound
from ..store.engine import write_transaction
from ..store.tables import deployment_events, deployments, models
from .reference import reference_of
from .samples import recent_samples

EPS = 1e-4  # PSI of an empty bin: a floor instead of log(0)
LARGEST = 1e12  # statistics are capped to stay JSON numbers


@dataclass(frozen=True)
class Thresholds:
    psi: float = 0.2
    ks_pvalue: float = 0.01
    wasserstein: float = 0.2  # a fifth of a std: below it, few hundred samples' noise
    chi2_pvalue: float = 0.01
    min_samples: int = 50

    @classmethod
    def from_config(cls, config: Any) -> Thresholds:
        """From CellopsConfig's drift_* settings."""
        return cls(
            psi=config.drift_psi_threshold,
            ks_pvalue=config.drift_ks_pvalue,
            wasserstein=config.drift_wasserstein_threshold,
            chi2_pvalue=config.drift_chi2_pvalue,
            min_samples=config.drift_min_samples,
        )


def drift(
    reference_summary: dict[str, Any],
    samples: Sequence[Sequence[Any] | dict[str, Any]],
    thresholds: Thresholds = Thresholds(),
) -> DriftReport:
    """Drift of ``samples`` (input rows: lists in the reference's column order, or
    ``{column: value}``) against ``reference_summary`` (cellops.reference.summarize)."""
    n = len(samples)
    source = reference_summary.get("source")
    report = DriftReport(
        reference=source if source in ("training", "input_example") else None,
        samples=n,
        min_samples=thresholds.min_samples,
        drifted=None,
        features=[],
    )
    if n < thresholds.min_samples:
        report.message = f"not enough samples: {n} in the window, {thresholds.min_samples} needed"
        return report
    columns: list[str] = list(reference_summary["columns"])
    table = _Columns(samples, columns)
    for i, name in enumerate(columns):
        feature = reference_summary["features"][name]
        values = table.column(i, name)
        if feature["kind"] == "numeric":
            report.features.append(_numeric(name, feature, values, thresholds))
        else:
            report.features.append(_categorical(name, feature, values, thresholds))
    judged = [f.drifted for f in report.features if f.drifted is not None]
    report.drifted = any(judged) if judged else None
    if not judged:
        report.message = "no feature had enough values in the samples to judge"
    elif source == "input_example":
        report.message = "the reference is only the registration's input_example: a rough guide"
    return report


# -- the samples as columns ---------------------------------------------------------------


class _Columns:
    def __init__(self, rows: Sequence[Any], columns: list[str]) -> None:
        self.rows = rows
        self.width = len(columns)
        self.positional: np.ndarray | None = None
        if rows and all(isinstance(r, list) and len(r) == self.width for r in rows):
            self.positional = np.empty((len(rows), self.width), dtype=object)
            self.positional[:] = rows

    def column(self, i: int, name: str) -> np.ndarray:
        if self.positional is not None:
            return self.positional[:, i]
        out = np.empty(len(self.rows), dtype=object)
        for k, row in enumerate(self.rows):
            if isinstance(row, dict):
                out[k] = row.get(name)
            elif isinstance(row, list) and i < len(row):
                out[k] = row[i]
        return out


def _floats(values: np.ndarray) -> np.ndarray:
    try:
        floats = np.asarray(values, dtype=float)  # None becomes NaN
    except (TypeError, ValueError):
        floats = np.array([_float(v) for v in values], dtype=float)
    return floats[np.isfinite(floats)]


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan  # not a number: missing for a numeric feature


# -- numeric ------------------------------------------------------------------------------


def _numeric(name: str, feature: dict[str, Any], values: np.ndarray, t: Thresholds) -> FeatureDrift:
    x = _floats(values)
    result = FeatureDrift(feature=name, kind="numeric", samples=int(x.size), drifted=None, tests=[])
    points = np.asarray(feature.get("quantiles") or [], dtype=float)
    if x.size < t.min_samples or points.size == 0:
        result.reason = _too_few(x.size, t) if points.size else "the reference has no values"
        return result
    ks, wasserstein = _ks(x, points, t.ks_pvalue), _wasserstein(x, points, feature, t)
    psi = _psi(
        np.asarray(feature["fractions"], float),
        np.bincount(bin_index(x, feature["edges"]), minlength=len(feature["fractions"])),
        t.psi,
    )
    result.tests = [ks, psi, wasserstein]
    result.drifted = ks.drifted and (psi.drifted or wasserstein.drifted)
    return result


def _ks(x: np.ndarray, points: np.ndarray, alpha: float) -> DriftTest:
    statistic, p_value = _stats().ks_2samp(x, points)
    n, m = x.size, points.size
    # The asymptotic critical distance at alpha: D > it exactly when the test rejects.
    critical = math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))
    return _test("ks", float(statistic), critical, float(p_value))


def _wasserstein(
    x: np.ndarray, points: np.ndarray, feature: dict[str, Any], t: Thresholds
) -> DriftTest:
    scale = feature.get("std") or 0.0
    if scale <= 0:  # a constant in training: measure in its own units (or 1)
        scale = abs(feature.get("mean") or 0.0) or 1.0
    distance = _stats().wasserstein_distance(x, points) / scale
    return _test("wasserstein", float(distance), t.wasserstein, None)


def _psi(expected: np.ndarray, observed_counts: np.ndarray, threshold: float) -> DriftTest:
    total = observed_counts.sum()
    observed = observed_counts / total if total else np.zeros_like(expected)
    e = np.clip(expected, EPS, None)
    o = np.clip(observed, EPS, None)
    value = float(np.sum((o - e) * np.log(o / e)))
    return _test("psi", value, threshold, None)


# -- categorical --------------------------------------------------------------------------


def _categorical(
    name: str, feature: dict[str, Any], values: np.ndarray, t: Thresholds
) -> FeatureDrift:
    labels = [label(v) for v in values]
    present = [v for v in labels if v is not None]
    result = FeatureDrift(
        feature=name, kind="categorical", samples=len(present), drifted=None, tests=[]
    )
    if len(present) < t.min_samples:
        result.reason = _too_few(len(present), t)
        return result
    frequencies: dict[str, float] = feature["frequencies"]
    categories = list(frequencies)
    index = {c: i for i, c in enumerate(categories)}
    other = index.get(OTHER)
    observed = np.zeros(len(categories))
    unseen = 0
    for v in present:
        i = index.get(v, other)
        if i is None:  # a reference without "other": a category it never saw
            unseen += 1
        else:
            observed[i] += 1
    expected = np.asarray([frequencies[c] for c in categories], dtype=float)
    if unseen:
        observed = np.append(observed, unseen)
        expected = np.append(expected, 0.0)
    result.tests = [
        _chi2(observed, expected, feature.get("count") or 0, t.chi2_pvalue),
        _psi(expected, observed, t.psi),
    ]
    result.drifted = all(test.drifted for test in result.tests)
    return result


def _chi2(observed: np.ndarray, expected: np.ndarray, n_ref: int, alpha: float) -> DriftTest:
    k = observed.size
    if k < 2:
        return _test("chi2", 0.0, 0.0, 1.0, drifted=False)
    # Add-half smoothing of the reference counts: a category it never saw is rare, not
    # impossible (else chi² is infinite for one unseen value).
    smoothed = expected * max(n_ref, 1) + 0.5
    expected_counts = smoothed / smoothed.sum() * observed.sum()
    statistic, p_value = _stats().chisquare(observed, expected_counts)
    critical = float(_stats().chi2.ppf(1 - alpha, k - 1))
    return _test("chi2", float(statistic), critical, float(p_value))


# -- helpers ------------------------------------------------------------------------------


def _stats() -> Any:
    from scipy import stats  # on first use: the Jupyter server starts without it

    return stats


def _test(
    name: Any,
    statistic: float,
    threshold: float,
    p_value: float | None,
    drifted: bool | None = None,
) -> DriftTest:
    statistic = _capped(statistic)
    return DriftTest(
        test=name,
        statistic=statistic,
        threshold=_capped(threshold),
        p_value=None if p_value is None else _capped(p_value),
        drifted=statistic > threshold if drifted is None else drifted,
    )


def _capped(value: float) -> float:
    if math.isnan(value):
        return 0.0
    return max(-LARGEST, min(LARGEST, value))


def _too_few(n: int, t: Thresholds) -> str:
    return f"not enough samples: {n} values in the window, {t.min_samples} needed"


# -- a deployment's drift -----------------------------------------------------------------

DRIFT_CHANGED = "drift_changed"


def deployment_drift(
    engine: sa.Engine,
    name: str,
    window: int,
    thresholds: Thresholds = Thresholds(),
) -> DeploymentDrift:
    """Drift of the deployment's sampled requests of the last ``window`` minutes, per served
    version against its reference. A change of the overall verdict is recorded once: a
    ``drift_changed`` deployment event, and ``deployment.drift_started`` in the activity
    when it starts to drift."""
    return check_deployment(engine, name, window, thresholds)[0]


def check_deployment(
    engine: sa.Engine, name: str, window: int, thresholds: Thresholds
) -> tuple[DeploymentDrift, bool]:
    """deployment_drift, and whether it recorded a change of the verdict (news for the
    activity feed's live listeners)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(deployments.c.model_id, deployments.c.traffic, models.c.name.label("model"))
            .join(models, models.c.id == deployments.c.model_id)
            .where(deployments.c.name == name)
        ).one_or_none()
        if row is None:
            raise NotFound(f"no deployment named {name!r}")
        served = [
            int(share["version"])
            for share in sorted(row.traffic, key=lambda s: -int(s.get("percent", 0)))
        ]
        references = {v: reference_of(conn, row.model_id, v) for v in served}
    by_version: dict[int, list[Any]] = {v: [] for v in served}
    for sample in recent_samples(engine, name, window):
        if sample.version in by_version:
            by_version[sample.version].append(sample.inputs)
    reports = [_version_drift(v, references[v], by_version[v], thresholds) for v in served]
    judged = [r.drifted for r in reports if r.drifted is not None]
    result = DeploymentDrift(
        deployment=name,
        window=window,
        drifted=any(judged) if judged else None,
        versions=reports,
    )
    changed = result.drifted is not None and _record_transition(engine, name, row.model, result)
    return result, changed


def _version_drift(
    version: int, reference: dict[str, Any] | None, samples: list[Any], t: Thresholds
) -> DriftReport:
    if reference is None:
        return DriftReport(
            version=version,
            samples=len(samples),
            min_samples=t.min_samples,
            drifted=None,
            message=f"version {version} has no training reference: register it with "
            "reference=X_train (or where autolog saw its fit) to measure drift",
            features=[],
        )
    report = drift(reference, samples, t)
    report.version = version
    return report


def _record_transition(engine: sa.Engine, name: str, model: str, result: DeploymentDrift) -> bool:
    from ..review.activity import record_activity

    drifted = bool(result.drifted)
    with write_transaction(engine) as conn:
        locked = sa.select(deployments.c.created_at).where(deployments.c.name == name)
        if conn.dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE already serializes
            locked = locked.with_for_update()
        created_at = conn.scalar(locked)
        if created_at is None:
            return False  # deleted meanwhile
        last = conn.scalar(
            sa.select(deployment_events.c.data)
            .where(
                deployment_events.c.deployment == name,
                deployment_events.c.type == DRIFT_CHANGED,
                deployment_events.c.at >= created_at,  # not a deleted namesake's verdict
            )
            .order_by(deployment_events.c.id.desc())
            .limit(1)
        )
        if bool((last or {}).get("drifted", False)) == drifted:
            return False
        features = sorted({f.feature for r in result.versions for f in r.features if f.drifted})
        versions = [r.version for r in result.versions if r.drifted]
        data = {"drifted": drifted, "features": features, "versions": versions,
                "window": result.window}  # fmt: skip
        conn.execute(
            sa.insert(deployment_events).values(
                deployment=name,
                at=datetime.now(timezone.utc),
                actor=None,
                type=DRIFT_CHANGED,
                data=data,
            )
        )
        if drifted:
            record_activity(
                conn,
                "deployment.drift_started",
                None,
                model=model,
                version=versions[0] if versions else None,
                data={"deployment": name, "features": features, "versions": versions},
            )
        return True
