import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CellopsAPIError, CellopsClient, IRun, IRunSearch } from '../api';
import { h, makeActivatable } from './dom';
import { originBadges, parametersLine } from './headless';
import { PagedRows } from './pagedRows';
import {
  absoluteTime,
  kernelLabel,
  relativeTime,
  runDuration,
  shortCommit
} from './format';
import { RunSearchBar } from './runSearch';

/** How often "running for 3 min" is brought up to date. */
const TICK_MS = 30000;

/**
 * The runs (kernel sessions) of one notebook (`.cellops-runs`), newest first or as the
 * search bar sorts them, filtered by it; runs can be ticked and compared.
 */
export class RunsList extends Widget {
  constructor(options: IRunsListOptions) {
    super();
    this._trans = options.trans;
    this._onOpen = options.onOpen;
    this._onCompare = options.onCompare;
    const client = options.client;
    this._searchBar = new RunSearchBar(this._trans, search => {
      this._search = search;
      void this._applySearch();
    });
    this._runs = new PagedRows<IRun>({
      listClass: 'cellops-runs',
      fetch: (path, cursor) => this._fetch(client, path, cursor),
      order: run => run.id,
      compare: (a, b) => compareRuns(a, b, this._search.sort),
      createRow: run => this._createRow(run),
      updateRow: (row, run) => {
        fillRow(row, run, this._trans);
        this._pick(row).checked = this._picked.has(run.id);
      },
      onError: options.onError,
      onRendered: () => {
        this._afterRender();
      }
    });
    this.addClass('cellops-runs-view');
    const { list, empty, more } = this._runs;
    list.setAttribute('aria-label', this._trans.__('Runs'));
    empty.textContent = this._trans.__('Run a cell to start tracking');
    more.textContent = this._trans.__('Load more');
    more.title = this._trans.__('Show older runs');
    this._compare.textContent = this._trans.__('Compare');
    this._compare.title = this._trans.__(
      'Tick two or more runs to compare their metrics and params'
    );
    this._compare.disabled = true;
    this._compare.addEventListener('click', () => {
      this._onCompare(this._runs.items.filter(run => this._picked.has(run.id)));
    });
    const toolbar = h('div', 'cellops-run-toolbar');
    toolbar.append(this._searchBar.sortNode, this._pickedCount, this._compare);
    this.node.append(this._searchBar.node, toolbar, empty, list, more);
    this._timer = window.setInterval(() => {
      if (this.isVisible && this._runs.items.some(r => r.ended_at === null)) {
        this._runs.render();
      }
    }, TICK_MS);
  }

  /** The notebook shown; `null` until the first refresh. */
  get path(): string | null {
    return this._runs.path;
  }

  /** Whether the runs shown are by more than one user (then rows name them). */
  get manyUsers(): boolean {
    return new Set(this._runs.items.map(run => run.user)).size > 1;
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
    this._picked.clear();
    this._runs.clear();
  }

  override dispose(): void {
    window.clearInterval(this._timer);
    this._searchBar.dispose();
    super.dispose();
  }

  /** The filters changed: start the list over with them. */
  private async _applySearch(): Promise<void> {
    const path = this._runs.path;
    this._runs.clear();
    if (path !== null) {
      await this._runs.refresh(path);
    }
  }

  /** A page of runs; a filter the server refuses is said under the search box. */
  private async _fetch(
    client: CellopsClient,
    path: string,
    cursor?: string
  ): Promise<{ items: IRun[]; next: string | null }> {
    try {
      // Unfiltered: the plain listing (a client may override it for a teammate's notebook).
      const page = isDefault(this._search)
        ? await client.runs(path, cursor)
        : await client.searchRuns(path, this._search, cursor);
      this._searchBar.setError(null);
      return page;
    } catch (error) {
      if (error instanceof CellopsAPIError && error.status === 400) {
        this._searchBar.setError(error.message);
        return { items: [], next: null };
      }
      throw error;
    }
  }

  private _afterRender(): void {
    const runs = this._runs.items;
    // The user says whose run it is only when that tells runs apart.
    this._runs.list.classList.toggle('cellops-mod-many-users', this.manyUsers);
    const metrics = new Set(
      runs.flatMap(run => Object.keys(run.metrics ?? {}))
    );
    this._searchBar.setMetrics([...metrics].sort());
    this._runs.empty.textContent = isDefault(this._search)
      ? this._trans.__('Run a cell to start tracking')
      : this._trans.__('No runs match these filters');
    this._updateToolbar();
  }

  private _updateToolbar(): void {
    for (const id of this._picked) {
      if (this._runs.get(id) === undefined) {
        this._picked.delete(id); // filtered out
      }
    }
    const n = this._picked.size;
    this._compare.disabled = n < 2;
    this._pickedCount.textContent =
      n > 0 ? this._trans._n('%1 run ticked', '%1 runs ticked', n) : '';
  }

  private _pick(row: HTMLElement): HTMLInputElement {
    const pick = row.querySelector<HTMLInputElement>('.cellops-run-pick');
    if (pick === null) {
      throw new Error('run row without .cellops-run-pick');
    }
    return pick;
  }

  private _createRow(run: IRun): HTMLElement {
    const row = h('li', 'cellops-run');
    row.dataset.runId = String(run.id);
    makeActivatable(
      row,
      this._trans.__('Show the executions of run %1', run.number ?? run.id),
      () => {
        const current = this._runs.get(run.id);
        if (current) {
          this._onOpen(current);
        }
      }
    );
    const pick = h('input', 'cellops-run-pick');
    pick.type = 'checkbox';
    pick.title = this._trans.__('Tick to compare');
    pick.setAttribute('aria-label', this._trans.__('Compare this run'));
    // Ticking is not opening: keep the click and the space bar to the box.
    pick.addEventListener('click', event => {
      event.stopPropagation();
    });
    pick.addEventListener('keydown', event => {
      event.stopPropagation();
    });
    pick.addEventListener('change', () => {
      if (pick.checked) {
        this._picked.add(run.id);
      } else {
        this._picked.delete(run.id);
      }
      this._updateToolbar();
    });
    const top = h('div', 'cellops-run-line');
    top.append(
      pick,
      h('span', 'cellops-run-number'),
      h('span', 'cellops-run-origin'),
      h('span', 'cellops-run-state'),
      h('span', 'cellops-run-user'),
      h('time', 'cellops-run-started'),
      h('span', 'cellops-run-duration')
    );
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
  private readonly _onCompare: (runs: IRun[]) => void;
  private readonly _runs: PagedRows<IRun>;
  private readonly _searchBar: RunSearchBar;
  private readonly _picked = new Set<number>();
  private readonly _compare = h(
    'button',
    'cellops-run-compare jp-mod-styled jp-mod-accept'
  );
  private readonly _pickedCount = h('span', 'cellops-run-picked');
  private readonly _timer: number;
  private _search: IRunSearch = {};
}

/** No filter and the default order: what `GET runs` lists without a search. */
function isDefault(search: IRunSearch): boolean {
  const filters = [search.metric, search.param, search.tag];
  return (
    filters.every(f => (f ?? []).length === 0) &&
    (search.sort ?? '-started') === '-started'
  );
}

/** The order the server lists runs in under `sort`, for merging pages and updates. */
export function compareRuns(a: IRun, b: IRun, sort = '-started'): number {
  if (sort === 'started') {
    return a.id - b.id;
  }
  const metric = /^(-?)metric:(.+)$/.exec(sort);
  if (metric) {
    const [, minus, name] = metric;
    const va = a.metrics?.[name];
    const vb = b.metrics?.[name];
    if (va === undefined || vb === undefined) {
      if (va !== vb) {
        return va === undefined ? 1 : -1; // runs without it come last
      }
    } else if (va !== vb) {
      return minus ? vb - va : va - vb;
    }
  }
  return b.id - a.id;
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
  const active = run.ended_at === null;
  const origin = part('origin');
  origin.replaceChildren(...originBadges(run, trans));
  origin.title = parametersLine(run.parameters);
  row.classList.toggle('cellops-mod-headless', run.source === 'headless');
  part('number').textContent = run.number ? `#${String(run.number)}` : '';
  part('number').title = trans.__('Run %1 of this notebook', run.number ?? '?');
  const state = part('state');
  state.textContent = active ? trans.__('active') : trans.__('ended');
  state.title = active
    ? trans.__('The kernel is running')
    : trans.__('Ended %1', absoluteTime(run.ended_at ?? run.started_at));
  part('user').textContent = run.user ?? trans.__('unknown user');
  const started = part('started');
  started.textContent = relativeTime(run.started_at);
  started.title = trans.__('Started %1', absoluteTime(run.started_at));
  started.setAttribute('datetime', run.started_at);
  part('duration').textContent = runDuration(run, trans);
  const kernel = part('kernel');
  kernel.textContent = kernelLabel(run);
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
  row.classList.toggle('cellops-mod-running', active);
}

export interface IRunsListOptions {
  client: CellopsClient;
  trans: TranslationBundle;
  /** A run was clicked or chosen with Enter. */
  onOpen: (run: IRun) => void;
  /** "Compare" was pressed with these runs ticked. */
  onCompare: (runs: IRun[]) => void;
  /** "Load more" failed. */
  onError: (error: unknown) => void;
}
