import { TranslationBundle } from '@jupyterlab/translation';
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { CellopsClient, IExecution, IRun } from '../api';
import { h } from './dom';
import { absoluteTime, firstLine, formatDuration } from './format';

/** Height of one row in pixels; must match `.cellops-timeline-row` in sidebar.css. */
export const ROW_HEIGHT = 24;
/** Executions per request (the API's largest page). */
const PAGE_SIZE = 500;
/** Rows rendered above and below the visible ones, so fast scrolling shows no gap. */
const OVERSCAN = 12;

interface IPage {
  /** The cursor this page was fetched with (`undefined` for the first page). */
  cursor: string | undefined;
  items: IExecution[];
  next: string | null;
}

/**
 * The executions of one run in run order: a virtualized list (`.cellops-timeline`).
 *
 * Only the visible rows (plus a small overscan) are in the DOM, at fixed height under
 * a spacer sized to the whole run. Pages of 500 are fetched lazily and sequentially
 * (keyset cursors) up to the visible range, never per row.
 *
 * It opens at the newest execution and follows new ones like a log tail while the
 * user is at the bottom; scrolled up, it stays put and a "N new ↓" button jumps back.
 */
export class Timeline extends Widget {
  constructor(options: ITimelineOptions) {
    super();
    this._client = options.client;
    this._trans = options.trans;
    this._onOpen = options.onOpen;
    this._onError = options.onError;
    this.addClass('cellops-timeline');
    this.node.setAttribute('role', 'listbox');
    this.node.setAttribute('aria-label', this._trans.__('Executions'));
    this._jump.addEventListener('click', () => {
      this.follow();
    });
    this._jump.hidden = true;
    const dock = h('div', 'cellops-timeline-dock');
    dock.appendChild(this._jump);
    this.node.append(this._spacer, dock);
    this.node.addEventListener(
      'scroll',
      () => {
        this._onScroll();
        this._scheduleRender();
      },
      {
        passive: true
      }
    );
    this.node.addEventListener('keydown', event => {
      this._onKey(event);
    });
    // The panel lays out with CSS (the detail opening shrinks us): no lumino resize message.
    this._resizeObserver = new ResizeObserver(() => {
      this._scheduleRender();
    });
    this._resizeObserver.observe(this.node);
  }

  /** The run shown, if any. */
  get run(): IRun | null {
    return this._run;
  }

  /** Whether new executions scroll into view (the user is at the newest). */
  get following(): boolean {
    return this._follow;
  }

  /** Show `run` at its newest execution, following new ones. */
  load(run: IRun): void {
    this._generation++;
    this._run = run;
    this._pages = [];
    this._failed = false;
    this._loading = false;
    this._selectedId = null;
    this._queue = Promise.resolve();
    this._rows.forEach(row => {
      row.remove();
    });
    this._rows.clear();
    this._follow = true;
    this._setUnseen(0);
    this._scheduleRender();
  }

  /** Jump to the newest execution and follow new ones again. */
  follow(): void {
    this._follow = true;
    this._setUnseen(0);
    this._render();
  }

  /**
   * Live update: `run` has new counts. Refetches the tail and the pages holding
   * running executions; keeps the scroll position (or follows the tail when the
   * user was at the bottom) and the selection.
   */
  async applyRun(run: IRun): Promise<void> {
    if (this._run?.id !== run.id) {
      return;
    }
    const added = run.executions - this._run.executions;
    this._run = run;
    this._failed = false;
    await this._enqueue(async generation => {
      for (const index of this._stalePages(run)) {
        await this._fetchPage(index, generation);
      }
    });
    if (!this._follow && added > 0) {
      this._setUnseen(this._unseen + added);
    }
    this._render();
  }

  /** A loaded execution, by id. */
  get(id: number): IExecution | undefined {
    for (const page of this._pages) {
      const found = page.items.find(e => e.id === id);
      if (found) {
        return found;
      }
    }
    return undefined;
  }

  /** Mark `id` as the open execution. */
  select(id: number | null): void {
    this._selectedId = id;
    this._rows.forEach(row => {
      const selected = row.dataset.executionId === String(id);
      row.classList.toggle('jp-mod-selected', selected);
      row.setAttribute('aria-selected', String(selected));
    });
  }

  /**
   * Load pages until execution `id` is found, select it and scroll it into view.
   * Answers whether it was found.
   */
  async reveal(id: number): Promise<boolean> {
    let index = -1;
    await this._enqueue(async generation => {
      index = this._indexOf(id);
      while (index < 0 && !this._complete && generation === this._generation) {
        await this._fetchPage(this._pages.length, generation);
        index = this._indexOf(id);
      }
    });
    if (index < 0) {
      return false;
    }
    this.select(id);
    this._scrollIntoView(index);
    return true;
  }

  /** Scroll the selected execution into view (after the layout changed). */
  revealSelected(): void {
    const id = this._selectedId;
    const index = id === null ? -1 : this._indexOf(id);
    if (index >= 0) {
      this._scrollIntoView(index);
    }
  }

  override dispose(): void {
    this._resizeObserver.disconnect();
    super.dispose();
  }

  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._scheduleRender();
  }

  protected override onBeforeDetach(msg: Message): void {
    cancelAnimationFrame(this._frame);
    this._frame = 0;
    super.onBeforeDetach(msg);
  }

  // -- data ---------------------------------------------------------------------------------

  private get _loadedCount(): number {
    const last = this._pages.at(-1);
    return last ? (this._pages.length - 1) * PAGE_SIZE + last.items.length : 0;
  }

  private get _complete(): boolean {
    const last = this._pages.at(-1);
    return last?.next === null;
  }

  /** Rows in the list: all loaded rows once the end is known, else the run's count. */
  private get _total(): number {
    if (this._complete) {
      return this._loadedCount;
    }
    return Math.max(this._run?.executions ?? 0, this._loadedCount);
  }

  private _item(index: number): IExecution | undefined {
    return this._pages[Math.floor(index / PAGE_SIZE)]?.items[index % PAGE_SIZE];
  }

  private _indexOf(id: number): number {
    for (let p = 0; p < this._pages.length; p++) {
      const offset = this._pages[p].items.findIndex(e => e.id === id);
      if (offset >= 0) {
        return p * PAGE_SIZE + offset;
      }
    }
    return -1;
  }

  /** Pages to refetch after `run` changed: those with running rows, and the tail if it grew. */
  private _stalePages(run: IRun): number[] {
    const stale = new Set<number>();
    this._pages.forEach((page, index) => {
      if (page.items.some(e => e.status === 'running')) {
        stale.add(index);
      }
    });
    if (this._pages.length > 0 && run.executions > this._loadedCount) {
      stale.add(this._pages.length - 1);
    }
    return [...stale].sort((a, b) => a - b);
  }

  /** Fetch page `index` (an existing one again, or the one after the last). */
  private async _fetchPage(index: number, generation: number): Promise<void> {
    const run = this._run;
    if (run === null) {
      return;
    }
    const cursor =
      index < this._pages.length
        ? this._pages[index].cursor
        : (this._pages.at(-1)?.next ?? undefined);
    const page = await this._client.runExecutions(run.id, cursor, PAGE_SIZE);
    if (generation !== this._generation) {
      return;
    }
    this._pages[index] = { cursor, items: page.items, next: page.next };
  }

  private async _loadUpTo(index: number, generation: number): Promise<void> {
    while (
      !this._complete &&
      this._loadedCount <= index &&
      generation === this._generation
    ) {
      await this._fetchPage(this._pages.length, generation);
    }
  }

  /** Run fetches one at a time: pages depend on the previous page's cursor. */
  private _enqueue(task: (generation: number) => Promise<void>): Promise<void> {
    const generation = this._generation;
    const run = this._queue.then(() =>
      generation === this._generation ? task(generation) : undefined
    );
    this._queue = run.catch((error: unknown) => {
      if (generation === this._generation) {
        this._failed = true;
        this._onError(error);
      }
    });
    return this._queue;
  }

  // -- rendering ----------------------------------------------------------------------------

  private _scheduleRender(): void {
    if (this._frame === 0) {
      this._frame = requestAnimationFrame(() => {
        this._frame = 0;
        this._render();
      });
    }
  }

  private _render(): void {
    const total = this._total;
    if (this._follow) {
      this._spacer.style.height = `${String(total * ROW_HEIGHT)}px`;
      this.node.scrollTop = this.node.scrollHeight; // the newest row, in sight
    }
    // Read layout once, then only write.
    const top = this.node.scrollTop;
    const height = this.node.clientHeight;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(
      total - 1,
      Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN
    );
    this._spacer.style.height = `${String(total * ROW_HEIGHT)}px`;
    this._rows.forEach((row, index) => {
      if (index < first || index > last) {
        row.remove();
        this._rows.delete(index);
      }
    });
    let missing = false;
    let next: HTMLElement | null = null;
    for (let index = last; index >= first; index--) {
      let row = this._rows.get(index);
      if (row === undefined) {
        row = this._createRow(index);
        this._rows.set(index, row);
        this._spacer.insertBefore(row, next);
      }
      const item = this._item(index);
      missing ||= item === undefined;
      this._fillRow(row, item);
      next = row;
    }
    if (missing && !this._complete && !this._failed && !this._loading) {
      this._loading = true;
      const generation = this._generation;
      void this._enqueue(g => this._loadUpTo(last, g)).then(() => {
        if (generation === this._generation) {
          this._loading = false;
          this._scheduleRender();
        }
      });
    }
  }

  private _createRow(index: number): HTMLElement {
    const row = h('div', 'cellops-timeline-row');
    row.style.top = `${String(index * ROW_HEIGHT)}px`;
    row.dataset.index = String(index);
    row.tabIndex = -1;
    row.setAttribute('role', 'option');
    row.append(
      h('span', 'cellops-execution-status'),
      h('span', 'cellops-execution-count'),
      h('span', 'cellops-execution-code'),
      h('span', 'cellops-execution-duration')
    );
    row.addEventListener('click', () => {
      const item = this._item(index);
      if (item) {
        this._onOpen(item);
      }
    });
    return row;
  }

  private _fillRow(row: HTMLElement, e: IExecution | undefined): void {
    const key = e
      ? `${String(e.id)}|${e.status}|${String(e.duration_ms)}|${String(e.execution_count)}`
      : '';
    if (row.dataset.key === key && row.dataset.filled === '1') {
      return;
    }
    row.dataset.key = key;
    row.dataset.filled = '1';
    const [status, count, code, duration] = Array.from(row.children);
    row.classList.toggle('cellops-execution', e !== undefined);
    row.classList.toggle('cellops-mod-placeholder', e === undefined);
    row.tabIndex = e ? 0 : -1;
    if (e === undefined) {
      delete row.dataset.executionId;
      delete row.dataset.status;
      row.removeAttribute('title');
      count.textContent = '';
      code.textContent = this._trans.__('Loading…');
      duration.textContent = '';
      return;
    }
    row.dataset.executionId = String(e.id);
    row.dataset.status = e.status;
    const selected = e.id === this._selectedId;
    row.classList.toggle('jp-mod-selected', selected);
    row.setAttribute('aria-selected', String(selected));
    const statusText = this._statusText(e);
    status.setAttribute('aria-label', statusText);
    row.title = this._trans.__(
      '%1, started %2',
      statusText,
      absoluteTime(e.started_at)
    );
    count.textContent = `[${e.execution_count === null ? ' ' : String(e.execution_count)}]`;
    code.textContent = firstLine(e.code);
    duration.textContent =
      e.status === 'running' ? '' : formatDuration(e.duration_ms, this._trans);
  }

  private _statusText(e: IExecution): string {
    switch (e.status) {
      case 'ok':
        return this._trans.__('Succeeded');
      case 'error':
        return e.error
          ? this._trans.__('Failed: %1', e.error.ename)
          : this._trans.__('Failed');
      case 'running':
        return this._trans.__('Running');
      case 'aborted':
        return this._trans.__('Aborted');
    }
  }

  private _atBottom(): boolean {
    const node = this.node;
    return (
      node.scrollTop + node.clientHeight >= node.scrollHeight - ROW_HEIGHT / 2
    );
  }

  /** Scrolled by the user (or by us): follow the tail only while at the bottom. */
  private _onScroll(): void {
    if (this.node.clientHeight === 0) {
      return; // hidden: no layout to judge by
    }
    this._follow = this._atBottom();
    if (this._follow) {
      this._setUnseen(0);
    }
  }

  private _setUnseen(count: number): void {
    this._unseen = count;
    this._jump.hidden = count === 0;
    this._jump.textContent = this._trans._n('%1 new ↓', '%1 new ↓', count);
    this._jump.title = this._trans.__('Jump to the newest execution');
  }

  private _scrollIntoView(index: number): void {
    const node = this.node;
    const top = index * ROW_HEIGHT;
    if (top < node.scrollTop) {
      node.scrollTop = top;
    } else if (top + ROW_HEIGHT > node.scrollTop + node.clientHeight) {
      node.scrollTop = top + ROW_HEIGHT - node.clientHeight;
    }
    // A chosen row stays in sight: follow the tail only if it is the newest one.
    this._follow = this._atBottom();
    this._render();
  }

  private _onKey(event: KeyboardEvent): void {
    const row = (event.target as HTMLElement).closest<HTMLElement>(
      '.cellops-timeline-row'
    );
    if (row === null) {
      return;
    }
    const index = Number(row.dataset.index);
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      const item = this._item(index);
      if (item) {
        this._onOpen(item);
      }
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const target = index + (event.key === 'ArrowDown' ? 1 : -1);
      if (target >= 0 && target < this._total) {
        this._scrollIntoView(target);
        this._rows.get(target)?.focus();
      }
    }
  }

  private readonly _client: CellopsClient;
  private readonly _trans: TranslationBundle;
  private readonly _onOpen: (execution: IExecution) => void;
  private readonly _onError: (error: unknown) => void;
  private readonly _spacer = h('div', 'cellops-timeline-spacer');
  private readonly _rows = new Map<number, HTMLElement>();
  private readonly _resizeObserver: ResizeObserver;
  private _run: IRun | null = null;
  private _pages: IPage[] = [];
  private _queue: Promise<void> = Promise.resolve();
  private _generation = 0;
  private _frame = 0;
  private _loading = false;
  private _failed = false;
  private _selectedId: number | null = null;
  private _follow = true;
  private _unseen = 0;
  private readonly _jump = h('button', 'cellops-timeline-jump jp-mod-styled');
}

export interface ITimelineOptions {
  client: CellopsClient;
  trans: TranslationBundle;
  /** An execution was clicked or chosen with Enter. */
  onOpen: (execution: IExecution) => void;
  /** A page could not be fetched. */
  onError: (error: unknown) => void;
}
