import { TranslationBundle } from '@jupyterlab/translation';

import { IRunSearch } from '../api';
import { h } from './dom';

const FILTER_PREFIX = /^(metric|param|tag):(.*)$/i;
/** Words, with "quoted" or 'quoted' parts kept whole (a param value with spaces). */
const TOKEN = /(?:[^\s"']+|"[^"]*"|'[^']*')+/g;
/** Wait this long after the last keystroke before asking the server. */
const TYPING_DELAY_MS = 300;

/**
 * The filters a search box's text states, for `GET runs`:
 * `accuracy>0.9` (a comparison: metric), `alpha=0.1` (NAME=VALUE: param),
 * `#baseline` or a bare word (tag), or any of them spelt out
 * (`metric:acc=1`, `param:alpha=0.1`, `tag:stage=baseline`).
 * The server checks each one and names a malformed one.
 */
export function parseRunSearch(text: string): IRunSearch {
  const search: Required<Omit<IRunSearch, 'sort'>> = {
    metric: [],
    param: [],
    tag: []
  };
  for (const token of text.match(TOKEN) ?? []) {
    const prefixed = FILTER_PREFIX.exec(token);
    if (prefixed) {
      const kind = prefixed[1].toLowerCase() as 'metric' | 'param' | 'tag';
      search[kind].push(prefixed[2]);
    } else if (token.startsWith('#')) {
      search.tag.push(token.slice(1));
    } else if (/[<>]/.test(token)) {
      search.metric.push(token);
    } else if (token.includes('=')) {
      search.param.push(token);
    } else {
      search.tag.push(token);
    }
  }
  return search;
}

const METRIC_EXPR = /^(.*?)(>=|<=|>|<|=)(.*)$/s;

/**
 * What is wrong with `search`'s filters, in the server's words, or null. Checked here
 * so a half-typed filter never costs a request (the server checks again).
 */
export function searchProblem(
  search: IRunSearch,
  trans: TranslationBundle
): string | null {
  for (const expr of search.metric ?? []) {
    const found = METRIC_EXPR.exec(expr);
    if (found === null) {
      return trans.__(
        "metric filter '%1' is not NAME OP NUMBER with OP one of > >= < <= =",
        expr
      );
    }
    if (found[1].trim() === '') {
      return trans.__("metric filter '%1' names no metric", expr);
    }
    const value = found[3].trim();
    if (value === '' || !Number.isFinite(Number(value))) {
      return trans.__(
        "metric filter '%1': '%2' is not a finite number",
        expr,
        value
      );
    }
  }
  for (const expr of search.param ?? []) {
    if (!expr.includes('=') || expr.split('=')[0].trim() === '') {
      return trans.__("param filter '%1' is not NAME=VALUE", expr);
    }
  }
  for (const expr of search.tag ?? []) {
    if (expr.split('=')[0].trim() === '') {
      return trans.__("tag filter '%1' names no tag", expr);
    }
  }
  return null;
}

/**
 * The search box and sort selector above the runs list (`.cellops-run-search`).
 * Calls `onChange` with the search (filters and sort) when either changes.
 */
export class RunSearchBar {
  readonly node = h('div', 'cellops-run-search');

  constructor(
    private readonly _trans: TranslationBundle,
    private readonly _onChange: (search: IRunSearch) => void
  ) {
    const input = this._input;
    input.type = 'search';
    input.placeholder = _trans.__('accuracy>0.9 alpha=0.1 #baseline');
    input.title = _trans.__(
      'Filter runs by what their cells logged (the latest value counts):\n' +
        'accuracy>0.9 — a metric compared with > >= < <= (metric:acc=1 for equality)\n' +
        "alpha=0.1 — a param's value (True, None, 'text' as in Python)\n" +
        '#baseline or baseline — a tag named or valued so; stage=… after tag:\n' +
        'Several filters: all must hold.'
    );
    input.setAttribute('aria-label', _trans.__('Filter runs'));
    input.addEventListener('input', () => {
      window.clearTimeout(this._timer);
      this._timer = window.setTimeout(() => {
        this._emit();
      }, TYPING_DELAY_MS);
    });
    input.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        window.clearTimeout(this._timer);
        this._emit();
      }
    });
    this._sort.setAttribute('aria-label', _trans.__('Sort runs'));
    this._sort.title = _trans.__('Sort runs');
    this._sort.addEventListener('change', () => {
      this._emit();
    });
    this.setMetrics([]);
    this._error.setAttribute('role', 'alert');
    this._error.hidden = true;
    this.node.append(input, this._error);
  }

  /** The sort selector, for the owner to place (beside its Compare button). */
  get sortNode(): HTMLSelectElement {
    return this._sort;
  }

  /** What the box and selector say now. */
  get search(): IRunSearch {
    return { ...parseRunSearch(this._input.value), sort: this._sort.value };
  }

  /** Offer sorting by these metrics (the runs shown logged them); keeps the choice. */
  setMetrics(names: string[]): void {
    const chosen = this._sort.value || '-started';
    const known = names.join('\n');
    if (known === this._metrics && this._sort.options.length > 0) {
      return;
    }
    this._metrics = known;
    const options: [string, string][] = [
      ['-started', this._trans.__('Newest first')],
      ['started', this._trans.__('Oldest first')]
    ];
    for (const name of names) {
      options.push([
        `-metric:${name}`,
        this._trans.__('%1: highest first', name)
      ]);
      options.push([
        `metric:${name}`,
        this._trans.__('%1: lowest first', name)
      ]);
    }
    if (!options.some(([value]) => value === chosen)) {
      // Still sorted by a metric the shown runs no longer have: keep offering it.
      options.push([chosen, chosen]);
    }
    this._sort.replaceChildren(
      ...options.map(([value, label]) => {
        const option = h('option', '', label);
        option.value = value;
        return option;
      })
    );
    this._sort.value = chosen;
  }

  /** Show what the server said is wrong with the filters (null: nothing). */
  setError(message: string | null): void {
    this._error.textContent = message ?? '';
    this._error.hidden = message === null;
    this._input.classList.toggle('cellops-mod-invalid', message !== null);
  }

  dispose(): void {
    window.clearTimeout(this._timer);
  }

  private _emit(): void {
    const search = this.search;
    const problem = searchProblem(search, this._trans);
    this.setError(problem);
    if (problem !== null) {
      return;
    }
    const key = JSON.stringify(search);
    if (key !== this._last) {
      this._last = key;
      this._onChange(search);
    }
  }

  private readonly _input = h(
    'input',
    'cellops-run-search-input jp-mod-styled'
  );
  private readonly _sort = h('select', 'cellops-run-sort jp-mod-styled');
  private readonly _error = h('div', 'cellops-run-search-error');
  private _metrics = '';
  private _timer = 0;
  private _last = JSON.stringify({
    metric: [],
    param: [],
    tag: [],
    sort: '-started'
  });
}
