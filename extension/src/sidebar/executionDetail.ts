import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { Panel, Widget } from '@lumino/widgets';

import { CellopsClient, IExecution } from '../api';
import { renderOutputs } from '../render/outputs';
import { CommentThread } from '../review/thread';
import { ReviewClient } from '../reviewClient';
import { h, timeSpan } from './dom';
import { formatDuration } from './format';
import { ILoggedValues, renderLoggedValues } from './loggedValues';

/**
 * One execution: its code, status, timing, error and outputs
 * (`.cellops-execution-detail`). Outputs are rendered untrusted.
 */
export class ExecutionDetail extends Panel {
  constructor(options: IExecutionDetailOptions) {
    super();
    this._client = options.client;
    this._reviews = ReviewClient.of(options.client);
    this._rendermime = options.rendermime;
    this._translator = options.translator;
    this._trans = options.translator.load('cellops');
    this._onClose = options.onClose;
    this.addClass('cellops-execution-detail');
    // The summary bar (with the close button) stays put; the rest scrolls under it.
    this._bar.addClass('cellops-detail-bar');
    this._scroll.addClass('cellops-detail-scroll');
    this._scroll.addWidget(this._header);
    this.addWidget(this._bar);
    this.addWidget(this._scroll);
    this.hide();
  }

  /** The execution shown, if any. */
  get execution(): IExecution | null {
    return this._execution;
  }

  /**
   * Show `execution`; `cellFound` says whether its cell is still in the notebook
   * (it was selected there).
   */
  display(execution: IExecution, cellFound: boolean): void {
    this._execution = execution;
    // A live refresh of the same execution keeps its logged values until new ones come.
    if (this._logged?.id !== execution.id) {
      this._dropLogged();
    }
    const logged = this._logged ? [this._logged.node] : [];
    this._bar.node.replaceChildren(this._summary(execution));
    this._header.node.replaceChildren(
      ...this._error(execution),
      this._cellNote(execution, cellFound),
      this._code(execution),
      ...logged
    );
    void this._loadLogged(execution.id);
    this._outputs?.dispose();
    this._outputs =
      execution.outputs.length > 0
        ? renderOutputs(
            execution.outputs,
            this._rendermime,
            this._client,
            this._translator
          )
        : this._noOutput();
    this._scroll.addWidget(this._outputs);
    this._showThread(execution.id);
    this.show();
  }

  /** The execution's comments under its outputs, refetched on each (live) display. */
  private _showThread(id: number): void {
    let thread = this._thread;
    const target = thread?.target;
    if (!thread || target?.kind !== 'execution' || target.id !== id) {
      thread?.dispose();
      thread = new CommentThread({
        client: this._reviews,
        target: { kind: 'execution', id },
        trans: this._trans,
        sanitizer: this._rendermime.sanitizer,
        newThread: 'button',
        title: this._trans.__('Comments'),
        emptyText: this._trans.__('No comments on this execution yet.')
      });
      this._thread = thread;
    }
    // Last in the scroll area, after the outputs added just before.
    this._scroll.addWidget(thread);
    void thread.load();
  }

  /** Hide and forget the execution. */
  clear(): void {
    this._execution = null;
    this._dropLogged();
    this._outputs?.dispose();
    this._outputs = null;
    this._thread?.dispose();
    this._thread = null;
    this._bar.node.replaceChildren();
    this._header.node.replaceChildren();
    this.hide();
  }

  private _summary(e: IExecution): HTMLElement {
    const line = h('div', 'cellops-detail-summary');
    line.dataset.status = e.status;
    const count = e.execution_count === null ? ' ' : String(e.execution_count);
    const started = timeSpan('cellops-detail-started', e.started_at);
    line.append(
      h('span', 'cellops-detail-count', `[${count}]`),
      h('span', 'cellops-detail-status', this._statusLabel(e)),
      h(
        'span',
        'cellops-detail-duration',
        formatDuration(e.duration_ms, this._trans)
      ),
      started,
      this._closeButton()
    );
    return line;
  }

  private _closeButton(): HTMLElement {
    const button = h('button', 'cellops-detail-close jp-Button', '×');
    button.title = this._trans.__('Close the execution');
    button.setAttribute('aria-label', button.title);
    button.addEventListener('click', () => {
      this._onClose();
    });
    return button;
  }

  private _statusLabel(e: IExecution): string {
    const labels: Record<IExecution['status'], string> = {
      ok: this._trans.__('ok'),
      error: this._trans.__('error'),
      running: this._trans.__('running'),
      aborted: this._trans.__('aborted')
    };
    return labels[e.status];
  }

  private _error(e: IExecution): HTMLElement[] {
    if (e.error === null) {
      return [];
    }
    return [
      h(
        'div',
        'cellops-detail-error',
        e.error.evalue ? `${e.error.ename}: ${e.error.evalue}` : e.error.ename
      )
    ];
  }

  private _cellNote(e: IExecution, found: boolean): HTMLElement {
    const text = found
      ? this._trans.__('Selected in the notebook')
      : e.cell_id === null
        ? this._trans.__('The cell of this execution is not known')
        : this._trans.__('This cell is no longer in the notebook');
    const note = h('div', 'cellops-detail-cell', text);
    note.dataset.found = String(found);
    return note;
  }

  private _code(e: IExecution): HTMLElement {
    const pre = h('pre', 'cellops-code', e.code);
    pre.setAttribute('aria-label', this._trans.__('Code'));
    return pre;
  }

  /** What the cell logged (cellops.log_*, autolog), fetched after the rest. */
  private async _loadLogged(id: number): Promise<void> {
    let logged: ILoggedValues | null;
    try {
      const logs = await this._client.executionLogs(id);
      if (this._execution?.id !== id) {
        return; // another execution is shown now
      }
      logged = renderLoggedValues(logs, this._trans, {
        rendermime: this._rendermime,
        trans: this._trans,
        width: this._header.node.clientWidth
      });
    } catch (error) {
      const node = h(
        'div',
        'cellops-detail-logs cellops-mod-error',
        this._trans.__('Logged values could not be loaded: %1', String(error))
      );
      logged = { node, charts: [] };
    }
    if (this._execution?.id !== id) {
      return;
    }
    this._dropLogged();
    this._logged = logged === null ? null : { id, ...logged };
    if (logged !== null) {
      this._header.node.append(logged.node);
    }
  }

  /** Remove the logged values, freeing their charts' views. */
  private _dropLogged(): void {
    this._logged?.node.remove();
    for (const chart of this._logged?.charts ?? []) {
      chart.renderer.dispose();
    }
    this._logged = null;
  }

  private _noOutput(): Widget {
    const widget = new Widget();
    widget.addClass('cellops-outputs');
    widget.node.appendChild(
      h('div', 'cellops-output-note', this._trans.__('No output'))
    );
    return widget;
  }

  private readonly _client: CellopsClient;
  private readonly _rendermime: IRenderMimeRegistry;
  private readonly _translator: ITranslator;
  private readonly _trans: TranslationBundle;
  private readonly _onClose: () => void;
  private readonly _bar = new Widget();
  private readonly _scroll = new Panel();
  private readonly _header = new Widget();
  private _outputs: Widget | null = null;
  private readonly _reviews: ReviewClient;
  private _thread: CommentThread | null = null;
  private _execution: IExecution | null = null;
  private _logged: ({ id: number } & ILoggedValues) | null = null;
}

export interface IExecutionDetailOptions {
  client: CellopsClient;
  rendermime: IRenderMimeRegistry;
  translator: ITranslator;
  /** The close button was clicked. */
  onClose: () => void;
}
