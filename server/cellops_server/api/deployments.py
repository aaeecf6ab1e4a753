"""Deployments (serving/deployments.py): create, list, change, delete, keys, events, metrics.

Every member reads; editors create, change, delete and rotate keys (team mode: the
``cellops.deployments`` resource). Any editor may delete any deployment, as any editor may
delete a model: deployments are the team's, and every deletion is an event with its actor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized

from ..activity import ActivityHub
from ..review.policy import DeployRefused
from ..schemas import (
    Deployment,
    DeploymentCreate,
    DeploymentCreated,
    DeploymentEventList,
    DeploymentKey,
    DeploymentList,
    DeploymentMetrics,
    DeploymentPatch,
)
from ..serving.deployments import DeploymentExists, Deployments, NotServable
from ..serving.metrics import read_minutes
from .base import ApiError, ApiHandler
from .openapi import Param, operation

R = TypeVar("R")

MAX_WINDOW = 1440  # minutes: a day of per-minute rows
WINDOW = Param(
    "window",
    f"Minutes up to now (1-{MAX_WINDOW}, default 60).",
    schema={"type": "integer", "minimum": 1, "maximum": MAX_WINDOW},
)


class DeploymentApiHandler(ApiHandler):
    auth_resource = "cellops.deployments"  # writing needs the editor role

    @property
    def deployments(self) -> Deployments:
        return Deployments(self.store, self.settings.get("cellops_serving_url") or "")

    async def act(self, fn: Callable[..., R], *args: Any) -> R:
        """A deployments call, a taken name or an unservable version as 409 (a version the
        model's deploy rule refuses: with ``detail.failed``, as an alias move's 409)."""
        try:
            return await self.call(fn, *args)
        except (DeploymentExists, NotServable) as exc:
            raise ApiError(409, str(exc)) from None
        except DeployRefused as exc:
            raise ApiError(409, str(exc), exc.detail) from None

    def changed(self, name: str, model: str | None = None, wake: bool = True) -> None:
        """After a change of deployment ``name``: start (or nudge) the serving router and
        the deployment watcher where this server runs them, and tell open sidebars (their
        Deployments tab, their feeds; the Models tab of the deployed model)."""
        if wake:
            wake_serving = self.settings.get("cellops_serving_wake")
            if callable(wake_serving):
                wake_serving()
        hub: ActivityHub | None = self.settings.get("cellops_activity")
        if hub is None:
            return
        hub.publish_deployments([name])
        if model:
            hub.publish_models([model])
        hub.publish_activity()


class DeploymentsHandler(DeploymentApiHandler):
    @operation("Every deployment, by name", DeploymentList)
    @authorized
    async def get(self) -> None:
        self.write_json(DeploymentList(items=await self.act(self.deployments.list)))

    @operation(
        "Deploy a model version, the version an alias points at (followed as it moves), or "
        "(neither) the latest version. Keyed unless public: the answer holds the key, shown "
        "this once. 409 if the name is taken or the version archived; 400 naming an unknown "
        "model, version or alias",
        DeploymentCreated,
        body=DeploymentCreate,
        status=201,
    )
    @authorized
    async def post(self) -> None:
        body = await self.body_as(DeploymentCreate)
        created = await self.act(self.deployments.create, body, self.identity())
        self.changed(created.name, created.model)
        self.write_json(created, status=201)


class DeploymentHandler(DeploymentApiHandler):
    @operation("A deployment: state, versions and traffic, URLs", Deployment)
    @authorized
    async def get(self, name: str) -> None:
        self.write_json(await self.act(self.deployments.get, name))

    @operation(
        "Change one thing: pin `version` (a rollback when older), follow `alias`, split "
        "`traffic` between two versions (percents summing to 100), or make it `public` or "
        "keyed. Making it keyed again answers a new `key` (shown once; null otherwise)",
        DeploymentCreated,
        body=DeploymentPatch,
    )
    @authorized
    async def patch(self, name: str) -> None:
        body = await self.body_as(DeploymentPatch)
        changed = await self.act(self.deployments.patch, name, body, self.identity())
        self.changed(name, changed.model)
        self.write_json(changed)

    @operation(
        "Delete a deployment and its key (its events stay); it stops serving", None, status=204
    )
    @authorized
    async def delete(self, name: str) -> None:
        await self.act(self.deployments.delete, name, self.identity())
        self.changed(name, wake=False)  # a running router drops it on its next poll
        self.set_status(204)
        self.finish()


class DeploymentEventsHandler(DeploymentApiHandler):
    @operation(
        "Every change of a deployment, oldest first, with who (null: the serving router) and when",
        DeploymentEventList,
    )
    @authorized
    async def get(self, name: str) -> None:
        events = await self.act(self.deployments.events, name)
        self.write_json(DeploymentEventList(items=events))


class DeploymentMetricsHandler(DeploymentApiHandler):
    @operation(
        "Requests, errors and p50/p95 latency (seconds) per minute and version, over the "
        "last `window` minutes",
        DeploymentMetrics,
        params=[WINDOW],
    )
    @authorized
    async def get(self, name: str) -> None:
        window = self.query_int("window", 60, 1, MAX_WINDOW)
        assert window is not None
        await self.act(self.deployments.exists, name)
        minutes = await self.act(read_minutes, self.store.engine, name, window)
        self.write_json(DeploymentMetrics(deployment=name, window=window, minutes=minutes))


class DeploymentKeyHandler(DeploymentApiHandler):
    @operation(
        "A new inference key, shown this once; the old one stops working (400 for a public "
        "deployment)",
        DeploymentKey,
        status=201,
    )
    @authorized
    async def post(self, name: str) -> None:
        key = await self.act(self.deployments.rotate_key, name, self.identity())
        self.changed(name, wake=False)
        self.write_json(DeploymentKey(key=key), status=201)
