import { TranslationBundle } from '@jupyterlab/translation';

import { IExecutionLogs } from '../api';
import { h } from './dom';
import { formatMetric } from './format';

const LONG_VALUE = 80; // longer values (e.g. a CV table tag) are cut, in full in the tooltip

/**
 * What a cell logged with `cellops.log_metrics`, `log_params` and `set_tags` (or
 * autolog did), as the execution detail shows it; null when it logged nothing.
 */
export function renderLoggedValues(
  logs: IExecutionLogs,
  trans: TranslationBundle
): HTMLElement | null {
  const metrics = Object.entries(logs.metrics).filter(([, p]) => p.length > 0);
  const params = Object.entries(logs.params);
  const tags = Object.entries(logs.tags);
  if (metrics.length + params.length + tags.length === 0) {
    return null;
  }
  const section = h('section', 'cellops-detail-logs');
  section.append(h('h4', 'cellops-detail-logs-title', trans.__('Logged')));
  const groups: [string, string, [string, string][]][] = [
    [
      'metrics',
      trans.__('Metrics'),
      metrics.map(([key, points]) => {
        const last = formatMetric(points[points.length - 1].value);
        const series =
          points.length > 1
            ? ' ' + trans.__('(last of %1 values)', points.length)
            : '';
        return [key, last + series];
      })
    ],
    ['params', trans.__('Params'), params.map(([k, v]) => [k, show(v)])],
    ['tags', trans.__('Tags'), tags]
  ];
  for (const [kind, label, rows] of groups) {
    if (rows.length > 0) {
      section.append(definitionList(kind, label, rows));
    }
  }
  return section;
}

function definitionList(
  kind: string,
  label: string,
  rows: [string, string][]
): HTMLElement {
  const list = h('dl', `cellops-detail-${kind}`);
  list.setAttribute('aria-label', label);
  for (const [key, value] of rows) {
    const dd = h('dd', '', cut(value));
    dd.title = value;
    list.append(h('dt', '', key), dd);
  }
  return list;
}

function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function cut(text: string): string {
  return text.length <= LONG_VALUE ? text : text.slice(0, LONG_VALUE - 1) + '…';
}
