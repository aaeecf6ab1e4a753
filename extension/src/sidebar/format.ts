import { Time } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';

import { IRun } from '../api';

/** "5 minutes ago" (the browser's locale). */
export function relativeTime(iso: string): string {
  return Time.formatHuman(iso);
}

/** The full local date and time, for tooltips. */
export function absoluteTime(iso: string): string {
  return new Date(iso).toLocaleString();
}

/** "850 ms", "2.4 s", "3 min 5 s"; an em dash when unknown. */
export function formatDuration(
  ms: number | null,
  trans: TranslationBundle
): string {
  if (ms === null) {
    return '—';
  }
  if (ms < 1000) {
    return trans.__('%1 ms', Math.round(ms));
  }
  if (ms < 60000) {
    return trans.__('%1 s', (ms / 1000).toFixed(ms < 10000 ? 1 : 0));
  }
  const minutes = Math.floor(ms / 60000);
  const seconds = Math.round((ms % 60000) / 1000);
  return trans.__('%1 min %2 s', minutes, seconds);
}

/** The first non-blank line of `code`, for one-line rows. */
export function firstLine(code: string): string {
  const line = code.split('\n').find(l => l.trim().length > 0);
  return line ?? '';
}

/** The kernel's name as a person knows it, else the start of its id. */
export function kernelName(run: IRun): string {
  const spec = run.kernel_spec ?? {};
  for (const key of ['name', 'display_name']) {
    const value = spec[key];
    if (typeof value === 'string' && value.length > 0) {
      return value;
    }
  }
  return run.kernel_id.slice(0, 8);
}

/** The 7-character git commit, or '' outside a repository. */
export function shortCommit(run: IRun): string {
  const commit = run.git?.commit;
  return typeof commit === 'string' ? commit.slice(0, 7) : '';
}

/** A model's input signature in one line: "ndarray · float64 · 4 columns (a, b, …)". */
export function describeSignature(
  signature: Record<string, unknown> | null,
  trans: TranslationBundle
): string {
  if (signature === null) {
    return trans.__('unknown');
  }
  const parts: string[] = [];
  if (typeof signature.type === 'string' && signature.type !== 'unknown') {
    parts.push(signature.type);
  }
  if (typeof signature.dtype === 'string') {
    parts.push(signature.dtype);
  }
  const shape = Array.isArray(signature.shape) ? signature.shape : [];
  if (typeof shape[1] === 'number') {
    parts.push(trans._n('%1 column', '%1 columns', shape[1]));
  }
  const names = (Array.isArray(signature.columns) ? signature.columns : [])
    .map(c => (c as { name?: unknown }).name)
    .filter((n): n is string => typeof n === 'string');
  const shown = names.slice(0, 6).join(', ');
  const line = parts.join(' · ');
  if (names.length === 0) {
    return line || trans.__('unknown');
  }
  return `${line} (${shown}${names.length > 6 ? ', …' : ''})`;
}

/** A training-data fingerprint: "X 150×4 float64 · sha256:1a2b3c4d5e6f". */
export function describeFingerprint(print: Record<string, unknown>): string {
  const shape = Array.isArray(print.shape) ? print.shape.join('×') : '';
  const text = (value: unknown): string =>
    typeof value === 'string' ? value : '';
  const parts = [text(print.role), shape, text(print.dtype)];
  const hash = typeof print.hash === 'string' ? print.hash.slice(0, 19) : null;
  const line = parts.filter(p => p !== '').join(' ');
  return hash ? `${line} · ${hash}` : line;
}

/** A metric value: integers as they are, others to 4 significant digits. */
export function formatMetric(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(4);
}

/** What a param a row does not have shows (None is a value: `None`). */
export const MISSING_PARAM = '—';

/**
 * A param as the Python literal a data scientist typed: `True`, `None`, `'lbfgs'`,
 * `0.1`, `[64, 32]`, `{'a': 1}`. The same rules as `format_param` in the kernel
 * library (widgets/cellops/formatting.py), so the sidebar and Compare agree.
 */
export function formatParam(value: unknown): string {
  if (value === null || value === undefined) {
    return 'None';
  }
  switch (typeof value) {
    case 'boolean':
      return value ? 'True' : 'False';
    case 'number':
      return formatNumber(value);
    case 'string':
      return pythonQuote(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map(formatParam).join(', ')}]`;
  }
  if (typeof value === 'object') {
    const items = Object.entries(value).map(
      ([k, v]) => `${pythonQuote(k)}: ${formatParam(v)}`
    );
    return `{${items.join(', ')}}`;
  }
  return typeof value === 'bigint' ? value.toString() : ''; // not JSON: never logged
}

/** JavaScript's shortest round-trip digits; Python's names for the non-finite. */
function formatNumber(value: number): string {
  if (Number.isNaN(value)) {
    return 'nan';
  }
  if (!Number.isFinite(value)) {
    return value > 0 ? 'inf' : '-inf';
  }
  return String(value);
}

const ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t'
};

/** Python's repr of printable text: single quotes unless the text holds some. */
function pythonQuote(text: string): string {
  const mark = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch in ESCAPES) {
      out += ESCAPES[ch];
    } else if (ch === mark) {
      out += '\\' + ch;
    } else if (code < 0x20 || code === 0x7f) {
      out += '\\x' + code.toString(16).padStart(2, '0');
    } else {
      out += ch;
    }
  }
  return mark + out + mark;
}

/** The kernel as its launcher shows it ("Python 3 (ipykernel)"), else its name or id. */
export function kernelLabel(run: IRun): string {
  const value = run.kernel_spec?.display_name;
  return typeof value === 'string' && value.length > 0
    ? value
    : kernelName(run);
}

/** A coarse length of time: "40 s", "3 min", "2 h 5 min". */
export function formatElapsed(ms: number, trans: TranslationBundle): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) {
    return trans.__('%1 s', seconds);
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return trans.__('%1 min', minutes);
  }
  return trans.__('%1 h %2 min', Math.floor(minutes / 60), minutes % 60);
}

/** "ran 12 min", or "running for 3 min" while the kernel lives (as of `now`). */
export function runDuration(
  run: IRun,
  trans: TranslationBundle,
  now: number = Date.now()
): string {
  const start = Date.parse(run.started_at);
  if (run.ended_at === null) {
    return trans.__('running for %1', formatElapsed(now - start, trans));
  }
  return trans.__(
    'ran %1',
    formatElapsed(Date.parse(run.ended_at) - start, trans)
  );
}
