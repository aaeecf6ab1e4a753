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
