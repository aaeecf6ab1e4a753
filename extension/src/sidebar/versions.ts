import { IDocumentManager } from '@jupyterlab/docmanager';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CellopsClient, IVersion } from '../api';
import { renderVersionDiff } from './diffView';
import { button, h, timeSpan } from './dom';
import { PagedRows } from './pagedRows';
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
    this._versions = new PagedRows<IVersion>({
      listClass: 'cellops-versions',
      fetch: (path, cursor) => this._client.versions(path, cursor),
      order: version => version.number,
      createRow: version => this._createRow(version),
      updateRow: (row, version) => {
        row.classList.toggle(
          'cellops-version-focused',
          version.id === this._focusedId()
        );
      },
      onError: this._onError,
      // Also after "Load more": the marked version may be on an older page.
      onRendered: () => {
        this._updateToolbar();
        void this._revealFocused();
      }
    });
    this.addClass('cellops-versions-view');
    this._buildToolbar();
    const { list, empty, more } = this._versions;
    empty.textContent = this._trans.__(
      'No versions yet. Run a cell to start tracking'
    );
    list.setAttribute('aria-label', this._trans.__('Versions'));
    more.textContent = this._trans.__('Load more');
    this.node.append(this._toolbar, this._diffHost, empty, list, more);
    this._updateToolbar();
  }

  async refresh(path: string): Promise<void> {
    if (path !== this._versions.path) {
      this.reset();
    }
    await this._versions.refresh(path);
  }

  /**
   * Mark version `id` of notebook `path` and scroll to it once shown, loading older
   * pages as needed. Kept across the reset that following `path` brings.
   */
  focusVersion(path: string, id: number): void {
    this._focus = { path, id };
    this._reveal = true;
    this._versions.render();
  }

  reset(): void {
    this._selected.clear();
    this._diffHost.replaceChildren();
    this._versions.clear();
  }

  private _buildToolbar(): void {
    this._compare.textContent = this._trans.__('Compare');
    this._compare.title = this._trans.__(
      'Show the diff of the two selected versions'
    );
    this._compare.addEventListener('click', () => void this._showDiff());
    this._toolbar.append(this._compare, this._hint);
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
    return this._focus !== null && this._focus.path === this._versions.path
      ? this._focus.id
      : null;
  }

  /** Scroll the marked version into view; page on while it is not loaded yet. */
  private async _revealFocused(): Promise<void> {
    const id = this._focusedId();
    if (!this._reveal || id === null) {
      return;
    }
    const row = this._versions.row(id);
    if (row === undefined) {
      await this._versions.loadMore(); // does nothing once there is no older page
      return;
    }
    if (this.isVisible) {
      row.scrollIntoView({ block: 'nearest' });
      this._reveal = false;
    }
  }

  private _updateToolbar(): void {
    this._toolbar.hidden = this._versions.count < 2;
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
    return [
      button(
        'cellops-version-execution jp-Button jp-mod-minimal',
        this._trans.__('from execution %1', id),
        this._trans.__('Show the execution that produced this version'),
        () => {
          this._onOpenExecution(id);
        }
      )
    ];
  }

  private readonly _client: CellopsClient;
  private readonly _trans: TranslationBundle;
  private readonly _docManager: IDocumentManager;
  private readonly _onError: (error: unknown) => void;
  private readonly _onOpenExecution: (id: number) => void;
  private readonly _versions: PagedRows<IVersion>;
  private readonly _selected = new Set<number>();
  private readonly _toolbar = h('div', 'cellops-versions-toolbar');
  private readonly _compare = h(
    'button',
    'cellops-compare jp-Button jp-mod-styled jp-mod-accept'
  );
  private readonly _hint = h('span', 'cellops-versions-hint');
  private readonly _diffHost = h('div', 'cellops-diff-host');
  private _focus: { path: string; id: number } | null = null;
  private _reveal = false;
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
