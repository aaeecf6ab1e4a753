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
export type NoticeSource =
  'server' | 'backend' | 'request' | 'action' | 'tracking';

/** Whether the notebook shown is recorded, as the server answered. */
export type TrackingState = 'on' | 'off' | 'excluded';

/** Sources that are information, not a failure (`.cellops-info`, role=status). */
const INFO_SOURCES: ReadonlySet<NoticeSource> = new Set(['tracking']);

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

  /**
   * Show or clear the server, backend and tracking messages from a `status` answer;
   * answers whether the notebook asked about is recorded.
   */
  applyStatus(status: IStatus): TrackingState {
    this.set('server', null);
    const tracking = trackingState(status);
    this.set('tracking', this._trackingMessage(tracking, status));
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
    return tracking;
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

  /** Why nothing new appears, and where to change it (the settings the user set). */
  private _trackingMessage(
    state: TrackingState,
    status: IStatus
  ): string | null {
    if (state === 'off') {
      return this._trans.__(
        'Tracking is off: executed cells are not recorded. Turn it on in Settings → Settings Editor → cellops → "Record executed cells".'
      );
    }
    if (state === 'excluded') {
      const how = this._trans.__(
        'To record it, remove the pattern in Settings → Settings Editor → cellops → "Notebooks not to record".'
      );
      const why = status.excluded_by
        ? this._trans.__(
            'This notebook is excluded from tracking (pattern %1).',
            status.excluded_by
          )
        : this._trans.__('This notebook is excluded from tracking.');
      return `${why} ${how}`;
    }
    return null;
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
        const info = INFO_SOURCES.has(source);
        const node = h('div', info ? 'cellops-info' : 'cellops-error', text);
        node.dataset.source = source;
        node.setAttribute('role', info ? 'status' : 'alert');
        return node;
      })
    );
    this.setHidden(shown.length === 0);
  }

  private readonly _messages = new Map<NoticeSource, string>();
  private _spoolPending = 0;
}

/** 'off' when this server records nothing, 'excluded' when only this notebook is skipped. */
export function trackingState(status: IStatus): TrackingState {
  // A team backend records nothing itself: its `tracking` says nothing about a notebook.
  if (status.mode === 'team-backend') {
    return 'on';
  }
  if (!status.tracking) {
    return 'off';
  }
  return status.notebook_tracking === false ? 'excluded' : 'on';
}
