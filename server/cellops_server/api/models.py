from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..activity import ActivityHub
from ..registry import Registry
from ..registry.lineage import NotYetRecorded, lineage_notebook
from ..registry.store import IdempotencyKeyReused
from ..schemas import AliasSet, Model, ModelVersion, ModelVersionCreate, ModelVersionUpdate, Page
from .base import ApiError, ApiHandler
from .openapi import Param, operation, query


class RegistryHandler(ApiHandler):
    @property
    def registry(self) -> Registry:
        return Registry(self.store)

    def version_arg(self, version: str) -> int:
        return self.id_arg(version, "model version", maximum=MAX_VERSION)

    def model_changed(self, name: str) -> None:
        """Wake the sidebars waiting on /events: the Models tab refetches."""
        hub: ActivityHub | None = self.settings.get("cellops_activity")
        if hub is not None:
            hub.publish_models([name])


MAX_VERSION = 999_999_999  # the OpenAPI document's bound of a version number

IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "A key the client picks per registration (a UUID): repeating the request with it "
    "creates no second version.",
    location="header",
)


class ModelsHandler(RegistryHandler):
    @operation(
        "Registered models, most recently changed first",
        Page[Model],
        params=[query.cursor, query.limit],
    )
    @authorized
    async def get(self) -> None:
        page = await self.call(
            self.registry.list_models, self.get_query_argument("cursor", None), self.query_limit()
        )
        self.write_json(page)


class ModelHandler(RegistryHandler):
    @operation("A model: latest version and aliases", Model)
    @authorized
    async def get(self, name: str) -> None:
        self.write_json(await self.call(self.registry.get_model, name))


class ModelVersionsHandler(RegistryHandler):
    @operation(
        "Versions of a model, newest first, with lineage resolved",
        Page[ModelVersion],
        params=[query.cursor, query.limit],
    )
    @authorized
    async def get(self, name: str) -> None:
        page = await self.call(
            self.registry.list_versions,
            name,
            self.get_query_argument("cursor", None),
            self.query_limit(),
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
            version, created = await self.call(
                self.registry.register_version,
                name,
                body,
                self.identity(),
                team_user.name if team_user is not None else None,
                self.request.headers.get("Idempotency-Key"),
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
        "Change a version's description or replace its tags", ModelVersion, body=ModelVersionUpdate
    )
    @authorized
    async def patch(self, name: str, version: str) -> None:
        body = await self.body_as(ModelVersionUpdate)
        updated = await self.call(
            self.registry.update_version, name, self.version_arg(version), body
        )
        self.model_changed(updated.model)
        self.write_json(updated)


class ModelAliasHandler(RegistryHandler):
    @operation("Point an alias at a version (moves it if set)", Model, body=AliasSet)
    @authorized
    async def put(self, name: str, alias: str) -> None:
        body = await self.body_as(AliasSet)
        model = await self.call(self.registry.set_alias, name, alias, body.version)
        self.model_changed(model.name)
        self.write_json(model)

    @operation("Remove an alias", None, status=204)
    @authorized
    async def delete(self, name: str, alias: str) -> None:
        await self.call(self.registry.delete_alias, name, alias)
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
