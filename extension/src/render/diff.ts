import type { ILineChange } from '../api';

export type { ILineChange } from '../api';

/**
 * Above this many cells in the LCS table we stop looking for a minimal diff and
 * show the middle as "all deleted, all inserted": cells are small, but a pasted
 * data dump must not freeze the browser.
 */
const MAX_TABLE_CELLS = 4_000_000;

function splitLines(text: string): string[] {
  return text.length === 0 ? [] : text.split(/\r?\n/);
}

/** LCS table over `a` and `b`, flattened row-major, (a.length+1) x (b.length+1). */
function lcsTable(a: string[], b: string[]): Uint32Array {
  const width = b.length + 1;
  const table = new Uint32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      table[i * width + j] =
        a[i] === b[j]
          ? table[(i + 1) * width + j + 1] + 1
          : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
    }
  }
  return table;
}

function lcsDiff(a: string[], b: string[]): ILineChange[] {
  const table = lcsTable(a, b);
  const width = b.length + 1;
  const changes: ILineChange[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      changes.push({ op: 'equal', text: a[i] });
      i++;
      j++;
    } else if (table[(i + 1) * width + j] >= table[i * width + j + 1]) {
      changes.push({ op: 'delete', text: a[i] });
      i++;
    } else {
      changes.push({ op: 'insert', text: b[j] });
      j++;
    }
  }
  for (; i < a.length; i++) {
    changes.push({ op: 'delete', text: a[i] });
  }
  for (; j < b.length; j++) {
    changes.push({ op: 'insert', text: b[j] });
  }
  return changes;
}

/**
 * Line diff from `oldText` to `newText` (longest common subsequence of lines).
 * The common head and tail are stripped first, so typical edits stay cheap.
 */
export function lineDiff(oldText: string, newText: string): ILineChange[] {
  const a = splitLines(oldText);
  const b = splitLines(newText);
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) {
    head++;
  }
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  ) {
    tail++;
  }
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);
  const middle =
    (midA.length + 1) * (midB.length + 1) > MAX_TABLE_CELLS
      ? [
          ...midA.map((text): ILineChange => ({ op: 'delete', text })),
          ...midB.map((text): ILineChange => ({ op: 'insert', text }))
        ]
      : lcsDiff(midA, midB);
  return [
    ...a.slice(0, head).map((text): ILineChange => ({ op: 'equal', text })),
    ...middle,
    ...a
      .slice(a.length - tail)
      .map((text): ILineChange => ({ op: 'equal', text }))
  ];
}

const MARKERS: Record<ILineChange['op'], string> = {
  insert: '+',
  delete: '\u2212',
  equal: ' '
};

/**
 * `<pre class="cellops-line-diff">` with one `.cellops-line-{insert,delete,equal}`
 * element per line; the +/− marker is a separate span so copying code stays clean.
 */
export function renderLineDiff(lines: ILineChange[]): HTMLElement {
  const pre = document.createElement('pre');
  pre.className = 'cellops-line-diff';
  for (const line of lines) {
    const row = document.createElement('div');
    row.className = `cellops-line cellops-line-${line.op}`;
    const marker = document.createElement('span');
    marker.className = 'cellops-line-marker';
    marker.setAttribute('aria-hidden', 'true');
    marker.textContent = MARKERS[line.op];
    const text = document.createElement('span');
    text.className = 'cellops-line-text';
    // Keep empty lines one line tall.
    text.textContent = line.text.length > 0 ? line.text : '\u200b';
    row.append(marker, text);
    pre.appendChild(row);
  }
  return pre;
}
