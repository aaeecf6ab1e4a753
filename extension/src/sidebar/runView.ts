import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { Panel, Widget } from '@lumino/widgets';

import { CellopsClient, IExecution, IRun } from '../api';
import { emptyState, h, timeSpan } from './dom';
import { ExecutionDetail } from './executionDetail';
import { kernelLabel, runDuration } from './format';
import { headlessDetails, originBadges } from './headless';
import { revealCell } from './revealCell';
import { Timeline } from './timeline';

/**
 * One run: a back button and summary, its timeline of executions, and the detail
 * of the execution chosen there.
 */
export class RunView extends Panel {
  constructor(options: IRunViewOptions) {
    super();
    this._notebooks = options.notebooks;
    this._trans = options.translator.load('cellops');
    this.addClass('cellops-run-view');
    this._header.addClass('cellops-run-header');
    this._timeline = new Timeline({
      client: options.client,
      trans: this._trans,
      onOpen: execution => {
        this.openExecution(execution);
      },
      onError: options.onError
    });
    this._detail = new ExecutionDetail({
      client: options.client,
      rendermime: options.rendermime,
      translator: options.translator,
      onClose: () => {
        this._detail.clear();
        this._timeline.select(null);
      }
    });
    this._empty.textContent = this._trans.__(
      'No executions in this run yet. Run a cell to record one.'
    );
    this._back.textContent = this._trans.__('‹ Runs');
    this._back.title = this._trans.__('Back to the runs of this notebook');
    this._back.setAttribute('aria-label', this._back.title);
    this._back.addEventListener('click', options.onBack);
    this._header.node.append(this._back, this._summary, this._headless);
    this._emptyWidget.node.appendChild(this._empty);
    this.addWidget(this._header);
    this.addWidget(this._emptyWidget);
    this.addWidget(this._timeline);
    this.addWidget(this._detail);
  }

  /** The run shown, if any. */
  get run(): IRun | null {
    return this._timeline.run;
  }

  /** Show `run` at its newest execution (following new ones), none open. */
  open(run: IRun, showUser = true): void {
    this._showUser = showUser;
    this._detail.clear();
    this._timeline.load(run);
    this._renderSummary(run);
  }

  /** Live update with `run`'s new counts; keeps scroll position and the open execution. */
  async applyRun(run: IRun): Promise<void> {
    if (this.run?.id !== run.id) {
      return;
    }
    this._renderSummary(run);
    await this._timeline.applyRun(run);
    const shown = this._detail.execution;
    const fresh = shown ? this._timeline.get(shown.id) : undefined;
    if (
      fresh &&
      shown &&
      (fresh.status !== shown.status ||
        fresh.outputs.length !== shown.outputs.length)
    ) {
      // A running execution finished: show its final state (without moving the notebook).
      this._detail.display(fresh, this._cellExists(fresh.cell_id));
    }
  }

  /** Open execution `id` of this run; answers whether it was found. */
  async showExecution(id: number): Promise<boolean> {
    if (!(await this._timeline.reveal(id))) {
      return false;
    }
    const execution = this._timeline.get(id);
    if (execution) {
      this.openExecution(execution);
    }
    return execution !== undefined;
  }

  /** Show `execution`'s detail and select its cell in the notebook. */
  openExecution(execution: IExecution): void {
    this._timeline.select(execution.id);
    this._detail.display(
      execution,
      revealCell(this._notebooks, execution.cell_id)
    );
    // The detail takes room from the timeline: keep the chosen row in sight.
    requestAnimationFrame(() => {
      this._timeline.revealSelected();
    });
  }

  private _cellExists(cellId: string | null): boolean {
    const notebook = this._notebooks.currentWidget?.content;
    return (
      cellId !== null &&
      (notebook?.widgets.some(cell => cell.model.id === cellId) ?? false)
    );
  }

  private _renderSummary(run: IRun): void {
    const started = timeSpan('cellops-run-summary-started', run.started_at);
    const label = run.number
      ? this._trans.__('Run #%1', run.number)
      : this._trans.__('Run');
    this._summary.replaceChildren(
      h('span', 'cellops-run-summary-number', label),
      ...originBadges(run, this._trans),
      h(
        'span',
        'cellops-run-summary-state',
        run.ended_at === null
          ? this._trans.__('active')
          : this._trans.__('ended')
      ),
      ...(this._showUser
        ? [
            h(
              'span',
              'cellops-run-summary-user',
              run.user ?? this._trans.__('unknown user')
            )
          ]
        : []),
      started,
      h('span', 'cellops-run-summary-duration', runDuration(run, this._trans)),
      h('span', 'cellops-run-summary-kernel', kernelLabel(run)),
      h(
        'span',
        'cellops-run-summary-counts',
        `${this._trans._n('%1 execution', '%1 executions', run.executions)}, ${this._trans._n('%1 error', '%1 errors', run.errors)}`
      )
    );
    const headless = headlessDetails(run, this._trans);
    this._headless.replaceChildren(...(headless ? [headless] : []));
    this._emptyWidget.setHidden(run.executions > 0);
  }

  private readonly _notebooks: INotebookTracker;
  private readonly _trans: TranslationBundle;
  private _showUser = true;
  private readonly _header = new Widget();
  private readonly _back = h('button', 'cellops-back jp-Button jp-mod-minimal');
  private readonly _summary = h('div', 'cellops-run-summary');
  /** A headless run's CI job and parameters (empty for an interactive run). */
  private readonly _headless = h('div', 'cellops-run-origin-details');
  private readonly _emptyWidget = new Widget();
  private readonly _empty = emptyState('');
  private readonly _timeline: Timeline;
  private readonly _detail: ExecutionDetail;
}

export interface IRunViewOptions {
  client: CellopsClient;
  notebooks: INotebookTracker;
  rendermime: IRenderMimeRegistry;
  translator: ITranslator;
  /** The back button was clicked. */
  onBack: () => void;
  /** A request failed. */
  onError: (error: unknown) => void;
}
