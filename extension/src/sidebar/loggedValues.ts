import { TranslationBundle } from '@jupyterlab/translation';

import { IExecutionLogs } from '../api';
import { h } from './dom';
import { formatMetric, formatParam } from './format';
import { IMetricChart, IMetricChartOptions, metricChart } from './metricChart';

const LONG_VALUE = 80; // longer values (e.g. a CV table tag) are cut, in full in the tooltip

/** The logged values' element, and the charts in it (dispose them with it). */
export interface ILoggedValues {
  node: HTMLElement;
  charts: IMetricChart[];
}

/**
 * What a cell logged with `cellops.log_metrics`, `log_params` and `set_tags` (or
 * autolog did), as the execution detail shows it; null when it logged nothing.
 * A metric logged more than once gets a chart of its steps.
 */
export function renderLoggedValues(
  logs: IExecutionLogs,
  trans: TranslationBundle,
  chartOptions: IMetricChartOptions
): ILoggedValues | null {
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
    ['params', trans.__('Params'), params.map(([k, v]) => [k, formatParam(v)])],
    ['tags', trans.__('Tags'), tags]
  ];
  const charts = metrics
    .filter(([, points]) => points.length > 1)
    .map(([key, points]) => metricChart(key, points, chartOptions))
    .filter((chart): chart is IMetricChart => chart !== null);
  for (const [kind, label, rows] of groups) {
    if (rows.length > 0) {
      section.append(definitionList(kind, label, rows));
    }
    if (kind === 'metrics' && charts.length > 0) {
      const box = h('div', 'cellops-detail-charts');
      box.append(...charts.map(c => c.node));
      section.append(box);
    }
  }
  return { node: section, charts };
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

function cut(text: string): string {
  return text.length <= LONG_VALUE ? text : text.slice(0, LONG_VALUE - 1) + '…';
}
