/**
 * The Review tab: the comment threads of the open notebook, grouped by cell in the
 * notebook's order (`.cellops-review-cell[data-cell-id]`), each with a button that jumps
 * to its cell. One request lists the whole notebook's comments.
 */
import type { Cell } from '@jupyterlab/cells';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { IRenderMime } from '@jupyterlab/rendermime';
import type { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import type { IComment, IMe, ReviewClient } from '../reviewClient';
import { emptyState, h } from '../sidebar/dom';
import { isUntracked } from '../sidebar/errors';
import { revealCell } from '../sidebar/revealCell';
import type { ISidebarView } from '../sidebar/tabs';
import { CommentThread, groupThreads } from './thread';

export interface IReviewTabOptions {
  client: ReviewClient;
  notebooks: INotebookTracker;
  trans: TranslationBundle;
  sanitizer?: IRenderMime.ISanitizer;
  /** A comment of notebook `path` was written here (cell badges refetch). */
  onChanged?: (path: string) => void;
}

/** One cell's group: its header and its threads. */
interface IGroup {
  node: HTMLElement;
  header: HTMLElement;
  thread: CommentThread;
}

/** What a group's header says about its cell. */
interface ICellInfo {
  index: number;
  preview: string;
}

export class ReviewTab extends Widget implements ISidebarView {
  constructor(options: IReviewTabOptions) {
    super();
    this._options = options;
    this._trans = options.trans;
    this.addClass('cellops-review');
    this._summary.setAttribute('role', 'status');
    const hide = h('label', 'cellops-review-filter');
    this._hideResolved.type = 'checkbox';
    this._hideResolved.className = 'cellops-review-hide-resolved';
    this._hideResolved.addEventListener('change', () => {
      this.node.classList.toggle(
        'cellops-mod-hide-resolved',
        this._hideResolved.checked
      );
    });
    hide.append(this._hideResolved, this._trans.__('Hide resolved'));
    const bar = h('div', 'cellops-review-bar');
    bar.append(this._summary, hide);
    this.node.append(bar, this._list);
  }

  /** The notebook whose threads are shown. */
  get path(): string | null {
    return this._path;
  }

  async refresh(path: string): Promise<void> {
    if (path !== this._path) {
      this.reset();
      this._path = path;
    }
    const [me, comments] = await Promise.all([
      this._whoami(),
      this._fetch(path)
    ]);
    if (this._path !== path || this.isDisposed) {
      return; // another notebook became active meanwhile
    }
    this._me = me;
    this._comments = comments;
    this._render();
  }

  override dispose(): void {
    if (!this.isDisposed) {
      this.reset();
    }
    super.dispose();
  }

  reset(): void {
    this._visible.disconnect();
    for (const group of this._groups.values()) {
      group.thread.dispose();
    }
    this._groups.clear();
    this._comments = [];
    this._path = null;
    // Not the focus: it names its notebook, which may be the next one shown.
    this._list.replaceChildren();
    this._summary.textContent = '';
  }

  /**
   * Show cell `cellId` of notebook `path` (when it is shown: now or once it is) with its
   * threads (a group is made for a cell without comments); `newThread` opens and focuses
   * its new-thread box.
   */
  focusCell(path: string, cellId: string, newThread: boolean): void {
    this._focus = { path, cellId, newThread, scroll: true };
    if (this._path === path) {
      this._render();
    }
  }

  /** The focus request, if it is about the notebook shown. */
  private _currentFocus(): IFocus | null {
    return this._focus?.path === this._path ? this._focus : null;
  }

  private async _whoami(): Promise<IMe | null> {
    try {
      return await this._options.client.whoami();
    } catch {
      return null; // unknown caller: read-only
    }
  }

  private async _fetch(path: string): Promise<IComment[]> {
    try {
      return await this._options.client.comments({ notebook: path });
    } catch (error) {
      if (isUntracked(error)) {
        return []; // a notebook never run: nothing recorded, nothing said about it yet
      }
      throw error;
    }
  }

  private _render(): void {
    const byCell = new Map<string, IComment[]>();
    for (const comment of this._comments) {
      if (comment.target.kind !== 'cell') {
        continue;
      }
      const list = byCell.get(comment.target.cell_id) ?? [];
      list.push(comment);
      byCell.set(comment.target.cell_id, list);
    }
    const focus = this._currentFocus();
    if (focus && !byCell.has(focus.cellId)) {
      byCell.set(focus.cellId, []);
    }
    const cells = this._cellInfo();
    const ids = [...byCell.keys()].sort(
      (a, b) =>
        (cells.get(a)?.index ?? Infinity) - (cells.get(b)?.index ?? Infinity)
    );
    for (const [id, group] of this._groups) {
      if (!byCell.has(id)) {
        this._visible.unobserve(group.node);
        group.thread.dispose();
        this._groups.delete(id);
      }
    }
    const nodes = ids.map(id => {
      const group = this._group(id);
      this._fillHeader(group.header, id, cells.get(id) ?? null);
      group.thread.setMe(this._me);
      group.thread.setComments(byCell.get(id) ?? []);
      group.node.classList.toggle('cellops-mod-focused', focus?.cellId === id);
      return group.node;
    });
    if (nodes.length === 0) {
      nodes.push(
        emptyState(
          this._trans.__(
            'No comments on this notebook yet. Use "Comment on cell" in a cell\'s context menu or toolbar.'
          )
        )
      );
    }
    // Re-inserting groups blurs a box being typed in: give focus (and the caret) back.
    const active = document.activeElement;
    const caret =
      active instanceof HTMLTextAreaElement
        ? [active.selectionStart, active.selectionEnd]
        : null;
    this._list.replaceChildren(...nodes);
    if (
      active instanceof HTMLTextAreaElement &&
      caret &&
      active !== document.activeElement &&
      this.node.contains(active)
    ) {
      active.focus();
      active.setSelectionRange(caret[0], caret[1]);
    }
    this._renderSummary();
    this._applyFocus();
  }

  private _renderSummary(): void {
    const threads = groupThreads(
      this._comments.filter(c => c.target.kind === 'cell')
    );
    const open = threads.filter(t => !t.root.resolved && !t.root.deleted);
    this._summary.textContent =
      threads.length === 0
        ? ''
        : this._trans._n(
            '%1 thread, %2 unresolved',
            '%1 threads, %2 unresolved',
            threads.length,
            open.length
          );
  }

  /** Scroll to the focused cell's group and, once, focus its new-thread box. */
  private _applyFocus(): void {
    const focus = this._currentFocus();
    const group = focus ? this._groups.get(focus.cellId) : undefined;
    if (!focus || !group) {
      return;
    }
    group.thread.setDeferred(false);
    if (focus.scroll) {
      focus.scroll = false;
      group.node.scrollIntoView({ block: 'nearest' });
    }
    if (focus.newThread) {
      focus.newThread = false;
      group.thread.focusNew();
    }
  }

  private _group(cellId: string): IGroup {
    const existing = this._groups.get(cellId);
    if (existing) {
      return existing;
    }
    const path = this._path ?? '';
    const node = h('section', 'cellops-review-cell');
    node.dataset.cellId = cellId;
    const header = h('button', 'cellops-review-jump');
    header.type = 'button';
    header.addEventListener('click', () => {
      if (!revealCell(this._options.notebooks, cellId)) {
        header.classList.add('cellops-mod-missing');
      }
    });
    const thread: CommentThread = new CommentThread({
      client: this._options.client,
      target: { kind: 'cell', notebook: path, cell_id: cellId },
      trans: this._trans,
      me: this._me,
      sanitizer: this._options.sanitizer,
      newThread: 'button',
      external: true,
      onChanged: () => {
        this._options.onChanged?.(path);
        void this.refresh(path).catch(() => {
          // The next live event or tab switch refetches.
        });
      }
    });
    node.append(header, thread.node);
    // Built when it comes near the viewport (see `_visible`).
    thread.setDeferred(true);
    this._visible.observe(node);
    const group = { node, header, thread };
    this._groups.set(cellId, group);
    return group;
  }

  private _fillHeader(
    header: HTMLElement,
    cellId: string,
    info: ICellInfo | null
  ): void {
    const label =
      info === null
        ? this._trans.__('Removed cell')
        : this._trans.__('Cell %1', info.index + 1);
    const preview = info?.preview ?? cellId;
    header.replaceChildren(
      h('span', 'cellops-review-cell-label', label),
      h('span', 'cellops-review-cell-preview', preview)
    );
    header.title =
      info === null
        ? this._trans.__('This cell is no longer in the notebook')
        : this._trans.__('Select cell %1 in the notebook', info.index + 1);
    header.classList.toggle('cellops-mod-missing', info === null);
  }

  /** Position and first line of each cell of the notebook shown. */
  private _cellInfo(): Map<string, ICellInfo> {
    const info = new Map<string, ICellInfo>();
    const panel = this._panel();
    panel?.content.widgets.forEach((cell: Cell, index: number) => {
      const source = cell.model.sharedModel.getSource();
      const line = source.split('\n').find(l => l.trim() !== '') ?? '';
      info.set(cell.model.id, { index, preview: line.trim().slice(0, 80) });
    });
    return info;
  }

  private _panel(): NotebookPanel | null {
    const path = this._path;
    return (
      this._options.notebooks.find(p => p.context.localPath === path) ?? null
    );
  }

  private readonly _options: IReviewTabOptions;
  private readonly _trans: TranslationBundle;
  private readonly _groups = new Map<string, IGroup>();
  /** Builds a group's threads once it is within a screen or so of the viewport. */
  private readonly _visible = new IntersectionObserver(
    entries => {
      for (const entry of entries) {
        const id = (entry.target as HTMLElement).dataset.cellId;
        const group = id === undefined ? undefined : this._groups.get(id);
        if (entry.isIntersecting && group) {
          group.thread.setDeferred(false);
          this._visible.unobserve(entry.target);
        }
      }
    },
    { rootMargin: '800px 0px' }
  );
  private readonly _list = h('div', 'cellops-review-list');
  private readonly _summary = h('span', 'cellops-review-summary');
  private readonly _hideResolved = document.createElement('input');
  private _comments: IComment[] = [];
  private _path: string | null = null;
  private _me: IMe | null = null;
  private _focus: IFocus | null = null;
}

/** A cell to show (Comment on cell, a badge's click). */
interface IFocus {
  path: string;
  cellId: string;
  newThread: boolean;
  scroll: boolean;
}
