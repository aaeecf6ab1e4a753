import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { Panel, Widget } from '@lumino/widgets';

import {
  CellopsAPIError,
  CellopsClient,
  INotebook,
  INotebookCell,
  IPage,
  IRun,
  IRunSearch,
  IVersion,
  notebookIdentity
} from '../api';
import { button, emptyState, h, timeSpan } from './dom';
import { RunsTab } from './runsTab';
import { VersionsView } from './versions';

/** Names a copy may take before it keeps the free name the server gave it. */
const COPY_NAME_TRIES = 20;

type Section = 'cells' | 'runs' | 'versions';

/**
 * The client the reused Runs and Versions views get: their `?notebook=path` calls
 * name this notebook exactly (its owner or repository), so a teammate's notebook
 * shows its own history even where the member has a file at the same path.
 */
class NotebookClient extends CellopsClient {
  constructor(
    client: CellopsClient,
    private readonly _notebook: INotebook
  ) {
    super(client.settings);
  }

  override runs(
    _path: string,
    cursor?: string,
    limit = 50
  ): Promise<IPage<IRun>> {
    return this.notebookRuns(this._notebook, cursor, limit);
  }

  override searchRuns(
    _path: string,
    search: IRunSearch,
    cursor?: string,
    limit = 50
  ): Promise<IPage<IRun>> {
    return super.searchRuns(
      this._notebook.path,
      search,
      cursor,
      limit,
      notebookIdentity(this._notebook)
    );
  }

  override versions(
    _path: string,
    cursor?: string,
    limit = 100
  ): Promise<IPage<IVersion>> {
    return this.notebookVersions(this._notebook, cursor, limit);
  }
}

/**
 * One tracked notebook, read-only and never from the member's disk: its cells'
 * code (highlighted, not editable) with each cell's latest result, its runs and
 * versions (the existing views), and "Copy to my disk".
 */
export class NotebookView extends Panel {
  constructor(
    private readonly _options: INotebookViewOptions,
    readonly notebook: INotebook
  ) {
    super();
    this._trans = _options.translator.load('cellops');
    this.addClass('cellops-notebook-view');
    this.node.dataset.notebookId = String(notebook.id);
    const client = new NotebookClient(_options.client, notebook);
    this._runs = new RunsTab({ ..._options, client });
    this._versions = new VersionsView({
      client,
      trans: this._trans,
      docManager: _options.docManager,
      onError: _options.onError,
      onOpenExecution: id => void this._openExecution(id)
    });
    this._header.addClass('cellops-notebook-header');
    this._cells.addClass('cellops-notebook-cells');
    this._buildHeader();
    this._versionLine.append(this._trans.__('Show '), this._versionPicker);
    this._versionPicker.addEventListener('change', () => {
      // The first option is the latest: keep following it as new versions come.
      const latest = this._versionPicker.selectedIndex === 0;
      const chosen = Number(this._versionPicker.value);
      this._loadCells(latest ? null : chosen).catch(this._options.onError);
    });
    this.addWidget(this._header);
    this.addWidget(this._cells);
    this.addWidget(this._runs);
    this.addWidget(this._versions);
    this._select('cells');
  }

  /** Refetch the section shown (the cells of the version shown). */
  async refresh(): Promise<void> {
    if (this._section === 'cells') {
      await this._loadCells(this._version);
    } else if (this._section === 'runs') {
      await this._runs.refresh(this.notebook.path);
    } else {
      await this._versions.refresh(this.notebook.path);
    }
  }

  private _buildHeader(): void {
    const nb = this.notebook;
    const back = button(
      'cellops-notebook-back',
      this._trans.__('‹ Notebooks'),
      this._trans.__("Back to the team's notebooks"),
      this._options.onBack
    );
    const title = h('div', 'cellops-notebook-title', nb.path);
    title.title = nb.path;
    const meta = h('div', 'cellops-notebook-meta');
    meta.append(
      h('span', 'cellops-notebook-owner', whose(nb, this._trans)),
      timeSpan('cellops-notebook-activity', nb.last_activity_at)
    );
    const copy = button(
      'cellops-notebook-copy jp-Button jp-mod-styled jp-mod-accept',
      this._trans.__('Copy to my disk'),
      this._trans.__(
        'Write the version shown as a new notebook file on your server (never overwrites)'
      ),
      () => void this._copy()
    );
    copy.disabled = nb.versions === 0;
    const sections = h('div', 'cellops-notebook-sections');
    sections.setAttribute('role', 'tablist');
    const labels: [Section, string][] = [
      ['cells', this._trans.__('Cells')],
      ['runs', this._trans._n('%1 run', '%1 runs', nb.runs)],
      ['versions', this._trans._n('%1 version', '%1 versions', nb.versions)]
    ];
    for (const [id, label] of labels) {
      const tab = button('cellops-notebook-section', label, label, () => {
        this._select(id);
      });
      tab.dataset.section = id;
      tab.setAttribute('role', 'tab');
      sections.appendChild(tab);
    }
    this._header.node.append(
      back,
      title,
      meta,
      copy,
      this._copied,
      sections,
      this._versionLine
    );
  }

  private _select(section: Section): void {
    this._section = section;
    for (const tab of this._header.node.querySelectorAll<HTMLElement>(
      '.cellops-notebook-section'
    )) {
      const current = tab.dataset.section === section;
      tab.classList.toggle('jp-mod-current', current);
      tab.setAttribute('aria-selected', String(current));
    }
    this._cells.setHidden(section !== 'cells');
    this._versionLine.hidden = section !== 'cells';
    this._runs.setHidden(section !== 'runs');
    this._versions.setHidden(section !== 'versions');
    this.refresh().catch(this._options.onError);
  }

  /** The cells of version `version` (the latest if null). */
  private async _loadCells(version: number | null): Promise<void> {
    const { client, rendermime } = this._options;
    const body = await client.notebookCells(
      this.notebook.id,
      version ?? undefined
    );
    this._version = version;
    this._shownVersion = body.version;
    await this._fillVersionPicker(body.version);
    const rows = await Promise.all(
      body.cells.map(cell => renderCell(cell, rendermime, this._trans))
    );
    this._cells.node.replaceChildren(...rows);
    if (rows.length === 0) {
      this._cells.node.appendChild(
        emptyState(this._trans.__('No version of this notebook was recorded'))
      );
    }
  }

  /** The versions to choose from (the newest page), the one shown selected. */
  private async _fillVersionPicker(shown: number | null): Promise<void> {
    const picker = this._versionPicker;
    this._versionLine.hidden = shown === null || this._section !== 'cells';
    if (shown === null) {
      return;
    }
    if (picker.options.length === 0) {
      const page = await this._options.client.notebookVersions(this.notebook);
      picker.append(
        ...page.items.map((v, i) => {
          const label =
            i === 0
              ? this._trans.__('Version %1 (latest)', v.number)
              : this._trans.__('Version %1', v.number);
          const option = new Option(label, String(v.number));
          option.title = new Date(v.created_at).toLocaleString();
          return option;
        })
      );
    }
    picker.value = String(shown);
  }

  private async _openExecution(id: number): Promise<void> {
    this._select('runs');
    await this._runs.showExecution(id).catch(this._options.onError);
  }

  /**
   * Write the version shown as a new file: the server picks a free name first, so
   * nothing is ever overwritten; then it takes the nicest name still free.
   */
  private async _copy(): Promise<void> {
    try {
      const { client, docManager } = this._options;
      const versionId = await this._shownVersionId();
      const content = await client.versionNotebook(versionId);
      const contents = docManager.services.contents;
      const blank = await contents.newUntitled({ type: 'notebook', path: '' });
      try {
        await contents.save(blank.path, {
          type: 'notebook',
          format: 'json',
          content
        });
      } catch (error) {
        await contents.delete(blank.path); // leave no empty Untitled behind
        throw error;
      }
      const path = await this._rename(blank.path);
      this._copied.textContent = this._trans.__('Copied to %1', path);
      this._copied.dataset.path = path;
      docManager.openOrReveal(path);
    } catch (error) {
      this._options.onError(error);
    }
  }

  private async _shownVersionId(): Promise<number> {
    const wanted = this._shownVersion;
    let cursor: string | undefined = undefined;
    for (;;) {
      const page = await this._options.client.notebookVersions(
        this.notebook,
        cursor
      );
      const found = page.items.find(
        v => wanted === null || v.number === wanted
      );
      if (found !== undefined) {
        return found.id;
      }
      if (page.next === null) {
        throw new Error(this._trans.__('This version is no longer stored'));
      }
      cursor = page.next;
    }
  }

  /**
   * `<name>-<owner>.ipynb` in the root folder, or the first free `-2`, `-3`… variant
   * (read from the folder's listing, so no request fails in the common case). The
   * server refuses to rename onto an existing file (409): a name taken meanwhile is
   * never overwritten, the next one is tried.
   */
  private async _rename(from: string): Promise<string> {
    const contents = this._options.docManager.services.contents;
    const stem = PathExt.basename(this.notebook.path, '.ipynb');
    const suffix = this.notebook.owner ?? 'copy';
    const listing = await contents.get('', { content: true });
    const taken = new Set(
      (listing.content as { path: string }[]).map(item => item.path)
    );
    for (let i = 1; i <= COPY_NAME_TRIES; i++) {
      const name = `${stem}-${suffix}${i === 1 ? '' : `-${String(i)}`}.ipynb`;
      if (taken.has(name)) {
        continue;
      }
      try {
        return (await contents.rename(from, name)).path;
      } catch (error) {
        if (!isConflict(error)) {
          throw error;
        }
      }
    }
    return from;
  }

  private readonly _trans: TranslationBundle;
  private readonly _header = new Widget();
  private readonly _cells = new Widget();
  private readonly _copied = h('span', 'cellops-notebook-copied');
  private readonly _versionLine = h('label', 'cellops-notebook-version');
  private readonly _versionPicker = h(
    'select',
    'cellops-notebook-version-picker jp-mod-styled'
  );
  private readonly _runs: RunsTab;
  private readonly _versions: VersionsView;
  private _section: Section = 'cells';
  private _version: number | null = null;
  private _shownVersion: number | null = null;
}

/** "alice", "git <repo>", or "you" in embedded mode. */
export function whose(nb: INotebook, trans: TranslationBundle): string {
  if (nb.owner !== null) {
    return nb.owner;
  }
  return nb.repo !== null ? trans.__('git %1', nb.repo) : trans.__('yours');
}

function isConflict(error: unknown): boolean {
  const response = (error as { response?: Response } | null)?.response;
  return (
    (error instanceof CellopsAPIError && error.status === 409) ||
    response?.status === 409
  );
}

/** A cell: its code highlighted by JupyterLab's markdown renderer, and its last result. */
async function renderCell(
  cell: INotebookCell,
  rendermime: IRenderMimeRegistry,
  trans: TranslationBundle
): Promise<HTMLElement> {
  const node = h('div', 'cellops-notebook-cell');
  node.dataset.cellId = cell.cell_id;
  const prompt = h(
    'div',
    'cellops-notebook-cell-prompt',
    cell.execution_count === null ? '[ ]' : `[${String(cell.execution_count)}]`
  );
  const renderer = rendermime.createRenderer('text/markdown');
  renderer.addClass('cellops-notebook-cell-code');
  const model = rendermime.createModel({
    data: { 'text/markdown': fenced(cell.code) },
    trusted: false
  });
  await renderer.renderModel(model);
  node.append(prompt, renderer.node, cellResult(cell, trans));
  return node;
}

/** The code as a fenced block longer than any backtick run inside it. */
function fenced(code: string): string {
  const longest = Math.max(
    2,
    ...Array.from(code.matchAll(/`+/g), m => m[0].length)
  );
  const fence = '`'.repeat(longest + 1);
  return `${fence}python\n${code}\n${fence}`;
}

function cellResult(
  cell: INotebookCell,
  trans: TranslationBundle
): HTMLElement {
  const node = h('div', 'cellops-notebook-cell-result');
  if (cell.status === null) {
    node.textContent = trans.__('not run');
    return node;
  }
  node.classList.add(`cellops-status-${cell.status}`);
  const parts = [cell.error ?? cell.output_text?.trim() ?? ''];
  if (cell.output_types.length > 0 && cell.output_text === null) {
    parts.push(cell.output_types.join(', '));
  }
  node.textContent = parts.filter(p => p !== '').join(' · ') || cell.status;
  if (cell.finished_at !== null) {
    node.title = trans.__(
      'Last run %1',
      new Date(cell.finished_at).toLocaleString()
    );
  }
  return node;
}

export interface INotebookViewOptions {
  client: CellopsClient;
  notebooks: INotebookTracker;
  rendermime: IRenderMimeRegistry;
  translator: ITranslator;
  docManager: IDocumentManager;
  onBack: () => void;
  onError: (error: unknown) => void;
}
