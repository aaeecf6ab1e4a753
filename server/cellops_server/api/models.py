from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized

from ..activity import ActivityHub
from ..registry import Registry
from ..registry.lineage import NotYetRecorded, lineage_notebook
from ..registry.store import IdempotencyKeyReused, InUse
from ..review.policy import DeployRefused, PromotionRefused
from ..review.reviews import NotAllowed
from ..schemas import (
    AliasSet,
    Model,
    ModelUpdate,
    ModelVersion,
    ModelVersionCreate,
    ModelVersionUpdate,
    Page,
)
from .base import ApiError, ApiHandler
from .openapi import Param, operation, query


class RegistryHandler(ApiHandler):
    @property
    def registry(self) -> Registry:
        return Registry(self.store)

    def version_arg(self, version: str) -> int:
        return self.id_arg(version, "model version", maximum=MAX_VERSION)

    def archived_arg(self) -> bool:
        raw = self.get_query_argument("archived", "false").lower()
        if raw not in ("true", "false", "1", "0"):
            raise ApiError(400, f"archived must be true or false, not {raw[:30]!r}")
        return raw in ("true", "1")

    async def change(self, fn: Any, *args: Any) -> Any:
        """A registry change; 409 naming what uses the model or version, or the promotion
        rules a protected alias's move fails; 403 if only an admin may do it."""
        try:
            return await self.call(fn, *args)
        except (InUse, PromotionRefused, DeployRefused) as exc:
            raise ApiError(409, str(exc), exc.detail) from None
        except NotAllowed as exc:
            raise ApiError(403, str(exc)) from None

    def model_changed(self, name: str) -> None:
        """Wake the sidebars waiting on /events: the Models tab refetches (one ``models``
        event per change; the activity rows it wrote need no inbox toast)."""
        hub: ActivityHub | None = self.settings.get("cellops_activity")
        if hub is not None:
            hub.publish_models([name])


MAX_VERSION = 999_999_999  # the OpenAPI document's bound of a version number

ARCHIVED = Param(
    "archived",
    "true: include archived ones (hidden by default).",
    schema={"type": "string", "enum": ["true", "false", "1", "0"]},
)

IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "A key the client picks per registration (a UUID): repeating the request with it "
    "creates no second version.",
    location="header",
)


class ModelsHandler(RegistryHandler):
    @operation(
        "Registered models, most recently changed first (archived ones with ?archived=true)",
        Page[Model],
        params=[query.cursor, query.limit, ARCHIVED],
    )
    @authorized
    async def get(self) -> None:
        page = await self.call(
            self.registry.list_models,
            self.get_query_argument("cursor", None),
            self.query_limit(),
            self.archived_arg(),
        )
        self.write_json(page)


class ModelHandler(RegistryHandler):
    @operation("A model: latest version and aliases", Model)
    @authorized
    async def get(self, name: str) -> None:
        self.write_json(await self.call(self.registry.get_model, name))

    @operation(
        "Archive a model (hidden from the list; its versions stay loadable) or unarchive "
        "it; 409 while it has an alias",
        Model,
        body=ModelUpdate,
    )
    @authorized
    async def patch(self, name: str) -> None:
        body = await self.body_as(ModelUpdate)
        model = await self.change(self.registry.update_model, name, body)
        self.model_changed(name)
        self.write_json(model)

    @operation(
        "Delete a model, its versions and the artifacts no other version has; 409 while "
        "it has an alias",
        None,
        status=204,
    )
    @authorized
    async def delete(self, name: str) -> None:
        await self.change(self.registry.delete_model, name)
        self.model_changed(name)
        self.set_status(204)
        self.finish()


class ModelVersionsHandler(RegistryHandler):
    # A version's body may carry its training reference (up to 1,000,000 bytes of JSON).
    max_body = 2 * 1024 * 1024

    @operation(
        "Versions of a model, newest first, with lineage resolved (archived ones with "
        "?archived=true)",
        Page[ModelVersion],
        params=[query.cursor, query.limit, ARCHIVED],
    )
    @authorized
    async def get(self, name: str) -> None:
        page = await self.call(
            self.registry.list_versions,
            name,
            self.get_query_argument("cursor", None),
            self.query_limit(),
            self.archived_arg(),
        )
        self.write_json(page)

    @operation(
        "Register a new version (creates the model if new); the artifact must be uploaded. "
        "With an Idempotency-Key header, a repeated request (same key, same body) answers "
        "200 with the version the first one created (201); the same key with another body "
        "is a 422",
        ModelVersion,
        body=ModelVersionCreate,
        status=201,
        params=[IDEMPOTENCY_KEY],
    )
    @authorized
    async def post(self, name: str) -> None:
        body = await self.body_as(ModelVersionCreate)
        team_user = getattr(self, "team_user", None)  # lineage owners are checked in team mode
        try:
            version, created = await self.change(
                self.registry.register_version,
                name,
                body,
                self.identity(),
                team_user.name if team_user is not None else None,
                self.request.headers.get("Idempotency-Key"),
                self.caller(),
            )
        except IdempotencyKeyReused as exc:
            raise ApiError(422, str(exc)) from None
        if created:
            self.model_changed(version.model)
        # 200 on a replay: nothing was created, the answer is the existing version.
        self.write_json(version, status=201 if created else 200)


class ModelVersionHandler(RegistryHandler):
    @operation("One version of a model, with lineage resolved", ModelVersion)
    @authorized
    async def get(self, name: str, version: str) -> None:
        self.write_json(await self.call(self.registry.get_version, name, self.version_arg(version)))

    @operation(
        "Change a version's description, replace its tags, or archive it (hidden from the "
        "list, still loadable; 409 while an alias points at it) or unarchive it",
        ModelVersion,
        body=ModelVersionUpdate,
    )
    @authorized
    async def patch(self, name: str, version: str) -> None:
        body = await self.body_as(ModelVersionUpdate)
        updated = await self.change(
            self.registry.update_version, name, self.version_arg(version), body
        )
        self.model_changed(updated.model)
        self.write_json(updated)

    @operation(
        "Delete a version and its artifact unless another version has the same bytes; "
        "409 while an alias points at it. Its number is not given out again",
        None,
        status=204,
    )
    @authorized
    async def delete(self, name: str, version: str) -> None:
        await self.change(self.registry.delete_version, name, self.version_arg(version))
        self.model_changed(name)
        self.set_status(204)
        self.finish()


class ModelAliasHandler(RegistryHandler):
    @operation(
        "Point an alias at a version (moves it if set). An alias the model's policy protects "
        "moves only if the version passes its rules (409 listing each failed rule), or if an "
        "admin sends `override` with a reason (recorded; 403 for anyone else)",
        Model,
        body=AliasSet,
    )
    @authorized
    async def put(self, name: str, alias: str) -> None:
        body = await self.body_as(AliasSet)
        model = await self.change(
            self.registry.set_alias, name, alias, body.version, self.caller(), body.override
        )
        self.model_changed(model.name)
        self.write_json(model)

    @operation("Remove an alias (a protected one: admin only, 403 otherwise)", None, status=204)
    @authorized
    async def delete(self, name: str, alias: str) -> None:
        await self.change(self.registry.delete_alias, name, alias, self.caller())
        self.model_changed(name)
        self.set_status(204)
        self.finish()


MINIMAL = Param(
    "minimal",
    "true: only the cells the model depends on (a backward slice of names defined and used).",
    schema={"type": "boolean"},
)


class ModelVersionNotebookHandler(RegistryHandler):
    @operation(
        "The lineage notebook (nbformat 4): the cells that ran up to the registration, in "
        "order; ?minimal=true keeps only those the model depends on",
        None,
        notebook=True,
        params=[MINIMAL],
    )
    @authorized
    async def get(self, name: str, version: str) -> None:
        minimal = self.get_query_argument("minimal", "false").lower() in ("true", "1", "yes")
        try:
            notebook = await self.call(
                lineage_notebook, self.store, name, self.version_arg(version), minimal
            )
        except NotYetRecorded as exc:
            raise ApiError(409, str(exc)) from None
        self.write_json(notebook)
