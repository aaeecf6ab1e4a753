import { TranslationBundle } from '@jupyterlab/translation';

import { ICellCode, IVersion, IVersionDiff } from '../api';
import { renderLineDiff } from '../render/diff';
import { h } from './dom';

/**
 * The diff between two versions (`.cellops-diff`): added and removed cells with
 * their code, changed cells with line-level highlighting, and the unchanged count.
 */
export function renderVersionDiff(
  diff: IVersionDiff,
  trans: TranslationBundle
): HTMLElement {
  const root = h('div', 'cellops-diff');
  root.setAttribute('role', 'region');
  root.append(
    h(
      'div',
      'cellops-diff-title',
      trans.__(
        'Version %1 → version %2',
        numberAndName(diff.from_version),
        numberAndName(diff.to_version)
      )
    )
  );
  if (diff.added.length + diff.removed.length + diff.changed.length === 0) {
    root.append(h('div', 'cellops-diff-none', trans.__('No code changed')));
  }
  root.append(
    section(
      'added',
      trans._n('%1 cell added', '%1 cells added', diff.added.length),
      diff.added.map(cell => codeCell(cell, 'added'))
    ),
    section(
      'removed',
      trans._n('%1 cell removed', '%1 cells removed', diff.removed.length),
      diff.removed.map(cell => codeCell(cell, 'removed'))
    ),
    section(
      'changed',
      trans._n('%1 cell changed', '%1 cells changed', diff.changed.length),
      diff.changed.map(change => {
        const cell = cellBox(change.cell_id);
        cell.appendChild(renderLineDiff(change.lines));
        return cell;
      })
    ),
    h(
      'div',
      'cellops-diff-unchanged',
      trans._n('%1 cell unchanged', '%1 cells unchanged', diff.unchanged)
    )
  );
  return root;
}

/** "3", or "3 “baseline”" for a named version. */
function numberAndName(version: IVersion): string {
  return version.name === null
    ? String(version.number)
    : `${String(version.number)} “${version.name}”`;
}

/** A section; an empty one stays (muted) so every diff has the same shape. */
function section(
  kind: 'added' | 'removed' | 'changed',
  title: string,
  cells: HTMLElement[]
): HTMLElement {
  const node = h('section', `cellops-diff-section cellops-diff-${kind}`);
  node.classList.toggle('cellops-mod-empty', cells.length === 0);
  node.append(h('h3', 'cellops-diff-heading', title), ...cells);
  return node;
}

function cellBox(cellId: string): HTMLElement {
  const cell = h('div', 'cellops-diff-cell');
  cell.dataset.cellId = cellId;
  return cell;
}

function codeCell(cell: ICellCode, kind: 'added' | 'removed'): HTMLElement {
  const box = cellBox(cell.cell_id);
  box.appendChild(
    h('pre', `cellops-code cellops-diff-code-${kind}`, cell.code)
  );
  return box;
}
