/**
 * What the activity feed says about pipelines (issue 13): a run finished (headless ones
 * with their outcome, parameters and CI job), a promotion refused by the team's rules, a
 * webhook that could not be delivered.
 *
 * Everything here is plain text for `textContent`: parameters, CI fields, rule names and
 * delivery errors come from pipelines and remote servers.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { IActivityItem } from '../reviewClient';
import { ciSystemName, parametersLine } from '../sidebar/headless';

/** The activity types this module describes. */
export const PIPELINE_TYPES = new Set([
  'run.finished',
  'promotion.refused',
  'webhook.failed'
]);

function text(data: Record<string, unknown>, key: string): string | null {
  const value = data[key];
  return typeof value === 'string' && value !== '' ? value : null;
}

function record(
  data: Record<string, unknown>,
  key: string
): Record<string, unknown> | null {
  const value = data[key];
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

/** The names (with what is missing) of the rules a refused promotion failed. */
export function failedRuleNames(data: Record<string, unknown>): string[] {
  const raw = Array.isArray(data.failed)
    ? data.failed
    : Array.isArray(data.rules)
      ? data.rules
      : [];
  return raw.flatMap((rule: unknown): string[] => {
    if (typeof rule === 'string') {
      return [rule];
    }
    if (typeof rule !== 'object' || rule === null) {
      return [];
    }
    const r = rule as Record<string, unknown>;
    if (r.passed === true || typeof r.rule !== 'string') {
      return [];
    }
    return [typeof r.message === 'string' && r.message ? r.message : r.rule];
  });
}

/** One line saying what happened, or null for a type this module does not know. */
export function describePipelineActivity(
  item: IActivityItem,
  who: string,
  what: string,
  trans: TranslationBundle
): string | null {
  const data = item.data;
  switch (item.type) {
    case 'run.finished': {
      const headless = text(data, 'source') === 'headless';
      switch (text(data, 'outcome')) {
        case 'ok':
          return headless
            ? trans.__('Headless run of %1 by %2 finished: ok', what, who)
            : trans.__('%1 finished a run of %2', who, what);
        case 'error':
          return headless
            ? trans.__(
                'Headless run of %1 by %2 failed: a cell raised',
                what,
                who
              )
            : trans.__('%1 finished a run of %2 with an error', who, what);
        case 'timeout':
          return trans.__('Headless run of %1 by %2 timed out', what, who);
        default:
          return headless
            ? trans.__('Headless run of %1 by %2 finished', what, who)
            : trans.__('%1 finished a run of %2', who, what);
      }
    }
    case 'promotion.refused': {
      const alias = text(data, 'alias') ?? '?';
      const version =
        typeof data.version === 'number' ? data.version : item.version;
      return trans.__(
        '%1 tried to move %2 of %3 to v%4: refused by its rules',
        who,
        alias,
        item.model ?? '',
        String(version ?? '?')
      );
    }
    case 'webhook.failed': {
      const host = text(data, 'host') ?? text(data, 'url_host') ?? '?';
      const event = text(data, 'event') ?? '?';
      return trans.__('Webhook to %1 failed to deliver %2', host, event);
    }
    default:
      return null;
  }
}

/**
 * The second line of a pipeline item: a headless run's parameters and CI job, the rules
 * that refused a promotion, a failed delivery's error. Null when there is nothing more.
 */
export function pipelineDetail(
  item: IActivityItem,
  trans: TranslationBundle
): string | null {
  const data = item.data;
  switch (item.type) {
    case 'run.finished': {
      const parts: string[] = [];
      const parameters = record(data, 'parameters');
      if (parameters && Object.keys(parameters).length > 0) {
        parts.push(parametersLine(parameters));
      }
      const ci = record(data, 'ci');
      if (ci) {
        const commit =
          typeof ci.commit === 'string' ? ci.commit.slice(0, 7) : '';
        const system =
          typeof ci.system === 'string' ? ciSystemName(ci.system) : '';
        const bits = [system, commit, ci.branch].filter(
          (b): b is string => typeof b === 'string' && b !== ''
        );
        if (bits.length > 0) {
          parts.push(trans.__('CI: %1', bits.join(' · ')));
        }
      }
      return parts.length > 0 ? parts.join(' — ') : null;
    }
    case 'promotion.refused': {
      const rules = failedRuleNames(data);
      return rules.length > 0 ? trans.__('Failed: %1', rules.join('; ')) : null;
    }
    case 'webhook.failed': {
      const error = text(data, 'error');
      const attempt = data.attempt;
      return error === null
        ? null
        : typeof attempt === 'number'
          ? trans.__('Attempt %1: %2', String(attempt), error)
          : error;
    }
    default:
      return null;
  }
}

/** A class marking items that tell of something that went wrong (their border colour). */
export function pipelineWarning(item: IActivityItem): boolean {
  if (item.type === 'promotion.refused' || item.type === 'webhook.failed') {
    return true;
  }
  if (item.type === 'run.finished') {
    const outcome = item.data.outcome;
    return outcome === 'error' || outcome === 'timeout';
  }
  return false;
}
