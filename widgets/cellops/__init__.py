"""cellops: the notebook-side library (``import cellops``).

Log values against the running cell and register or load scikit-learn models::

    import cellops
    cellops.log_metrics({"accuracy": 0.93})
    version = cellops.register(model, "churn", alias="candidate")
    model = cellops.load("churn", alias="candidate")

Talk about it with the team (``cellops.team``: comments, review requests, verdicts)::

    cellops.comment("Why drop these rows? @bob")           # on the running cell
    cellops.request_review("churn", version.version, ["bob"])
    cellops.review("churn", 3, "approve", body="Checked the holdout")

Serve a registered model and call it (``cellops.deploy``)::

    dep = cellops.deploy("churn", alias="champion")  # waits until it serves; dep.key once
    dep.predict(X[:5]), dep.url                       # MLflow scoring protocol
    cellops.undeploy("churn")

In a kernel started by a Jupyter server with cellops nothing needs configuring;
elsewhere set CELLOPS_URL and CELLOPS_TOKEN. Importing stays light (the standard
library only): scikit-learn, numpy and skops are imported by register()/load()
and autolog(), ipywidgets by ``cellops.widgets`` (ModelCard, Compare, Review). ``cellops.autolog()`` records every scikit-learn fit of the cell
(``CELLOPS_AUTOLOG=1`` turns it on in every kernel; see ``cellops.autolog``).
"""

from __future__ import annotations

from . import autolog as _autolog
from . import context as _context
from .autolog import autolog
from .client import (
    CellopsConfigError,
    CellopsError,
    Client,
    PermissionDenied,
    PromotionRefused,
    RegistryError,
    ServerUnreachable,
    client,
    reset_client,
)
from .deploy import (
    Deployment,
    DeploymentFailed,
    DeploymentNotFound,
    DeploymentTimeout,
    PredictionError,
    deploy,
    deployments,
    get_deployment,
    undeploy,
)
from .registry import (
    ModelVersion,
    delete_alias,
    get_version,
    list_versions,
    load,
    register,
    set_alias,
    update_version,
)
from .serialize import UnsafeModelError
from .team import Comment, Reviews, comment, comments, request_review, resolve, review, reviews
from .tracking import flush, log_metrics, log_params, set_tags

__version__ = "0.1.0"

__all__ = [
    "CellopsConfigError",
    "CellopsError",
    "Client",
    "Comment",
    "Deployment",
    "DeploymentFailed",
    "DeploymentNotFound",
    "DeploymentTimeout",
    "ModelVersion",
    "PermissionDenied",
    "PredictionError",
    "PromotionRefused",
    "RegistryError",
    "Reviews",
    "ServerUnreachable",
    "UnsafeModelError",
    "__version__",
    "autolog",
    "client",
    "comment",
    "comments",
    "delete_alias",
    "deploy",
    "deployments",
    "flush",
    "get_deployment",
    "get_version",
    "list_versions",
    "load",
    "log_metrics",
    "log_params",
    "register",
    "request_review",
    "reset_client",
    "resolve",
    "review",
    "reviews",
    "set_alias",
    "set_tags",
    "undeploy",
    "update_version",
]


def __getattr__(name: str) -> object:
    # ``cellops.widgets`` loads ipywidgets, so it is imported on first use, not with cellops.
    if name == "widgets":
        import importlib

        return importlib.import_module(".widgets", __name__)
    raise AttributeError(f"module 'cellops' has no attribute {name!r}")


_context.install_hooks()  # learn cell ids from IPython's pre_run_cell when in a kernel
_autolog.install_env_hook()  # CELLOPS_AUTOLOG=1: autolog once scikit-learn is in use
