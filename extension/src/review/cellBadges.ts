/**
 * A badge on every cell with comments (`.cellops-comment-badge`, inside the cell's node
 * beside its prompt): the count, `cellops-mod-unresolved` while a thread is open; a click
 * opens the Review tab on that cell's threads. Counts come from one request per notebook
 * (`GET comments/counts`) and are refetched on `comments` events for it.
 */
import type { Cell } from '@jupyterlab/cells';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { TranslationBundle } from '@jupyterlab/translation';

import type { ActivityStream } from '../activity';
import type { IActivityEvent } from '../api';
import type { ICellCommentCount, ReviewClient } from '../reviewClient';
import { isUnreachable, isUntracked } from '../sidebar/errors';

export interface ICellBadgesOptions {
  client: ReviewClient;
  notebooks: INotebookTracker;
  activity: ActivityStream;
  trans: TranslationBundle;
  /** The badge of cell `cellId` in `panel` was clicked. */
  onOpen: (panel: NotebookPanel, cellId: string) => void;
}

const BADGE = 'cellops-comment-badge';

/**
 * Keeps the badges of every open notebook in step with the server.
 */
export class CellBadges {
  constructor(private readonly _options: ICellBadgesOptions) {
    _options.notebooks.widgetAdded.connect((_, panel) => {
      this._watch(panel);
    });
    _options.notebooks.forEach(panel => {
      this._watch(panel);
    });
    _options.activity.changed.connect(this._onActivity);
  }

  /** Refetch the counts of notebook `path` (every open panel showing it). */
  refresh(path: string): void {
    for (const [panel, state] of this._panels) {
      if (panel.context.localPath === path) {
        void this._load(panel, state);
      }
    }
  }

  private _watch(panel: NotebookPanel): void {
    if (this._panels.has(panel)) {
      return;
    }
    const state: IPanelState = { counts: new Map(), seq: 0 };
    this._panels.set(panel, state);
    // New cells, moved cells or a changed cell type get a new widget: badge it.
    const onCells = (): void => {
      this._apply(panel, state);
    };
    const onPath = (): void => {
      void this._load(panel, state);
    };
    void panel.context.ready.then(() => {
      if (panel.isDisposed) {
        return;
      }
      panel.content.model?.cells.changed.connect(onCells);
      void this._load(panel, state);
    });
    panel.context.pathChanged.connect(onPath);
    panel.disposed.connect(() => {
      panel.content.model?.cells.changed.disconnect(onCells);
      panel.context.pathChanged.disconnect(onPath);
      this._panels.delete(panel);
    });
  }

  private async _load(panel: NotebookPanel, state: IPanelState): Promise<void> {
    const seq = ++state.seq;
    let items: ICellCommentCount[];
    try {
      items = await this._options.client.commentCounts(panel.context.localPath);
    } catch (error) {
      if (!isUntracked(error) && !isUnreachable(error)) {
        // Badges are a hint: the Review tab shows what went wrong in full.
        console.warn('cellops: comment counts not loaded', error);
      }
      items = [];
    }
    if (seq !== state.seq || panel.isDisposed) {
      return; // a newer request answers instead
    }
    state.counts = new Map(items.map(item => [item.cell_id, item]));
    this._apply(panel, state);
  }

  /** Put, update or remove the badge of every cell of `panel`. */
  private _apply(panel: NotebookPanel, state: IPanelState): void {
    for (const cell of panel.content.widgets) {
      const count = state.counts.get(cell.model.id);
      const badge = cell.node.querySelector<HTMLButtonElement>(
        `:scope > .${BADGE}`
      );
      const commented = count !== undefined && count.total > 0;
      cell.toggleClass('cellops-mod-commented', commented);
      if (!commented) {
        badge?.remove();
        continue;
      }
      this._update(badge ?? this._create(panel, cell), count);
    }
  }

  private _create(panel: NotebookPanel, cell: Cell): HTMLButtonElement {
    const badge = document.createElement('button');
    badge.type = 'button';
    badge.className = BADGE;
    // Not the notebook's: a click must not select or start editing the cell first.
    badge.addEventListener('mousedown', event => {
      event.stopPropagation();
    });
    badge.addEventListener('click', event => {
      event.stopPropagation();
      this._options.onOpen(panel, cell.model.id);
    });
    cell.node.append(badge);
    return badge;
  }

  private _update(badge: HTMLButtonElement, count: ICellCommentCount): void {
    const { trans } = this._options;
    badge.textContent = String(count.total);
    badge.dataset.count = String(count.total);
    badge.dataset.unresolved = String(count.unresolved);
    badge.classList.toggle('cellops-mod-unresolved', count.unresolved > 0);
    badge.title =
      count.unresolved > 0
        ? trans._n(
            '%1 comment, %2 unresolved thread: show',
            '%1 comments, %2 unresolved threads: show',
            count.total,
            count.unresolved
          )
        : trans._n(
            '%1 comment, all resolved: show',
            '%1 comments, all resolved: show',
            count.total
          );
    badge.setAttribute('aria-label', badge.title);
  }

  private readonly _onActivity = (
    _: ActivityStream,
    events: IActivityEvent[]
  ): void => {
    const reset = events.some(e => e.type === 'reset');
    const paths = new Set(
      events.filter(e => e.type === 'comments').flatMap(e => e.notebooks)
    );
    for (const [panel, state] of this._panels) {
      if (reset || paths.has(panel.context.localPath)) {
        void this._load(panel, state);
      }
    }
  };

  private readonly _panels = new Map<NotebookPanel, IPanelState>();
}

interface IPanelState {
  counts: Map<string, ICellCommentCount>;
  /** Bumped per request: only the newest answer is shown. */
  seq: number;
}
