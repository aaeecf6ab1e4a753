/**
 * Vega-Lite specs of a deployment's per-minute metrics, drawn by JupyterLab's own Vega
 * renderer through rendermime (as the metric charts of the Runs tab).
 */
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import type { JSONObject } from '@lumino/coreutils';
import type { Widget } from '@lumino/widgets';

import { h } from '../sidebar/dom';
import { VEGA_LITE } from '../sidebar/metricChart';
import type { IDeploymentMinute } from './deployClient';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';
const HEIGHT = 110;

/** Requests per minute, one line per version. */
export function requestsSpec(
  minutes: IDeploymentMinute[],
  width: number,
  title: string
): JSONObject {
  const values = minutes.map(m => ({
    minute: m.minute,
    version: `v${String(m.version)}`,
    requests: m.requests,
    errors: m.errors
  }));
  return lineSpec(values, 'requests', title, width);
}

/** p50 and p95 latency in milliseconds, one line per version and quantile. */
export function latencySpec(
  minutes: IDeploymentMinute[],
  width: number,
  title: string
): JSONObject {
  const values = minutes.flatMap(m =>
    (['p50', 'p95'] as const)
      .filter(q => m[q] !== null)
      .map(q => ({
        minute: m.minute,
        version: `${q} v${String(m.version)}`,
        ms: (m[q] ?? 0) * 1000
      }))
  );
  return lineSpec(values, 'ms', title, width);
}

function lineSpec(
  values: Record<string, string | number>[],
  field: string,
  title: string,
  width: number
): JSONObject {
  return {
    $schema: SCHEMA,
    width,
    height: HEIGHT,
    background: 'transparent', // the sidebar's own, in any theme
    data: { values },
    mark: { type: 'line', point: true, tooltip: true },
    encoding: {
      x: {
        field: 'minute',
        type: 'temporal',
        title: null,
        axis: { format: '%H:%M', tickCount: 4 }
      },
      y: { field, type: 'quantitative', title },
      color: {
        field: 'version',
        type: 'nominal',
        title: null,
        legend: { orient: 'bottom' }
      }
    }
  };
}

/** A rendered chart: its element, and the renderer to dispose with it. */
export interface IChart {
  node: HTMLElement;
  renderer: Widget;
}

/** Render `spec` with rendermime's Vega-Lite renderer; null when it has none. */
export function renderChart(
  rendermime: IRenderMimeRegistry,
  spec: JSONObject,
  label: string,
  fallback: string
): IChart | null {
  if (rendermime.preferredMimeType({ [VEGA_LITE]: {} }, 'any') !== VEGA_LITE) {
    return null;
  }
  const node = h('figure', 'cellops-deploy-chart');
  node.setAttribute('aria-label', label);
  const renderer = rendermime.createRenderer(VEGA_LITE);
  node.append(renderer.node);
  const model = new MimeModel({
    data: { [VEGA_LITE]: spec },
    metadata: {
      [VEGA_LITE]: { embed_options: { renderer: 'svg', actions: false } }
    }
  });
  renderer.renderModel(model).catch(() => {
    node.replaceChildren(h('div', 'cellops-deploy-chart-text', fallback));
  });
  return { node, renderer };
}
