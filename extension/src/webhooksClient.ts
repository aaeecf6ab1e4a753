/**
 * Typed client of the webhook endpoints (issue 13, admin only): register, list, change
 * (URL, events, secret), delete, send a test, read a webhook's recent deliveries.
 *
 * Calls go through `requestAPI` (token + XSRF via `ServerConnection.makeRequest`) with the
 * settings of a `CellopsClient`; a refusal is a `CellopsAPIError` (403 for non-admins,
 * 400 with `error` for a bad URL, event or secret, 404 for a webhook that is gone).
 */
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from './api';
import type { components } from './generated/openapi';

type Schemas = components['schemas'];

// -- Wire types -----------------------------------------------------------------------------

/** The events a webhook can subscribe to, in the order the form lists them. */
export const WEBHOOK_EVENTS = [
  'run.finished',
  'model_version.created',
  'alias.moved',
  'review.submitted',
  'comment.created',
  'deployment.changed',
  'drift.detected'
] as const;

export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export type DeliveryStatus = Schemas['WebhookAttempt']['status'];

/** The latest attempt to deliver to a webhook (`GET webhooks` items). */
export type IWebhookLastDelivery = Schemas['WebhookLastDelivery'];

/** A registered webhook; its secret is never sent back. */
export type IWebhook = Schemas['Webhook'];

/** `POST webhooks`. */
export type IWebhookCreate = Schemas['WebhookCreate'];

/** `PATCH webhooks/{id}`: any of URL, events, secret; what is left out is kept. */
export type IWebhookPatch = Schemas['WebhookPatch'];

/**
 * One attempt to deliver one event (`GET webhooks/{id}/deliveries`); `id` is the
 * delivery's, the same on each of its retries.
 */
export type IWebhookDelivery = Schemas['WebhookAttempt'];

// -- The client -----------------------------------------------------------------------------

function webhookPath(id: number | string): string {
  return `webhooks/${encodeURIComponent(String(id))}`;
}

/** One method per webhook endpoint of `cellops/api/v1` (see `openapi.json`). */
export class WebhooksClient {
  constructor(
    readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  /** A webhooks client talking to the same server as `client`. */
  static of(client: { settings: ServerConnection.ISettings }): WebhooksClient {
    return new WebhooksClient(client.settings);
  }

  /** The team's webhooks with their latest delivery. */
  async list(): Promise<IWebhook[]> {
    const page = await requestAPI<Schemas['WebhookList']>(
      'webhooks',
      {},
      this.settings
    );
    return page.items;
  }

  /** Register a webhook (answers it, without the secret). */
  create(webhook: IWebhookCreate): Promise<IWebhook> {
    return requestAPI(
      'webhooks',
      { method: 'POST', body: JSON.stringify(webhook) },
      this.settings
    );
  }

  /** Change what `patch` gives and keep the rest (answers the webhook, without the secret). */
  update(id: number | string, patch: IWebhookPatch): Promise<IWebhook> {
    return requestAPI(
      webhookPath(id),
      { method: 'PATCH', body: JSON.stringify(patch) },
      this.settings
    );
  }

  delete(id: number | string): Promise<void> {
    return requestAPI(webhookPath(id), { method: 'DELETE' }, this.settings);
  }

  /** Queue a test delivery; answers its delivery id (shown once attempted). */
  async test(id: number | string): Promise<string> {
    const queued = await requestAPI<Schemas['WebhookTestQueued']>(
      `${webhookPath(id)}/test`,
      { method: 'POST', body: '{}' },
      this.settings
    );
    return queued.delivery;
  }

  /** A webhook's recent delivery attempts, newest first. */
  async deliveries(id: number | string): Promise<IWebhookDelivery[]> {
    const page = await requestAPI<Schemas['WebhookAttemptList']>(
      `${webhookPath(id)}/deliveries`,
      {},
      this.settings
    );
    return page.items;
  }
}
