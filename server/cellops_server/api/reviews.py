"""Reviews of model versions and promotion policies (review/reviews.py, review/policy.py)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized

from ..schemas import (
    PromotionChecks,
    PromotionPolicy,
    ReviewCreate,
    ReviewRequestCreate,
    VersionReviews,
)
from .base import ApiError, ApiHandler
from .openapi import operation


class ReviewRequestsHandler(ApiHandler):
    auth_resource = "cellops.review_requests"  # editor

    @operation(
        "Ask named users to review a model version (400 naming an unknown user)",
        VersionReviews,
        body=ReviewRequestCreate,
        status=201,
    )
    @authorized
    async def post(self, name: str, version: str) -> None:
        raise ApiError(501, "not built yet")


class ReviewsHandler(ApiHandler):
    auth_resource = "cellops.reviews"  # writing needs the approver role

    @operation(
        "A version's review state, who approved, who is still asked, and every verdict",
        VersionReviews,
    )
    @authorized
    async def get(self, name: str, version: str) -> None:
        raise ApiError(501, "not built yet")

    @operation(
        "Approve or request changes (approver role; never on your own version)",
        VersionReviews,
        body=ReviewCreate,
        status=201,
    )
    @authorized
    async def post(self, name: str, version: str) -> None:
        raise ApiError(501, "not built yet")


class PromotionChecksHandler(ApiHandler):
    @operation(
        "For each protected alias of the model: may this version take it now, and if not, "
        "which rules fail",
        PromotionChecks,
    )
    @authorized
    async def get(self, name: str, version: str) -> None:
        raise ApiError(501, "not built yet")


class PolicyHandler(ApiHandler):
    auth_resource = "cellops.policies"  # writing needs the admin role

    @operation("A model's promotion policy (empty when none is set)", PromotionPolicy)
    @authorized
    async def get(self, name: str) -> None:
        raise ApiError(501, "not built yet")

    @operation(
        "Set a model's promotion policy: protected aliases and their rules (admin)",
        PromotionPolicy,
        body=PromotionPolicy,
    )
    @authorized
    async def put(self, name: str) -> None:
        raise ApiError(501, "not built yet")
