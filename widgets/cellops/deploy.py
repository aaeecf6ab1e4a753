"""Deployments from the notebook: serve a registered model and call it.

    dep = cellops.deploy("iris", alias="champion")   # waits until it serves
    dep.predict(X[:5])                                # MLflow scoring protocol, over HTTP
    dep.url                                           # POST here from any MLflow client
    dep.split({3: 90, 4: 10}); dep.rollback(2)
    cellops.undeploy("iris")

Requests go through the client the registry uses (server discovery, tokens). Inference
goes to the serving listener at ``dep.url`` with ``Authorization: Bearer`` the
deployment's key (known only to the ``Deployment`` that created it or rotated it) or
else the member token this kernel already uses. Standard library only; numpy is
imported by ``predict``.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urljoin, urlsplit

from .client import (
    CellopsError,
    PermissionDenied,
    RegistryError,
    ServerUnreachable,
    client,
    segment,
)
from .registry import check_alias, check_name

# The model name rule, at most 64 characters: the name is part of the endpoint's URLs.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
STATES = ("starting", "ready", "failed")
_POLL_FIRST, _POLL_MAX = 0.05, 0.5  # seconds between looks while a deployment starts
_RETRY_503_FOR = 10.0  # predict() waits this long for a worker to come back (503)

e = html.escape


class DeploymentNotFound(RegistryError, LookupError):
    """No deployment has that name."""


class DeploymentFailed(RegistryError):
    """The server could not serve the deployment; ``str()`` is its reason, and
    ``deployment`` the deployment as it stands (listed as failed until undeployed)."""

    def __init__(self, message: str, deployment: Deployment) -> None:
        super().__init__(message, None, deployment.error)
        self.deployment = deployment


class DeploymentTimeout(CellopsError, TimeoutError):
    """Still starting when the wait ran out; ``deployment`` has its key, if it was just
    created (the key is shown only once)."""

    def __init__(self, message: str, deployment: Deployment) -> None:
        super().__init__(message)
        self.deployment = deployment


class PredictionError(RegistryError):
    """The endpoint refused the input (``str()`` says what to fix) or could not answer."""


# -- the deployment ----------------------------------------------------------------------------


@dataclass
class Deployment:
    """One deployment as the server describes it (``GET /deployments/{name}``)."""

    name: str
    model: str
    version: int
    alias: str | None = None
    state: str = "starting"
    error: str | None = None
    traffic: list[dict[str, int]] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    public: bool = False
    # The last drift check's verdict on its sampled requests; None until one could judge.
    drifted: bool | None = None
    created_by: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    # The inference key: only in the answer that created (or rotated) it, never fetched again.
    key: str | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any], key: str | None = None) -> Deployment:
        known = {f.name for f in fields(cls)}
        found = cls(**{k: v for k, v in body.items() if k in known})
        found.key = found.key or key
        return found

    @property
    def url(self) -> str:
        """The MLflow scoring endpoint: ``POST`` rows here (``{"dataframe_split": …}``)."""
        return _absolute(self.urls.get("invocations", ""))

    def _update(self, body: Mapping[str, Any]) -> Deployment:
        fresh = Deployment.from_json(body, key=self.key)
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))
        return self

    # -- changes --------------------------------------------------------------------------

    def refresh(self) -> Deployment:
        """Read its state again from the server (in place; answers itself)."""
        return self._update(_get(self.name))

    def wait(self, timeout: float = 60) -> Deployment:
        """Wait until it is ready; DeploymentFailed with the server's reason, or
        DeploymentTimeout if it is still starting after ``timeout`` seconds."""
        deadline = time.monotonic() + _seconds(timeout, "wait")
        pause = _POLL_FIRST
        while self.state == "starting" and time.monotonic() < deadline:
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, _POLL_MAX)
            self.refresh()
        if self.state == "failed":
            raise DeploymentFailed(
                f"deployment {self.name!r} failed: {self.error or 'no reason given'} "
                f"(fix it and change it, or remove it: cellops.undeploy({self.name!r}))",
                self,
            )
        if self.state == "starting" and timeout > 0:
            raise DeploymentTimeout(
                f"deployment {self.name!r} is still starting after {timeout:g} s; look again "
                f"with cellops.get_deployment({self.name!r}) or dep.wait(timeout=…)"
                + (" (its key, shown only once, is exc.deployment.key)" if self.key else ""),
                self,
            )
        return self

    def _patch(self, body: dict[str, Any], wait: float) -> Deployment:
        self._update(_send("PATCH", f"deployments/{segment(self.name)}", body, self.name))
        return self.wait(wait) if wait else self

    def rollback(self, version: int, *, wait: float = 60) -> Deployment:
        """Serve ``version`` alone (an older one: a rollback; it stops following an alias)."""
        return self._patch({"version": _version(version)}, wait)

    def follow(self, alias: str, *, wait: float = 60) -> Deployment:
        """Serve whatever version ``alias`` points at, now and whenever it moves."""
        return self._patch({"alias": check_alias(alias)}, wait)

    def split(self, traffic: Mapping[int, int], *, wait: float = 60) -> Deployment:
        """A canary: ``{3: 90, 4: 10}`` sends 90 % of requests to version 3 and 10 % to 4."""
        if not isinstance(traffic, Mapping) or not 1 <= len(traffic) <= 2:
            raise ValueError(
                "split() takes {version: percent} for one or two versions, e.g. {3: 90, 4: 10}"
            )
        shares = [{"version": _version(v), "percent": _percent(p)} for v, p in traffic.items()]
        if sum(s["percent"] for s in shares) != 100:
            raise ValueError(f"the percents must add up to 100; got {dict(traffic)!r}")
        return self._patch({"traffic": shares}, wait)

    def set_public(self, public: bool, *, wait: float = 60) -> Deployment:
        """Serve without a key (True) or only with a key or a member's token (False)."""
        return self._patch({"public": _flag(public, "public")}, wait)

    def rotate_key(self) -> str:
        """A new inference key (the old one stops working); answers it and keeps it."""
        body = _send("POST", f"deployments/{segment(self.name)}/key", {}, self.name)
        self.key = str(body["key"])
        return self.key

    def undeploy(self) -> None:
        """Stop serving and remove this deployment (its history stays)."""
        undeploy(self.name)

    # -- inference ------------------------------------------------------------------------

    def predict(self, X: Any, *, timeout: float = 30.0) -> Any:
        """Predictions of the served model for the rows ``X`` (a DataFrame, a 2-D array or
        a list of rows), over HTTP, as a numpy array."""
        import numpy as np

        if not self.url:
            raise PredictionError(f"deployment {self.name!r} has no endpoint URL yet")
        payload = scoring_body(X)
        answer = _post_scoring(self.url, payload, self._bearer(), timeout)
        if not isinstance(answer, dict) or "predictions" not in answer:
            raise PredictionError(f"the endpoint answered without predictions: {answer!r:.200}")
        return np.asarray(answer["predictions"])

    def _bearer(self) -> str | None:
        # Team mode: the Jupyter server gives its kernels the member's backend token for
        # the shared serving listener (its own token is unknown there).
        return self.key or os.environ.get("CELLOPS_SERVING_TOKEN") or client().token

    # -- display --------------------------------------------------------------------------

    def serving(self) -> str:
        """What it serves, in words: ``version 3``, ``alias champion (version 3)`` or
        ``version 3 (90 %), version 4 (10 %)``."""
        if len(self.traffic) > 1:
            return ", ".join(f"version {t['version']} ({t['percent']} %)" for t in self.traffic)
        if self.alias:
            return f"alias {self.alias} (version {self.version})"
        return f"version {self.version}"

    def __repr__(self) -> str:
        access = "public" if self.public else "keyed"
        error = f", error={self.error!r}" if self.error else ""
        return (
            f"<Deployment {self.name!r}: {self.model} {self.serving()}, {self.state}{error}, "
            f"{access}, url={self.url!r}>"
        )

    def _repr_html_(self) -> str:
        return deployment_html(self)


def drift_badge_html(dep: Deployment) -> str:
    """The drift badge as the sidebar shows it: "drift" (a warning) or "no drift" (quiet);
    nothing until a drift check could judge."""
    if dep.drifted is None:
        return ""
    text = "drift" if dep.drifted else "no drift"
    title = (
        "The last drift check found served inputs unlike the model's training data: see "
        "Drift in the sidebar's Deployments tab for the features"
        if dep.drifted
        else "The last drift check found the served inputs like the model's training data"
    )
    return (
        f' <span class="cellops-deploy-drift" data-drifted="{str(dep.drifted).lower()}" '
        f'title="{e(title)}">{text}</span>'
    )


def deployment_html(dep: Deployment, show_key: bool = False) -> str:
    """A deployment's state, what it serves and its endpoint (and its key, if asked)."""
    rows = [
        (
            f'<b>{e(dep.name)}</b> · <span class="cellops-deploy-state" '
            f'data-state="{e(dep.state)}">{e(dep.state)}</span>{drift_badge_html(dep)}'
        ),
        f"serves <b>{e(dep.model)}</b> {e(dep.serving())}",
    ]
    if dep.error:
        rows.append(f'<span class="cellops-card-error">{e(dep.error)}</span>')
    if dep.url:
        rows.append(f'endpoint <code class="cellops-deploy-url">{e(dep.url)}</code>')
    if dep.urls.get("v2"):
        rows.append(f"Open Inference Protocol <code>{e(_absolute(dep.urls['v2']))}</code>")
    if dep.public:
        rows.append("<b>public</b>: anyone who can reach the endpoint may call it")
    else:
        rows.append("keyed: <code>Authorization: Bearer &lt;key or member token&gt;</code>")
    if show_key and dep.key:
        rows.append(
            f'key <code class="cellops-deploy-key">{e(dep.key)}</code> '
            "(shown this once: copy it now; <code>dep.rotate_key()</code> makes a new one)"
        )
    body = "".join(f"<div>{r}</div>" for r in rows)
    return f'<div class="cellops-deployment">{body}</div>'


# -- the public functions ----------------------------------------------------------------------


def deploy(
    model: str,
    *,
    version: int | None = None,
    alias: str | None = None,
    name: str | None = None,
    public: bool = False,
    wait: float = 60,
) -> Deployment:
    """Serve ``model`` at ``version``, following ``alias``, or (neither) its latest version,
    as the deployment ``name`` (default: the model's name). Waits up to ``wait`` seconds
    until it serves (0: do not wait). The answer's ``key`` is the inference key, shown
    this once (None for ``public=True``)."""
    check_name(model)
    if version is not None and alias is not None:
        raise ValueError("pass version= or alias=, not both (neither: the latest version)")
    name = check_deployment_name(model if name is None else name, named=name is not None)
    body: dict[str, Any] = {"name": name, "model": model, "public": _flag(public, "public")}
    if version is not None:
        body["version"] = _version(version)
    if alias is not None:
        body["alias"] = check_alias(alias)
    wait = _seconds(wait, "wait")
    created = client().send_json("POST", "deployments", body)
    dep = Deployment.from_json(created)
    return dep.wait(wait) if wait else dep


def get_deployment(name: str) -> Deployment:
    """The deployment ``name`` as it stands (DeploymentNotFound if there is none)."""
    return Deployment.from_json(_get(check_deployment_name(name)))


def deployments() -> list[Deployment]:
    """Every deployment this server has, by name."""
    api = client()
    found: list[Deployment] = []
    cursor: str | None = None
    while True:
        query = "?limit=200" + (f"&cursor={segment(cursor)}" if cursor else "")
        page = api.get_json(f"deployments{query}")
        items = page if isinstance(page, list) else page.get("items", [])
        found.extend(Deployment.from_json(item) for item in items)
        cursor = None if isinstance(page, list) else page.get("next")
        if not cursor:
            return sorted(found, key=lambda d: d.name)


def undeploy(name: str) -> None:
    """Stop serving ``name`` and remove it (DeploymentNotFound if there is none)."""
    name = check_deployment_name(name)
    _call(lambda: client().request("DELETE", f"deployments/{segment(name)}"), name)


# -- checks ------------------------------------------------------------------------------------


def check_deployment_name(name: Any, named: bool = True) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        hint = "" if named else " (the model's name is too long for one: pass name=)"
        raise ValueError(
            f"deployment name {name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit{hint}"
        )
    return name


def _version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"version must be a positive int; got {value!r}")
    return value


def _percent(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError(f"a percent must be an int from 0 to 100; got {value!r}")
    return value


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{what} must be True or False; got {value!r}")
    return value


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{what} must be a number of seconds (0 or more); got {value!r}")
    return float(value)


# -- the API -----------------------------------------------------------------------------------


def _call(action: Any, name: str) -> Any:
    """Run one request about the deployment ``name``; a 404 says there is no such one."""
    try:
        return action()
    except RegistryError as exc:
        if exc.status == 404:
            raise DeploymentNotFound(
                f"no deployment named {name!r} (cellops.deployments() lists them)", 404, exc.detail
            ) from None
        raise


def _get(name: str) -> dict[str, Any]:
    return _call(lambda: client().get_json(f"deployments/{segment(name)}"), name)


def _send(method: str, path: str, body: Any, name: str) -> Any:
    return _call(lambda: client().send_json(method, path, body), name)


def _absolute(url: str) -> str:
    """The server may answer a path (a listener behind the same origin): join it to the
    server's URL."""
    if not url or urlsplit(url).scheme:
        return url
    return urljoin(client().url, url)


# -- inference over the MLflow scoring protocol ------------------------------------------------


def scoring_body(X: Any) -> bytes:
    """``X`` as an MLflow scoring request: a DataFrame as ``dataframe_split`` (its columns
    named), anything else as ``inputs`` (rows of values)."""
    import sys

    pandas = sys.modules.get("pandas")  # a DataFrame can only exist if pandas is imported
    if pandas is not None and isinstance(X, pandas.DataFrame):
        split = json.loads(X.to_json(orient="split", index=False, date_format="iso"))
        return json.dumps({"dataframe_split": split}, allow_nan=False).encode()
    if pandas is not None and isinstance(X, pandas.Series):
        raise ValueError("predict() takes rows; for one row pass series.to_frame().T")
    import numpy as np

    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(
            f"predict() takes rows (a 2-D array, a list of rows or a DataFrame); got shape "
            f"{array.shape} (one row: X.reshape(1, -1))"
        )
    if array.shape[0] == 0:
        raise ValueError("predict() got no rows")
    try:
        return json.dumps({"inputs": array.tolist()}, allow_nan=False).encode()
    except ValueError:
        raise ValueError(
            "predict() input has NaN or infinite values, which JSON cannot carry; pass a "
            "DataFrame (NaN is sent as null) or fill them"
        ) from None


def _post_scoring(url: str, payload: bytes, bearer: str | None, timeout: float) -> Any:
    """POST the payload; 503 (no worker ready) is retried as Retry-After says, briefly."""
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    host = urlsplit(url).hostname or ""
    local = host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
    opener = urllib.request.build_opener(*([urllib.request.ProxyHandler({})] if local else []))
    deadline = time.monotonic() + _RETRY_503_FOR
    while True:
        req = urllib.request.Request(url, data=payload, headers=headers, method="POST")
        try:
            with opener.open(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            body = err.read()
            retry = _retry_after(err.headers.get("Retry-After"))
            if err.code == 503 and time.monotonic() + retry < deadline:
                time.sleep(retry)
                continue
            raise _prediction_refusal(err.code, err.reason, body) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ServerUnreachable(f"cannot reach the endpoint {url}: {reason}") from None


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 1), 0.05), 5.0)
    except ValueError:
        return 1.0


def _prediction_refusal(code: int, reason: str, body: bytes) -> RegistryError:
    message, detail = f"HTTP {code} {reason}", None
    try:
        parsed = json.loads(body)
        message, detail = str(parsed.get("error") or message), parsed.get("detail")
    except (ValueError, AttributeError):
        pass
    if code == 401:
        return RegistryError(
            f"{message} (the endpoint refused this deployment's key or your token; "
            "dep.rotate_key() makes a new key)",
            401,
            detail,
        )
    if code == 403:
        return PermissionDenied(f"{message} (your role does not allow calling it)", 403, detail)
    if code == 404:
        return DeploymentNotFound(f"the endpoint is not serving: {message}", 404, detail)
    return PredictionError(message, code, detail)


__all__ = [
    "Deployment",
    "DeploymentFailed",
    "DeploymentNotFound",
    "DeploymentTimeout",
    "PredictionError",
    "deploy",
    "deployments",
    "get_deployment",
    "undeploy",
]
