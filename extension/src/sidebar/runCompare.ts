import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CellopsClient, IRun } from '../api';
import { h } from './dom';
import {
  absoluteTime,
  formatMetric,
  formatParam,
  kernelLabel,
  MISSING_PARAM
} from './format';

type Section = 'metrics' | 'params' | 'tags';

/**
 * Ticked runs side by side (`.cellops-run-compare-view`): one column per run, one row
 * per metric, param and tag any of them logged (latest values). A value a run does
 * not have shows "—"; rows whose values differ are highlighted.
 */
export class RunCompare extends Widget {
  constructor(options: IRunCompareOptions) {
    super();
    this._client = options.client;
    this._trans = options.trans;
    this.addClass('cellops-run-compare-view');
    const header = h('div', 'cellops-run-header');
    const back = h('button', 'cellops-back jp-Button jp-mod-minimal');
    back.textContent = this._trans.__('‹ Runs');
    back.title = this._trans.__('Back to the runs of this notebook');
    back.addEventListener('click', options.onBack);
    header.append(back, this._title);
    this._table.setAttribute('aria-label', this._trans.__('Compared runs'));
    const scroller = h('div', 'cellops-run-compare-scroll');
    scroller.append(this._table);
    this.node.append(header, scroller);
  }

  /** Compare `runs` (their latest values are refetched, oldest run first). */
  async compare(runs: IRun[]): Promise<void> {
    const token = ++this._generation;
    this._render(runs);
    const fresh = await Promise.all(runs.map(run => this._client.run(run.id)));
    if (token === this._generation) {
      this._render(fresh);
    }
  }

  private _render(runs: IRun[]): void {
    const ordered = [...runs].sort((a, b) => a.id - b.id);
    this._title.textContent = this._trans._n(
      'Comparing %1 run',
      'Comparing %1 runs',
      ordered.length
    );
    const head = h('tr', 'cellops-compare-head');
    head.append(h('th', 'cellops-compare-key'));
    for (const run of ordered) {
      const th = h('th', 'cellops-compare-run');
      th.append(
        h(
          'span',
          'cellops-compare-run-number',
          `#${String(run.number ?? run.id)}`
        ),
        h('span', 'cellops-compare-run-time', startTime(run))
      );
      th.title = `${kernelLabel(run)} · ${absoluteTime(run.started_at)}`;
      th.dataset.runId = String(run.id);
      head.append(th);
    }
    const body = h('tbody', '');
    body.append(
      ...this._section(ordered, 'metrics', this._trans.__('Metrics')),
      ...this._section(ordered, 'params', this._trans.__('Params')),
      ...this._section(ordered, 'tags', this._trans.__('Tags'))
    );
    const thead = h('thead', '');
    thead.append(head);
    this._table.replaceChildren(thead, body);
  }

  /** A heading row and one row per key any run has in `section`. */
  private _section(
    runs: IRun[],
    section: Section,
    title: string
  ): HTMLTableRowElement[] {
    const keys = new Set(runs.flatMap(run => Object.keys(run[section] ?? {})));
    if (keys.size === 0) {
      return [];
    }
    const heading = h('tr', 'cellops-compare-section');
    const cell = h('th', '', title);
    cell.colSpan = runs.length + 1;
    heading.append(cell);
    const rows = [...keys].sort().map(key => {
      const values = runs.map(run => formatValue(run, section, key));
      const row = h('tr', 'cellops-compare-row');
      row.dataset.key = key;
      row.dataset.section = section;
      const differs = new Set(values).size > 1;
      row.classList.toggle('cellops-mod-differs', differs);
      if (differs) {
        row.title = this._trans.__('The runs differ here');
      }
      row.append(h('th', 'cellops-compare-key', key));
      for (const value of values) {
        row.append(
          h(
            'td',
            value === MISSING_PARAM
              ? 'cellops-compare-value cellops-mod-missing'
              : 'cellops-compare-value',
            value
          )
        );
      }
      return row;
    });
    return [heading, ...rows];
  }

  private readonly _client: CellopsClient;
  private readonly _trans: TranslationBundle;
  private readonly _title = h('div', 'cellops-run-summary');
  private readonly _table = h('table', 'cellops-compare-table');
  private _generation = 0;
}

/** "14:05": when the run started (the full date is in the tooltip). */
function startTime(run: IRun): string {
  return new Date(run.started_at).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit'
  });
}

/** One value as the sidebar shows it everywhere (params as Python literals). */
function formatValue(run: IRun, section: Section, key: string): string {
  const values: Record<string, unknown> = run[section] ?? {};
  if (!(key in values)) {
    return MISSING_PARAM;
  }
  const value = values[key];
  if (section === 'metrics' && typeof value === 'number') {
    return formatMetric(value);
  }
  return section === 'tags' ? String(value) : formatParam(value);
}

export interface IRunCompareOptions {
  client: CellopsClient;
  trans: TranslationBundle;
  /** The back button was clicked. */
  onBack: () => void;
}
