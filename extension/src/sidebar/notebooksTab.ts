import { TranslationBundle } from '@jupyterlab/translation';
import { Panel, Widget } from '@lumino/widgets';

import { INotebook, INotebookQuery } from '../api';
import { button, emptyState, h, makeActivatable, timeSpan } from './dom';
import { INotebookViewOptions, NotebookView, whose } from './notebookView';
import { ISidebarView } from './tabs';

/** Wait this long after the last keystroke in the filter before asking the server. */
const FILTER_DELAY_MS = 250;
const PAGE_SIZE = 50;

/**
 * The "Notebooks" tab (team-wide): the team's tracked notebooks, most recently
 * active first, with a path filter and "Mine only"; a click opens one read-only
 * (`NotebookView`), whether or not it is on the member's disk.
 */
export class NotebooksTab extends Panel implements ISidebarView {
  constructor(private readonly _options: INotebooksTabOptions) {
    super();
    this._trans = _options.translator.load('cellops');
    this.addClass('cellops-notebooks-tab');
    this._listView.addClass('cellops-notebooks-view');
    this._more = button(
      'cellops-load-more jp-mod-styled',
      this._trans.__('Load more'),
      this._trans.__('Show notebooks active longer ago'),
      () => void this._loadMore()
    );
    this._buildToolbar();
    this._list.setAttribute('aria-label', this._trans.__('Notebooks'));
    this._empty.hidden = true;
    this._more.hidden = true;
    this._listView.node.append(
      this._toolbar,
      this._empty,
      this._list,
      this._more
    );
    this.addWidget(this._listView);
  }

  /** The notebook opened, if one is. */
  get opened(): NotebookView | null {
    return this._view;
  }

  /** Refetch what is shown: the list's first page, or the opened notebook. */
  async refresh(): Promise<void> {
    if (this._view !== null) {
      await this._view.refresh();
      return;
    }
    await this._load();
  }

  /** Back to the list (team-wide tabs are not reset by notebook changes). */
  reset(): void {
    this._close();
  }

  /** Open `notebook` read-only in this tab. */
  open(notebook: INotebook): void {
    this._view?.dispose();
    this._view = new NotebookView(
      {
        ...this._options,
        onBack: () => {
          this._close();
          void this._load().catch(this._options.onError);
        }
      },
      notebook
    );
    this._listView.hide();
    this.addWidget(this._view);
  }

  private _close(): void {
    this._view?.dispose();
    this._view = null;
    this._listView.show();
  }

  private _buildToolbar(): void {
    this._filter.type = 'search';
    this._filter.placeholder = this._trans.__('Filter by path');
    this._filter.setAttribute('aria-label', this._trans.__('Filter by path'));
    this._filter.addEventListener('input', () => {
      window.clearTimeout(this._timer);
      this._timer = window.setTimeout(() => {
        this._load().catch(this._options.onError);
      }, FILTER_DELAY_MS);
    });
    this._mine.type = 'checkbox';
    this._mine.addEventListener('change', () => {
      this._load().catch(this._options.onError);
    });
    const mine = this._mineLabel;
    mine.title = this._trans.__('Only notebooks that are your files');
    mine.append(this._mine, this._trans.__('Mine only'));
    this._toolbar.append(this._filter, mine);
  }

  private _query(): INotebookQuery {
    return {
      q: this._filter.value.trim() || undefined,
      owner: this._mine.checked ? 'me' : undefined,
      limit: PAGE_SIZE
    };
  }

  /** The first page for the current filters; an answer to older filters is dropped. */
  private async _load(): Promise<void> {
    await this._checkMode();
    const query = this._query();
    const key = JSON.stringify(query);
    this._key = key;
    const page = await this._options.client.notebooks(query);
    if (key !== this._key) {
      return;
    }
    this._list.replaceChildren(...page.items.map(nb => this._row(nb)));
    this._showPaging(page.next, page.items.length);
  }

  /** In embedded (single-user) mode every notebook is the user's: no "Mine only". */
  private async _checkMode(): Promise<void> {
    if (this._modeChecked) {
      return;
    }
    const status = await this._options.client.status();
    this._modeChecked = true;
    this._mineLabel.hidden = status.mode === 'embedded';
  }

  private async _loadMore(): Promise<void> {
    const key = this._key;
    const cursor = this._next;
    if (cursor === null) {
      return;
    }
    this._more.disabled = true;
    try {
      const page = await this._options.client.notebooks({
        ...this._query(),
        cursor
      });
      if (key === this._key) {
        this._list.append(...page.items.map(nb => this._row(nb)));
        this._showPaging(page.next, this._list.childElementCount);
      }
    } catch (error) {
      this._options.onError(error);
    } finally {
      this._more.disabled = false;
    }
  }

  private _showPaging(next: string | null, count: number): void {
    this._next = next;
    this._more.hidden = next === null;
    this._list.hidden = count === 0;
    this._empty.hidden = count > 0;
    this._empty.textContent =
      this._filter.value.trim() || this._mine.checked
        ? this._trans.__('No tracked notebook matches')
        : this._trans.__('No notebook is tracked yet. Run a cell to start.');
  }

  private _row(nb: INotebook): HTMLElement {
    const row = h('li', 'cellops-notebook-row');
    row.dataset.notebookId = String(nb.id);
    makeActivatable(row, this._trans.__('Open %1 read-only', nb.path), () => {
      this.open(nb);
    });
    const path = h('div', 'cellops-notebook-path', nb.path);
    path.title = nb.path;
    const meta = h('div', 'cellops-notebook-meta');
    meta.append(
      h('span', 'cellops-notebook-owner', whose(nb, this._trans)),
      timeSpan('cellops-notebook-activity', nb.last_activity_at),
      h(
        'span',
        'cellops-notebook-runs',
        this._trans._n('%1 run', '%1 runs', nb.runs)
      )
    );
    row.append(path, meta);
    return row;
  }

  private readonly _trans: TranslationBundle;
  private readonly _listView = new Widget();
  private readonly _toolbar = h('div', 'cellops-notebooks-toolbar');
  private readonly _filter = h(
    'input',
    'cellops-notebooks-filter jp-mod-styled'
  );
  private readonly _mine = h('input', 'cellops-notebooks-mine-toggle');
  private readonly _mineLabel = h('label', 'cellops-notebooks-mine');
  private readonly _list = h('ul', 'cellops-notebooks');
  private readonly _empty = emptyState('');
  private readonly _more: HTMLButtonElement;
  private _view: NotebookView | null = null;
  private _next: string | null = null;
  private _key = '';
  private _modeChecked = false;
  private _timer = 0;
}

export type INotebooksTabOptions = Omit<INotebookViewOptions, 'onBack'>;
