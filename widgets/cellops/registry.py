"""register() and load(): scikit-learn models in and out of the cellops model registry.

register() uploads the artifact first and creates the version only after, so an
interrupted upload never leaves a version pointing at nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from . import context, serialize, tracking
from .autolog.data import fingerprints, input_signature, training_data
from .client import Client, RegistryError, ServerUnreachable, client, segment

# Matched whole (fullmatch): "$" would accept a trailing newline, naming another model.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_EXAMPLE_ROWS = 5


@dataclass
class ModelVersion:
    """One registered version, as the server describes it (``GET /models/{name}/versions/{v}``)."""

    model: str
    version: int
    aliases: list[str] = field(default_factory=list)
    artifact: str = ""
    artifact_size: int = 0
    flavor: str = "sklearn"
    library_versions: dict[str, str] = field(default_factory=dict)
    signature: dict[str, Any] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    created_by: str | None = None
    created_at: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)
    # {"state": none | requested | approved | changes_requested, "approvals": [names]}
    review: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ModelVersion:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in body.items() if k in known})

    def load(self, trusted: Iterable[str] = ()) -> Any:
        """The model of this version."""
        return _load_artifact(self.artifact, trusted)

    def _repr_html_(self) -> str:
        import html

        e = html.escape
        aliases = " ".join(f"<code>{e(a)}</code>" for a in self.aliases) or "—"
        metrics = "".join(
            f"<tr><td>{e(str(k))}</td><td>{e(_fmt(v))}</td></tr>" for k, v in self.metrics.items()
        )
        lineage = self.lineage or {}
        where = [
            f"{label} {e(str(lineage[key]))}"
            for key, label in (
                ("notebook", "notebook"),
                ("run_id", "run"),
                ("execution_id", "execution"),
                ("version_id", "notebook version"),
            )
            if lineage.get(key) is not None
        ]
        if not where and lineage.get("msg_id"):
            where = [f"request {e(str(lineage['msg_id']))} (not recorded yet)"]
        rows = [
            f"<b>{e(self.model)}</b> version <b>{self.version}</b>",
            f"aliases: {aliases}",
            f"flavor: {e(self.flavor)} · artifact <code>{e(self.artifact[:12])}</code> "
            f"({self.artifact_size:,} bytes)",
        ]
        if self.description:
            rows.append(e(self.description))
        rows.append(f"lineage: {', '.join(where) or '—'}")
        table = (
            f"<table><thead><tr><th>metric</th><th>value</th></tr></thead><tbody>{metrics}</tbody></table>"
            if metrics
            else "<div>no metrics logged</div>"
        )
        body = "".join(f"<div>{r}</div>" for r in rows)
        return f'<div class="cellops-model-version">{body}{table}</div>'


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


# -- helpers ----------------------------------------------------------------------------


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(
            f"model name {name!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not ALIAS.fullmatch(alias):
        raise ValueError(
            f"alias {alias!r} is not valid: use 1-64 letters, digits, '_' or '-', starting with a letter"
        )
    return alias


def check_model(model: Any) -> None:
    """Raise TypeError unless ``model`` is a fitted scikit-learn estimator or pipeline."""
    from sklearn.base import BaseEstimator
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    got = f"{type(model).__module__}.{type(model).__qualname__}"
    if not isinstance(model, BaseEstimator):
        raise TypeError(f"register() needs a fitted scikit-learn estimator or pipeline; got {got}")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise TypeError(
            f"register() needs a fitted scikit-learn estimator or pipeline; got an unfitted {got} "
            "(call .fit() first)"
        ) from None


def json_safe(value: Any) -> Any:
    """``value`` when JSON can hold it exactly; its repr otherwise (params are for reading)."""
    if (
        hasattr(value, "item")
        and not isinstance(value, (str, bytes))
        and getattr(value, "ndim", 0) == 0
    ):
        with contextlib.suppress(TypeError, ValueError):
            value = value.item()
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: json_safe(v) for k, v in value.items()}
    return repr(value)


def library_versions() -> dict[str, str]:
    import platform

    import numpy
    import sklearn
    import skops

    versions = {
        "sklearn": sklearn.__version__,
        "numpy": numpy.__version__,
        "skops": skops.__version__,
        "python": platform.python_version(),
    }
    if "scipy" in sys.modules:
        versions["scipy"] = sys.modules["scipy"].__version__
    return versions


def signature(model: Any, example: Any) -> dict[str, Any] | None:
    """The input the model expects: columns, dtypes and shape (``None`` for the row count)."""
    if example is None:
        n = getattr(model, "n_features_in_", None)
        if n is None:
            return None
        sig: dict[str, Any] = {"type": "unknown", "shape": [None, int(n)]}
        names = getattr(model, "feature_names_in_", None)
        if names is not None:
            sig["columns"] = [{"name": str(c), "dtype": None} for c in names]
        return sig
    pandas = sys.modules.get("pandas")  # a DataFrame can only exist if pandas is imported
    if pandas is not None and isinstance(example, pandas.DataFrame):
        head = example.head(_EXAMPLE_ROWS)
        return {
            "type": "dataframe",
            "shape": [None, int(example.shape[1])],
            "columns": [{"name": str(c), "dtype": str(t)} for c, t in example.dtypes.items()],
            "example": json_safe(head.to_numpy().tolist()),
        }
    import numpy as np

    array = np.asarray(example)
    if array.ndim == 0:
        raise ValueError("input_example must be a table of rows (a list, array or DataFrame)")
    return {
        "type": "ndarray",
        "dtype": str(array.dtype),
        "shape": [None, *(int(d) for d in array.shape[1:])],
        "example": json_safe(array[:_EXAMPLE_ROWS].tolist()),
    }


# -- the public functions ---------------------------------------------------------------


def register(
    model: Any,
    name: str,
    alias: str | None = None,
    description: str | None = None,
    input_example: Any = None,
    *,
    tags: Mapping[str, str] | None = None,
    trusted: Iterable[str] = (),
    reference: Any = None,
) -> ModelVersion:
    """Save ``model`` with skops, upload it and create the next version of ``name``.

    Lineage ties the version to the cell running this call; the metrics, params and tags
    logged in that cell so far are recorded with it. ``trusted`` names extra types (from
    your own importable modules) that you accept in the saved model.

    ``reference`` is the training data drift of its deployments is measured against
    (``X_train``; summarized here, only the summary is sent). By default it is the X
    autolog saw the model fitted on, else the ``input_example`` (a rough guide); ``False``
    sends none.
    """
    return register_for(
        context.current(),
        model,
        name,
        alias,
        description,
        input_example,
        tags=tags,
        trusted=trusted,
        reference=reference,
    )


@dataclass(frozen=True)
class Registration:
    """One registration request, built once: sending it again (a retry, a second click of a
    card) repeats it byte for byte under the same idempotency key, so it is one version."""

    name: str
    artifact: bytes
    body: dict[str, Any]
    key: str = field(default_factory=lambda: str(uuid.uuid4()))


def register_for(
    execution: context.Execution,
    model: Any,
    name: str,
    alias: str | None = None,
    description: str | None = None,
    input_example: Any = None,
    *,
    tags: Mapping[str, str] | None = None,
    trusted: Iterable[str] = (),
    reference: Any = None,
) -> ModelVersion:
    """register() with lineage to ``execution``: a widget's button click runs outside any
    cell, so the card remembers the execution that displayed it and registers for that."""
    prepared = prepare_registration(
        execution,
        model,
        name,
        alias,
        description,
        input_example,
        tags=tags,
        trusted=trusted,
        reference=reference,
    )
    return send_registration(prepared)


def prepare_registration(
    execution: context.Execution,
    model: Any,
    name: str,
    alias: str | None = None,
    description: str | None = None,
    input_example: Any = None,
    *,
    tags: Mapping[str, str] | None = None,
    trusted: Iterable[str] = (),
    reference: Any = None,
) -> Registration:
    """Check and serialize ``model`` and build the request that registers it (nothing sent)."""
    check_name(name)
    if alias is not None:
        check_alias(alias)
    if description is not None and not isinstance(description, str):
        raise ValueError(f"description must be a string; got {type(description).__name__}")
    extra_tags = tracking.validate_tags(tags or {})
    check_model(model)
    data = serialize.dumps(model, trusted)
    # Without an input_example, the training data autolog saw gives the signature.
    sig = signature(model, input_example)
    if input_example is None:
        sig = input_signature(model) or sig
    logged = tracking.logged(execution.msg_id)
    body = {
        "artifact": hashlib.sha256(data).hexdigest(),
        "flavor": "sklearn",
        "library_versions": library_versions(),
        "signature": sig,
        "metrics": logged["metrics"],
        "params": {str(k): json_safe(v) for k, v in model.get_params(deep=False).items()},
        "tags": {**logged["tags"], **extra_tags},
        "description": description,
        "alias": alias,
        "lineage": {"msg_id": execution.msg_id, "data_fingerprints": fingerprints(model)},
    }
    summary = training_reference(model, reference, input_example, sig)
    if summary is not None:
        body["reference"] = summary
    json.dumps(body, allow_nan=False)  # fail here, not half-way, if anything is not JSON
    return Registration(name, data, body)


def training_reference(
    model: Any, reference: Any, input_example: Any, sig: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The drift reference sent with a version: the summary of ``reference`` (data, or a
    summary already made), else of the X autolog saw, else of the input_example; None with
    ``reference=False``. An explicit reference that cannot be summarized is an error; an
    automatic one is left out (drift is then not measured) rather than fail the registration."""
    from . import reference as summaries

    if reference is False:
        return None
    names = _column_names(sig)
    if reference is not None:
        if isinstance(reference, Mapping) and "features" in reference:
            summary = dict(reference)
        else:
            summary = summaries.summarize(reference, _names_for(reference, names))
        summaries.check(summary)  # too big or malformed: say so before anything is sent
        return summary
    for data, source in ((training_data(model), "training"), (input_example, "input_example")):
        if data is None:
            continue
        try:
            summary = summaries.summarize(data, _names_for(data, names), source=source)
            summaries.check(summary)
        except Exception as exc:  # the registration matters more than its drift reference
            print(f"cellops: no drift reference from the {source} data ({exc})", file=sys.stderr)
            return None
        return summary
    return None


def _column_names(sig: dict[str, Any] | None) -> list[str] | None:
    columns = (sig or {}).get("columns")
    if not isinstance(columns, list):
        return None
    return [str(c.get("name")) for c in columns if isinstance(c, dict)]


def _names_for(data: Any, names: list[str] | None) -> list[str] | None:
    """The signature's column names for an array of the same width (a DataFrame has its own)."""
    pandas = sys.modules.get("pandas")
    if names is None or (pandas is not None and isinstance(data, pandas.DataFrame)):
        return None
    shape = getattr(data, "shape", None)
    width = shape[1] if shape is not None and len(shape) == 2 else None
    return names if width == len(names) else None


def send_registration(registration: Registration) -> ModelVersion:
    """Upload the artifact (content-addressed: repeating it is harmless) and register."""
    api = client()
    api.request(
        "PUT", f"artifacts/{registration.body['artifact']}", data=registration.artifact, timeout=300
    )
    path = f"models/{segment(registration.name)}/versions"
    return ModelVersion.from_json(_post_once(api, path, registration.body, registration.key))


def _post_once(api: Client, path: str, body: Any, key: str) -> Any:
    """POST ``body`` with an Idempotency-Key; retried once, with the same key, when no answer
    came (a timeout may hide a version the server did create: the key makes it one)."""
    headers = {"Idempotency-Key": key}
    try:
        return api.send_json("POST", path, body, headers)
    except ServerUnreachable:
        return api.send_json("POST", path, body, headers)


def get_version(name: str, version: int | None = None, alias: str | None = None) -> ModelVersion:
    """A registered version: by number, by alias, or the latest."""
    check_name(name)
    if version is not None and alias is not None:
        raise ValueError("pass version= or alias=, not both")
    api = client()
    if version is None:
        model = api.get_json(f"models/{segment(name)}")
        if alias is not None:
            check_alias(alias)
            if alias not in model.get("aliases", {}):
                known = ", ".join(sorted(model.get("aliases", {}))) or "none"
                raise RegistryError(
                    f"model {name!r} has no alias {alias!r} (aliases: {known})", 404
                )
            version = int(model["aliases"][alias])
        else:
            version = int(model["latest_version"])
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"version must be an int; got {version!r}")
    return ModelVersion.from_json(api.get_json(f"models/{segment(name)}/versions/{version}"))


def _load_artifact(sha: str, trusted: Iterable[str]) -> Any:
    if not re.fullmatch(r"[0-9a-f]{64}", sha or ""):
        raise RegistryError(f"the server returned an invalid artifact id {sha!r}")
    _, data = client().request("GET", f"artifacts/{sha}", timeout=300)
    if hashlib.sha256(data).hexdigest() != sha:
        raise RegistryError(f"artifact {sha[:12]} was corrupted in transit (sha256 mismatch)")
    return serialize.loads(data, trusted)


def load(
    name: str, version: int | None = None, alias: str | None = None, *, trusted: Iterable[str] = ()
) -> Any:
    """The model of ``name`` (latest version, or the given version or alias), loaded safely."""
    return get_version(name, version, alias).load(trusted)


def set_alias(name: str, alias: str, version: int, *, override: str | None = None) -> None:
    """Point ``alias`` of ``name`` at ``version`` (moving it if it pointed elsewhere).

    An alias the model's policy protects moves only if the version passes its rules;
    otherwise this raises PromotionRefused listing each failed rule. An admin may move it
    anyway with ``override="the reason"`` (recorded in the team's activity feed).
    """
    check_name(name)
    check_alias(alias)
    body: dict[str, Any] = {"version": int(version)}
    if override is not None:
        if not isinstance(override, str) or not override.strip():
            raise ValueError("override must be the reason, as non-empty text")
        body["override"] = override
    client().send_json("PUT", f"models/{segment(name)}/aliases/{alias}", body)


def delete_alias(name: str, alias: str) -> None:
    """Remove ``alias`` from ``name`` (the version it pointed at stays)."""
    check_name(name)
    check_alias(alias)
    client().request("DELETE", f"models/{segment(name)}/aliases/{alias}")


def update_version(
    name: str,
    version: int,
    *,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Change a version's description and/or replace its tags; answers the version."""
    check_name(name)
    if description is None and tags is None:
        raise ValueError("pass description= and/or tags= to change")
    if description is not None and not isinstance(description, str):
        raise ValueError(f"description must be a string; got {type(description).__name__}")
    body: dict[str, Any] = {}
    if description is not None:
        body["description"] = description
    if tags is not None:
        body["tags"] = tracking.validate_tags(tags)
    path = f"models/{segment(name)}/versions/{int(version)}"
    return ModelVersion.from_json(client().send_json("PATCH", path, body))


def list_versions(name: str) -> list[ModelVersion]:
    """Every version of ``name``, oldest first."""
    check_name(name)
    api = client()
    versions: list[ModelVersion] = []
    cursor: str | None = None
    while True:
        query = "?limit=200" + (f"&cursor={segment(cursor)}" if cursor else "")
        page = api.get_json(f"models/{segment(name)}/versions{query}")
        versions.extend(ModelVersion.from_json(item) for item in page["items"])
        cursor = page.get("next")
        if not cursor:
            return sorted(versions, key=lambda v: v.version)
