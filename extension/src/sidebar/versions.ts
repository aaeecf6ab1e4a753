import { IDocumentManager } from '@jupyterlab/docmanager';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CellopsClient, IVersion } from '../api';
import { renderVersionDiff } from './diffView';
import { emptyState, h, timeSpan } from './dom';
import { pageOrEmpty } from './errors';
import { ISidebarView } from './tabs';

/**
 * The "Versions" tab: the notebook's numbered versions, newest first; compare two,
 * or restore one as a new notebook.
 */
export class VersionsView extends Widget implements ISidebarView {
  constructor(options: IVersionsViewOptions) {
    super();
    this._client = options.client;
    this._trans = options.trans;
    this._docManager = options.docManager;
    this._onError = options.onError;
    this._onOpenExecution = options.onOpenExecution;
    this.addClass('cellops-versions-view');
    this._buildToolbar();
    this._empty.textContent = this._trans.__(
      'No versions yet. Run a cell to start tracking'
    );
    this._list.setAttribute('aria-label', this._trans.__('Versions'));
    this._more.textContent = this._trans.__('Load more');
    this._more.addEventListener('click', () => void this._loadMore());
    this.node.append(
      this._toolbar,
      this._diffHost,
      this._empty,
      this._list,
      this._more
    );
    this._render();
  }

  async refresh(path: string): Promise<void> {
    if (path !== this._path) {
      this.reset();
      this._path = path;
    }
    const page = await pageOrEmpty(() => this._client.versions(path));
    if (path !== this._path) {
      return;
    }
    page.items.forEach(v => this._versions.set(v.id, v));
    if (!this._pagedBeyondFirst) {
      this._next = page.next;
    }
    this._loaded = true;
    this._render();
    await this._revealFocused();
  }

  /**
   * Mark version `id` of notebook `path` and scroll to it once shown, loading older
   * pages as needed. Kept across the reset that following `path` brings.
   */
  focusVersion(path: string, id: number): void {
    this._focus = { path, id };
    this._reveal = true;
    this._render();
  }

  reset(): void {
    this._path = null;
    this._versions.clear();
    this._rows.clear();
    this._selected.clear();
    this._next = null;
    this._pagedBeyondFirst = false;
    this._loaded = false;
    this._list.replaceChildren();
    this._diffHost.replaceChildren();
    this._render();
  }

  private _buildToolbar(): void {
    this._compare.textContent = this._trans.__('Compare');
    this._compare.title = this._trans.__(
      'Show the diff of the two selected versions'
    );
    this._compare.addEventListener('click', () => void this._showDiff());
    this._toolbar.append(this._compare, this._hint);
  }

  private async _loadMore(): Promise<void> {
    const path = this._path;
    if (path === null || this._next === null) {
      return;
    }
    this._more.disabled = true;
    try {
      const page = await this._client.versions(path, this._next);
      if (path === this._path) {
        page.items.forEach(v => this._versions.set(v.id, v));
        this._next = page.next;
        this._pagedBeyondFirst = true;
        this._render();
        await this._revealFocused();
      }
    } catch (error) {
      this._onError(error);
    } finally {
      this._more.disabled = false;
    }
  }

  private async _showDiff(): Promise<void> {
    const pair = [...this._selected]
      .map(id => this._versions.get(id))
      .filter((v): v is IVersion => v !== undefined)
      .sort((a, b) => a.number - b.number);
    if (pair.length !== 2) {
      return;
    }
    const [older, newer] = pair;
    this._compare.disabled = true;
    try {
      const diff = await this._client.diff(older.id, newer.id);
      const node = renderVersionDiff(diff, this._trans);
      node
        .querySelector('.cellops-diff-title')
        ?.append(this._closeDiffButton());
      this._diffHost.replaceChildren(node);
      node.scrollIntoView({ block: 'nearest' });
    } catch (error) {
      this._onError(error);
    } finally {
      this._updateToolbar();
    }
  }

  private _closeDiffButton(): HTMLElement {
    const button = h('button', 'cellops-diff-close jp-Button', '×');
    button.title = this._trans.__('Close the diff');
    button.setAttribute('aria-label', button.title);
    button.addEventListener('click', () => {
      this._diffHost.replaceChildren();
    });
    return button;
  }

  private async _restore(
    version: IVersion,
    button: HTMLButtonElement
  ): Promise<void> {
    button.disabled = true;
    try {
      const { path } = await this._client.restore(version.id);
      this._docManager.openOrReveal(path);
    } catch (error) {
      this._onError(error);
    } finally {
      button.disabled = false;
    }
  }

  /** The id of the marked version, if it belongs to the notebook shown. */
  private _focusedId(): number | null {
    return this._focus !== null && this._focus.path === this._path
      ? this._focus.id
      : null;
  }

  /** Scroll the marked version into view; page on while it is not loaded yet. */
  private async _revealFocused(): Promise<void> {
    const id = this._focusedId();
    if (!this._reveal || id === null) {
      return;
    }
    const row = this._rows.get(id);
    if (row === undefined) {
      await this._loadMore(); // does nothing once there is no older page
      return;
    }
    if (this.isVisible) {
      row.scrollIntoView({ block: 'nearest' });
      this._reveal = false;
    }
  }

  private _render(): void {
    const versions = [...this._versions.values()].sort(
      (a, b) => b.number - a.number
    );
    this._empty.hidden = !this._loaded || versions.length > 0;
    this._list.hidden = versions.length === 0;
    this._toolbar.hidden = versions.length < 2;
    this._more.hidden = this._next === null;
    let before: Element | null = this._list.firstElementChild;
    for (const version of versions) {
      let row = this._rows.get(version.id);
      if (row === undefined) {
        row = this._createRow(version);
        this._rows.set(version.id, row);
      }
      row.classList.toggle(
        'cellops-version-focused',
        version.id === this._focusedId()
      );
      if (row !== before) {
        this._list.insertBefore(row, before);
      }
      before = row.nextElementSibling;
    }
    this._updateToolbar();
  }

  private _updateToolbar(): void {
    const count = this._selected.size;
    this._compare.disabled = count !== 2;
    this._hint.textContent =
      count === 2
        ? ''
        : this._trans.__('Select two versions to compare (%1 selected)', count);
  }

  private _createRow(version: IVersion): HTMLElement {
    const row = h('li', 'cellops-version');
    row.dataset.versionId = String(version.id);
    row.dataset.versionNumber = String(version.number);
    const label = h('label', 'cellops-version-label');
    const box = h('input', 'cellops-version-select');
    box.type = 'checkbox';
    box.setAttribute(
      'aria-label',
      this._trans.__('Select version %1 to compare', version.number)
    );
    box.addEventListener('change', () => {
      if (box.checked) {
        this._selected.add(version.id);
      } else {
        this._selected.delete(version.id);
      }
      row.classList.toggle('jp-mod-selected', box.checked);
      this._updateToolbar();
    });
    const created = timeSpan('cellops-version-created', version.created_at);
    label.append(
      box,
      h(
        'span',
        'cellops-version-number',
        this._trans.__('Version %1', version.number)
      ),
      created
    );
    const details = h('div', 'cellops-version-details');
    details.append(
      h(
        'span',
        'cellops-version-cells',
        this._trans._n('%1 cell', '%1 cells', version.cells)
      ),
      ...this._executionLink(version)
    );
    const restore = h('button', 'cellops-restore jp-Button jp-mod-minimal');
    restore.textContent = this._trans.__('Restore as new notebook');
    restore.title = this._trans.__(
      'Open version %1 as a new notebook next to this one',
      version.number
    );
    restore.addEventListener(
      'click',
      () => void this._restore(version, restore)
    );
    details.append(restore);
    row.append(label, details);
    return row;
  }

  /** "from execution #12", a link to it in the runs tab. */
  private _executionLink(version: IVersion): HTMLElement[] {
    const id = version.execution_id;
    if (id === null) {
      return [];
    }
    const link = h(
      'button',
      'cellops-version-execution jp-Button jp-mod-minimal',
      this._trans.__('from execution %1', id)
    );
    link.title = this._trans.__(
      'Show the execution that produced this version'
    );
    link.addEventListener('click', () => {
      this._onOpenExecution(id);
    });
    return [link];
  }

  private readonly _client: CellopsClient;
  private readonly _trans: TranslationBundle;
  private readonly _docManager: IDocumentManager;
  private readonly _onError: (error: unknown) => void;
  private readonly _onOpenExecution: (id: number) => void;
  private readonly _versions = new Map<number, IVersion>();
  private readonly _rows = new Map<number, HTMLElement>();
  private readonly _selected = new Set<number>();
  private readonly _toolbar = h('div', 'cellops-versions-toolbar');
  private readonly _compare = h(
    'button',
    'cellops-compare jp-Button jp-mod-styled jp-mod-accept'
  );
  private readonly _hint = h('span', 'cellops-versions-hint');
  private readonly _diffHost = h('div', 'cellops-diff-host');
  private readonly _empty = emptyState('');
  private readonly _list = h('ul', 'cellops-versions');
  private readonly _more = h('button', 'cellops-load-more jp-mod-styled');
  private _path: string | null = null;
  private _next: string | null = null;
  private _focus: { path: string; id: number } | null = null;
  private _reveal = false;
  private _pagedBeyondFirst = false;
  private _loaded = false;
}

export interface IVersionsViewOptions {
  client: CellopsClient;
  trans: TranslationBundle;
  docManager: IDocumentManager;
  /** An action (compare, restore, load more) failed. */
  onError: (error: unknown) => void;
  /** The user asked to see the execution that produced a version. */
  onOpenExecution: (id: number) => void;
}
