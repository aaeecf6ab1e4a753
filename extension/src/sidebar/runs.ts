import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CellopsClient, IRun } from '../api';
import { h, makeActivatable } from './dom';
import { PagedRows } from './pagedRows';
import { absoluteTime, kernelName, relativeTime, shortCommit } from './format';

/**
 * The runs (kernel sessions) of one notebook, newest first (`.cellops-runs`).
 */
export class RunsList extends Widget {
  constructor(options: IRunsListOptions) {
    super();
    this._trans = options.trans;
    this._onOpen = options.onOpen;
    this._runs = new PagedRows<IRun>({
      listClass: 'cellops-runs',
      fetch: (path, cursor) => options.client.runs(path, cursor),
      order: run => run.id,
      createRow: run => this._createRow(run),
      updateRow: (row, run) => {
        fillRow(row, run, this._trans);
      },
      onError: options.onError
    });
    this.addClass('cellops-runs-view');
    const { list, empty, more } = this._runs;
    list.setAttribute('aria-label', this._trans.__('Runs'));
    empty.textContent = this._trans.__('Run a cell to start tracking');
    more.textContent = this._trans.__('Load more');
    more.title = this._trans.__('Show older runs');
    this.node.append(empty, list, more);
  }

  /** The notebook shown; `null` until the first refresh. */
  get path(): string | null {
    return this._runs.path;
  }

  /** A run already loaded, by id. */
  get(id: number): IRun | undefined {
    return this._runs.get(id);
  }

  /** Fetch the newest page for `path`; keeps older pages loaded with "Load more". */
  refresh(path: string): Promise<void> {
    return this._runs.refresh(path);
  }

  /** Forget everything shown (another notebook became active). */
  clear(): void {
    this._runs.clear();
  }

  private _createRow(run: IRun): HTMLElement {
    const row = h('li', 'cellops-run');
    row.dataset.runId = String(run.id);
    makeActivatable(
      row,
      this._trans.__('Show the executions of run %1', run.id),
      () => {
        const current = this._runs.get(run.id);
        if (current) {
          this._onOpen(current);
        }
      }
    );
    const top = h('div', 'cellops-run-line');
    top.append(h('span', 'cellops-run-user'), h('span', 'cellops-run-started'));
    const bottom = h('div', 'cellops-run-line cellops-run-counts');
    bottom.append(
      h('span', 'cellops-run-executions'),
      h('span', 'cellops-run-executions-label'),
      h('span', 'cellops-run-errors'),
      h('span', 'cellops-run-errors-label'),
      h('span', 'cellops-run-kernel'),
      h('span', 'cellops-run-commit'),
      h('span', 'cellops-run-dirty')
    );
    row.append(top, bottom);
    return row;
  }

  private readonly _trans: TranslationBundle;
  private readonly _onOpen: (run: IRun) => void;
  private readonly _runs: PagedRows<IRun>;
}

/** Write `run` into the row's parts (the row's structure never changes). */
function fillRow(row: HTMLElement, run: IRun, trans: TranslationBundle): void {
  const part = (name: string): HTMLElement => {
    const node = row.querySelector<HTMLElement>(`.cellops-run-${name}`);
    if (node === null) {
      throw new Error(`run row without .cellops-run-${name}`);
    }
    return node;
  };
  part('user').textContent = run.user ?? trans.__('unknown user');
  const started = part('started');
  started.textContent = relativeTime(run.started_at);
  started.title = trans.__('Started %1', absoluteTime(run.started_at));
  const kernel = part('kernel');
  kernel.textContent = kernelName(run);
  kernel.title = trans.__('Kernel %1', run.kernel_id);
  part('executions').textContent = String(run.executions);
  part('executions-label').textContent = trans._n(
    'execution',
    'executions',
    run.executions
  );
  const errors = part('errors');
  errors.textContent = String(run.errors);
  part('errors-label').textContent = trans._n('error', 'errors', run.errors);
  row.classList.toggle('cellops-mod-has-errors', run.errors > 0);
  const commit = part('commit');
  commit.textContent = shortCommit(run);
  commit.title = run.git?.commit
    ? trans.__('Git commit %1', run.git.commit)
    : trans.__('Not in a git repository');
  const dirty = part('dirty');
  dirty.textContent = run.git?.dirty ? trans.__('dirty') : '';
  dirty.title = trans.__('Uncommitted changes when the kernel started');
  row.classList.toggle('cellops-mod-running', run.ended_at === null);
}

export interface IRunsListOptions {
  client: CellopsClient;
  trans: TranslationBundle;
  /** A run was clicked or chosen with Enter. */
  onOpen: (run: IRun) => void;
  /** "Load more" failed. */
  onError: (error: unknown) => void;
}
