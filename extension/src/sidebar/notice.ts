import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IStatus } from '../api';
import { h } from './dom';
import { isBackendDown, isUnreachable } from './errors';

// Kept here too: other views (cell history) import it from this module.
export { isUnreachable } from './errors';

/**
 * Where a problem comes from; one message per source is shown at a time.
 */
export type NoticeSource = 'server' | 'backend' | 'request' | 'action';

/**
 * The sidebar's error messages (`.cellops-error`), each saying what to do.
 */
export class Notice extends Widget {
  constructor(private readonly _trans: TranslationBundle) {
    super();
    this.addClass('cellops-notices');
    this.node.setAttribute('aria-live', 'polite');
    this.hide();
  }

  /** Show `text` for `source`, or clear that source with `null`. */
  set(source: NoticeSource, text: string | null): void {
    if (text === null) {
      this._messages.delete(source);
    } else {
      this._messages.set(source, text);
    }
    this._render();
  }

  /** Report a failed request of `source` in words a user can act on. */
  fail(source: NoticeSource, error: unknown): void {
    if (isUnreachable(error)) {
      this.showServerMissing();
      return;
    }
    const reason = error instanceof Error ? error.message : String(error);
    if (isBackendDown(error)) {
      // The server forwards to the team backend and got no answer: say so, not "failed".
      this.set('backend', this._backendMessage(reason, this._spoolPending));
      return;
    }
    this.set(
      source,
      this._trans.__(
        'A cellops request failed: %1. Try again; if it keeps failing, look at the Jupyter server log.',
        reason
      )
    );
  }

  /** Show or clear the server and backend messages from a `status` answer. */
  applyStatus(status: IStatus): void {
    this.set('server', null);
    this._spoolPending = status.spool_pending;
    if (status.backend_reachable === false) {
      this.set(
        'backend',
        this._backendMessage(
          status.last_error ?? this._trans.__('no answer'),
          status.spool_pending
        )
      );
    } else {
      this.set('backend', null);
    }
  }

  /** The server extension does not answer: say how to enable it. */
  showServerMissing(): void {
    this.set(
      'server',
      this._trans.__(
        'The cellops server extension is not running. Enable it with `jupyter server extension enable cellops_server` and restart JupyterLab.'
      )
    );
  }

  private _backendMessage(reason: string, pending: number): string {
    return this._trans.__(
      'The team backend is unreachable (%1). Executions are kept in the local spool (%2 waiting) and sent when it is back.',
      reason,
      pending
    );
  }

  private _render(): void {
    // A failed request is usually a consequence of a missing server or backend: say the cause.
    const shown = [...this._messages.entries()].filter(
      ([source]) =>
        source === 'action' ||
        !(
          source === 'request' &&
          (this._messages.has('server') || this._messages.has('backend'))
        )
    );
    this.node.replaceChildren(
      ...shown.map(([source, text]) => {
        const node = h('div', 'cellops-error', text);
        node.dataset.source = source;
        node.setAttribute('role', 'alert');
        return node;
      })
    );
    this.setHidden(shown.length === 0);
  }

  private readonly _messages = new Map<NoticeSource, string>();
  private _spoolPending = 0;
}
