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
