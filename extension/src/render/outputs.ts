import { MimeModel, type IRenderMimeRegistry } from '@jupyterlab/rendermime';
import type { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Panel, Widget } from '@lumino/widgets';

import type { CellopsClient, IExecution } from '../api';

type Output = IExecution['outputs'][number];
type Bundle = Record<string, unknown>;

/** A stored binary value: bytes at `blobs/{sha256}`. */
interface IBlobRef {
  blob: string;
  size: number;
}

/** A value the server did not store (too large, invalid, ...); `size` when known. */
interface IOmitted {
  omitted: string;
  size?: number;
}

/** A string field of an output, or '' (a list of lines is joined). */
function text(value: unknown): string {
  const joined = joinText(value);
  return typeof joined === 'string' ? joined : '';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isBlobRef(value: unknown): value is IBlobRef {
  return isRecord(value) && typeof value.blob === 'string';
}

function isOmitted(value: unknown): value is IOmitted {
  return isRecord(value) && typeof value.omitted === 'string';
}

/** nbformat multiline strings may be lists of lines. */
function joinText(value: unknown): unknown {
  return Array.isArray(value) && value.every(v => typeof v === 'string')
    ? value.join('')
    : value;
}

/** Human-readable byte count, e.g. "2.4 MB". */
export function formatSize(size: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  let value = size;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? String(value) : value.toFixed(1)} ${units[unit]}`;
}

/** The mime bundle of one output, like JupyterLab's `OutputModel.getData`. */
function outputBundle(output: Output): Bundle {
  switch (output.output_type) {
    case 'execute_result':
    case 'display_data':
      return isRecord(output.data) ? { ...output.data } : {};
    case 'stream':
      return {
        [output.name === 'stderr'
          ? 'application/vnd.jupyter.stderr'
          : 'application/vnd.jupyter.stdout']: joinText(output.text)
      };
    case 'error': {
      const traceback = Array.isArray(output.traceback)
        ? output.traceback.filter(t => typeof t === 'string').join('\n')
        : '';
      return {
        'application/vnd.jupyter.error': output,
        'application/vnd.jupyter.stderr':
          traceback || `${text(output.ename)}: ${text(output.evalue)}`
      };
    }
    default:
      return {};
  }
}

function note(text: string): Widget {
  const widget = new Widget();
  widget.addClass('cellops-output-note');
  widget.node.textContent = text;
  return widget;
}

async function blobAsBase64(
  client: CellopsClient,
  sha: string
): Promise<string> {
  const bytes = new Uint8Array(await (await client.blob(sha)).arrayBuffer());
  // Chunked: String.fromCharCode(...bytes) overflows the stack on large images.
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Renders one output into `host`; every failure ends as a note, never a throw. */
async function renderOne(
  output: Output,
  host: Panel,
  rendermime: IRenderMimeRegistry,
  client: CellopsClient,
  trans: TranslationBundle
): Promise<void> {
  if (output.output_type === 'note') {
    host.addWidget(note(text(output.text)));
    return;
  }
  // Values the server did not keep cannot be rendered: say which, render the rest.
  const bundle: Bundle = {};
  for (const [type, value] of Object.entries(outputBundle(output))) {
    if (isOmitted(value)) {
      host.addWidget(
        note(
          trans.__(
            '%1 not stored (%2)',
            type,
            typeof value.size === 'number'
              ? formatSize(value.size)
              : value.omitted
          )
        )
      );
    } else {
      bundle[type] = value;
    }
  }
  const mime = rendermime.preferredMimeType(
    bundle as ReadonlyPartialJSONObject,
    'any'
  );
  if (mime === undefined) {
    if (host.widgets.length === 0) {
      host.addWidget(note(trans.__('No displayable output')));
    }
    return;
  }
  try {
    const value = bundle[mime];
    const data = {
      ...bundle,
      [mime]: isBlobRef(value)
        ? await blobAsBase64(client, value.blob)
        : joinText(value)
    } as ReadonlyPartialJSONObject;
    const metadata = isRecord(output.metadata)
      ? (output.metadata as ReadonlyPartialJSONObject)
      : {};
    const renderer = rendermime.createRenderer(mime);
    // Always untrusted: recorded outputs may come from anyone's notebook.
    await renderer.renderModel(
      new MimeModel({ data, metadata, trusted: false })
    );
    host.addWidget(renderer);
  } catch {
    host.addWidget(note(trans.__('This output could not be displayed')));
  }
}

/**
 * Recorded outputs rendered through the rendermime registry, untrusted, in a
 * `Panel.cellops-outputs`. Binary data is fetched from the server's blob store;
 * rendering is asynchronous, so outputs appear as they become ready.
 */
export function renderOutputs(
  outputs: IExecution['outputs'],
  rendermime: IRenderMimeRegistry,
  client: CellopsClient,
  translator: ITranslator
): Widget {
  const trans = translator.load('cellops');
  const panel = new Panel();
  panel.addClass('cellops-outputs');
  for (const output of outputs) {
    // One host per output keeps the order even though rendering is asynchronous.
    const host = new Panel();
    host.addClass('cellops-output');
    panel.addWidget(host);
    void renderOne(output, host, rendermime, client, trans);
  }
  return panel;
}
