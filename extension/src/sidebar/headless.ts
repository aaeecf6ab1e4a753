/**
 * How a run says where it came from (issue 13): a "headless" badge for runs of
 * `cellops run`, their outcome, their parameters as `key=value`, and a link to the CI job.
 *
 * Parameters, CI fields and the job URL are user-supplied (a pipeline's environment): all
 * text goes through `textContent`, and the URL becomes a link only when it is absolute
 * http(s) — a `javascript:` or `data:` URL is shown as text, never followed.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { IRun, IRunCI } from '../api';
import { h } from './dom';

/** Longest parameter value shown in full; longer ones are cut (whole value as tooltip). */
const VALUE_CHARS = 60;

/** CI systems named the way their users know them; others are shown as sent. */
const CI_NAMES: Record<string, string> = {
  github: 'GitHub Actions',
  'github-actions': 'GitHub Actions',
  gitlab: 'GitLab CI',
  'gitlab-ci': 'GitLab CI'
};

/** Whether `run` came from `cellops run` rather than JupyterLab. */
export function isHeadless(run: IRun): boolean {
  return run.source === 'headless';
}

/**
 * `url` as an absolute http(s) URL, or null (relative, another scheme, malformed): the
 * only URLs of user data this frontend turns into links.
 */
export function safeHttpUrl(url: unknown): string | null {
  if (typeof url !== 'string' || url.trim() === '') {
    return null;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  return parsed.protocol === 'http:' || parsed.protocol === 'https:'
    ? parsed.href
    : null;
}

/** A parameter's value as written on a command line: text as is, the rest as JSON. */
export function formatParameter(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  try {
    // undefined (a function, a symbol) has no JSON text.
    const json = JSON.stringify(value) as string | undefined;
    return json ?? String(value);
  } catch {
    return String(value);
  }
}

/** "alpha=0.1, epochs=3": parameters in one line (activity feed, tooltips). */
export function parametersLine(
  parameters: Record<string, unknown> | null | undefined
): string {
  return Object.entries(parameters ?? {})
    .map(([key, value]) => `${key}=${cut(formatParameter(value))}`)
    .join(', ');
}

/** The badges of a run's row and summary: "headless" and how it ended (none otherwise). */
export function originBadges(
  run: IRun,
  trans: TranslationBundle
): HTMLElement[] {
  if (!isHeadless(run)) {
    return [];
  }
  const badge = h('span', 'cellops-headless-badge', trans.__('headless'));
  badge.title = trans.__('Run by `cellops run`, not in JupyterLab');
  const badges = [badge];
  if (run.outcome) {
    badges.push(outcomeBadge(run.outcome, trans));
  }
  return badges;
}

/** "ok", "failed", "timed out", with the state in `data-outcome` (for its colour). */
export function outcomeBadge(
  outcome: string,
  trans: TranslationBundle
): HTMLElement {
  // A backend newer than this frontend may send another outcome: shown as sent.
  const labels: Partial<Record<string, [string, string]>> = {
    ok: [trans.__('ok'), trans.__('Every cell ran without error')],
    error: [trans.__('failed'), trans.__('A cell raised an error')],
    timeout: [trans.__('timed out'), trans.__('A cell ran past its timeout')]
  };
  const [text, title] = labels[outcome] ?? [outcome, outcome];
  const node = h('span', 'cellops-run-outcome', text);
  node.dataset.outcome = outcome;
  node.title = title;
  return node;
}

/**
 * What a headless run's view shows under its summary: the CI job and the parameters
 * (`.cellops-run-headless`), or null for an interactive run.
 */
export function headlessDetails(
  run: IRun,
  trans: TranslationBundle
): HTMLElement | null {
  if (!isHeadless(run)) {
    return null;
  }
  const node = h('div', 'cellops-run-headless');
  if (run.ci) {
    const line = h('div', 'cellops-run-ci-line');
    line.append(
      h('span', 'cellops-run-ci-label', trans.__('CI')),
      ciLink(run.ci, trans)
    );
    node.append(line);
  }
  node.append(parameterList(run.parameters ?? null, trans));
  return node;
}

/** "GitHub Actions" for "github": a CI system as its users know it. */
export function ciSystemName(system: string | null | undefined): string {
  return system ? (CI_NAMES[system.toLowerCase()] ?? system) : '';
}

/** "GitHub Actions · a1b2c3d · main": a link to the job when its URL is http(s). */
export function ciLink(ci: IRunCI, trans: TranslationBundle): HTMLElement {
  const system = ciSystemName(ci.system);
  const parts = [
    system || trans.__('CI job'),
    ci.commit ? ci.commit.slice(0, 7) : '',
    ci.branch ?? ''
  ].filter(part => part !== '');
  const label = parts.join(' · ');
  const href = safeHttpUrl(ci.url);
  const details = [
    ci.commit ? trans.__('Commit %1', ci.commit) : '',
    ci.branch ? trans.__('Branch %1', ci.branch) : ''
  ].filter(part => part !== '');
  if (href === null) {
    const text = h('span', 'cellops-run-ci', label);
    text.title = [
      ...details,
      ci.url ? trans.__('Job URL (not a web address): %1', ci.url) : ''
    ]
      .filter(part => part !== '')
      .join('\n');
    return text;
  }
  const link = h('a', 'cellops-run-ci', label);
  link.href = href;
  link.target = '_blank';
  link.rel = 'noopener noreferrer';
  link.title = [...details, trans.__('Open the CI job: %1', href)].join('\n');
  // Following the link is not opening the run (rows and headers may be clickable).
  link.addEventListener('click', event => {
    event.stopPropagation();
  });
  return link;
}

/** `key=value` per parameter (`.cellops-run-params`), or a line saying there were none. */
export function parameterList(
  parameters: Record<string, unknown> | null,
  trans: TranslationBundle
): HTMLElement {
  const entries = Object.entries(parameters ?? {});
  if (entries.length === 0) {
    return h(
      'div',
      'cellops-run-params-none',
      trans.__('No parameters: the notebook ran with its own values')
    );
  }
  const list = h('ul', 'cellops-run-params');
  list.setAttribute('aria-label', trans.__('Parameters'));
  for (const [key, value] of entries) {
    const full = formatParameter(value);
    const item = h('li', 'cellops-run-param');
    item.dataset.name = key;
    item.title = `${key}=${full}`;
    item.append(
      h('span', 'cellops-run-param-name', key),
      h('span', 'cellops-run-param-eq', '='),
      h('span', 'cellops-run-param-value', cut(full))
    );
    list.append(item);
  }
  return list;
}

function cut(text: string): string {
  return text.length > VALUE_CHARS
    ? `${text.slice(0, VALUE_CHARS - 1)}…`
    : text;
}
