import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import type { TranslationBundle } from '@jupyterlab/translation';
import type { JSONObject } from '@lumino/coreutils';
import type { Widget } from '@lumino/widgets';

import type { IMetricPoint } from '../api';
import { h } from './dom';
import { formatMetric } from './format';

/** JupyterLab 4 draws this mime type itself (its vega5 extension is in core). */
export const VEGA_LITE = 'application/vnd.vegalite.v5+json';
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';
const HEIGHT = 120;
const MIN_WIDTH = 140;
const AXES = 70; // room the y axis and its title take beside the plot

/** Logged points as [step, value]. */
export type Series = [number, number][];

/**
 * [step, value] pairs; a point logged without a step takes its position in the
 * series (as `series_points` in widgets/cellops/charts.py).
 */
export function seriesPoints(points: IMetricPoint[]): Series {
  return points.map((p, i) => [p.step ?? i, p.value]);
}

/**
 * `metric` over its steps, one coloured line per label: the spec `steps_spec`
 * (widgets/cellops/charts.py) builds for the Compare widget.
 */
export function stepsSpec(
  metric: string,
  series: [string, Series][],
  width: number,
  height = HEIGHT
): JSONObject {
  const values = series.flatMap(([label, points]) =>
    points.map(([step, value]) => ({ version: label, step, value }))
  );
  return {
    $schema: SCHEMA,
    description: `${metric} by step`,
    width,
    height,
    background: 'transparent', // the sidebar's own, in any theme
    data: { values },
    mark: { type: 'line', point: true, tooltip: true },
    encoding: {
      x: {
        field: 'step',
        type: 'quantitative',
        title: 'step',
        axis: stepAxis(values.map(v => v.step))
      },
      y: {
        field: 'value',
        type: 'quantitative',
        title: metric,
        scale: { zero: false },
        axis: { format: '~g' } // a flat line reads as its value, not rounded
      },
      color: {
        field: 'version',
        type: 'nominal',
        title: null,
        sort: null,
        legend: series.length < 2 ? null : { orient: 'bottom' }
      }
    }
  };
}

const MAX_STEP_TICKS = 8;

/**
 * Ticks at the logged steps when they are few (the renderer would put ticks at half
 * steps otherwise), else whole-number ticks; as `step_axis` in charts.py.
 */
export function stepAxis(steps: number[]): JSONObject {
  const distinct = [...new Set(steps)].sort((a, b) => a - b);
  const ticks: JSONObject =
    distinct.length <= MAX_STEP_TICKS
      ? { values: distinct }
      : { tickMinStep: 1 };
  return { ...ticks, format: 'd' }; // steps are whole numbers: "1", not "1.0"
}

/**
 * A chart of one logged metric over its steps, drawn by JupyterLab's Vega-Lite
 * renderer; null when this JupyterLab has none. Dispose it to free the view.
 */
export function metricChart(
  metric: string,
  points: IMetricPoint[],
  options: IMetricChartOptions
): IMetricChart | null {
  const { rendermime, trans } = options;
  if (rendermime.preferredMimeType({ [VEGA_LITE]: {} }, 'any') !== VEGA_LITE) {
    return null;
  }
  const series = seriesPoints(points);
  const width = Math.max(MIN_WIDTH, options.width - AXES);
  const text = trans.__(
    '%1 at %2 steps, last %3',
    metric,
    series.length,
    formatMetric(series[series.length - 1][1])
  );
  const node = h('figure', 'cellops-metric-chart');
  node.dataset.metric = metric;
  node.setAttribute('aria-label', trans.__('%1 by step', metric));
  const renderer = rendermime.createRenderer(VEGA_LITE);
  node.append(renderer.node);
  const model = new MimeModel({
    data: { [VEGA_LITE]: stepsSpec(metric, [[metric, series]], width) },
    // SVG: crisp at any zoom; no export menu in a narrow sidebar.
    metadata: {
      [VEGA_LITE]: { embed_options: { renderer: 'svg', actions: false } }
    }
  });
  renderer.renderModel(model).catch(() => {
    node.replaceChildren(h('div', 'cellops-metric-chart-text', text));
  });
  return { node, renderer };
}

/** A rendered chart: its element, and the renderer to dispose with it. */
export interface IMetricChart {
  node: HTMLElement;
  renderer: Widget;
}

export interface IMetricChartOptions {
  rendermime: IRenderMimeRegistry;
  trans: TranslationBundle;
  /** The width available, in pixels. */
  width: number;
}
