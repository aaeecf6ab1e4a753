"""POST /models/{name}/promotions: a pipeline's promotion of a version to an alias through
the model's policy (review/promotions.py), answering every rule with pass or fail.

Who may: whoever may move the alias in the sidebar (editor; the route's default write
role), for a dry run too; a viewer reads the same verdicts from GET
/models/{name}/versions/{v}/promotion.
"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..activity import ActivityHub
from ..registry.store import InUse
from ..review import promotions
from ..review.policy import DeployRefused, PromotionRefused
from ..review.reviews import NotAllowed
from ..schemas import PromotionCreate, PromotionResult
from .base import ApiError
from .models import RegistryHandler
from .openapi import operation


class PromotionsHandler(RegistryHandler):
    @operation(
        "Promote a version: move the alias to it if the model's policy allows, listing every "
        "rule evaluated with passed true or false (an unprotected alias has none and always "
        "moves). dry_run only evaluates. Refused: 409 whose detail has moved false, rules "
        "and failed (as an alias move's 409); the attempt is recorded in the activity feed "
        "as promotion.refused",
        PromotionResult,
        body=PromotionCreate,
    )
    @authorized
    async def post(self, name: str) -> None:
        body = await self.body_as(PromotionCreate)
        try:
            result = await self.call(
                promotions.promote,
                self.store,
                name,
                body.version,
                body.alias,
                self.caller(),
                body.dry_run,
            )
        except PromotionRefused as exc:
            self.activity_changed()
            raise ApiError(409, str(exc), exc.detail) from None
        except DeployRefused as exc:  # deployments follow the alias (the deploy rule)
            self.activity_changed()
            rules = [{**f, "passed": False} for f in exc.detail["failed"]]
            raise ApiError(409, str(exc), {**exc.detail, "moved": False, "rules": rules}) from None
        except InUse as exc:
            raise ApiError(409, str(exc), exc.detail) from None
        except NotAllowed as exc:
            raise ApiError(403, str(exc)) from None
        if result.moved:
            self.model_changed(name)
            self.activity_changed()
        self.write_json(result)

    def activity_changed(self) -> None:
        """Open feeds refetch (a move's alias.moved, a refusal's promotion.refused)."""
        hub: ActivityHub | None = self.settings.get("cellops_activity")
        if hub is not None:
            hub.publish_activity()
