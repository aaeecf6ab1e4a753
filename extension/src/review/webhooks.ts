/**
 * The admin's webhooks, at the head of the Activity tab (issue 13): collapsed by default
 * with a count, so it stays out of the way; absent for everyone who is not an admin (the
 * server refuses them with 403 anyway, and they are never asked).
 *
 * Each webhook shows its URL, events and latest delivery, a "Send test" button, a table of
 * its recent deliveries, an "Edit" button and a delete button (confirmed). The form at the
 * bottom registers a new one; an error the server answers (400 `{"error"}`: a refused URL,
 * an unknown event) is shown next to the form.
 *
 * "Edit" opens a form inside that webhook's item (several may be open; each is kept across
 * re-renders, so what was typed stays): URL and events filled in from the webhook, the
 * secret empty (empty keeps the current one; "Generate" makes a new one). "Save" sends only
 * what changed (`PATCH`), and is disabled while nothing has; "Cancel" (or Escape) closes the
 * form without a request. A refusal is shown in the form, which stays open with what was
 * typed; a change that went through closes it and lists the webhooks again.
 *
 * URLs, errors and event names come from users and remote servers: all text is set with
 * `textContent`, and a webhook's URL is never made a link.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';

import { CellopsAPIError } from '../api';
import { CoalescedRun } from '../coalesce';
import { IMe } from '../reviewClient';
import { button, h, timeSpan } from '../sidebar/dom';
import {
  DeliveryStatus,
  IWebhook,
  IWebhookDelivery,
  IWebhookPatch,
  WEBHOOK_EVENTS,
  WebhooksClient
} from '../webhooksClient';

/** How often the deliveries are read again after "Send test", and for how long. */
const TEST_POLL_MS = 1000;
const TEST_POLL_TIMES = 30;

/** Bytes of a generated secret (64 hex characters). */
const SECRET_BYTES = 32;

export interface IWebhooksSectionOptions {
  client: WebhooksClient;
  trans: TranslationBundle;
  /** The caller, once known: only an admin sees the section. */
  me: () => IMe | null;
  /** An error that is not about one webhook or the form (the server unreachable). */
  onError: (error: unknown) => void;
}

/** "delivered", "retrying", "failed", translated. */
function statusLabel(status: DeliveryStatus, trans: TranslationBundle): string {
  switch (status) {
    case 'delivered':
      return trans.__('delivered');
    case 'retrying':
      return trans.__('retrying');
    case 'failed':
      return trans.__('failed');
    default:
      return String(status);
  }
}

/** "85 ms", "2.4 s". */
function durationLabel(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) {
    return '';
  }
  return ms < 1000
    ? `${String(Math.round(ms))} ms`
    : `${(ms / 1000).toFixed(1)} s`;
}

/** A random secret, hex: what an admin pastes into the receiver's configuration. */
function randomSecret(): string {
  const bytes = new Uint8Array(SECRET_BYTES);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
}

/** The URL, event and secret inputs of a form: the add form's and each edit form's. */
interface IWebhookFields {
  url: HTMLInputElement;
  /** One checkbox per event, in the order of `WEBHOOK_EVENTS`. */
  events: HTMLInputElement[];
  secret: HTMLInputElement;
  /** The labelled fields, in order: URL, events, secret (with "Generate"). */
  nodes: HTMLElement[];
}

/**
 * The fields of a webhook form, empty. "Generate" fills in a random secret and shows it;
 * it fires `input` on the secret, as typing does.
 */
function webhookFields(
  trans: TranslationBundle,
  secretPlaceholder: string
): IWebhookFields {
  const urlInput = document.createElement('input');
  urlInput.type = 'url';
  urlInput.className = 'cellops-webhook-url-input';
  urlInput.placeholder = 'https://ci.example.com/hooks/cellops';
  urlInput.setAttribute('aria-label', trans.__('URL'));
  urlInput.autocomplete = 'off';
  urlInput.spellcheck = false;
  const url = h('label', 'cellops-webhook-field');
  url.append(
    h('span', 'cellops-webhook-field-label', trans.__('URL')),
    urlInput
  );

  const boxes: HTMLInputElement[] = [];
  const events = h('fieldset', 'cellops-webhook-event-choices');
  events.append(h('legend', '', trans.__('Events')));
  for (const event of WEBHOOK_EVENTS) {
    const box = h('input', 'cellops-webhook-event');
    box.type = 'checkbox';
    box.value = event;
    const label = h('label', 'cellops-webhook-event-label');
    label.append(box, h('span', '', event));
    events.append(label);
    boxes.push(box);
  }

  const secretInput = document.createElement('input');
  secretInput.type = 'password';
  secretInput.className = 'cellops-webhook-secret';
  secretInput.autocomplete = 'new-password';
  secretInput.setAttribute('aria-label', trans.__('Secret'));
  secretInput.placeholder = secretPlaceholder;
  secretInput.title = secretPlaceholder; // the placeholder may not fit
  const generate = button(
    'cellops-webhook-generate',
    trans.__('Generate'),
    trans.__('Fill in a random secret and show it, to copy into your receiver'),
    () => {
      secretInput.value = randomSecret();
      secretInput.type = 'text';
      secretInput.select();
      secretInput.dispatchEvent(new Event('input', { bubbles: true }));
    }
  );
  generate.type = 'button';
  const secret = h('label', 'cellops-webhook-field');
  const secretRow = h('span', 'cellops-webhook-secret-row');
  secretRow.append(secretInput, generate);
  secret.append(
    h('span', 'cellops-webhook-field-label', trans.__('Secret')),
    secretRow
  );

  return {
    url: urlInput,
    events: boxes,
    secret: secretInput,
    nodes: [url, events, secret]
  };
}

/** The ticked events, in the order of `WEBHOOK_EVENTS`. */
function checkedEvents(fields: IWebhookFields): string[] {
  return fields.events.filter(b => b.checked).map(b => b.value);
}

/** What the browser can tell at once (the server checks everything else), or null. */
function missingInput(
  trans: TranslationBundle,
  url: string,
  events: string[]
): string | null {
  if (url === '') {
    return trans.__('Enter the URL to call.');
  }
  if (events.length === 0) {
    return trans.__('Tick at least one event.');
  }
  return null;
}

/** An open edit form of one webhook, kept across re-renders of the list. */
interface IEditForm {
  node: HTMLFormElement;
  fields: IWebhookFields;
  save: HTMLButtonElement;
  error: HTMLElement;
  /** Its `PATCH` is under way ("Save" disabled). */
  saving: boolean;
}

/**
 * The webhooks section (`.cellops-webhooks`, a `<details>`): list, deliveries, edit forms,
 * the add form.
 */
export class WebhooksSection {
  constructor(private readonly _options: IWebhooksSectionOptions) {
    const trans = _options.trans;
    this.node.className = 'cellops-webhooks';
    this.node.hidden = true;
    const summary = h(
      'summary',
      'cellops-section-header cellops-webhooks-summary'
    );
    summary.title = trans.__(
      "Your team's webhooks: what they receive, their recent deliveries (admins only)"
    );
    summary.append(
      h('span', 'cellops-section-title', trans.__('Webhooks')),
      this._count
    );
    this.node.addEventListener('toggle', () => {
      if (this.node.open) {
        void this.refresh();
      }
    });
    this._list.setAttribute('aria-label', trans.__('Webhooks'));
    this._fields = webhookFields(
      trans,
      trans.__('signs every delivery (HMAC-SHA256)')
    );
    this.node.append(summary, this._list, this._buildForm());
  }

  /** Whether the caller may see the section (an admin). */
  get visible(): boolean {
    return this._options.me()?.role === 'admin';
  }

  /**
   * Show or hide by the caller's role and, for an admin, list the webhooks (and the
   * open delivery tables) again. Coalesced: one fetch at a time, one more queued.
   */
  refresh(): Promise<void> {
    return this._refreshes.run();
  }

  dispose(): void {
    this._disposed = true;
  }

  private async _refresh(): Promise<void> {
    if (this._disposed) {
      return;
    }
    if (!this.visible) {
      this.node.hidden = true;
      return;
    }
    try {
      this._webhooks = await this._options.client.list();
    } catch (error) {
      if (error instanceof CellopsAPIError && error.status === 403) {
        this.node.hidden = true; // no longer an admin
        return;
      }
      if (error instanceof CellopsAPIError && error.status === 404) {
        this.node.hidden = true; // a backend without webhooks
        return;
      }
      this._options.onError(error);
      return;
    }
    this.node.hidden = false;
    const ids = new Set(this._webhooks.map(w => String(w.id)));
    for (const id of [...this._open]) {
      if (!ids.has(id)) {
        this._open.delete(id);
        this._deliveries.delete(id);
      }
    }
    for (const id of [...this._editing.keys()]) {
      if (!ids.has(id)) {
        this._editing.delete(id); // deleted meanwhile: nothing left to edit
      }
    }
    if (this.node.open) {
      await Promise.all(
        [...this._open].map(id =>
          this._loadDeliveries(id).catch(() => undefined)
        )
      );
    }
    this._render();
  }

  private _render(): void {
    // An open edit form is moved into the new item: give it its focus back.
    const focused = document.activeElement;
    this._renderList();
    if (
      focused instanceof HTMLElement &&
      focused !== document.activeElement &&
      focused.isConnected &&
      this._list.contains(focused)
    ) {
      focused.focus({ preventScroll: true });
    }
  }

  private _renderList(): void {
    const trans = this._options.trans;
    const n = this._webhooks.length;
    this._count.textContent = String(n);
    this._count.dataset.count = String(n);
    const failing = this._webhooks.filter(
      w => w.last_delivery?.status === 'failed'
    ).length;
    this._count.classList.toggle('cellops-mod-failing', failing > 0);
    this._count.title =
      failing > 0
        ? trans._n(
            '%1 webhook, its last delivery failed',
            '%1 webhooks, %2 whose last delivery failed',
            n,
            failing
          )
        : trans._n('%1 webhook', '%1 webhooks', n);
    if (n === 0) {
      this._list.replaceChildren(
        h(
          'div',
          'cellops-empty',
          trans.__(
            'No webhooks yet: add one below to call your own services on events.'
          )
        )
      );
      return;
    }
    this._list.replaceChildren(...this._webhooks.map(w => this._item(w)));
  }

  private _item(webhook: IWebhook): HTMLElement {
    const trans = this._options.trans;
    const id = String(webhook.id);
    const node = h('div', 'cellops-webhook');
    node.dataset.id = id;
    const head = h('div', 'cellops-webhook-head');
    head.append(
      h('span', 'cellops-webhook-url', webhook.url),
      this._last(webhook)
    );
    const events = h(
      'div',
      'cellops-webhook-events',
      webhook.events.join(', ')
    );
    events.title = trans.__('Events it receives');
    const error = h('div', 'cellops-webhook-error', this._errors.get(id) ?? '');
    error.setAttribute('role', 'alert');
    error.hidden = !this._errors.has(id);
    const open = this._open.has(id);
    const actions = h('div', 'cellops-webhook-actions');
    const test = button(
      'cellops-webhook-test',
      trans.__('Send test'),
      trans.__('Send a test event to this URL now'),
      () => {
        void this._sendTest(webhook);
      }
    );
    test.disabled = this._testing.has(id);
    const toggle = button(
      'cellops-webhook-toggle',
      open ? trans.__('Hide deliveries') : trans.__('Deliveries'),
      trans.__('Recent delivery attempts: status, response code, time taken'),
      () => {
        void this._toggleDeliveries(id);
      }
    );
    toggle.setAttribute('aria-expanded', String(open));
    const editor = this._editing.get(id);
    const edit = button(
      'cellops-webhook-edit',
      trans.__('Edit'),
      trans.__('Change its URL, events or secret'),
      () => {
        this._startEdit(webhook);
      }
    );
    edit.disabled = editor !== undefined; // its form is open below
    edit.setAttribute('aria-expanded', String(editor !== undefined));
    const remove = button(
      'cellops-webhook-delete',
      trans.__('Delete'),
      trans.__('Stop calling this URL'),
      () => {
        void this._delete(webhook);
      }
    );
    actions.append(test, toggle, edit, remove);
    node.append(head, events, actions);
    if (editor) {
      node.append(editor.node);
    }
    node.append(error);
    if (open) {
      node.append(this._table(this._deliveries.get(id) ?? []));
    }
    return node;
  }

  /** "delivered · 200 · 2 minutes ago", or "never delivered". */
  private _last(webhook: IWebhook): HTMLElement {
    const trans = this._options.trans;
    const last = webhook.last_delivery;
    const node = h('span', 'cellops-webhook-last');
    if (!last) {
      node.textContent = trans.__('no delivery yet');
      node.dataset.status = 'none';
      return node;
    }
    node.dataset.status = last.status;
    node.append(
      h('span', 'cellops-webhook-last-status', statusLabel(last.status, trans))
    );
    if (last.response_code !== null) {
      node.append(
        h('span', 'cellops-webhook-last-code', String(last.response_code))
      );
    }
    node.append(timeSpan('cellops-webhook-last-time', last.at));
    node.title = trans.__('Latest delivery attempt');
    return node;
  }

  private _table(deliveries: IWebhookDelivery[]): HTMLElement {
    const trans = this._options.trans;
    const wrap = h('div', 'cellops-webhook-deliveries-wrap');
    if (deliveries.length === 0) {
      wrap.append(
        h(
          'div',
          'cellops-empty cellops-webhook-no-deliveries',
          trans.__('No deliveries yet. "Send test" sends one now.')
        )
      );
      return wrap;
    }
    const table = h('table', 'cellops-webhook-deliveries');
    const head = h('tr', '');
    // Narrow sidebar: short headings (the full name as tooltip), the error on a row of
    // its own under its attempt.
    const columns: [string, string][] = [
      [trans.__('Event'), trans.__('Event')],
      [trans.__('#'), trans.__('Attempt')],
      [trans.__('Status'), trans.__('Status')],
      [trans.__('Code'), trans.__('Response code')],
      [trans.__('Time'), trans.__('Time')],
      [trans.__('Took'), trans.__('Duration')]
    ];
    for (const [title, full] of columns) {
      const th = h('th', '', title);
      th.scope = 'col';
      th.title = full;
      th.setAttribute('aria-label', full);
      head.append(th);
    }
    const thead = h('thead', '');
    thead.append(head);
    const body = h('tbody', '');
    for (const d of deliveries) {
      const row = h('tr', 'cellops-webhook-delivery');
      row.dataset.id = d.id;
      row.dataset.status = d.status;
      const status = h('td', 'cellops-delivery-status');
      status.append(
        h('span', 'cellops-delivery-status-text', statusLabel(d.status, trans))
      );
      const time = h('td', 'cellops-delivery-at');
      time.append(timeSpan('', d.at));
      row.append(
        h('td', 'cellops-delivery-event', d.event),
        h('td', 'cellops-delivery-attempt', String(d.attempt)),
        status,
        h(
          'td',
          'cellops-delivery-code',
          d.response_code === null ? '' : String(d.response_code)
        ),
        time,
        h('td', 'cellops-delivery-duration', durationLabel(d.duration_ms))
      );
      body.append(row);
      if (d.error) {
        const errorRow = h('tr', 'cellops-webhook-delivery-error');
        errorRow.dataset.id = d.id;
        const error = h('td', 'cellops-delivery-error', d.error);
        error.colSpan = columns.length;
        errorRow.append(error);
        body.append(errorRow);
      }
    }
    table.append(thead, body);
    wrap.append(table);
    return wrap;
  }

  private async _loadDeliveries(id: string): Promise<void> {
    this._deliveries.set(id, await this._options.client.deliveries(id));
  }

  private async _toggleDeliveries(id: string): Promise<void> {
    this._errors.delete(id);
    if (this._open.has(id)) {
      this._open.delete(id);
      this._render();
      return;
    }
    this._open.add(id);
    try {
      await this._loadDeliveries(id);
    } catch (e) {
      this._open.delete(id);
      this._showError(id, e);
      return;
    }
    this._render();
  }

  /**
   * Queue a test delivery, then show the deliveries until the new attempt has an
   * answer (delivered or failed) — it is sent in the background, after the 202.
   */
  private async _sendTest(webhook: IWebhook): Promise<void> {
    const id = String(webhook.id);
    this._errors.delete(id);
    this._testing.add(id);
    this._render();
    try {
      const delivery = await this._options.client.test(id);
      this._open.add(id);
      for (let i = 0; i < TEST_POLL_TIMES && !this._disposed; i++) {
        const deliveries = await this._options.client.deliveries(id);
        this._deliveries.set(id, deliveries);
        this._render();
        // Attempts of one delivery share its id; a retry keeps the wait going.
        const settled = deliveries.some(
          d => d.id === delivery && d.status !== 'retrying'
        );
        if (settled) {
          break;
        }
        await new Promise(resolve => setTimeout(resolve, TEST_POLL_MS));
      }
      await this.refresh(); // the latest delivery in the list
    } catch (e) {
      this._showError(id, e);
    } finally {
      this._testing.delete(id);
      this._render();
    }
  }

  private async _delete(webhook: IWebhook): Promise<void> {
    const trans = this._options.trans;
    const answer = await showDialog({
      title: trans.__('Delete this webhook?'),
      body: trans.__(
        '%1 will no longer receive events, and its delivery log is deleted with it.',
        webhook.url
      ),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.warnButton({ label: trans.__('Delete') })
      ]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await this._options.client.delete(webhook.id);
    } catch (e) {
      this._showError(String(webhook.id), e);
      return;
    }
    await this.refresh();
  }

  /** The server's answer under the webhook it is about; anything else to the sidebar. */
  private _showError(id: string, error: unknown): void {
    if (error instanceof CellopsAPIError) {
      this._errors.set(id, error.message);
      this._render();
      return;
    }
    this._options.onError(error);
  }

  // -- The form ------------------------------------------------------------------------------

  private _buildForm(): HTMLElement {
    const trans = this._options.trans;
    const form = h('form', 'cellops-webhook-form');
    form.noValidate = true; // the server says what is wrong, next to the form
    form.setAttribute('aria-label', trans.__('Add a webhook'));
    this._add.type = 'submit';
    this._add.className = 'cellops-webhook-add jp-mod-styled jp-mod-accept';
    this._add.textContent = trans.__('Add webhook');
    this._formError.className = 'cellops-webhook-form-error';
    this._formError.setAttribute('role', 'alert');
    this._formError.hidden = true;

    form.append(
      h('div', 'cellops-webhook-form-title', trans.__('Add a webhook')),
      ...this._fields.nodes,
      this._add,
      this._formError
    );
    form.addEventListener('submit', event => {
      event.preventDefault();
      void this._submit();
    });
    return form;
  }

  private async _submit(): Promise<void> {
    const trans = this._options.trans;
    const fields = this._fields;
    const events = checkedEvents(fields);
    const url = fields.url.value.trim();
    const missing =
      missingInput(trans, url, events) ??
      (fields.secret.value === ''
        ? trans.__(
            'Enter a secret (or Generate one): receivers check signatures with it.'
          )
        : null);
    if (missing !== null) {
      this._formError.textContent = missing;
      this._formError.hidden = false;
      return;
    }
    this._add.disabled = true;
    try {
      await this._options.client.create({
        url,
        events,
        secret: fields.secret.value
      });
    } catch (error) {
      if (error instanceof CellopsAPIError) {
        this._formError.textContent = error.message;
        this._formError.hidden = false;
      } else {
        this._options.onError(error);
      }
      return;
    } finally {
      this._add.disabled = false;
    }
    this._formError.hidden = true;
    this._formError.textContent = '';
    fields.url.value = '';
    fields.secret.value = '';
    fields.secret.type = 'password';
    fields.events.forEach(b => {
      b.checked = false;
    });
    await this.refresh();
  }

  // -- Edit forms ----------------------------------------------------------------------------

  /** Open the webhook's edit form (or go to it, if open), filled in from the webhook. */
  private _startEdit(webhook: IWebhook): void {
    const id = String(webhook.id);
    let editor = this._editing.get(id);
    if (!editor) {
      editor = this._editForm(webhook);
      this._editing.set(id, editor);
      this._errors.delete(id);
      this._render();
    }
    editor.fields.url.focus();
  }

  private _editForm(webhook: IWebhook): IEditForm {
    const trans = this._options.trans;
    const id = String(webhook.id);
    const node = h('form', 'cellops-webhook-edit-form');
    node.noValidate = true; // the server says what is wrong, in the form
    node.setAttribute('aria-label', trans.__('Edit this webhook'));
    const fields = webhookFields(
      trans,
      trans.__('empty: keep the current secret')
    );
    fields.url.value = webhook.url;
    for (const box of fields.events) {
      box.checked = webhook.events.includes(box.value);
    }
    const save = h(
      'button',
      'cellops-webhook-save jp-mod-styled jp-mod-accept',
      trans.__('Save')
    );
    save.type = 'submit';
    const cancel = button(
      'cellops-webhook-cancel jp-mod-styled jp-mod-reject',
      trans.__('Cancel'),
      trans.__('Close without changing anything'),
      () => {
        this._closeEdit(id);
      }
    );
    cancel.type = 'button';
    const buttons = h('div', 'cellops-webhook-edit-buttons');
    buttons.append(save, cancel);
    const error = h('div', 'cellops-webhook-form-error');
    error.setAttribute('role', 'alert');
    error.hidden = true;
    node.append(
      h('div', 'cellops-webhook-form-title', trans.__('Edit this webhook')),
      ...fields.nodes,
      buttons,
      error
    );
    const editor: IEditForm = { node, fields, save, error, saving: false };
    node.addEventListener('input', () => {
      this._updateSave(id, editor);
    });
    node.addEventListener('change', () => {
      this._updateSave(id, editor);
    });
    node.addEventListener('keydown', event => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation(); // not JupyterLab's Escape
        this._closeEdit(id);
      }
    });
    node.addEventListener('submit', event => {
      event.preventDefault();
      void this._save(id, editor);
    });
    this._updateSave(id, editor);
    return editor;
  }

  /**
   * What the form changes on the webhook as listed: the URL if different, the events if
   * different (as a set), the secret if one was typed. Empty when nothing changed.
   */
  private _patch(id: string, fields: IWebhookFields): IWebhookPatch {
    const webhook = this._webhooks.find(w => String(w.id) === id);
    if (!webhook) {
      return {};
    }
    const patch: IWebhookPatch = {};
    const url = fields.url.value.trim();
    if (url !== webhook.url) {
      patch.url = url;
    }
    const events = checkedEvents(fields);
    const before = new Set(webhook.events);
    if (
      events.length !== before.size ||
      events.some(event => !before.has(event))
    ) {
      patch.events = events;
    }
    if (fields.secret.value !== '') {
      patch.secret = fields.secret.value;
    }
    return patch;
  }

  /** "Save" only when something changed, and not twice at once. */
  private _updateSave(id: string, editor: IEditForm): void {
    const trans = this._options.trans;
    const unchanged = Object.keys(this._patch(id, editor.fields)).length === 0;
    editor.save.disabled = editor.saving || unchanged;
    editor.save.title = unchanged
      ? trans.__('Nothing changed yet')
      : trans.__('Save the changes: deliveries from now on use them');
  }

  private async _save(id: string, editor: IEditForm): Promise<void> {
    const trans = this._options.trans;
    const fields = editor.fields;
    const missing = missingInput(
      trans,
      fields.url.value.trim(),
      checkedEvents(fields)
    );
    if (missing !== null) {
      this._showEditError(editor, missing);
      return;
    }
    const patch = this._patch(id, fields);
    if (editor.saving || Object.keys(patch).length === 0) {
      return; // nothing to save ("Save" is disabled; Enter in a field still submits)
    }
    editor.saving = true;
    this._updateSave(id, editor);
    try {
      await this._options.client.update(id, patch);
    } catch (error) {
      if (error instanceof CellopsAPIError) {
        this._showEditError(editor, error.message);
      } else {
        this._options.onError(error);
      }
      return;
    } finally {
      editor.saving = false;
      this._updateSave(id, editor);
    }
    if (this._editing.get(id) === editor) {
      this._editing.delete(id);
    }
    await this.refresh();
  }

  /** Close the form: nothing is sent, what was typed is dropped. */
  private _closeEdit(id: string): void {
    if (!this._editing.delete(id)) {
      return;
    }
    this._render();
    // Back where the user was: the webhook's "Edit" button.
    this._list
      .querySelector<HTMLButtonElement>(
        `.cellops-webhook[data-id="${CSS.escape(id)}"] .cellops-webhook-edit`
      )
      ?.focus();
  }

  private _showEditError(editor: IEditForm, message: string): void {
    editor.error.textContent = message;
    editor.error.hidden = false;
  }

  readonly node = document.createElement('details');
  private readonly _count = h('span', 'cellops-webhooks-count');
  private readonly _list = h('div', 'cellops-webhooks-list');
  /** The add form's inputs. */
  private readonly _fields: IWebhookFields;
  private readonly _add = document.createElement('button');
  private readonly _formError = document.createElement('div');
  private _webhooks: IWebhook[] = [];
  private readonly _open = new Set<string>();
  /** Webhooks whose test delivery is being waited for ("Send test" disabled). */
  private readonly _testing = new Set<string>();
  /** What the server answered to the last failed action on a webhook, by id. */
  private readonly _errors = new Map<string, string>();
  private readonly _deliveries = new Map<string, IWebhookDelivery[]>();
  /** The open edit forms, by webhook id. */
  private readonly _editing = new Map<string, IEditForm>();
  private readonly _refreshes = new CoalescedRun(() => this._refresh());
  private _disposed = false;
}
