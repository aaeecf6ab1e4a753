/**
 * Review of one model version in the Models tab: its state, Request review (editor+),
 * Approve / Request changes (approver+, never on your own version), its comment thread,
 * and for each protected alias what is still missing. Also the dialog of a refused alias
 * move (409), which lists each failed rule and lets an admin override with a reason.
 *
 * Names, messages and reasons come from other users: all set with `textContent`.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CellopsAPIError, IModelVersion } from '../api';
import {
  IAliasCheck,
  IFailedRule,
  IMe,
  IUser,
  IVersionReviews,
  ReviewClient,
  ReviewState,
  Verdict,
  roleAllows
} from '../reviewClient';
import { button, h } from '../sidebar/dom';
import { CommentThread } from './thread';

export interface IModelReviewOptions {
  client: ReviewClient;
  trans: TranslationBundle;
  onError: (error: unknown) => void;
  /** A review changed something the Models tab shows: refetch it. */
  onChanged: () => void;
}

/**
 * The caller (`GET me`, asked once per client; asked again after a failure: an older
 * backend has no such endpoint, one starting up answers 502), or null when unknown.
 */
export async function callerOf(client: ReviewClient): Promise<IMe | null> {
  try {
    return await client.whoami();
  } catch {
    return null;
  }
}

/** A 404/501 of a review endpoint: the backend has no such feature (yet). */
function unsupported(error: unknown): boolean {
  return (
    error instanceof CellopsAPIError &&
    (error.status === 404 || error.status === 501)
  );
}

/**
 * The review block of one version (`.cellops-model-review`). Kept across refreshes of
 * the Models tab so that its thread (and any reply being typed) survives them.
 */
export class ModelReview {
  constructor(
    private readonly _options: IModelReviewOptions,
    private _version: IModelVersion
  ) {
    this.node.dataset.version = String(_version.version);
    this._thread = new CommentThread({
      client: _options.client,
      trans: _options.trans,
      target: {
        kind: 'model_version',
        model: _version.model,
        version: _version.version
      },
      emptyText: _options.trans.__('No comments on this version yet.')
    });
    this.node.append(
      this._state,
      this._actions,
      this._checks,
      this._thread.node
    );
  }

  readonly node = h('div', 'cellops-model-review');

  /**
   * Show `v` (as just listed) for `me`; `protectedAliases`: whether the model's policy
   * protects any alias (only then are promotion checks asked for).
   */
  async update(
    v: IModelVersion,
    me: IMe | null,
    protectedAliases: boolean
  ): Promise<void> {
    this._version = v;
    const summary = v.review as IModelVersion['review'] | undefined;
    const state: ReviewState = summary?.state ?? 'none';
    this._renderState(state, summary?.approvals ?? [], null);
    this._renderActions(me);
    const [reviews, checks] = await Promise.all([
      state === 'none' ? null : this._quiet(() => this._reviews(v)),
      protectedAliases ? this._quiet(() => this._promotion(v)) : [],
      this._quiet(() => this._thread.refresh())
    ]);
    if (v !== this._version) {
      return; // a newer listing arrived meanwhile
    }
    if (reviews) {
      this._renderState(reviews.state, reviews.approvals, reviews);
    }
    this._renderChecks(checks ?? []);
  }

  dispose(): void {
    this._thread.dispose();
    this.node.remove();
  }

  private _reviews(v: IModelVersion): Promise<IVersionReviews> {
    return this._options.client.reviews(v.model, v.version);
  }

  private _promotion(v: IModelVersion): Promise<IAliasCheck[]> {
    return this._options.client.promotionChecks(v.model, v.version);
  }

  /** `request()`, or null when it fails: reported unless the backend lacks the feature. */
  private async _quiet<T>(request: () => Promise<T>): Promise<T | null> {
    try {
      return await request();
    } catch (error) {
      if (!unsupported(error)) {
        this._options.onError(error);
      }
      return null;
    }
  }

  /** "Approved by ada", "Review requested from bob", "Changes requested by carl". */
  private _renderState(
    state: ReviewState,
    approvals: string[],
    detail: IVersionReviews | null
  ): void {
    const trans = this._options.trans;
    const node = this._state;
    node.dataset.state = state;
    const requested = detail?.requested ?? [];
    const changes = detail?.changes_requested ?? [];
    const parts: string[] = [];
    switch (state) {
      case 'none':
        parts.push(trans.__('Not reviewed'));
        break;
      case 'requested':
        parts.push(trans.__('Review requested'));
        break;
      case 'approved':
        parts.push(trans.__('Approved'));
        break;
      case 'changes_requested':
        parts.push(trans.__('Changes requested'));
        break;
    }
    if (approvals.length > 0) {
      parts.push(trans.__('approved by %1', approvals.join(', ')));
    }
    if (changes.length > 0) {
      parts.push(trans.__('changes requested by %1', changes.join(', ')));
    }
    if (requested.length > 0) {
      parts.push(trans.__('waiting for %1', requested.join(', ')));
    }
    node.textContent = parts.join(' · ');
  }

  /** The buttons the caller's role allows (none while the caller is unknown). */
  private _renderActions(me: IMe | null): void {
    const trans = this._options.trans;
    const v = this._version;
    const buttons: HTMLButtonElement[] = [];
    if (me && roleAllows(me.role, 'editor') && !v.archived) {
      buttons.push(
        button(
          'cellops-request-review',
          trans.__('Request review…'),
          trans.__('Ask teammates to review this version'),
          () => void this._requestReview()
        )
      );
    }
    const own = me !== null && v.created_by === me.name;
    if (me && roleAllows(me.role, 'approver') && !own) {
      buttons.push(
        button(
          'cellops-approve',
          trans.__('Approve'),
          trans.__('Approve this version (with an optional comment)'),
          () => void this._review('approve')
        ),
        button(
          'cellops-request-changes',
          trans.__('Request changes'),
          trans.__('Ask for changes before this version is promoted'),
          () => void this._review('request_changes')
        )
      );
    }
    this._actions.replaceChildren(...buttons);
    this._actions.hidden = buttons.length === 0;
  }

  /** Per protected alias: "production: ready" or what is still missing. */
  private _renderChecks(checks: IAliasCheck[]): void {
    const trans = this._options.trans;
    this._checks.replaceChildren(
      ...checks.map(check => {
        const line = h(
          'div',
          'cellops-alias-missing',
          check.allowed
            ? trans.__('%1: ready', check.alias)
            : `${check.alias}: ${check.failed.map(f => f.message).join('; ')}`
        );
        line.dataset.alias = check.alias;
        line.dataset.allowed = String(check.allowed);
        return line;
      })
    );
    this._checks.hidden = checks.length === 0;
  }

  private async _requestReview(): Promise<void> {
    const v = this._version;
    try {
      const users = await this._options.client.users();
      const reviewers = await askReviewers(v, users, this._options.trans);
      if (reviewers === null || reviewers.length === 0) {
        return;
      }
      await this._options.client.requestReview(v.model, v.version, reviewers);
      this._options.onChanged();
    } catch (error) {
      this._options.onError(error);
    }
  }

  private async _review(verdict: Verdict): Promise<void> {
    const v = this._version;
    try {
      const body = await askVerdictComment(v, verdict, this._options.trans);
      if (body === null) {
        return;
      }
      await this._options.client.submitReview(
        v.model,
        v.version,
        verdict,
        body
      );
      this._options.onChanged();
    } catch (error) {
      this._options.onError(error);
    }
  }

  private readonly _state = h('div', 'cellops-review-state');
  private readonly _actions = h('div', 'cellops-review-actions');
  private readonly _checks = h('div', 'cellops-alias-checks');
  private readonly _thread: CommentThread;
}

// -- dialogs ------------------------------------------------------------------------------

/** The members to ask, as checkboxes (the version's author cannot review it). */
class ReviewerPicker extends Widget {
  constructor(v: IModelVersion, users: IUser[], trans: TranslationBundle) {
    super();
    this.addClass('cellops-reviewer-picker');
    const eligible = users.filter(u => u.name !== v.created_by);
    if (eligible.length === 0) {
      this.node.append(
        h(
          'p',
          'cellops-empty',
          trans.__(
            'Nobody else can review it: a version is reviewed by members other than its author.'
          )
        )
      );
      return;
    }
    for (const user of eligible) {
      const label = h('label', 'cellops-reviewer');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.value = user.name;
      box.setAttribute('aria-label', user.name);
      label.append(
        box,
        h('span', 'cellops-reviewer-name', user.name),
        h('span', 'cellops-reviewer-role', user.role)
      );
      // Only an approver's verdict counts towards a protected alias: say so.
      if (!roleAllows(user.role, 'approver')) {
        label.title = trans.__(
          '%1 can comment, but only approvers approve',
          user.name
        );
      }
      this.node.append(label);
    }
  }

  get chosen(): string[] {
    return Array.from(
      this.node.querySelectorAll<HTMLInputElement>('input:checked')
    ).map(box => box.value);
  }
}

/** Ask whom to ask for a review; null if cancelled. */
export async function askReviewers(
  v: IModelVersion,
  users: IUser[],
  trans: TranslationBundle
): Promise<string[] | null> {
  const body = new ReviewerPicker(v, users, trans);
  const result = await showDialog({
    title: trans.__('Request a review of %1 v%2', v.model, String(v.version)),
    body,
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: trans.__('Request') })
    ]
  });
  const chosen = body.chosen;
  body.dispose();
  return result.button.accept ? chosen : null;
}

/** Ask for the optional comment of a verdict; null if cancelled, '' for none. */
export async function askVerdictComment(
  v: IModelVersion,
  verdict: Verdict,
  trans: TranslationBundle
): Promise<string | null> {
  const node = h('div', 'cellops-verdict-dialog');
  const area = document.createElement('textarea');
  area.className = 'cellops-verdict-comment';
  area.rows = 4;
  area.placeholder = trans.__('Comment (optional, Markdown)');
  area.setAttribute('aria-label', trans.__('Comment'));
  node.append(area);
  const approve = verdict === 'approve';
  const result = await showDialog({
    title: approve
      ? trans.__('Approve %1 v%2', v.model, String(v.version))
      : trans.__('Request changes on %1 v%2', v.model, String(v.version)),
    body: new Widget({ node }),
    buttons: [
      Dialog.cancelButton(),
      approve
        ? Dialog.okButton({ label: trans.__('Approve') })
        : Dialog.warnButton({ label: trans.__('Request changes') })
    ],
    focusNodeSelector: 'textarea'
  });
  return result.button.accept ? area.value.trim() : null;
}

/**
 * The 409 of a refused move of a protected alias: each failed rule, and for an admin a
 * field for the written reason of an override. Answers the reason to override with, or
 * null (cancelled, or not an admin).
 */
export async function showRefusedMove(
  model: string,
  alias: string,
  version: number,
  failed: IFailedRule[],
  canOverride: boolean,
  trans: TranslationBundle
): Promise<string | null> {
  const node = h('div', 'cellops-refused-move');
  node.append(
    h(
      'p',
      '',
      trans.__(
        '%1 is protected: v%2 of %3 may not take it yet.',
        alias,
        String(version),
        model
      )
    )
  );
  const list = h('ul', 'cellops-failed-rules');
  for (const rule of failed) {
    const item = h('li', 'cellops-failed-rule', rule.message);
    item.dataset.rule = rule.rule;
    list.append(item);
  }
  node.append(list);
  const reason = document.createElement('textarea');
  if (canOverride) {
    reason.className = 'cellops-override-reason';
    reason.rows = 3;
    reason.required = true; // the dialog refuses to accept while an input is :invalid
    reason.placeholder = trans.__(
      'As an admin you may move it anyway: write why (recorded in the activity feed)'
    );
    reason.setAttribute('aria-label', trans.__('Reason for the override'));
    node.append(reason);
  }
  const dialog = new Dialog({
    title: trans.__('Cannot move %1', alias),
    body: new Widget({ node }),
    buttons: canOverride
      ? [
          Dialog.cancelButton({ label: trans.__('Close') }),
          Dialog.warnButton({ label: trans.__('Override and move') })
        ]
      : [Dialog.okButton({ label: trans.__('Close') })],
    focusNodeSelector: canOverride ? 'textarea' : undefined
  });
  const shown = dialog.launch();
  if (canOverride) {
    const accept = dialog.node.querySelector<HTMLButtonElement>(
      'button.jp-mod-accept'
    );
    const sync = (): void => {
      if (accept) {
        accept.disabled = reason.value.trim() === '';
      }
    };
    reason.addEventListener('input', sync);
    sync();
  }
  const result = await shown;
  const written = reason.value.trim();
  return canOverride && result.button.accept && written !== '' ? written : null;
}
