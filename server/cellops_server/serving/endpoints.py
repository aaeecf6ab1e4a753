"""The serving listener's HTTP surface: Open Inference Protocol v2, MLflow scoring, health,
``/metrics``; keys and member tokens; a version picked by the traffic split.

Workers answer a connection's requests themselves (worker.py), so a request never crosses
a second process; the router answers only while no worker is ready (router.py). Both use
``Endpoints`` with what they know of the deployments (``ServedTable``, which the router
sends every worker whenever it changes) and their own way to predict.

A handler returns its response directly when it can (nearly always: a task per request
costs as much as the HTTP parsing), or an awaitable when it must wait (a member token not
yet seen, ``/metrics``).
"""

from __future__ import annotations

import hmac
import random
import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from .deployments import key_matches
from .http import Request, Response, error, json_response

Key = tuple[str, int]  # (deployment, version)
RETRY = {"Retry-After": "1"}

_V2 = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/infer|/ready)?$")
_MLFLOW = re.compile(r"^/deployments/([^/]+)/(invocations|ping)$")


# -- what is served ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """What takes a deployment's traffic now: ``(version, percent)``, percent > 0 first."""

    split: tuple[tuple[int, int], ...]
    # cumulative percent -> version, for picking; derived from ``split``
    edges: tuple[tuple[float, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        total, edges = 0.0, []
        for version, percent in self.split:
            if percent > 0:
                total += percent
                edges.append((total, version))
        object.__setattr__(self, "edges", tuple(edges))  # frozen: set once, here

    def pick(self) -> int:
        edges = self.edges
        r = random.random() * edges[-1][0]
        for edge, version in edges:
            if r < edge:
                return version
        return edges[-1][1]

    def has(self, version: int) -> bool:
        return any(v == version for v, _ in self.split)

    def versions(self) -> list[int]:
        return [v for v, _ in self.split]


@dataclass(frozen=True)
class Served:
    """One deployment as the endpoints see it."""

    name: str
    public: bool
    key_sha256: str | None
    # every version it should serve: (version, percent, signature)
    versions: tuple[tuple[int, int, dict[str, Any] | None], ...]
    route: Route | None  # None: starting, or failed (``why``)
    why: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "public": self.public,
            "key_sha256": self.key_sha256,
            "versions": [list(v) for v in self.versions],
            "route": None if self.route is None else [list(s) for s in self.route.split],
            "why": self.why,
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Served:
        route = d.get("route")
        return cls(
            name=d["name"],
            public=bool(d["public"]),
            key_sha256=d.get("key_sha256"),
            versions=tuple((int(v), int(p), s) for v, p, s in d["versions"]),
            route=None if route is None else Route(tuple((int(v), int(p)) for v, p in route)),
            why=d.get("why"),
        )


ServedTable = dict[str, Served]


# -- the endpoints ----------------------------------------------------------------------------


class Endpoints:
    """Routing, keys and answers. Subclasses say how a version is predicted (``predict``),
    which versions they hold, how member tokens are checked and how outcomes are counted."""

    def __init__(self, member_token: str = "") -> None:
        self.served: ServedTable = {}
        self.ready_workers = 0
        self.member_token = member_token  # embedded mode: the Jupyter server's own token

    # -- what a subclass provides ------------------------------------------------------------

    def holds(self, key: Key) -> bool:
        raise NotImplementedError

    def predict(
        self, key: Key, protocol: str, request: Request, header_length: int | None, sample: bool
    ) -> Response:
        raise NotImplementedError

    async def check_member(self, token: str) -> bool:
        """A team member's token (team mode: asks the store through the router)."""
        raise NotImplementedError

    def known_member(self, token: str) -> bool | None:
        """A cached answer for ``token``, or None when it must be asked."""
        return None

    def record(self, name: str, version: int, status: int, seconds: float) -> None:
        """Count one answered inference request (monitoring)."""

    def wants_sample(self, name: str) -> bool:
        return False

    async def metrics(self) -> Response:
        raise NotImplementedError

    # -- requests ----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        path = request.path
        if path.startswith("/v2"):
            if path == "/v2/health/live":
                return json_response(200, {"live": True})
            if path == "/v2/health/ready":
                if self.ready_workers:
                    return json_response(200, {"ready": True, "workers": self.ready_workers})
                return error(503, "no worker process is ready yet", **RETRY)
            if path == "/v2":
                return json_response(200, {"name": "cellops", "version": "1", "extensions": []})
            m = _V2.match(path)
            if m:
                return self._v2(request, m.group(1), m.group(2), m.group(3))
        elif path.startswith("/deployments/"):
            m = _MLFLOW.match(path)
            if m:
                return self._mlflow(request, m.group(1), m.group(2))
        elif path == "/metrics" and request.method == "GET":
            return self.metrics()
        return error(404, f"no endpoint at {path}")

    def _v2(
        self, request: Request, name: str, version: str | None, op: str | None
    ) -> Response | Awaitable[Response]:
        dep = self.served.get(name)
        if dep is None:
            return error(404, f"no deployment named {name!r}")
        pinned: int | None = None
        if version is not None:
            if not version.isdigit() or (dep.route is not None and not dep.route.has(int(version))):
                served = [v for v, _, _ in dep.versions]
                return error(404, f"{name} serves version(s) {served}, not {version!r}")
            pinned = int(version)
        if op == "/ready":
            return self._readiness(dep, pinned, v2=True)
        if op is None:
            if request.method != "GET":
                return error(405, "use GET for model metadata")
            return self._after_auth(dep, request, lambda: self._metadata(dep, pinned))
        if request.method != "POST":
            return error(405, "use POST for inference")
        return self._infer(dep, request, "v2", pinned)

    def _mlflow(self, request: Request, name: str, op: str) -> Response | Awaitable[Response]:
        dep = self.served.get(name)
        if dep is None:
            return error(404, f"no deployment named {name!r}")
        if op == "ping":
            return self._readiness(dep, None, v2=False)
        if request.method != "POST":
            return error(405, "use POST for invocations")
        return self._infer(dep, request, "mlflow", None)

    def _readiness(self, dep: Served, pinned: int | None, v2: bool) -> Response:
        if dep.route is None:
            return error(503, dep.why or f"{dep.name} is starting", **RETRY)
        versions = [pinned] if pinned is not None else dep.route.versions()
        if not all(self.holds((dep.name, v)) for v in versions):
            return error(503, f"no worker is ready for {dep.name} yet", **RETRY)
        return json_response(200, {"name": dep.name, "ready": True}) if v2 else Response(200, b"\n")

    def _metadata(self, dep: Served, pinned: int | None) -> Response:
        from .protocols import metadata_v2

        versions = [v for v in dep.versions if pinned is None or v[0] == pinned]
        if not versions:
            return error(404, f"{dep.name} does not serve version {pinned}")
        main = max(versions, key=lambda v: v[1])
        return json_response(200, metadata_v2(dep.name, [v[0] for v in versions], main[2]))

    def _infer(
        self, dep: Served, request: Request, protocol: str, pinned: int | None
    ) -> Response | Awaitable[Response]:
        started = time.perf_counter()
        return self._after_auth(
            dep, request, lambda: self._routed(dep, request, protocol, pinned, started)
        )

    def _routed(
        self, dep: Served, request: Request, protocol: str, pinned: int | None, started: float
    ) -> Response:
        name = dep.name
        route = dep.route
        if route is None:
            return error(503, dep.why or f"{name} is starting; retry shortly", **RETRY)
        version = pinned if pinned is not None else route.pick()
        key = (name, version)
        icl = request.headers.get("inference-header-content-length")
        if icl is not None and not icl.isdigit():  # the binary tensor extension's JSON length
            response = error(400, "Inference-Header-Content-Length must be a byte count")
        elif not self.holds(key):
            response = error(503, f"no worker is ready for {name} yet", **RETRY)
        else:
            header_length = None if icl is None else int(icl)
            sample = self.wants_sample(name)
            response = self.predict(key, protocol, request, header_length, sample)
        self.record(name, version, response.status, time.perf_counter() - started)
        return response

    # -- keys and member tokens --------------------------------------------------------------

    def _after_auth(
        self, dep: Served, request: Request, then: Any
    ) -> Response | Awaitable[Response]:
        """``then()`` if the request may use ``dep``; a 401 otherwise."""
        if dep.public:
            return then()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _unauthorized(dep.name, "no key was sent")
        if dep.key_sha256 and key_matches(dep.key_sha256, token):
            return then()
        if self.member_token:
            if hmac.compare_digest(token.encode(), self.member_token.encode()):
                return then()
            return _unauthorized(dep.name, "the key is not valid for this deployment")
        known = self.known_member(token)
        if known is not None:
            return then() if known else _unauthorized(dep.name, _INVALID)
        return self._ask_member(dep, token, then)

    async def _ask_member(self, dep: Served, token: str, then: Any) -> Response:
        if await self.check_member(token):
            return then()
        return _unauthorized(dep.name, _INVALID)


_INVALID = "the key is not valid for this deployment"


def _unauthorized(name: str, why: str) -> Response:
    return error(
        401,
        f"{why}: send 'Authorization: Bearer <key>' with {name}'s inference key "
        "(shown when it was deployed, or rotate it) or a member token",
        **{"WWW-Authenticate": 'Bearer realm="cellops"'},
    )
