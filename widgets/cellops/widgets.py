"""Notebook widgets: register a model with a click, compare versions or executions.

``ModelCard(model)`` shows what would be registered and has a Register button, then
a Deploy button that serves the registered version and shows its endpoint;
``Compare("name")`` tabulates metrics and params across versions (or executions) and
charts one metric (a Vega-Lite spec that JupyterLab's own renderer draws). Both are
ipywidgets built from core widgets only, so they need no frontend code of their own;
their look comes from the JupyterLab theme (``--jp-*`` variables, see
extension/style/widgets.css) and stays readable in the dark theme.

Errors are shown inside the widget: a button callback's traceback would land in the
log console, where nobody sees it.
"""

from __future__ import annotations

import html
import inspect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as w

from . import charts, context, team, tracking
from .autolog.data import input_signature
from .client import RegistryError, client
from .deploy import (
    Deployment,
    DeploymentFailed,
    DeploymentNotFound,
    DeploymentTimeout,
    deploy,
    deployment_html,
    get_deployment,
)
from .formatting import MISSING, format_param
from .registry import (
    ModelVersion,
    Registration,
    check_model,
    check_name,
    get_version,
    json_safe,
    list_versions,
    prepare_registration,
    send_registration,
    signature,
)

__all__ = ["Compare", "ModelCard", "Review"]

KEY_PARAMS = 8


# -- small HTML helpers -------------------------------------------------------------------

e = html.escape


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _message(kind: str, text: str) -> str:
    return f'<div class="cellops-card-{kind}">{e(text)}</div>'


def _error_text(exc: BaseException) -> str:
    # The message is written for a data scientist; the type name says which kind it is.
    return f"{type(exc).__name__}: {exc}"


# -- ModelCard ----------------------------------------------------------------------------


def key_params(model: Any, limit: int = KEY_PARAMS) -> dict[str, str]:
    """The constructor arguments that differ from their defaults (what makes this model)."""
    params = model.get_params(deep=False)
    try:
        defaults = {
            k: p.default for k, p in inspect.signature(type(model).__init__).parameters.items()
        }
    except (TypeError, ValueError):
        defaults = {}
    shown: dict[str, str] = {}
    for key, value in params.items():
        if key in defaults and _same(value, defaults[key]):
            continue
        shown[key] = _describe_param(value)
        if len(shown) == limit:
            break
    return shown


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):  # arrays compare element-wise
        return False


def _describe_param(value: Any) -> str:
    if hasattr(value, "get_params"):  # a nested estimator: its class says enough
        return type(value).__name__
    if isinstance(value, list) and all(isinstance(s, tuple) and len(s) == 2 for s in value):
        return " → ".join(f"{n}: {type(s).__name__}" for n, s in value)  # pipeline steps
    text = format_param(json_safe(value))  # the notation Compare and the sidebar use
    return text if len(text) <= 60 else text[:57] + "..."


def describe_signature(sig: Mapping[str, Any] | None) -> str:
    if not sig:
        return "unknown (fit with cellops.autolog() on, or pass input_example to register)"
    shape = sig.get("shape") or []
    width = shape[1] if len(shape) > 1 else None
    parts = [str(sig["type"])] if sig.get("type") not in (None, "unknown") else []
    if sig.get("dtype"):
        parts.append(str(sig["dtype"]))
    if width is not None:
        parts.append(f"{width} columns")
    columns = [str(c.get("name")) for c in sig.get("columns") or []]
    if columns:
        more = f", … ({len(columns)})" if len(columns) > 6 else ""
        parts.append("(" + ", ".join(columns[:6]) + more + ")")
    return " ".join(parts)


def public_module(kind: type) -> str:
    """``sklearn.linear_model`` rather than ``sklearn.linear_model._logistic``."""
    return ".".join(p for p in kind.__module__.split(".") if not p.startswith("_"))


def summary_html(model: Any, metrics: Mapping[str, float]) -> str:
    kind = type(model)
    params = key_params(model)
    sig = input_signature(model) or signature(model, None)
    rows = [
        (
            "params",
            ", ".join(f"{k}={v}" for k, v in params.items()) or "all defaults",
        ),
        (
            "metrics",
            " · ".join(f"{k} {_fmt(v)}" for k, v in metrics.items())
            or "none logged (cellops.log_metrics or autolog)",
        ),
        ("input", describe_signature(sig)),
    ]
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return (
        '<div class="cellops-card-title">'
        f"<b>{e(kind.__name__)}</b> "
        f'<span class="cellops-card-muted">{e(public_module(kind))}</span></div>'
        f'<table class="cellops-card-table">{table}</table>'
    )


def registered_html(version: ModelVersion) -> str:
    aliases = " ".join(f'<span class="cellops-card-alias">{e(a)}</span>' for a in version.aliases)
    # The cellops extension opens the sidebar on clicks of links carrying these attributes.
    link = (
        f'<a class="cellops-card-open" href="#" data-cellops-model="{e(version.model)}" '
        f'data-cellops-version="{version.version}">Open in the cellops sidebar</a>'
    )
    load = f"cellops.load({version.model!r}, version={version.version})"
    return (
        '<div class="cellops-card-done">'
        f"Registered <b>{e(version.model)}</b> version <b>{version.version}</b> "
        f"{aliases} · {link}"
        f'<div class="cellops-card-muted">Load it with <code>{e(load)}</code></div></div>'
    )


def deployed_html(dep: Deployment, show_key: bool) -> str:
    """What the card says about the deployment it made or switched: state, endpoint, the
    key (once), and how to call it."""
    call = f"cellops.get_deployment({dep.name!r}).predict(X)"
    return (
        f'<div class="cellops-card-deployed">{deployment_html(dep, show_key)}'
        f'<div class="cellops-card-muted">Call it: <code>{e(call)}</code></div></div>'
    )


def deploy_version(
    model: str, number: int, name: str, *, public: bool, wait: float = 60
) -> Deployment:
    """Serve ``model`` version ``number`` as ``name``: create the deployment, or switch the
    existing one (of the same model) to this version; answers it once it serves."""
    try:
        found = get_deployment(name)
    except DeploymentNotFound:
        return deploy(model, version=number, name=name, public=public, wait=wait)
    if found.model != model:
        raise RegistryError(
            f"the deployment {name!r} serves the model {found.model!r}, not {model!r}: "
            "type another deployment name",
            409,
        )
    if found.public != public:
        found.set_public(public, wait=0)
    if found.traffic != [{"version": number, "percent": 100}] or found.version != number:
        return found.rollback(number, wait=wait)  # pins it to this version
    return found.wait(wait)


def version_summary_html(version: ModelVersion) -> str:
    """What a card of an already registered version says about it."""
    metrics = " · ".join(f"{k} {_fmt(v)}" for k, v in version.metrics.items()) or "none logged"
    rows = [("metrics", metrics), ("by", version.created_by or MISSING)]
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return (
        f'<div class="cellops-card-title"><b>{e(version.model)}</b> version '
        f"<b>{int(version.version)}</b></div>"
        f'<table class="cellops-card-table">{table}</table>'
    )


class ModelCard(w.VBox):
    """A fitted scikit-learn model, ready to register from the notebook.

    Shows its type, key params, the metrics logged for it and its input signature; type a
    name (and optionally an alias) and click **Register**. The version records lineage to
    the cell that displayed the card, like ``cellops.register`` called there would.
    Once registered, the card shows the version's review (state, thread, comment box,
    Request review) and **Deploy** serves the version (a new deployment named as typed,
    default the model's name, or that deployment switched to this version), showing its
    endpoint, state and, once, its key. ``ModelCard(cellops.get_version("churn", 3))`` or
    ``ModelCard(model, "churn", version=3)`` is the card of an already registered version.
    """

    def __init__(
        self,
        model: Any,
        name: str = "",
        alias: str = "",
        *,
        version: int | None = None,
        trusted: Iterable[str] = (),
    ):
        # A click runs outside any cell: remember the cell that made the card now.
        self.execution = context.current()
        self.model = model
        self.trusted = tuple(trusted)
        self.version: ModelVersion | None = None
        self.review: Review | None = None
        self._registering = False
        self._deploying = False
        self.deployment: Deployment | None = None
        self.deploy_wait = 60.0  # seconds Deploy waits for the deployment to serve
        self._prepared: dict[tuple[str, str | None], Registration] = {}
        self.summary = w.HTML()
        self.name = w.Text(value=name, placeholder="model name", description="Name")
        self.alias = w.Text(value=alias, placeholder="optional, e.g. champion", description="Alias")
        self.register_button = w.Button(
            description="Register", button_style="primary", icon="upload", tooltip="Register"
        )
        self.status = w.HTML()
        self.deploy_name = w.Text(
            value="", placeholder="default: the model name", description="Deployment"
        )
        self.public = w.Checkbox(value=False, description="Public (no key)", indent=False)
        self.deploy_button = w.Button(
            description="Deploy",
            icon="rocket",
            disabled=True,
            tooltip="Register the model first",
        )
        self.deployment_status = w.HTML()
        self.refresh_button = w.Button(
            icon="refresh",
            disabled=True,
            tooltip="Deploy first: then this reads the deployment's state and drift again",
            layout=w.Layout(width="auto"),
        )
        for widget, cls in (
            (self.summary, "cellops-card-summary"),
            (self.name, "cellops-card-name"),
            (self.alias, "cellops-card-alias-field"),
            (self.register_button, "cellops-card-register"),
            (self.status, "cellops-card-status"),
            (self.deploy_name, "cellops-card-deploy-name"),
            (self.public, "cellops-card-public"),
            (self.deploy_button, "cellops-card-deploy"),
            (self.deployment_status, "cellops-card-deployment"),
            (self.refresh_button, "cellops-card-deploy-refresh"),
        ):
            widget.add_class(cls)
        form = w.HBox([self.name, self.alias, self.register_button])
        form.add_class("cellops-card-form")
        self.deploy_row = w.HBox(
            [self.deploy_name, self.public, self.deploy_button, self.refresh_button]
        )
        self.deploy_row.add_class("cellops-card-deploy-form")
        super().__init__([self.summary, form, self.status, self.deploy_row, self.deployment_status])
        self.add_class("cellops-card")
        self.register_button.on_click(self._on_register)
        self.deploy_button.on_click(self._on_deploy)
        self.refresh_button.on_click(lambda _b: self.refresh_deployment())
        if isinstance(model, ModelVersion) or version is not None:
            self._show_registered(model, name, version)
        else:
            self._describe()

    def _show_registered(self, model: Any, name: str, number: int | None) -> None:
        """The card of a version registered earlier: no form, its review instead."""
        self.children = [self.summary, self.status, self.deploy_row, self.deployment_status]
        try:
            found = model if isinstance(model, ModelVersion) else get_version(name, number)
        except (TypeError, ValueError):
            raise  # a wrong argument is the caller's bug: fail in the cell that made it
        except Exception as exc:
            self.status.value = _message("error", _error_text(exc))
            return
        self.version = found
        self.summary.value = version_summary_html(found)
        self._offer_deploy(found)
        self._add_review(found)

    def _add_review(self, version: ModelVersion) -> None:
        self.review = Review(version.model, version.version)
        self.children = [*self.children, self.review]

    def _describe(self) -> None:
        try:
            check_model(self.model)
            metrics = tracking.logged(self.execution.msg_id)["metrics"]
            self.summary.value = summary_html(self.model, metrics)
        except Exception as exc:
            self.summary.value = _message("error", _error_text(exc))
            self.register_button.disabled = True

    def _on_register(self, _button: Any = None) -> None:
        if self._registering:  # a second click while the first one runs
            return
        self._registering = True
        self.register_button.disabled = True
        self.status.value = _message("info", "Registering…")
        try:
            self.version = send_registration(self._registration())
        except Exception as exc:
            self.status.value = _message("error", _error_text(exc))
        else:
            self.status.value = registered_html(self.version)
            self._offer_deploy(self.version)
            if self.review is None or (self.review.name, self.review.number) != (
                self.version.model,
                self.version.version,
            ):
                self.children = [c for c in self.children if c is not self.review]
                self._add_review(self.version)
        finally:
            self._registering = False
            self.register_button.disabled = False

    def _offer_deploy(self, version: ModelVersion) -> None:
        self.deploy_button.disabled = False
        self.deploy_button.tooltip = f"Deploy {version.model} version {version.version}"
        self.deploy_name.placeholder = f"default: {version.model}"
        if self.deployment is not None and self.deployment.model != version.model:
            self.deployment_status.value = ""  # it was about another model

    def _on_deploy(self, _button: Any = None) -> None:
        """Serve the card's version: a new deployment, or the existing one switched to it."""
        if self._deploying or self.version is None:  # a queued second click; nothing yet
            return
        self._deploying = True
        self.deploy_button.disabled = True
        version = self.version
        name = self.deploy_name.value.strip() or version.model
        self.deployment_status.value = _message(
            "info", f"Deploying {version.model} version {version.version} as {name}…"
        )
        try:
            self.deployment = deploy_version(
                version.model,
                version.version,
                name,
                public=self.public.value,
                wait=self.deploy_wait,
            )
        except (DeploymentFailed, DeploymentTimeout) as exc:
            # It exists all the same: show it (and a new one's key, which is not sent again).
            self.deployment = exc.deployment
            self.deployment_status.value = _message("error", _error_text(exc)) + deployed_html(
                exc.deployment, show_key=True
            )
        except Exception as exc:
            self.deployment_status.value = _message("error", _error_text(exc))
        else:
            # The key is in this answer only (a new deployment's): shown here, once.
            self.deployment_status.value = deployed_html(self.deployment, show_key=True)
        finally:
            self._deploying = False
            self.deploy_button.disabled = False
            self._offer_refresh()

    def _offer_refresh(self) -> None:
        self.refresh_button.disabled = self.deployment is None
        if self.deployment is not None:
            self.refresh_button.tooltip = (
                f"Read {self.deployment.name} again: state, version, drift verdict"
            )

    def refresh_deployment(self) -> Deployment | None:
        """Read the card's deployment again and show it (state, what it serves, the drift
        badge); its key is not shown again."""
        if self.deployment is None:
            return None
        try:
            self.deployment.refresh()
        except Exception as exc:
            self.deployment_status.value = _message("error", _error_text(exc))
        else:
            self.deployment_status.value = deployed_html(self.deployment, show_key=False)
        return self.deployment

    def _registration(self) -> Registration:
        # A click queued behind the first (the kernel handles comm messages one at a time)
        # repeats the same request with the same key: the server answers the same version.
        name, alias = self.name.value.strip(), self.alias.value.strip() or None
        if (name, alias) not in self._prepared:
            self._prepared[(name, alias)] = prepare_registration(
                self.execution, self.model, name, alias=alias, trusted=self.trusted
            )
        return self._prepared[(name, alias)]


# -- Compare ------------------------------------------------------------------------------


@dataclass
class Row:
    """One column of the comparison: a version or an execution."""

    label: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    # Each metric's logged (step, value) points, where the steps are known.
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def rows_for(name_or_runs: str | Iterable[int | ModelVersion]) -> list[Row]:
    """A model name → its versions; ModelVersions → those; ints → those executions."""
    logs = _LogsCache()
    if isinstance(name_or_runs, str):
        return [_version_row(v, logs) for v in list_versions(name_or_runs)]
    items = list(name_or_runs) if isinstance(name_or_runs, Iterable) else None
    if not items:
        raise TypeError(
            "Compare needs a model name, or a non-empty list of ModelVersion objects or "
            f"execution ids (as the sidebar shows them); got {name_or_runs!r}"
        )
    rows: list[Row] = []
    for item in items:
        if isinstance(item, ModelVersion):
            rows.append(_version_row(item, logs))
        elif isinstance(item, int) and not isinstance(item, bool):
            rows.append(_execution_row(item, logs))
        else:
            raise TypeError(
                f"Compare takes ModelVersion objects or execution ids; got {type(item).__name__}"
            )
    return rows


class _LogsCache:
    """GET executions/{id}/logs once per execution (several versions may share a cell)."""

    def __init__(self) -> None:
        self._logs: dict[int, dict[str, Any]] = {}

    def get(self, execution_id: int) -> dict[str, Any]:
        if execution_id not in self._logs:
            self._logs[execution_id] = client().get_json(f"executions/{execution_id}/logs")
        return self._logs[execution_id]


def _version_row(v: ModelVersion, logs: _LogsCache) -> Row:
    label = f"{v.model} v{v.version}" + (f" ({', '.join(v.aliases)})" if v.aliases else "")
    execution_id = v.lineage.get("execution_id")
    try:
        logged = logs.get(execution_id)["metrics"] if isinstance(execution_id, int) else {}
    except RegistryError:  # steps are extra: the version still compares by its values
        logged = {}
    series = {k: _version_steps(logged.get(k, []), value) for k, value in v.metrics.items()}
    return Row(label, dict(v.metrics), dict(v.params), {k: s for k, s in series.items() if s})


def _version_steps(
    points: Sequence[Mapping[str, Any]], recorded: float
) -> list[tuple[float, float]]:
    """The steps of the version's cell up to the value recorded with the version. Only
    points logged with ``step=``: a cell that registered several versions logged one
    value per version, which is not a series of any of them."""
    stepped = [(p["step"], p["value"]) for p in points if p.get("step") is not None]
    ends = [i for i, (_, value) in enumerate(stepped) if value == recorded]
    return stepped[: ends[-1] + 1] if ends else []


def _execution_row(execution_id: int, logs: _LogsCache) -> Row:
    logged = logs.get(execution_id)
    # Compare the last value of each metric: what the cell ended with.
    metrics = {k: points[-1]["value"] for k, points in logged["metrics"].items() if points}
    series = {k: charts.series_points(points) for k, points in logged["metrics"].items()}
    return Row(f"execution {execution_id}", metrics, dict(logged["params"]), series)


def _param_cell(row: Row, key: str) -> str:
    # Absent (another estimator type) and present-but-None are different things to show.
    return format_param(row.params[key]) if key in row.params else MISSING


def _param_varies(rows: Sequence[Row], key: str) -> bool:
    """Differs when values differ, or when the param is present in some rows only."""
    if any(key not in r.params for r in rows):
        return True
    return len({json.dumps(r.params[key], default=str) for r in rows}) > 1


def table_html(rows: Sequence[Row]) -> str:
    metrics = sorted({k for r in rows for k in r.metrics})
    params = sorted({k for r in rows for k in r.params})
    # Params equal everywhere are said once below the table, so differences stand out.
    varying = [p for p in params if _param_varies(rows, p)]
    same = [p for p in params if p not in varying]
    head = "".join(f"<th>{e(r.label)}</th>" for r in rows)

    def line(kind: str, key: str, values: Iterable[str]) -> str:
        cells = "".join(f"<td>{e(v)}</td>" for v in values)
        return f'<tr class="cellops-compare-{kind}"><th>{e(key)}</th>{cells}</tr>'

    body = [
        line("metric", m, (_fmt(r.metrics[m]) if m in r.metrics else MISSING for r in rows))
        for m in metrics
    ]
    body += [line("param", p, (_param_cell(r, p) for r in rows)) for p in varying]
    table = f'<table class="cellops-compare-table"><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    if same:
        shared = ", ".join(f"{p}={format_param(rows[0].params[p])}" for p in same)
        table += f'<div class="cellops-card-muted">same in all: {e(shared)}</div>'
    return table


def chart_output(rows: Sequence[Row], metric: str) -> dict[str, Any]:
    """A display_data output charting ``metric``: over its steps when some row logged it
    as a series, else its value across the rows (what the table shows, as a line)."""
    series = {r.label: r.series[metric] for r in rows if r.series.get(metric)}
    if any(len(points) > 1 for points in series.values()):
        return charts.mimebundle(
            charts.steps_spec(metric, series), charts.describe_steps(metric, series)
        )
    values = [(r.label, r.metrics[metric]) for r in rows if metric in r.metrics]
    return charts.mimebundle(
        charts.across_spec(metric, values), charts.describe_across(metric, values)
    )


class Compare(w.VBox):
    """Metrics and params side by side, with a chart of one metric.

    ``Compare("churn")`` compares every version of the model ``churn``;
    ``Compare([v1, v2])`` the given ModelVersion objects; ``Compare([41, 57])`` what the
    executions with those ids (as the sidebar shows them) logged.
    """

    def __init__(
        self, name_or_runs: str | Iterable[int | ModelVersion], metric: str | None = None
    ) -> None:
        self.rows: list[Row] = []
        self.table = w.HTML()
        self.metric = w.Dropdown(description="Plot", options=[])
        self.plot = w.Output()
        self.status = w.HTML()
        for widget, cls in (
            (self.table, "cellops-compare-table-box"),
            (self.metric, "cellops-compare-metric"),
            (self.plot, "cellops-compare-plot"),
            (self.status, "cellops-card-status"),
        ):
            widget.add_class(cls)
        super().__init__([self.status, self.table, self.metric, self.plot])
        self.add_class("cellops-compare")
        self.metric.observe(self._on_metric, names="value")
        self._load(name_or_runs, metric)

    def _load(self, name_or_runs: str | Iterable[int | ModelVersion], metric: str | None) -> None:
        try:
            self.rows = rows_for(name_or_runs)
        except TypeError:
            raise  # a wrong argument is the caller's bug: fail in the cell that made it
        except Exception as exc:
            self.status.value = _message("error", _error_text(exc))
            return
        if not self.rows:
            self.status.value = _message("muted", f"model {name_or_runs!r} has no versions yet")
            return
        self.table.value = table_html(self.rows)
        names = sorted({k for r in self.rows for k in r.metrics})
        if metric is not None and metric not in names:
            raise ValueError(
                f"no metric {metric!r} to plot; logged metrics: {', '.join(names) or 'none'}"
            )
        self.metric.options = names
        self.metric.value = metric or (names[0] if names else None)
        self._on_metric()

    def _on_metric(self, _change: Any = None) -> None:
        chosen = self.metric.value
        self.plot.outputs = (
            (chart_output(self.rows, chosen),)
            if chosen
            else (
                {
                    "output_type": "display_data",
                    "data": {
                        "text/html": _message("muted", "no metrics logged"),
                        "text/plain": "no metrics logged",
                    },
                    "metadata": {},
                },
            )
        )


# -- Review -------------------------------------------------------------------------------


def review_header_html(name: str, number: int, reviews: team.Reviews) -> str:
    return (
        f'<div class="cellops-card-title"><b>{e(name)}</b> version <b>{int(number)}</b> · '
        f"{team.state_html(reviews)}</div>"
    )


class Review(w.VBox):
    """A model version's review, as the team sees it: the review state and who approved,
    what each protected alias still misses, the comment thread, and the actions your role
    allows: a comment box (commenter and up), Request review (editor and up), Approve /
    Request changes (approver and up, never on your own version). **Refresh** shows what
    others did since. Comments are shown as the server rendered them, sanitized.
    """

    def __init__(self, name: str, version: int) -> None:
        check_name(name)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"version must be a positive int; got {version!r}")
        self.name, self.number = name, version
        self.me: dict[str, str] = {}
        self.created_by: str | None = None
        self.reviews: team.Reviews | None = None
        self.comments: list[team.Comment] = []
        self.checks: list[dict[str, Any]] = []
        self._busy = False
        self.state = w.HTML()
        self.aliases = w.HTML()
        self.thread = w.HTML()
        self.comment_box = w.Textarea(placeholder="Comment (Markdown; @name mentions)")
        self.send_button = w.Button(description="Comment", icon="comment", tooltip="Comment")
        self.reviewers = w.Text(placeholder="e.g. bob, carol", description="Reviewers")
        self.request_button = w.Button(
            description="Request review", icon="user-plus", tooltip="Request review"
        )
        self.approve_button = w.Button(
            description="Approve", button_style="success", icon="check", tooltip="Approve"
        )
        self.changes_button = w.Button(
            description="Request changes",
            button_style="warning",
            icon="pencil",
            tooltip="Request changes",
        )
        self.refresh_button = w.Button(description="Refresh", icon="refresh", tooltip="Refresh")
        self.note = w.HTML()  # why an action is not offered
        self.status = w.HTML()
        for widget, cls in (
            (self.state, "cellops-review-header"),
            (self.aliases, "cellops-review-aliases-box"),
            (self.thread, "cellops-review-thread"),
            (self.comment_box, "cellops-review-comment"),
            (self.send_button, "cellops-review-send"),
            (self.reviewers, "cellops-review-reviewers"),
            (self.request_button, "cellops-request-review"),
            (self.approve_button, "cellops-approve"),
            (self.changes_button, "cellops-request-changes"),
            (self.refresh_button, "cellops-review-refresh"),
            (self.note, "cellops-review-note"),
            (self.status, "cellops-card-status"),
        ):
            widget.add_class(cls)
        self.header_row = w.HBox([self.state, self.refresh_button])
        self.comment_row = w.HBox([self.comment_box, self.send_button])
        self.request_row = w.HBox([self.reviewers, self.request_button])
        self.verdict_row = w.HBox([self.approve_button, self.changes_button])
        super().__init__([self.header_row, self.status])
        self.add_class("cellops-review-widget")
        self.refresh_button.on_click(self._on_refresh)
        self.send_button.on_click(lambda _b: self._act("Commented.", self._post_comment))
        self.request_button.on_click(lambda _b: self._act("Review requested.", self._request))
        self.approve_button.on_click(lambda _b: self._act("Approved.", self._verdict, "approve"))
        self.changes_button.on_click(
            lambda _b: self._act("Changes requested.", self._verdict, "request_changes")
        )
        self.refresh()

    # -- what it shows --------------------------------------------------------------------

    def refresh(self) -> bool:
        """Fetch everything again; an error is shown in the widget (answers False)."""
        try:
            self._load()
        except Exception as exc:
            self.status.value = _message("error", _error_text(exc))
            return False
        finally:
            self._layout()
        self.status.value = ""
        return True

    def _load(self) -> None:
        me = team.me()
        version = get_version(self.name, self.number)
        reviews = team.reviews(self.name, self.number)
        checks = team.promotion(self.name, self.number)
        comments = team.comments(model=self.name, version=self.number)
        self.me, self.created_by, self.reviews = me, version.created_by, reviews
        self.checks, self.comments = checks, comments
        self.state.value = review_header_html(self.name, self.number, reviews)
        self.aliases.value = team.aliases_html(checks)
        self.thread.value = team.thread_html(comments, "model_version")

    def may(self, action: str) -> bool:
        """Whether the caller's role (and authorship) allows ``action`` here:
        comment, request_review or verdict."""
        role = self.me.get("role")
        if action == "verdict":
            own = bool(self.me.get("name")) and self.me.get("name") == self.created_by
            return team.role_at_least(role, "approver") and not own
        return team.role_at_least(role, "commenter" if action == "comment" else "editor")

    def _layout(self) -> None:
        rows: list[w.Widget] = [self.header_row]
        if self.reviews is not None:
            rows += [self.aliases, self.thread]
        if self.may("comment"):
            rows.append(self.comment_row)
        if self.may("request_review"):
            rows.append(self.request_row)
        if self.may("verdict"):
            rows.append(self.verdict_row)
            self.comment_box.placeholder = (
                "Comment (Markdown; @name mentions); also sent with Approve / Request changes"
            )
        self.note.value = self._note()
        self.children = [*rows, self.note, self.status]

    def _note(self) -> str:
        role, name = self.me.get("role"), self.me.get("name")
        if not role:
            return ""
        if not team.role_at_least(role, "commenter"):
            return _message("muted", f"Read only: your role is {role}.")
        if team.role_at_least(role, "approver") and name == self.created_by:
            return _message("muted", "You registered this version: others review it.")
        return ""

    # -- what it does ---------------------------------------------------------------------

    def _on_refresh(self, _button: Any = None) -> None:
        self.refresh()

    def _act(self, done: str, action: Any, *args: Any) -> None:
        """Run one button's action; errors stay in the widget, and it shows the result."""
        if self._busy:  # a click queued behind the one running
            return
        self._busy = True
        buttons = (self.send_button, self.request_button, self.approve_button, self.changes_button)
        for button in buttons:
            button.disabled = True
        self.status.value = _message("info", "Sending…")
        try:
            action(*args)
        except Exception as exc:
            self.status.value = _message("error", _error_text(exc))
        else:
            if self.refresh():
                self.status.value = _message("info", done)
        finally:
            self._busy = False
            for button in buttons:
                button.disabled = False

    def _post_comment(self) -> None:
        team.comment(self.comment_box.value, model=self.name, version=self.number)
        self.comment_box.value = ""

    def _request(self) -> None:
        names = [n for n in self.reviewers.value.replace(",", " ").split() if n]
        team.request_review(self.name, self.number, names)
        self.reviewers.value = ""

    def _verdict(self, verdict: str) -> None:
        body = self.comment_box.value.strip() or None
        team.review(self.name, self.number, verdict, body=body)
        self.comment_box.value = ""
