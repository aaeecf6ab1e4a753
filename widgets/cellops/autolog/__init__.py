"""scikit-learn autologging: ``cellops.autolog()`` records every ``fit`` of the current cell.

Each outermost ``fit`` (a Pipeline's steps and a search's inner fits are not recorded
again) logs, on the running cell: the estimator's own parameters, ``fit_duration_ms``,
``training_score`` (``score(X, y)`` when ``y`` was given), and for GridSearchCV /
RandomizedSearchCV ``best.<param>`` params, ``best_score`` and a ``cv_results`` tag (a
compact JSON table, best candidate first). ``cross_val_score`` and single-metric
``cross_validate`` log ``cv_score_mean`` / ``cv_score_std``, and each ``score(X, y)``
call of the user's logs ``score``. A fingerprint of the
training data (shape, columns and dtypes, content hash) is remembered per fitted model,
outside the model object, so ``cellops.register()`` can put it in the lineage and derive
the input signature.

What the user's code returns or raises is never changed; a failure inside autolog is
swallowed and reported once on stderr.

To turn it on in every kernel, set ``CELLOPS_AUTOLOG=1`` in the kernel's environment
(a Jupyter server with ``CellopsConfig.autolog = True`` sets it for its kernels):
``import cellops`` then stays light (scikit-learn is not imported) and autolog is
enabled just before the first cell that runs once scikit-learn is imported or whose
code mentions ``sklearn`` (right away if scikit-learn is already imported). A first
cell that only uses scikit-learn through your own modules is covered from the next
cell on.

Limits: the classes of ``sklearn.utils.all_estimators()`` plus Pipeline and the
searches are patched where their ``fit`` is defined (possibly a scikit-learn base
class), so their subclasses are covered too; other estimators are not.
``cross_val_score`` reaches the wrapped ``cross_validate`` whatever the import order,
but a ``cross_validate`` imported by name before ``autolog()`` keeps the original. Fits
run in other processes (``n_jobs`` with the loky backend) are not seen; fits in worker
threads of the threading backend may be recorded on their own.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from .data import fingerprints, input_signature

__all__ = ["autolog", "fingerprints", "input_signature", "install_env_hook"]

ENV = "CELLOPS_AUTOLOG"
_TRUE = {"1", "true", "yes", "on"}


def autolog(disable: bool = False) -> None:
    """Record every scikit-learn ``fit`` from now on (``disable=True`` restores the originals).

    Each outermost fit logs on the running cell its params, ``fit_duration_ms``,
    ``training_score`` and, for searches, ``best.<param>``, ``best_score`` and a
    ``cv_results`` tag; ``cross_val_score`` logs ``cv_score_mean``/``cv_score_std``. The
    training data's fingerprint goes to ``register()``. ``CELLOPS_AUTOLOG=1`` in the
    kernel's environment turns this on by itself once scikit-learn is used.
    """
    from . import sklearn as _sklearn  # imports scikit-learn: only when asked for

    if disable:
        _sklearn.disable()
    else:
        _sklearn.enable()


# -- CELLOPS_AUTOLOG=1: enable lazily from IPython's pre_run_cell -----------------------

_hooked: Any = None


def _pre_run_cell(info: Any) -> None:
    code = getattr(info, "raw_cell", "") or ""
    if "sklearn" not in sys.modules and "sklearn" not in code:
        return  # stay light in kernels that never use scikit-learn
    _unhook()
    try:
        autolog()
    except Exception as err:  # a kernel must not break because of a setting
        print(f"cellops: {ENV}=1 but autolog could not start: {err!r}", file=sys.stderr)


def _unhook() -> None:
    global _hooked
    shell, _hooked = _hooked, None
    if shell is not None:
        with contextlib.suppress(Exception):
            shell.events.unregister("pre_run_cell", _pre_run_cell)


def install_env_hook() -> None:
    """With ``CELLOPS_AUTOLOG=1`` in a kernel, enable autolog once scikit-learn is in use."""
    global _hooked
    if os.environ.get(ENV, "").strip().lower() not in _TRUE or _hooked is not None:
        return
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    if "sklearn" in sys.modules:  # already imported: no import cost left to avoid
        _pre_run_cell(None)
        return
    try:
        shell.events.register("pre_run_cell", _pre_run_cell)
        _hooked = shell
    except Exception:
        pass
