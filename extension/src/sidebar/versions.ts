import { InputDialog } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CellopsClient, IVersion, IVersionUpdate } from '../api';
import { renderVersionDiff } from './diffView';
import { button, h, timeSpan } from './dom';
import { PagedRows } from './pagedRows';
import { ISidebarView } from './tabs';

/** Where a restored notebook came from (its metadata `cellops.restored_from`). */
export interface IRestoredFrom {
  path: string;
  version: number;
  version_id?: number;
  at?: string;
}

/**
 * The "Versions" tab: the notebook's numbered versions, newest first, each saying what
 * it changed; compare two, name or pin one, or restore one as a new notebook.
 *
 * Consecutive versions of one run that only added cells share a `step` (server side):
 * a step of several versions shows as one collapsed row ("v1–v14: 14 cells added")
 * that expands. Named and pinned versions are always steps of their own.
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
        this._updateRow(row, version);
      },
      onError: this._onError,
      // Also after "Load more": the marked version may be on an older page.
      onRendered: () => {
        this._layoutSteps();
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
    this._origin.hidden = true;
    this.node.append(
      this._origin,
      this._toolbar,
      this._diffHost,
      empty,
      list,
      more
    );
    this._updateToolbar();
  }

  async refresh(path: string): Promise<void> {
    if (path !== this._versions.path) {
      this.reset();
      this._showOrigin(path);
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
    this._expanded.clear();
    this._diffHost.replaceChildren();
    this._origin.hidden = true;
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

  /** "Restored from analysis.ipynb, version 5" for a notebook a restore wrote. */
  private _showOrigin(path: string): void {
    const widget = this._docManager.findWidget(path);
    if (widget === undefined) {
      return;
    }
    void widget.context.ready.then(() => {
      if (this._versions.path !== path) {
        return; // another notebook became active meanwhile
      }
      const origin = restoredFrom(widget.context.model);
      this._origin.hidden = origin === null;
      if (origin !== null) {
        this._origin.textContent = this._trans.__(
          'Restored from %1, version %2',
          origin.path,
          origin.version
        );
        this._origin.title = origin.at
          ? this._trans.__('Restored %1', new Date(origin.at).toLocaleString())
          : '';
      }
    });
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
    this._setCompareEnabled(false);
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

  /** Ask for a name (blank clears it) and save it. */
  private async _askName(version: IVersion): Promise<void> {
    const answer = await InputDialog.getText({
      title: this._trans.__('Name version %1', version.number),
      label: this._trans.__('Name (leave empty to remove it)'),
      text: version.name ?? '',
      placeholder: this._trans.__('e.g. baseline'),
      okLabel: this._trans.__('Save')
    });
    if (answer.button.accept) {
      await this._update(version, { name: answer.value ?? '' });
    }
  }

  private async _update(
    version: IVersion,
    update: IVersionUpdate
  ): Promise<void> {
    const path = this._versions.path;
    try {
      await this._client.patchVersion(version.id, update);
      if (path !== null) {
        await this._versions.refresh(path); // names and pins change steps too
      }
    } catch (error) {
      this._onError(error);
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
    this._setCompareEnabled(count === 2);
    this._hint.textContent =
      count === 2
        ? ''
        : this._trans.__('Select two versions to compare (%1 selected)', count);
  }

  private _setCompareEnabled(enabled: boolean): void {
    this._compare.disabled = !enabled;
    this._compare.classList.toggle('jp-mod-disabled', !enabled);
    this._compare.setAttribute('aria-disabled', String(!enabled));
  }

  /**
   * One row per step: the newest version of a step of several heads it and, while the
   * step is collapsed, stands for all of them; its other versions are hidden.
   */
  private _layoutSteps(): void {
    const steps = new Map<number, { rows: HTMLElement[]; newest: IVersion }>();
    for (const row of this._versions.list.children) {
      const version = this._versions.get(
        Number((row as HTMLElement).dataset.versionId)
      );
      if (version === undefined) {
        continue;
      }
      const step = steps.get(version.step);
      if (step === undefined) {
        steps.set(version.step, {
          rows: [row as HTMLElement],
          newest: version
        });
      } else {
        step.rows.push(row as HTMLElement);
      }
    }
    const focused = this._focusedId();
    for (const [number, { rows, newest }] of steps) {
      const [head, ...rest] = rows;
      if (
        rest.length > 0 &&
        rows.some(r => Number(r.dataset.versionId) === focused)
      ) {
        this._expanded.add(number);
      }
      const collapsed = rest.length > 0 && !this._expanded.has(number);
      head.classList.toggle('cellops-version-step-head', rest.length > 0);
      head.classList.toggle('cellops-mod-collapsed', collapsed);
      rest.forEach(row => {
        row.classList.remove(
          'cellops-version-step-head',
          'cellops-mod-collapsed'
        );
        row.hidden = collapsed;
      });
      head.hidden = false;
      this._renderStepHeader(head, number, newest, rest.length > 0, collapsed);
    }
  }

  private _renderStepHeader(
    head: HTMLElement,
    step: number,
    newest: IVersion,
    several: boolean,
    collapsed: boolean
  ): void {
    const toggle = head.querySelector<HTMLButtonElement>(
      '.cellops-version-step'
    );
    if (toggle === null) {
      return;
    }
    toggle.hidden = !several;
    if (!several) {
      return;
    }
    const count = newest.number - step + 1;
    toggle.textContent = `${collapsed ? '▸' : '▾'} ${this._trans._n(
      'v%2–v%3: %1 cell added',
      'v%2–v%3: %1 cells added',
      count,
      step,
      newest.number
    )}`;
    toggle.setAttribute('aria-expanded', String(!collapsed));
    toggle.title = collapsed
      ? this._trans.__('Show each version of this step')
      : this._trans.__('Fold this step into one row');
    toggle.onclick = () => {
      if (this._expanded.has(step)) {
        this._expanded.delete(step);
      } else {
        this._expanded.add(step);
      }
      this._layoutSteps();
    };
  }

  private _createRow(version: IVersion): HTMLElement {
    const row = h('li', 'cellops-version');
    row.dataset.versionId = String(version.id);
    row.dataset.versionNumber = String(version.number);
    const toggle = h('button', 'cellops-version-step jp-Button jp-mod-minimal');
    toggle.hidden = true;
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
    label.append(
      box,
      h(
        'span',
        'cellops-version-number',
        this._trans.__('Version %1', version.number)
      ),
      h('span', 'cellops-version-pin', this._trans.__('pinned')),
      timeSpan('cellops-version-created', version.created_at)
    );
    const details = h('div', 'cellops-version-details');
    details.append(
      h('span', 'cellops-version-summary'),
      ...this._executionLink(version),
      this._actions(version)
    );
    const name = h('div', 'cellops-version-name');
    name.hidden = true;
    row.append(toggle, label, name, details);
    return row;
  }

  /** What may change between fetches: name, pin, summary, focus. */
  private _updateRow(row: HTMLElement, version: IVersion): void {
    row.classList.toggle(
      'cellops-version-focused',
      version.id === this._focusedId()
    );
    row.classList.toggle('cellops-mod-pinned', version.pinned);
    const name = row.querySelector<HTMLElement>('.cellops-version-name');
    if (name !== null) {
      name.textContent = version.name ?? '';
      name.hidden = version.name === null;
    }
    const pin = row.querySelector<HTMLElement>('.cellops-version-pin');
    if (pin !== null) {
      pin.hidden = !version.pinned;
    }
    const summary = row.querySelector<HTMLElement>('.cellops-version-summary');
    if (summary !== null) {
      summary.textContent = version.summary;
      summary.title = this._trans._n('%1 cell', '%1 cells', version.cells);
    }
    const pinButton = row.querySelector<HTMLButtonElement>(
      '.cellops-version-pin-toggle'
    );
    if (pinButton !== null) {
      pinButton.textContent = version.pinned
        ? this._trans.__('Unpin')
        : this._trans.__('Pin');
      pinButton.setAttribute('aria-pressed', String(version.pinned));
    }
    const nameButton = row.querySelector<HTMLButtonElement>(
      '.cellops-version-rename'
    );
    if (nameButton !== null) {
      nameButton.textContent =
        version.name === null
          ? this._trans.__('Name…')
          : this._trans.__('Rename…');
    }
  }

  /** Name…, Pin and Restore; they act on the version as last fetched. */
  private _actions(version: IVersion): HTMLElement {
    const current = (): IVersion => this._versions.get(version.id) ?? version;
    const actions = h('span', 'cellops-version-actions');
    const rename = button(
      'cellops-version-rename jp-Button jp-mod-minimal',
      this._trans.__('Name…'),
      this._trans.__('Give version %1 a name', version.number),
      () => void this._askName(current())
    );
    const pin = button(
      'cellops-version-pin-toggle jp-Button jp-mod-minimal',
      this._trans.__('Pin'),
      this._trans.__(
        'Pinned versions stand out and are never folded into a step'
      ),
      () => void this._update(current(), { pinned: !current().pinned })
    );
    const restore = h('button', 'cellops-restore jp-Button jp-mod-minimal');
    restore.textContent = this._trans.__('Restore as new notebook');
    restore.title = this._trans.__(
      'Open version %1 as a new notebook next to this one',
      version.number
    );
    restore.addEventListener(
      'click',
      () => void this._restore(current(), restore)
    );
    actions.append(rename, pin, restore);
    return actions;
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
  /** Steps (by their first version's number) the user unfolded. */
  private readonly _expanded = new Set<number>();
  private readonly _origin = h('div', 'cellops-versions-origin');
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

/** A notebook model's `cellops.restored_from` metadata, if it has a valid one. */
export function restoredFrom(model: unknown): IRestoredFrom | null {
  const getMetadata = (model as { getMetadata?: unknown } | null)?.getMetadata;
  if (typeof getMetadata !== 'function') {
    return null;
  }
  const cellops: unknown = getMetadata.call(model, 'cellops');
  const origin =
    typeof cellops === 'object' && cellops !== null
      ? (cellops as Record<string, unknown>).restored_from
      : undefined;
  if (typeof origin !== 'object' || origin === null) {
    return null;
  }
  const { path, version, version_id, at } = origin as Record<string, unknown>;
  if (typeof path !== 'string' || typeof version !== 'number') {
    return null;
  }
  return {
    path,
    version,
    version_id: typeof version_id === 'number' ? version_id : undefined,
    at: typeof at === 'string' ? at : undefined
  };
}

export interface IVersionsViewOptions {
  client: CellopsClient;
  trans: TranslationBundle;
  docManager: IDocumentManager;
  /** An action (compare, restore, name, pin, load more) failed. */
  onError: (error: unknown) => void;
  /** The user asked to see the execution that produced a version. */
  onOpenExecution: (id: number) => void;
}
