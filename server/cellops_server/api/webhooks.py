"""Webhooks (webhooks/registry.py): register, list, change, delete, send a test ping, read the
deliveries log. Admin only, in every mode: a webhook sends the team's activity to a URL of
the admin's choosing, and its secret signs what is sent.

In team mode the role is checked here, after ``@authorized`` (which lets every member
read); embedded, the Jupyter user is the admin of their own store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jupyter_server.auth.decorator import authorized

from ..schemas import (
    Webhook,
    WebhookAttemptList,
    WebhookCreate,
    WebhookList,
    WebhookPatch,
    WebhookTestQueued,
)
from ..webhooks import registry
from ..webhooks.outbox import Settings
from .base import ApiError, ApiHandler
from .openapi import operation, query


class WebhookApiHandler(ApiHandler):
    auth_resource = "cellops.webhooks"
    max_body = 16 * 1024

    def admin_only(self) -> None:
        if not self.caller().has_role("admin"):
            raise ApiError(403, "only an admin manages webhooks", {"needed": "admin"})

    @property
    def webhook_settings(self) -> Settings:
        return self.settings.get("cellops_webhook_settings") or Settings()

    def wake(self) -> None:
        """Tell this process's dispatcher (if it runs here) to look at the outbox now."""
        wake: Callable[[], Any] | None = self.settings.get("cellops_webhooks_wake")
        if callable(wake):
            wake()


class WebhooksHandler(WebhookApiHandler):
    @operation("Every webhook, with its latest delivery attempt (admin)", WebhookList)
    @authorized
    async def get(self) -> None:
        self.admin_only()
        self.write_json(WebhookList(items=await self.call(registry.list_all, self.store.engine)))

    @operation(
        "Register a webhook (admin): an http(s) URL, the event types it gets, and a secret "
        "that signs every delivery (never shown again). 400 for an unknown event type, an "
        "empty list, a URL that is not http(s), or a literal private address while private "
        "targets are not allowed",
        Webhook,
        body=WebhookCreate,
        status=201,
    )
    @authorized
    async def post(self) -> None:
        self.admin_only()
        body = await self.body_as(WebhookCreate)
        allow = self.webhook_settings.allow_private
        created = await self.call(registry.create, self.store.engine, body, self.identity(), allow)
        self.wake()
        self.write_json(created, status=201)


class WebhookHandler(WebhookApiHandler):
    @operation(
        "Change a webhook (admin): any of its URL, events and secret, checked as at "
        "registration; deliveries not yet sent go to the new URL with the new secret",
        Webhook,
        body=WebhookPatch,
    )
    @authorized
    async def patch(self, webhook_id: str) -> None:
        self.admin_only()
        hook = self.id_arg(webhook_id, "webhook id")
        body = await self.body_as(WebhookPatch)
        allow = self.webhook_settings.allow_private
        changed = await self.call(registry.update, self.store.engine, hook, body, allow)
        self.wake()
        self.write_json(changed)

    @operation("Delete a webhook, its queued deliveries and its log (admin)", None, status=204)
    @authorized
    async def delete(self, webhook_id: str) -> None:
        self.admin_only()
        await self.call(registry.delete, self.store.engine, self.id_arg(webhook_id, "webhook id"))
        self.set_status(204)
        self.finish()


class WebhookTestHandler(WebhookApiHandler):
    @operation(
        "Queue a test delivery (event type `ping`) through the outbox (admin); its attempts "
        "show in the deliveries log",
        WebhookTestQueued,
        status=202,
    )
    @authorized
    async def post(self, webhook_id: str) -> None:
        self.admin_only()
        hook = self.id_arg(webhook_id, "webhook id")
        delivery = await self.call(registry.test, self.store.engine, hook, self.identity())
        self.wake()
        self.write_json(WebhookTestQueued(delivery=delivery), status=202)


class WebhookDeliveriesHandler(WebhookApiHandler):
    @operation(
        "A webhook's deliveries log, newest first (admin): one item per attempt, `id` the "
        "delivery's (the same on its retries), the status code and time taken",
        WebhookAttemptList,
        params=[query.limit],
    )
    @authorized
    async def get(self, webhook_id: str) -> None:
        self.admin_only()
        hook = self.id_arg(webhook_id, "webhook id")
        items = await self.call(registry.attempts, self.store.engine, hook, self.query_limit())
        self.write_json(WebhookAttemptList(items=items))
