import { IPage } from '../api';
import { emptyState, h } from './dom';
import { pageOrEmpty } from './errors';

export interface IPagedRowsOptions<T> {
  /** Class of the `<ul>` holding the rows. */
  listClass: string;
  /** A page of `path`'s items, newest first; `cursor` for older pages. */
  fetch: (path: string, cursor?: string) => Promise<IPage<T>>;
  /** Sort key: a larger value is shown higher. */
  order: (item: T) => number;
  /** Instead of `order`: negative when `a` is shown above `b` (e.g. the server's sort). */
  compare?: (a: T, b: T) => number;
  createRow: (item: T) => HTMLElement;
  /** Bring an existing row up to date (after every fetch). */
  updateRow: (row: HTMLElement, item: T) => void;
  onError: (error: unknown) => void;
  /** After each render, e.g. to update a toolbar. */
  onRendered?: () => void;
}

/**
 * A notebook's items (runs, versions) newest first, fetched a page at a time.
 *
 * A refresh fetches the newest page and keeps older pages loaded with "Load more".
 * Rows are keyed by id and updated in place, so a live refresh keeps the keyboard
 * focus and the scroll position. The owner places `empty`, `list` and `more`.
 */
export class PagedRows<T extends { id: number }> {
  readonly list: HTMLElement;
  readonly empty = emptyState('');
  readonly more = h('button', 'cellops-load-more jp-mod-styled');

  constructor(private readonly _options: IPagedRowsOptions<T>) {
    this.list = h('ul', _options.listClass);
    this.more.addEventListener('click', () => void this.loadMore());
    // Nothing is loaded before the first refresh: show nothing, not "empty".
    this.empty.hidden = this.list.hidden = this.more.hidden = true;
  }

  /** The notebook shown; `null` until the first refresh. */
  get path(): string | null {
    return this._path;
  }

  /** How many items are loaded. */
  get count(): number {
    return this._items.size;
  }

  /** The loaded items, in no particular order. */
  get items(): T[] {
    return [...this._items.values()];
  }

  /** An item already loaded, by id. */
  get(id: number): T | undefined {
    return this._items.get(id);
  }

  /** The row of a loaded item, by id. */
  row(id: number): HTMLElement | undefined {
    return this._rows.get(id);
  }

  /** Fetch the newest page of `path` (another path: start over). */
  async refresh(path: string): Promise<void> {
    if (path !== this._path) {
      this.clear();
      this._path = path;
    }
    const generation = this._generation;
    const page = await pageOrEmpty(() => this._options.fetch(path));
    if (path !== this._path || generation !== this._generation) {
      return; // the notebook (or what is asked) changed while we waited
    }
    this._add(page.items);
    if (!this._pagedBeyondFirst) {
      this._next = page.next;
    }
    this._loaded = true;
    this.render();
  }

  /** Fetch the next older page, if any; concurrent calls share one request. */
  loadMore(): Promise<void> {
    this._loading ??= this._loadMore().finally(() => {
      this._loading = null;
    });
    return this._loading;
  }

  /** Forget everything shown (another notebook became active). */
  clear(): void {
    this._generation++;
    this._path = null;
    this._items.clear();
    this._rows.clear();
    this._next = null;
    this._pagedBeyondFirst = false;
    this._loaded = false;
    this.list.replaceChildren();
    this.render();
  }

  render(): void {
    const { order, compare, createRow, updateRow } = this._options;
    const items = [...this._items.values()].sort(
      compare ?? ((a, b) => order(b) - order(a))
    );
    this.empty.hidden = !this._loaded || items.length > 0;
    this.list.hidden = items.length === 0;
    this.more.hidden = this._next === null;
    // Walk newest to oldest, inserting new rows before the next existing one.
    let before: Element | null = this.list.firstElementChild;
    for (const item of items) {
      let row = this._rows.get(item.id);
      if (row === undefined) {
        row = createRow(item);
        this._rows.set(item.id, row);
      }
      if (row !== before) {
        this.list.insertBefore(row, before);
      }
      updateRow(row, item);
      before = row.nextElementSibling;
    }
    this._options.onRendered?.();
  }

  private async _loadMore(): Promise<void> {
    const path = this._path;
    const cursor = this._next;
    if (path === null || cursor === null) {
      return;
    }
    this.more.disabled = true;
    const generation = this._generation;
    try {
      const page = await this._options.fetch(path, cursor);
      if (path === this._path && generation === this._generation) {
        this._add(page.items);
        this._next = page.next;
        this._pagedBeyondFirst = true;
        this.render();
      }
    } catch (error) {
      this._options.onError(error);
    } finally {
      this.more.disabled = false;
    }
  }

  private _add(items: T[]): void {
    items.forEach(item => this._items.set(item.id, item));
  }

  private readonly _items = new Map<number, T>();
  private readonly _rows = new Map<number, HTMLElement>();
  private _path: string | null = null;
  private _next: string | null = null;
  private _pagedBeyondFirst = false;
  private _loaded = false;
  private _loading: Promise<void> | null = null;
  private _generation = 0;
}
