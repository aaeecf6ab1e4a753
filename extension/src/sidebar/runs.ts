import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CellopsClient, IRun } from '../api';
import { h, emptyState, makeActivatable } from './dom';
import { pageOrEmpty } from './errors';
import { absoluteTime, kernelName, relativeTime, shortCommit } from './format';

/**
 * The runs (kernel sessions) of one notebook, newest first (`.cellops-runs`).
 *
 * Rows are keyed by run id and updated in place, so a live refresh keeps the
 * keyboard focus and the scroll position.
 */
export class RunsList extends Widget {
  constructor(options: IRunsListOptions) {
    super();
    this._client = options.client;
    this._trans = options.trans;
    this._onOpen = options.onOpen;
    this.addClass('cellops-runs-view');
    this._list.setAttribute('aria-label', this._trans.__('Runs'));
    this._empty.textContent = this._trans.__('Run a cell to start tracking');
    this._more.textContent = this._trans.__('Load more');
    this._more.title = this._trans.__('Show older runs');
    this._more.addEventListener('click', () => void this._loadMore());
    this.node.append(this._empty, this._list, this._more);
    this._render();
  }

  /** The notebook shown; `null` until the first refresh. */
  get path(): string | null {
    return this._path;
  }

  /** A run already loaded, by id. */
  get(id: number): IRun | undefined {
    return this._runs.get(id);
  }

  /** Fetch the newest page for `path`; keeps older pages loaded with "Load more". */
  async refresh(path: string): Promise<void> {
    if (path !== this._path) {
      this.clear();
      this._path = path;
    }
    const page = await pageOrEmpty(() => this._client.runs(path));
    if (path !== this._path) {
      return; // the notebook changed while we waited
    }
    for (const run of page.items) {
      this._runs.set(run.id, run);
    }
    if (!this._pagedBeyondFirst) {
      this._next = page.next;
    }
    this._loaded = true;
    this._render();
  }

  /** Forget everything shown (another notebook became active). */
  clear(): void {
    this._path = null;
    this._runs.clear();
    this._rows.clear();
    this._next = null;
    this._pagedBeyondFirst = false;
    this._loaded = false;
    this._list.replaceChildren();
    this._render();
  }

  private async _loadMore(): Promise<void> {
    const path = this._path;
    if (path === null || this._next === null) {
      return;
    }
    this._more.disabled = true;
    try {
      const page = await this._client.runs(path, this._next);
      if (path !== this._path) {
        return;
      }
      page.items.forEach(run => this._runs.set(run.id, run));
      this._next = page.next;
      this._pagedBeyondFirst = true;
      this._render();
    } finally {
      this._more.disabled = false;
    }
  }

  private _render(): void {
    const runs = [...this._runs.values()].sort((a, b) => b.id - a.id);
    this._empty.hidden = !this._loaded || runs.length > 0;
    this._list.hidden = runs.length === 0;
    this._more.hidden = this._next === null;
    // Walk newest to oldest, inserting new rows before the next existing one.
    let before: Element | null = this._list.firstElementChild;
    for (const run of runs) {
      let row = this._rows.get(run.id);
      if (row === undefined) {
        row = this._createRow(run);
        this._rows.set(run.id, row);
        this._list.insertBefore(row, before);
      } else if (row !== before) {
        this._list.insertBefore(row, before);
      }
      fillRow(row, run, this._trans);
      before = row.nextElementSibling;
    }
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

  private readonly _client: CellopsClient;
  private readonly _trans: TranslationBundle;
  private readonly _onOpen: (run: IRun) => void;
  private readonly _runs = new Map<number, IRun>();
  private readonly _rows = new Map<number, HTMLElement>();
  private readonly _list = h('ul', 'cellops-runs');
  private readonly _empty = emptyState('');
  private readonly _more = h('button', 'cellops-load-more jp-mod-styled');
  private _path: string | null = null;
  private _next: string | null = null;
  private _pagedBeyondFirst = false;
  private _loaded = false;
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
}
