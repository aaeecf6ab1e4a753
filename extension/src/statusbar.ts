import type { INotebookTracker } from '@jupyterlab/notebook';
import type { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import type { ActivityStream } from './activity';
import type { CellopsClient, IActivityEvent, IStatus } from './api';
import type { TrackingSettingsSync } from './settings';

export type StatusState =
  'on' | 'off' | 'excluded' | 'spooling' | 'unavailable';

/** Milliseconds between status refreshes while the server answers. */
const REFRESH_INTERVAL = 5000;
/** Longest wait between refreshes while it does not: avoid filling the console with 404s. */
const MAX_BACKOFF = 30000;
/** Coalesce bursts of activity events into one request. */
const DEBOUNCE = 300;

export interface IStatusItemOptions {
  client: CellopsClient;
  notebooks: INotebookTracker;
  activity: ActivityStream;
  settings: TrackingSettingsSync | null;
  translator: ITranslator;
  /** Called when the item is clicked (opens the sidebar). */
  onClick: () => void;
}

/** Records waiting for the backend: the server's spool and its kernels' buffers. */
export function waiting(status: IStatus | null): number {
  return (status?.spool_pending ?? 0) + (status?.kernel_pending ?? 0);
}

/** The state a server `status` answer means for the active notebook. */
export function stateOf(status: IStatus): StatusState {
  // Records pass through the spool within a fraction of a second; "spooling" means they
  // are stuck there because the store or the team backend cannot take them. Kernels
  // report a backlog only when their sends failed.
  const stuck =
    status.last_error !== null || status.backend_reachable === false;
  if ((status.spool_pending > 0 && stuck) || (status.kernel_pending ?? 0) > 0) {
    return 'spooling';
  }
  if (!status.tracking) {
    return 'off';
  }
  return status.notebook_tracking === false ? 'excluded' : 'on';
}

/**
 * Status bar item `.cellops-status-item[data-state]`: is the active notebook being
 * recorded? Refreshes on notebook change, activity, settings change and a timer.
 */
export class CellopsStatusItem extends Widget {
  constructor(private readonly _options: IStatusItemOptions) {
    super({ node: document.createElement('button') });
    this._trans = _options.translator.load('cellops');
    this.addClass('cellops-status-item');
    this.addClass('jp-StatusBar-TextItem');
    this.node.setAttribute('type', 'button');
    this.node.addEventListener('click', () => {
      _options.onClick();
    });
    _options.notebooks.currentChanged.connect(() => {
      this._schedule();
    }, this);
    _options.activity.changed.connect((_, events) => {
      this._onActivity(events);
    }, this);
    _options.settings?.applied.connect(() => {
      this._schedule();
    }, this);
    this._render('unavailable', null, this._trans.__('Checking cellops…'));
    void this.refresh();
  }

  /** The state shown now. */
  get state(): StatusState {
    return (this.node.dataset.state ?? 'unavailable') as StatusState;
  }

  /** Ask the server now and show the answer. */
  async refresh(): Promise<void> {
    window.clearTimeout(this._timer);
    const request = ++this._request;
    const path = this._path();
    let state: StatusState;
    let status: IStatus | null = null;
    let problem: string | null = null;
    try {
      status = await this._options.client.status(path ?? undefined);
      state = stateOf(status);
      this._failures = 0;
    } catch (reason) {
      state = 'unavailable';
      problem = reason instanceof Error ? reason.message : String(reason);
      this._failures++;
    }
    const settingsError = this._options.settings?.error ?? null;
    if (settingsError !== null && state !== 'unavailable') {
      this._options.settings?.retry();
      // The server answers but did not take the user's settings: say so.
      state = 'unavailable';
      problem = this._trans.__(
        'your settings were not applied: %1',
        settingsError
      );
    }
    if (request !== this._request || this.isDisposed) {
      return; // A newer refresh started meanwhile.
    }
    this._render(state, status, problem);
    const delay = Math.min(REFRESH_INTERVAL * 2 ** this._failures, MAX_BACKOFF);
    this._timer = window.setTimeout(() => void this.refresh(), delay);
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    window.clearTimeout(this._timer);
    window.clearTimeout(this._debounce);
    super.dispose();
  }

  private _path(): string | null {
    return this._options.notebooks.currentWidget?.context.localPath ?? null;
  }

  private _onActivity(events: IActivityEvent[]): void {
    if (this._failures > 0) {
      // Without a server the stream emits a reset every few seconds: keep to the back-off.
      return;
    }
    const path = this._path();
    if (
      events.some(
        e => e.type === 'reset' || path === null || e.notebooks.includes(path)
      )
    ) {
      this._schedule();
    }
  }

  private _schedule(): void {
    window.clearTimeout(this._debounce);
    this._debounce = window.setTimeout(() => void this.refresh(), DEBOUNCE);
  }

  private _render(
    state: StatusState,
    status: IStatus | null,
    problem: string | null
  ): void {
    this.node.dataset.state = state;
    this.node.textContent = this._label(state, status);
    this.node.title = this._tooltip(state, status, problem);
  }

  private _label(state: StatusState, status: IStatus | null): string {
    const trans = this._trans;
    switch (state) {
      case 'on':
        return trans.__('cellops: on');
      case 'off':
        return trans.__('cellops: off');
      case 'excluded':
        return trans.__('cellops: excluded');
      case 'spooling':
        return trans._n(
          'cellops: backend unreachable, %1 record waiting',
          'cellops: backend unreachable, %1 records waiting',
          waiting(status)
        );
      case 'unavailable':
        return trans.__('cellops: unavailable');
    }
  }

  private _tooltip(
    state: StatusState,
    status: IStatus | null,
    problem: string | null
  ): string {
    const trans = this._trans;
    const hint = trans.__('Click to open the cellops panel.');
    switch (state) {
      case 'on':
        return `${trans.__('cellops records the cells you run in this notebook.')} ${hint}`;
      case 'off':
        return `${trans.__('Recording is switched off in the cellops settings.')} ${hint}`;
      case 'excluded':
        return `${trans.__('This notebook matches an exclude pattern in the cellops settings: its cells are not recorded.')} ${hint}`;
      case 'spooling':
        return `${trans._n(
          '%1 record is waiting (in the local spool or in a kernel) and will be sent when the backend answers.',
          '%1 records are waiting (in the local spool or in a kernel) and will be sent when the backend answers.',
          waiting(status)
        )} ${this._reason(status)}${hint}`;
      case 'unavailable':
        return `${trans.__(
          'cellops cannot tell whether cells are recorded (%1). Check that the cellops server extension is enabled.',
          problem ?? trans.__('no answer yet')
        )} ${hint}`;
    }
  }

  /** Why the records wait, as the server or a kernel put it. */
  private _reason(status: IStatus | null): string {
    const reason = status?.last_error ?? status?.kernel_error ?? null;
    return reason ? `${this._trans.__('Reason: %1', reason)} ` : '';
  }

  private readonly _trans: TranslationBundle;
  private _request = 0;
  private _failures = 0;
  private _timer = 0;
  private _debounce = 0;
}
