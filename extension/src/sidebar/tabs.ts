import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { h } from './dom';

/**
 * What a sidebar tab shows. The panel calls `refresh` when the tab is visible and
 * something changed, and `reset` when another notebook becomes active.
 */
export interface ISidebarView extends Widget {
  /** Fetch and show what concerns the notebook at `path`. */
  refresh(path: string): Promise<void>;
  /** Forget everything shown. */
  reset(): void;
}

/** One tab of the sidebar (`button.cellops-tab[data-tab=id]`). */
export interface ISidebarTab {
  id: string;
  label: string;
  caption: string;
  view: ISidebarView;
  /**
   * Shows what the whole team shares (models), not one notebook's history: it works
   * with no notebook open and is not reset when another notebook becomes active.
   */
  teamWide?: boolean;
}

/**
 * The row of tab buttons (`role=tablist`); tabs are added in order, so later
 * features add theirs with `add`.
 */
export class TabBar extends Widget {
  constructor(
    trans: TranslationBundle,
    private readonly _onSelect: (id: string) => void
  ) {
    super();
    this.addClass('cellops-tabs');
    this.node.setAttribute('role', 'tablist');
    this.node.setAttribute('aria-label', trans.__('cellops views'));
    this.node.addEventListener('keydown', event => {
      this._onKey(event);
    });
  }

  add(tab: ISidebarTab): void {
    const button = h('button', 'cellops-tab', tab.label);
    button.dataset.tab = tab.id;
    button.title = tab.caption;
    button.setAttribute('role', 'tab');
    button.addEventListener('click', () => {
      this._onSelect(tab.id);
    });
    this.node.appendChild(button);
  }

  /** Mark `id` as the current tab. */
  setCurrent(id: string): void {
    for (const button of this._buttons()) {
      const current = button.dataset.tab === id;
      button.classList.toggle('jp-mod-current', current);
      button.setAttribute('aria-selected', String(current));
      button.tabIndex = current ? 0 : -1;
    }
  }

  private _buttons(): HTMLButtonElement[] {
    return Array.from(this.node.querySelectorAll('button.cellops-tab'));
  }

  /** Arrow keys move between tabs, as in other tab lists. */
  private _onKey(event: KeyboardEvent): void {
    if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight') {
      return;
    }
    const buttons = this._buttons();
    const index = buttons.findIndex(b => b === document.activeElement);
    if (index < 0) {
      return;
    }
    const step = event.key === 'ArrowRight' ? 1 : -1;
    const next = buttons[(index + step + buttons.length) % buttons.length];
    next.focus();
    const id = next.dataset.tab;
    if (id !== undefined) {
      this._onSelect(id);
    }
  }
}
