import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import type { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import type { Message } from '@lumino/messaging';
import { Panel, Widget } from '@lumino/widgets';

import type { ActivityStream } from '../activity';
import {
  CellopsAPIError,
  type CellopsClient,
  type IActivityEvent,
  type IExecution,
  type IPage
} from '../api';
import { lineDiff, renderLineDiff } from '../render/diff';
import { renderOutputs } from '../render/outputs';
import { formatDuration, relativeTime } from '../sidebar/format';
import { h, timeSpan } from '../sidebar/dom';
import { isUnreachable } from '../sidebar/notice';
import { groupByCode, type ICodeVersion } from './group';

/** Most executions one history shows (the server's page size). */
const LIMIT = 200;
/** Coalesce bursts of activity events into one request. */
const DEBOUNCE = 300;
/** After a failed load, activity triggers a retry at most this often (ms). */
const RETRY_INTERVAL = 10000;

/** A Lumino widget around a plain DOM node. */
function wrap(node: HTMLElement): Widget {
  return new Widget({ node });
}

/** Changes only when something shown would change, to skip needless re-renders. */
function signature(executions: IExecution[]): string {
  return executions
    .map(e => [e.id, e.status, e.finished_at ?? '', e.outputs.length].join(':'))
    .join(',');
}

/**
 * Every version of one cell's code, newest first, each with its executions
 * (when, how long, status, outputs) and its diff against the version before.
 * Follows the server's activity while it is shown.
 */
export class CellHistoryView extends Panel {
  constructor(options: ICellHistoryOptions) {
    super();
    this._options = options;
    this._path = options.path;
    this._trans = options.translator.load('cellops');
    this.addClass('cellops-cell-history-content');
    this.node.tabIndex = -1;
    options.activity.changed.connect((_, events) => {
      this._onActivity(events);
    }, this);
  }

  /** The notebook's path (it follows renames through `path`). */
  get path(): string {
    return this._path;
  }
  set path(value: string) {
    if (value !== this._path) {
      this._path = value;
      this._schedule();
    }
  }

  /** Fetch the history and show it (coalesced: one request at a time). */
  async refresh(): Promise<void> {
    if (this._loading) {
      this._again = true;
      return;
    }
    this._loading = true;
    try {
      await this._load();
    } finally {
      this._loading = false;
    }
    if (this._again && !this.isDisposed) {
      this._again = false;
      await this.refresh();
    }
  }

  override dispose(): void {
    window.clearTimeout(this._debounce);
    super.dispose();
  }

  protected override onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this._stale && this.isVisible) {
      void this.refresh();
    }
  }

  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (this._stale) {
      void this.refresh();
    }
  }

  private _onActivity(events: IActivityEvent[]): void {
    if (this._failed && Date.now() - this._lastLoad < RETRY_INTERVAL) {
      // Without a server the stream emits a reset every few seconds: do not hammer it.
      return;
    }
    if (
      events.some(e => e.type === 'reset' || e.notebooks.includes(this._path))
    ) {
      this._schedule();
    }
  }

  private _schedule(): void {
    this._stale = true;
    window.clearTimeout(this._debounce);
    this._debounce = window.setTimeout(() => {
      // Hidden views catch up when shown (onAfterShow).
      if (this.isVisible) {
        void this.refresh();
      }
    }, DEBOUNCE);
  }

  private async _load(): Promise<void> {
    this._stale = false;
    this._lastLoad = Date.now();
    const { client, cellId } = this._options;
    try {
      const page = await this._fetch(client, cellId);
      if (this.isDisposed) {
        return;
      }
      this._failed = false;
      const key = `${signature(page.items)}|${page.next ?? ''}`;
      if (key !== this._shown) {
        this._shown = key;
        this._render(page.items, page.next !== null);
      }
    } catch (reason) {
      if (!this.isDisposed) {
        this._failed = true;
        this._shown = null;
        this._showError(reason);
      }
    }
  }

  private async _fetch(
    client: CellopsClient,
    cellId: string
  ): Promise<IPage<IExecution>> {
    try {
      return await client.executions(this._path, {
        cell: cellId,
        limit: LIMIT
      });
    } catch (reason) {
      // The server's "no tracked notebook" answer: nothing ran here yet.
      if (
        reason instanceof CellopsAPIError &&
        reason.status === 404 &&
        reason.body !== null
      ) {
        return { items: [], next: null };
      }
      throw reason;
    }
  }

  private _clear(): void {
    while (this.widgets.length > 0) {
      this.widgets[0].dispose();
    }
  }

  private _showError(reason: unknown): void {
    const trans = this._trans;
    const text = isUnreachable(reason)
      ? trans.__(
          'The cellops server extension does not answer, so the history of this cell cannot be shown. Check that it is enabled (jupyter server extension enable cellops_server) and restart JupyterLab.'
        )
      : trans.__(
          'Could not load the history of this cell: %1. It is retried when something changes.',
          reason instanceof Error ? reason.message : String(reason)
        );
    this._clear();
    const node = h('div', 'cellops-error', text);
    node.setAttribute('role', 'alert');
    this.addWidget(wrap(node));
  }

  private _render(executions: IExecution[], truncated: boolean): void {
    this._clear();
    const trans = this._trans;
    this.addWidget(wrap(this._header(executions.length, truncated)));
    if (executions.length === 0) {
      const node = h(
        'div',
        'cellops-empty',
        trans.__('This cell has not been run since cellops started tracking')
      );
      node.setAttribute('role', 'status');
      this.addWidget(wrap(node));
      return;
    }
    const versions = groupByCode(executions);
    versions.forEach((version, index) => {
      this.addWidget(this._version(version, versions.at(index + 1) ?? null));
    });
  }

  private _header(count: number, truncated: boolean): HTMLElement {
    const trans = this._trans;
    const header = h('div', 'cellops-cell-history-header');
    header.append(
      h('h2', 'cellops-cell-history-title', this._options.label),
      h('div', 'cellops-cell-history-path', this._path)
    );
    if (truncated) {
      header.append(
        h(
          'div',
          'cellops-cell-history-truncated',
          trans.__('Showing the latest %1 executions.', count)
        )
      );
    }
    return header;
  }

  private _version(version: ICodeVersion, older: ICodeVersion | null): Widget {
    const trans = this._trans;
    const panel = new Panel();
    panel.addClass('cellops-cell-version');
    panel.node.dataset.version = String(version.number);

    const head = h('div', 'cellops-cell-version-header');
    const latest = version.executions[0];
    head.append(
      h(
        'h3',
        'cellops-cell-version-title',
        trans.__('Version %1', version.number)
      ),
      h(
        'span',
        'cellops-cell-version-summary',
        trans._n(
          'ran once, %2',
          'ran %1 times, latest %2',
          version.executions.length,
          relativeTime(latest.started_at)
        )
      )
    );
    const code = h('pre', 'cellops-code', version.code);
    panel.addWidget(wrap(head));
    panel.addWidget(wrap(code));

    if (older !== null) {
      const diff = h('div', 'cellops-diff');
      diff.append(
        h(
          'div',
          'cellops-diff-title',
          trans.__('Changes from version %1', older.number)
        ),
        renderLineDiff(lineDiff(older.code, version.code))
      );
      panel.addWidget(wrap(diff));
    }

    const list = new Panel();
    list.addClass('cellops-cell-executions');
    for (const execution of version.executions) {
      list.addWidget(this._execution(execution));
    }
    panel.addWidget(list);
    return panel;
  }

  private _execution(execution: IExecution): Widget {
    const { client, rendermime, translator } = this._options;
    const trans = this._trans;
    const panel = new Panel();
    panel.addClass('cellops-cell-execution');
    panel.node.dataset.status = execution.status;
    panel.node.dataset.executionId = String(execution.id);

    const meta = h('div', 'cellops-cell-execution-meta');
    const when = timeSpan('cellops-cell-execution-when', execution.started_at);
    meta.append(
      h(
        'span',
        'cellops-cell-execution-count',
        `[${execution.execution_count === null ? ' ' : String(execution.execution_count)}]`
      ),
      h('span', 'cellops-cell-execution-status', this._statusText(execution)),
      when,
      h(
        'span',
        'cellops-cell-execution-duration',
        formatDuration(execution.duration_ms, trans)
      )
    );
    panel.addWidget(wrap(meta));
    if (execution.outputs.length > 0) {
      panel.addWidget(
        renderOutputs(execution.outputs, rendermime, client, translator)
      );
    }
    return panel;
  }

  private _statusText(execution: IExecution): string {
    const trans = this._trans;
    switch (execution.status) {
      case 'ok':
        return trans.__('ok');
      case 'running':
        return trans.__('running');
      case 'aborted':
        return trans.__('aborted');
      case 'error':
        return execution.error
          ? trans.__('error: %1', execution.error.ename)
          : trans.__('error');
    }
  }

  private readonly _options: ICellHistoryOptions;
  private readonly _trans: TranslationBundle;
  private _path: string;
  private _shown: string | null = null;
  private _stale = true;
  private _loading = false;
  private _again = false;
  private _debounce = 0;
  private _failed = false;
  private _lastLoad = 0;
}

export interface ICellHistoryOptions {
  client: CellopsClient;
  rendermime: IRenderMimeRegistry;
  translator: ITranslator;
  activity: ActivityStream;
  /** The notebook's path as the server knows it. */
  path: string;
  /** The cell's model id (nbformat cell id). */
  cellId: string;
  /** Heading, e.g. "History of cell 3". */
  label: string;
}
