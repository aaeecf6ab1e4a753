"""The patches: the ``fit`` and ``score`` of each scikit-learn class that defines them,
and cross-validation.

Only the outermost call records (a thread-local depth counter), so a Pipeline's steps,
a search's candidates, ``super().fit()`` chains and the scoring done inside a fit or a
cross-validation are recorded once, as the call the user made.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import context, tracking
from .data import fingerprint, remember, remember_data

_MAX_CV_TAG = tracking.MAX_TAG_TEXT

# (class, "fit" | "score") -> the function it defined, for disable()
_originals: dict[tuple[type, str], Callable[..., Any]] = {}
_cv_originals: dict[tuple[Any, str], Callable[..., Any]] = {}  # (module, name) -> function
_lock = threading.Lock()
_local = threading.local()
_warned = False


def _depth() -> int:
    return getattr(_local, "depth", 0)


def _warn_once(err: BaseException) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    # stderr, not warnings.warn: a "warnings as errors" filter must not turn this into a raise
    print(
        f"cellops: autolog could not record a fit ({type(err).__name__}: {err}); "
        "your code is unaffected and this is reported only once",
        file=sys.stderr,
        flush=True,
    )


# -- what one fit records ---------------------------------------------------------------


def _in_cell() -> bool:
    return context.current().msg_id is not None


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _params(estimator: Any) -> dict[str, Any]:
    from ..registry import json_safe

    return {str(k): json_safe(v) for k, v in estimator.get_params(deep=False).items()}


def _cv_table(search: Any) -> str | None:
    results = getattr(search, "cv_results_", None)
    if not isinstance(results, dict) or "mean_test_score" not in results:
        return None
    from ..registry import json_safe

    rows = [
        {"params": json_safe(p), "mean_test_score": _finite(s), "rank": json_safe(r)}
        for p, s, r in zip(
            results.get("params", []),
            results["mean_test_score"],
            results.get("rank_test_score", [None] * len(results["mean_test_score"])),
            strict=False,
        )
    ]
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"]))  # best first: what survives a cut
    text = json.dumps(rows, separators=(",", ":"))
    while len(text) > _MAX_CV_TAG and len(rows) > 1:
        rows = rows[: len(rows) // 2]
        text = json.dumps({"top": rows, "candidates": len(results["mean_test_score"])})
    return text if len(text) <= _MAX_CV_TAG else None


def _record(estimator: Any, X: Any, y: Any, duration: float) -> None:
    prints = [fingerprint(X, "X")] if X is not None else []
    if y is not None:
        prints.append(fingerprint(y, "y"))
    remember(estimator, prints)
    remember_data(estimator, X)
    best = getattr(estimator, "best_estimator_", None)
    if best is not None:  # what users register after a search: it was trained on the same data
        remember(best, prints)
        remember_data(best, X)
    if not _in_cell():
        return  # a script or a thread without a cell: the fingerprint is all we keep
    params = _params(estimator)
    metrics: dict[str, float] = {"fit_duration_ms": duration * 1000.0}
    tags = {"estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}"}
    best_params = getattr(estimator, "best_params_", None)
    if isinstance(best_params, dict):
        from ..registry import json_safe

        params.update({f"best.{k}": json_safe(v) for k, v in best_params.items()})
        best_score = _finite(getattr(estimator, "best_score_", None))
        if best_score is not None:
            metrics["best_score"] = best_score
        table = _cv_table(estimator)
        if table is not None:
            tags["cv_results"] = table
    if y is not None and callable(getattr(estimator, "score", None)):
        try:
            score = _finite(estimator.score(X, y))
        except Exception:  # e.g. a search refit=False, a scorer that needs more: no score
            score = None
        if score is not None:
            metrics["training_score"] = score
    tracking.log_params(params)
    tracking.log_metrics(metrics)
    tracking.set_tags(tags)


# -- the wrappers -----------------------------------------------------------------------


def _xy_names(fit: Callable[..., Any]) -> tuple[str, str]:
    try:
        names = [
            p.name
            for p in inspect.signature(fit).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ][1:3]
    except (TypeError, ValueError):
        names = []
    names += ["X", "y"][len(names) :]
    return names[0], names[1]


def _wrap_fit(original: Callable[..., Any]) -> Callable[..., Any]:
    x_name, y_name = _xy_names(original)

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _depth():
            return original(self, *args, **kwargs)
        _local.depth = 1
        start = time.perf_counter()
        try:
            result = original(self, *args, **kwargs)  # its exception propagates as it is
        finally:
            _local.depth = 0
        duration = time.perf_counter() - start
        try:
            X = args[0] if args else kwargs.get(x_name)
            y = args[1] if len(args) > 1 else kwargs.get(y_name)
            _local.depth = 1  # score() inside a record must not count as a fit either
            _record(self, X, y, duration)
        except Exception as err:
            _warn_once(err)
        finally:
            _local.depth = 0
        return result

    fit.__cellops_autolog__ = True  # type: ignore[attr-defined]
    return fit


def _wrap_score(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def score(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _depth():
            return original(self, *args, **kwargs)
        _local.depth = 1
        try:
            result = original(self, *args, **kwargs)
        finally:
            _local.depth = 0
        try:
            value = _finite(result)
            if value is not None and _in_cell():
                tracking.log_metrics({"score": value})  # every call: a series in the cell
        except Exception as err:
            _warn_once(err)
        return result

    score.__cellops_autolog__ = True  # type: ignore[attr-defined]
    return score


def _test_scores(result: Any) -> Any:
    if isinstance(result, dict):  # cross_validate: single-metric runs name them test_score
        return result.get("test_score")
    return result  # cross_val_score: the array itself


def _wrap_cv(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _depth():
            return original(*args, **kwargs)
        _local.depth = 1
        try:
            result = original(*args, **kwargs)
        finally:
            _local.depth = 0
        try:
            scores = _test_scores(result)
            if scores is not None and _in_cell():
                mean, std = _finite(scores.mean()), _finite(scores.std())
                if mean is not None and std is not None:
                    tracking.log_metrics({"cv_score_mean": mean, "cv_score_std": std})
        except Exception as err:
            _warn_once(err)
        return result

    wrapper.__cellops_autolog__ = True  # type: ignore[attr-defined]
    return wrapper


# -- enable / disable -------------------------------------------------------------------


def _classes() -> list[type]:
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    found = [cls for _, cls in all_estimators()]
    return [*found, Pipeline, GridSearchCV, RandomizedSearchCV]


def _patch(cls: type, name: str, wrap: Callable[[Any], Any]) -> None:
    """Wrap method ``name`` of ``cls`` where it is defined: often an abstract base that
    all_estimators() does not list (BaseSearchCV, BaseForest, ClassifierMixin, ...)."""
    owner = next((c for c in cls.__mro__ if name in c.__dict__), None)
    if owner is None or (owner, name) in _originals or not owner.__module__.startswith("sklearn."):
        return
    own = owner.__dict__[name]
    if inspect.isfunction(own):
        _originals[owner, name] = own
        setattr(owner, name, wrap(own))
    elif inspect.isfunction(getattr(own, "fn", None)):  # available_if: wrap what it guards
        _originals[owner, name] = own.fn
        own.fn = wrap(own.fn)


def enable() -> None:
    with _lock:
        if _originals:
            return
        for cls in _classes():
            _patch(cls, "fit", _wrap_fit)
            _patch(cls, "score", _wrap_score)
        import sklearn.model_selection
        import sklearn.model_selection._validation as validation

        # cross_val_score calls the module-global cross_validate: wrapping that too covers
        # a cross_val_score imported by name before autolog() was turned on.
        for module in (validation, sklearn.model_selection):
            for name in ("cross_val_score", "cross_validate"):
                current = getattr(module, name)
                if not getattr(current, "__cellops_autolog__", False):
                    _cv_originals[module, name] = current
                    setattr(module, name, _wrap_cv(current))


def disable() -> None:
    with _lock:
        for (owner, name), original in _originals.items():
            own = owner.__dict__[name]
            if inspect.isfunction(own):
                setattr(owner, name, original)
            else:
                own.fn = original
        _originals.clear()
        for (module, name), original in _cv_originals.items():
            setattr(module, name, original)
        _cv_originals.clear()


def enabled() -> bool:
    return bool(_originals)
