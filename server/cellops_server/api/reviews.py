"""Reviews of model versions and promotion policies (review/reviews.py, review/policy.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized

from ..activity import ActivityHub
from ..review import policy, reviews
from ..schemas import (
    PromotionChecks,
    PromotionPolicy,
    ReviewCreate,
    ReviewRequestCreate,
    VersionReviews,
)
from .base import ApiError, ApiHandler
from .models import MAX_VERSION
from .openapi import operation

R = TypeVar("R")

POLICY_MAX_BODY = 256 * 1024  # 20 protected aliases with 40 rules each fit many times over


class ReviewApiHandler(ApiHandler):
    async def act(self, fn: Callable[..., R], *args: Any) -> R:
        """A review or policy call, with its refusals as 403 and 409."""
        try:
            return await self.call(fn, *args)
        except reviews.NotAllowed as exc:
            raise ApiError(403, str(exc)) from None
        except policy.PromotionRefused as exc:
            raise ApiError(409, str(exc), exc.detail) from None

    def version_arg(self, version: str) -> int:
        return self.id_arg(version, "model version", maximum=MAX_VERSION)

    def publish(self, model: str, users: list[str]) -> None:
        """Open review panels, Models tabs, feeds and the inboxes of ``users`` refetch."""
        hub: ActivityHub | None = self.settings.get("cellops_activity")
        if hub is None:
            return
        hub.publish_reviews([model])
        hub.publish_models([model])
        hub.publish_activity(users=users)


class ReviewRequestsHandler(ReviewApiHandler):
    auth_resource = "cellops.review_requests"  # editor

    @operation(
        "Ask named users to review a model version (400 naming an unknown user, or the "
        "version's author)",
        VersionReviews,
        body=ReviewRequestCreate,
        status=201,
    )
    @authorized
    async def post(self, name: str, version: str) -> None:
        number = self.version_arg(version)
        body = await self.body_as(ReviewRequestCreate)
        outcome = await self.act(
            reviews.request_review,
            self.store.engine,
            name,
            number,
            body.reviewers,
            self.caller().name,
        )
        self.publish(name, outcome.notified)
        self.write_json(outcome.reviews, status=201)


class ReviewsHandler(ReviewApiHandler):
    auth_resource = "cellops.reviews"  # writing needs the approver role

    @operation(
        "A version's review state, who approved, who is still asked, and every verdict",
        VersionReviews,
    )
    @authorized
    async def get(self, name: str, version: str) -> None:
        number = self.version_arg(version)
        self.write_json(await self.act(reviews.version_reviews, self.store.engine, name, number))

    @operation(
        "Approve or request changes (approver role; never on your own version, 403); the "
        "body, if any, becomes a comment on the version",
        VersionReviews,
        body=ReviewCreate,
        status=201,
    )
    @authorized
    async def post(self, name: str, version: str) -> None:
        number = self.version_arg(version)
        body = await self.body_as(ReviewCreate)
        outcome = await self.act(
            reviews.submit_review,
            self.store.engine,
            name,
            number,
            self.caller().name,
            body.verdict,
            body.body,
        )
        self.publish(name, outcome.notified)
        hub: ActivityHub | None = self.settings.get("cellops_activity")
        if hub is not None and body.body:
            hub.publish_comments(models=[name])  # the verdict's comment joins the thread
        self.write_json(outcome.reviews, status=201)


class PromotionChecksHandler(ReviewApiHandler):
    @operation(
        "For each protected alias of the model: may this version take it now, and if not, "
        "which rules fail",
        PromotionChecks,
    )
    @authorized
    async def get(self, name: str, version: str) -> None:
        number = self.version_arg(version)
        self.write_json(await self.act(policy.promotion_checks, self.store.engine, name, number))


class PolicyHandler(ReviewApiHandler):
    auth_resource = "cellops.policies"  # writing needs the admin role
    max_body = POLICY_MAX_BODY

    @operation("A model's promotion policy (empty when none is set)", PromotionPolicy)
    @authorized
    async def get(self, name: str) -> None:
        self.write_json(await self.act(policy.get_policy, self.store.engine, name))

    @operation(
        "Set a model's promotion policy: protected aliases and their rules (admin). "
        "updated_by and updated_at are set by the server",
        PromotionPolicy,
        body=PromotionPolicy,
    )
    @authorized
    async def put(self, name: str) -> None:
        body = await self.body_as(PromotionPolicy)
        stored = await self.act(
            policy.set_policy, self.store.engine, name, body, self.caller().name
        )
        hub: ActivityHub | None = self.settings.get("cellops_activity")
        if hub is not None:
            hub.publish_models([name])  # promotion checks shown per version change
            hub.publish_activity()
        self.write_json(stored)
