import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ITranslator } from '@jupyterlab/translation';
import { Panel } from '@lumino/widgets';

import { CellopsClient, IRun } from '../api';
import { RunCompare } from './runCompare';
import { RunView } from './runView';
import { RunsList } from './runs';
import { ISidebarView } from './tabs';

/**
 * The "Runs" tab: the list of runs, one run's timeline after a click, or ticked runs
 * compared side by side.
 */
export class RunsTab extends Panel implements ISidebarView {
  constructor(options: IRunsTabOptions) {
    super();
    this._client = options.client;
    this.addClass('cellops-runs-tab');
    const trans = options.translator.load('cellops');
    this._list = new RunsList({
      client: options.client,
      trans,
      onOpen: run => {
        this.openRun(run);
      },
      onCompare: runs => {
        this._showCompare(runs, options.onError);
      },
      onError: options.onError
    });
    this._compare = new RunCompare({
      client: options.client,
      trans,
      onBack: () => {
        this._showList();
      }
    });
    this._compare.hide();
    this._runView = new RunView({
      ...options,
      onBack: () => {
        this._showList();
      },
      onError: options.onError
    });
    this._runView.hide();
    this.addWidget(this._list);
    this.addWidget(this._runView);
    this.addWidget(this._compare);
  }

  async refresh(path: string): Promise<void> {
    await this._list.refresh(path);
    const open = this._runView.run;
    if (open && !this._runView.isHidden) {
      const run = this._list.get(open.id) ?? (await this._client.run(open.id));
      await this._runView.applyRun(run);
    }
  }

  reset(): void {
    this._list.clear();
    this._showList();
  }

  /** Show `run`'s timeline. */
  openRun(run: IRun): void {
    this._runView.open(run, this._list.manyUsers);
    this._list.hide();
    this._compare.hide();
    this._runView.show();
  }

  /** Show run `runId` (fetched if it is not in the list). */
  async showRun(runId: number): Promise<void> {
    const run = this._list.get(runId) ?? (await this._client.run(runId));
    if (this._runView.run?.id !== run.id || this._runView.isHidden) {
      this.openRun(run);
    }
  }

  /** Show execution `executionId` in its run's timeline, with its detail. */
  async showExecution(executionId: number): Promise<void> {
    const execution = await this._client.execution(executionId);
    await this.showRun(execution.run_id);
    await this._runView.showExecution(executionId);
  }

  private _showList(): void {
    this._runView.hide();
    this._compare.hide();
    this._list.show();
  }

  private _showCompare(runs: IRun[], onError: (error: unknown) => void): void {
    this._list.hide();
    this._runView.hide();
    this._compare.show();
    this._compare.compare(runs).catch(onError);
  }

  private readonly _client: CellopsClient;
  private readonly _list: RunsList;
  private readonly _runView: RunView;
  private readonly _compare: RunCompare;
}

export interface IRunsTabOptions {
  client: CellopsClient;
  notebooks: INotebookTracker;
  rendermime: IRenderMimeRegistry;
  translator: ITranslator;
  /** A request made on its own (a page of the timeline) failed. */
  onError: (error: unknown) => void;
}
