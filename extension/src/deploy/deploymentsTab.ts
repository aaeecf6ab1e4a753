/**
 * The sidebar's Deployments tab: every deployment with its state, what it serves, the
 * traffic split, its last minutes' requests, latency and errors, and its drift badge; click
 * one for its detail: charts, the key shown once, Rollback, Canary, Rotate key, Delete,
 * drift per feature, its events and copyable client snippets for both protocols.
 *
 * Live: the panel refreshes the tab on `deployments` (and `models`) events. Between events
 * the open detail's metrics are refetched every METRICS_MS (requests/min change without
 * events), and the whole tab every STARTING_MS while a deployment shown is starting.
 *
 * All text is set with `textContent`: names, errors and events come from other users.
 */
import { Clipboard } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { TranslationBundle } from '@jupyterlab/translation';
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { CellopsClient, IModelVersion } from '../api';
import { button, emptyState, h, timeSpan } from '../sidebar/dom';
import { confirmDelete } from '../sidebar/modelDialogs';
import { ISidebarView } from '../sidebar/tabs';
import { IChart, latencySpec, renderChart, requestsSpec } from './charts';
import {
  DeployClient,
  IDeployment,
  IDeploymentDrift,
  IDeploymentEvent,
  IDeploymentMinute
} from './deployClient';
import {
  askCanary,
  askDeploy,
  askRollback,
  confirmAction,
  keyBox
} from './deployDialogs';
import { ISnippet, snippets } from './snippets';

/** While a detail shows, refetch its metrics this often (requests publish no event). */
export const METRICS_MS = 10_000;
/** While a deployment shown is starting, refetch this often: starting → ready shows soon. */
export const STARTING_MS = 1000;
/** Minutes the list's numbers cover. */
const SUMMARY_WINDOW = 5;
/** Minutes the detail's charts cover. */
const CHART_WINDOW = 60;

export interface IDeploymentsTabOptions {
  client: DeployClient;
  /** Model versions (rollback and canary choices, the signature of the snippets). */
  cellops: CellopsClient;
  rendermime: IRenderMimeRegistry;
  trans: TranslationBundle;
  onError: (error: unknown) => void;
  /** Refresh through the panel (coalesced, skipped while hidden): while starting. */
  requestRefresh: () => void;
  /** Show a model version in the Models tab. */
  onOpenModel: (model: string, version: number) => void;
}

/** What the list shows of a deployment's last minutes. */
export interface ISummary {
  requests: number;
  perMinute: number;
  errorRate: number | null;
  /** Of the latest minute with requests, weighted by requests across versions; seconds. */
  p50: number | null;
  p95: number | null;
}

export function summarize(
  minutes: IDeploymentMinute[],
  window: number
): ISummary {
  const requests = minutes.reduce((n, m) => n + m.requests, 0);
  const errors = minutes.reduce((n, m) => n + m.errors, 0);
  const busy = minutes.filter(m => m.requests > 0);
  const latest = busy.reduce(
    (last, m) => (m.minute > last ? m.minute : last),
    ''
  );
  const last = busy.filter(m => m.minute === latest);
  const weighted = (q: 'p50' | 'p95'): number | null => {
    const known = last.filter(m => m[q] !== null);
    const n = known.reduce((s, m) => s + m.requests, 0);
    return n === 0
      ? null
      : known.reduce((s, m) => s + (m[q] ?? 0) * m.requests, 0) / n;
  };
  return {
    requests,
    perMinute: requests / Math.max(window, 1),
    errorRate: requests === 0 ? null : errors / requests,
    p50: weighted('p50'),
    p95: weighted('p95')
  };
}

/** Seconds as milliseconds for people: "0.42 ms", "3.1 ms", "120 ms". */
export function formatLatency(seconds: number | null): string {
  if (seconds === null) {
    return '–';
  }
  const ms = seconds * 1000;
  const digits = ms < 1 ? 2 : ms < 10 ? 1 : 0;
  return `${ms.toFixed(digits)} ms`;
}

/**
 * The Deployments tab (`teamWide`: it needs no open notebook).
 */
export class DeploymentsTab extends Widget implements ISidebarView {
  constructor(private readonly _options: IDeploymentsTabOptions) {
    super();
    this._trans = _options.trans;
    this.addClass('cellops-deployments-view');
    this.node.append(this._header, this._content);
  }

  /** Open deployment `name`'s detail; `key`: its new key, shown once there. */
  showDeployment(name: string, key: string | null = null): void {
    this._open(name);
    this._key = key === null ? null : { name, key };
  }

  /**
   * Ask how to deploy `v` (Deploy… of the Models tab), create it and open its detail
   * with the key; answers whether a deployment was made.
   */
  async deploy(v: IModelVersion): Promise<boolean> {
    const body = await askDeploy(v, this._trans);
    if (body === null) {
      return false;
    }
    const created = await this._options.client.create(body);
    this.showDeployment(created.name, created.key);
    return true;
  }

  async refresh(): Promise<void> {
    const name = this._selected;
    if (name === null) {
      const list = await this._options.client.list();
      const metrics = await Promise.all(
        list.map(d =>
          this._options.client
            .metrics(d.name, SUMMARY_WINDOW)
            .then(m => m.minutes)
            .catch(() => null)
        )
      );
      if (this._selected === null) {
        this._renderList(list, metrics);
        this._schedule(list.some(d => d.state === 'starting'));
      }
      return;
    }
    const client = this._options.client;
    let deployment: IDeployment;
    try {
      deployment = await client.get(name);
    } catch (error) {
      if (this._selected === name) {
        this._open(null); // deleted meanwhile (by a teammate): back to the list
      }
      throw error;
    }
    const [events, metrics, versions, drift] = await Promise.all([
      client.events(name),
      client.metrics(name, CHART_WINDOW).then(m => m.minutes),
      this._versions(deployment.model),
      // No drift report (e.g. the check failed) must not hide the rest of the detail.
      client.drift(name, CHART_WINDOW).catch(() => null)
    ]);
    if (this._selected === name) {
      this._renderDetail(deployment, events, metrics, versions, drift);
      this._schedule(deployment.state === 'starting');
    }
  }

  reset(): void {
    // Deployments belong to the team, not to a notebook: keep what is shown.
  }

  override dispose(): void {
    this._stopTimer();
    this._dropCharts();
    super.dispose();
  }

  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._schedule(this._starting);
  }

  protected override onBeforeHide(msg: Message): void {
    this._stopTimer();
    super.onBeforeHide(msg);
  }

  /**
   * The next look between events, while the tab shows: the whole tab soon while a
   * deployment shown is `starting`, else the open detail's metrics.
   */
  private _schedule(starting: boolean): void {
    this._starting = starting;
    this._stopTimer();
    if (!this.isVisible) {
      return;
    }
    if (starting) {
      this._timer = window.setTimeout(() => {
        this._timer = null;
        this._options.requestRefresh();
      }, STARTING_MS);
    } else if (this._selected !== null) {
      const name = this._selected;
      this._timer = window.setTimeout(() => {
        this._timer = null;
        void this._refreshMetrics(name);
      }, METRICS_MS);
    }
  }

  private _stopTimer(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  /** Refetch the open detail's metrics only: its stats and charts, in place. */
  private async _refreshMetrics(name: string): Promise<void> {
    if (!this.isVisible || this._selected !== name) {
      return;
    }
    try {
      const reply = await this._options.client.metrics(name, CHART_WINDOW);
      if (this._selected === name && this._shown?.name === name) {
        this._updateMetrics(this._shown, reply.minutes);
      }
    } catch {
      // A background look: the next tick or event tries again; actions report errors.
    } finally {
      if (this._selected === name && this._timer === null) {
        this._schedule(this._starting);
      }
    }
  }

  private _updateMetrics(d: IDeployment, minutes: IDeploymentMinute[]): void {
    const stats = this._detailStats(d, minutes);
    this._statsNode?.replaceWith(stats);
    this._statsNode = stats;
    const before = this._chartBox;
    const charts = this._charts(minutes);
    if (before !== null && before !== charts) {
      before.replaceWith(charts);
    }
  }

  /** The model's versions, newest first (for rollback, canary and the snippets). */
  private async _versions(model: string): Promise<IModelVersion[]> {
    try {
      const page = await this._options.cellops.modelVersions(
        model,
        undefined,
        100,
        false
      );
      return page.items;
    } catch {
      return []; // the model went: the deployment still shows, without choices
    }
  }

  private _open(name: string | null): void {
    if (name !== this._selected) {
      this._dropCharts();
      this._key = null;
      this._shown = null;
      this._statsNode = null;
      this._content.replaceChildren();
    }
    this._selected = name;
  }

  // -- the list -------------------------------------------------------------------------

  private _renderList(
    list: IDeployment[],
    metrics: (IDeploymentMinute[] | null)[]
  ): void {
    const trans = this._trans;
    this._header.replaceChildren(
      h('span', 'cellops-model-title', trans.__('Deployments'))
    );
    this._content.className = 'cellops-deployments';
    if (list.length === 0) {
      this._content.replaceChildren(
        emptyState(
          trans.__(
            'No deployments yet. Deploy a model version from the Models tab (Deploy…) or from a cell: cellops.deploy("name", alias="champion")'
          )
        )
      );
      return;
    }
    this._content.replaceChildren(
      ...list.map((d, i) => this._listRow(d, metrics[i]))
    );
  }

  private _listRow(
    d: IDeployment,
    minutes: IDeploymentMinute[] | null
  ): HTMLElement {
    const trans = this._trans;
    const row = h('button', 'cellops-deployment');
    row.dataset.deployment = d.name;
    row.dataset.state = d.state;
    row.title = trans.__('Show %1: charts, events, rollback, snippets', d.name);
    const title = h('div', 'cellops-deployment-title');
    title.append(
      h('span', 'cellops-deployment-name', d.name),
      ...this._badges(d)
    );
    row.append(title, this._serves(d));
    if (d.state === 'failed' && d.error) {
      row.append(h('div', 'cellops-deploy-error', d.error));
    }
    row.append(this._stats(minutes));
    row.addEventListener('click', () => {
      this._open(d.name);
      void this._reload();
    });
    return row;
  }

  private _stateBadge(d: IDeployment): HTMLElement {
    const trans = this._trans;
    const labels: Record<string, string> = {
      starting: trans.__('starting'),
      ready: trans.__('ready'),
      failed: trans.__('failed')
    };
    const badge = h('span', 'cellops-deploy-state', labels[d.state] ?? d.state);
    badge.dataset.state = d.state;
    if (d.state === 'failed' && d.error) {
      badge.title = d.error;
    }
    return badge;
  }

  /** State, drift verdict (once judged) and public: what a glance should tell. */
  private _badges(d: IDeployment): HTMLElement[] {
    const badges = [this._stateBadge(d)];
    const drift = this._driftBadge(d);
    if (drift !== null) {
      badges.push(drift);
    }
    if (d.public) {
      badges.push(this._publicBadge());
    }
    return badges;
  }

  /** "drift" (warning) or "no drift" (quiet); nothing until a drift check could judge. */
  private _driftBadge(d: IDeployment): HTMLElement | null {
    if (d.drifted === null) {
      return null;
    }
    const trans = this._trans;
    const badge = h(
      'span',
      'cellops-deploy-drift',
      d.drifted ? trans.__('drift') : trans.__('no drift')
    );
    badge.dataset.drifted = String(d.drifted);
    badge.title = d.drifted
      ? trans.__(
          "The last drift check found served inputs unlike the model's training data: open the deployment and see Drift for the features"
        )
      : trans.__(
          "The last drift check found the served inputs like the model's training data: the deployment's Drift section has the details"
        );
    return badge;
  }

  private _publicBadge(): HTMLElement {
    const badge = h(
      'span',
      'cellops-deploy-public',
      this._trans.__('public · no key')
    );
    badge.title = this._trans.__(
      'Anyone who can reach the serving port can call it, without a key'
    );
    return badge;
  }

  /** "iris v3", "iris · follows champion (v3)" and the split of a canary. */
  private _serves(d: IDeployment): HTMLElement {
    const trans = this._trans;
    const line = h('div', 'cellops-deployment-serves');
    line.append(
      h(
        'span',
        'cellops-deployment-target',
        d.alias
          ? trans.__(
              '%1 · follows alias %2 (v%3)',
              d.model,
              d.alias,
              String(d.version)
            )
          : trans.__('%1 v%2', d.model, String(d.version))
      )
    );
    if (d.traffic.length > 1) {
      line.append(
        h(
          'span',
          'cellops-deployment-traffic',
          d.traffic
            .map(t => `v${String(t.version)} ${String(t.percent)}%`)
            .join(' · ')
        )
      );
    }
    return line;
  }

  /** "12 req/min · p50 0.8 ms · p95 1.2 ms · 0.0% errors" of the last minutes. */
  private _stats(minutes: IDeploymentMinute[] | null): HTMLElement {
    const trans = this._trans;
    const line = h('div', 'cellops-deployment-stats');
    if (minutes === null) {
      line.textContent = trans.__('no metrics');
      return line;
    }
    const s = summarize(minutes, SUMMARY_WINDOW);
    if (s.requests === 0) {
      line.textContent = trans.__(
        'no requests in the last %1 minutes',
        String(SUMMARY_WINDOW)
      );
      return line;
    }
    const stat = (cls: string, text: string): HTMLElement =>
      h('span', cls, text);
    line.append(
      stat(
        'cellops-stat-rpm',
        trans.__('%1 req/min', s.perMinute.toFixed(s.perMinute < 10 ? 1 : 0))
      ),
      stat('cellops-stat-p50', trans.__('p50 %1', formatLatency(s.p50))),
      stat('cellops-stat-p95', trans.__('p95 %1', formatLatency(s.p95))),
      stat(
        'cellops-stat-errors',
        trans.__('%1% errors', ((s.errorRate ?? 0) * 100).toFixed(1))
      )
    );
    line.classList.toggle('cellops-mod-errors', (s.errorRate ?? 0) > 0);
    return line;
  }

  // -- the detail -----------------------------------------------------------------------

  private _renderDetail(
    d: IDeployment,
    events: IDeploymentEvent[],
    minutes: IDeploymentMinute[],
    versions: IModelVersion[],
    drift: IDeploymentDrift | null
  ): void {
    const trans = this._trans;
    this._shown = d;
    const back = h('button', 'cellops-back', trans.__('‹ Deployments'));
    back.addEventListener('click', () => {
      this._open(null);
      void this._reload();
    });
    this._header.replaceChildren(
      back,
      h('span', 'cellops-model-title', d.name)
    );
    this._content.className = 'cellops-deployment-detail';
    this._content.dataset.deployment = d.name;
    const summary = h('div', 'cellops-deployment-summary');
    const title = h('div', 'cellops-deployment-title');
    title.append(...this._badges(d));
    summary.append(title, this._serves(d));
    if (d.state === 'failed' && d.error) {
      summary.append(h('div', 'cellops-deploy-error', d.error));
    }
    if (d.public) {
      summary.append(
        h(
          'div',
          'cellops-deploy-public-note',
          trans.__(
            'This deployment is public: anyone who can reach the serving port can call it without a key.'
          )
        )
      );
    }
    this._statsNode = this._detailStats(d, minutes);
    summary.append(this._statsNode, this._urls(d));
    const sections: HTMLElement[] = [summary];
    if (this._key?.name === d.name) {
      sections.push(this._keyNotice(this._key.key));
    }
    sections.push(
      this._actions(d, versions),
      this._charts(minutes),
      this._drift(drift),
      this._snippets(d, versions),
      this._events(events)
    );
    this._content.replaceChildren(...sections);
  }

  /** The last minutes' stats; with a canary, also one line per version. */
  private _detailStats(
    d: IDeployment,
    minutes: IDeploymentMinute[]
  ): HTMLElement {
    const recent = minutes.filter(m => isRecent(m.minute, SUMMARY_WINDOW));
    const box = h('div', 'cellops-deployment-stats-box');
    box.append(this._stats(recent));
    if (d.traffic.length > 1) {
      for (const share of d.traffic) {
        const line = this._stats(
          recent.filter(m => m.version === share.version)
        );
        line.classList.add('cellops-deployment-version-stats');
        line.dataset.version = String(share.version);
        line.prepend(
          h(
            'span',
            'cellops-stat-version',
            `v${String(share.version)} (${String(share.percent)}%)`
          )
        );
        box.append(line);
      }
    }
    return box;
  }

  /** The last drift check per served version: each feature, its tests and verdict. */
  private _drift(report: IDeploymentDrift | null): HTMLElement {
    const trans = this._trans;
    const box = h('div', 'cellops-deployment-drift');
    box.append(
      h(
        'div',
        'cellops-section-title',
        trans.__('Drift (last %1 minutes)', String(CHART_WINDOW))
      )
    );
    if (report === null) {
      box.append(emptyState(trans.__('Drift could not be computed now.')));
      return box;
    }
    for (const version of report.versions) {
      const head = h(
        'div',
        'cellops-deploy-drift-version',
        trans.__(
          'v%1: %2 sampled requests',
          String(version.version ?? '?'),
          String(version.samples)
        )
      );
      box.append(head);
      if (version.message) {
        box.append(h('div', 'cellops-deploy-drift-message', version.message));
      }
      for (const f of version.features) {
        const row = h('div', 'cellops-deploy-drift-feature');
        row.dataset.feature = f.feature;
        row.dataset.drifted = String(f.drifted);
        const verdict =
          f.drifted === null
            ? (f.reason ?? trans.__('not enough samples'))
            : f.drifted
              ? trans.__('drifted')
              : trans.__('ok');
        row.append(
          h('span', 'cellops-deploy-drift-name', f.feature),
          h(
            'span',
            'cellops-deploy-drift-tests',
            f.tests
              .map(
                t =>
                  `${t.test} ${t.statistic.toPrecision(2)}${t.drifted ? ' >' : ' ≤'} ${t.threshold.toPrecision(2)}`
              )
              .join(' · ')
          ),
          h('span', 'cellops-deploy-drift-verdict', verdict)
        );
        box.append(row);
      }
    }
    return box;
  }

  private _urls(d: IDeployment): HTMLElement {
    const trans = this._trans;
    const list = h('dl', 'cellops-deployment-urls');
    list.append(
      h('dt', '', trans.__('Open Inference Protocol v2')),
      h('dd', 'cellops-url-v2', d.urls.v2),
      h('dt', '', trans.__('MLflow scoring')),
      h('dd', 'cellops-url-invocations', d.urls.invocations)
    );
    return list;
  }

  /** The key of a new deployment or a rotation: shown once, until hidden. */
  private _keyNotice(key: string): HTMLElement {
    const trans = this._trans;
    const box = h('div', 'cellops-deploy-key-notice');
    box.setAttribute('role', 'alert');
    const hide = button(
      'cellops-deploy-key-hide',
      trans.__('I have copied it'),
      trans.__('Hide the key: it is not shown again'),
      () => {
        this._key = null;
        box.remove();
      }
    );
    box.append(
      h(
        'div',
        'cellops-deploy-key-text',
        trans.__(
          'The inference key, shown this once: copy it now. Clients send "Authorization: Bearer <key>"; the snippets below read it from $CELLOPS_KEY.'
        )
      ),
      keyBox(key, trans),
      hide
    );
    return box;
  }

  private _actions(d: IDeployment, versions: IModelVersion[]): HTMLElement {
    const trans = this._trans;
    const bar = h('div', 'cellops-model-actions cellops-deployment-actions');
    const numbers = versions.map(v => v.version);
    const earlier = numbers.filter(n => n < d.version);
    const rollback = button(
      'cellops-deploy-rollback',
      trans.__('Rollback…'),
      trans.__('Serve an earlier version'),
      () => void this._act(() => this._rollback(d, earlier))
    );
    if (earlier.length === 0) {
      rollback.disabled = true;
      rollback.title = trans.__('There is no earlier version to roll back to');
    }
    bar.append(rollback);
    if (d.traffic.length > 1) {
      bar.append(
        button(
          'cellops-deploy-end-canary',
          trans.__('End canary'),
          trans.__('Send all requests to v%1 again', String(d.version)),
          () =>
            void this._act(() =>
              this._options.client.update(d.name, {
                traffic: [{ version: d.version, percent: 100 }]
              })
            )
        )
      );
    } else {
      const others = numbers.filter(n => n !== d.version);
      const canary = button(
        'cellops-deploy-canary',
        trans.__('Canary…'),
        trans.__('Send a share of the requests to another version'),
        () => void this._act(() => this._canary(d, others))
      );
      if (others.length === 0) {
        canary.disabled = true;
        canary.title = trans.__('The model has no other version');
      }
      bar.append(canary);
    }
    bar.append(
      button(
        'cellops-deploy-public-toggle',
        d.public ? trans.__('Require a key…') : trans.__('Make public…'),
        d.public
          ? trans.__('Callers need a key again')
          : trans.__('Serve without a key'),
        () => void this._act(() => this._togglePublic(d))
      ),
      button(
        'cellops-deploy-rotate',
        trans.__('Rotate key…'),
        trans.__('Make a new key; the old one stops working'),
        () => void this._act(() => this._rotate(d))
      ),
      button(
        'cellops-deploy-model',
        trans.__('Model'),
        trans.__('Show the version served in the Models tab'),
        () => {
          this._options.onOpenModel(d.model, d.version);
        }
      ),
      button(
        'cellops-deploy-delete',
        trans.__('Delete…'),
        trans.__('Stop serving and delete this deployment'),
        () => void this._delete(d)
      )
    );
    return bar;
  }

  private async _rollback(d: IDeployment, earlier: number[]): Promise<void> {
    const version = await askRollback(d, earlier, this._trans);
    if (version !== null) {
      await this._options.client.update(d.name, { version });
    }
  }

  private async _canary(d: IDeployment, others: number[]): Promise<void> {
    const answer = await askCanary(d, others, this._trans);
    if (answer !== null) {
      await this._options.client.update(d.name, {
        traffic: [
          { version: d.version, percent: 100 - answer.percent },
          { version: answer.version, percent: answer.percent }
        ]
      });
    }
  }

  private async _togglePublic(d: IDeployment): Promise<void> {
    const trans = this._trans;
    const ok = d.public
      ? true
      : await confirmAction(
          trans.__('Make %1 public?', d.name),
          trans.__(
            'Anyone who can reach the serving port can then call it without a key.'
          ),
          trans.__('Make public'),
          trans
        );
    if (ok) {
      await this._options.client.update(d.name, { public: !d.public });
    }
  }

  private async _rotate(d: IDeployment): Promise<void> {
    const trans = this._trans;
    const ok = await confirmAction(
      trans.__('Rotate the key of %1?', d.name),
      trans.__(
        'A new key is made and shown once; clients using the old key get 401 from now on.'
      ),
      trans.__('Rotate'),
      trans
    );
    if (ok) {
      const key = await this._options.client.rotateKey(d.name);
      this._key = { name: d.name, key };
    }
  }

  private async _delete(d: IDeployment): Promise<void> {
    const trans = this._trans;
    const ok = await confirmDelete(
      trans.__('the deployment %1', d.name),
      trans.__(
        'Its endpoints stop answering and its key stops working. The model and its versions stay.'
      ),
      trans
    );
    if (!ok) {
      return;
    }
    try {
      await this._options.client.remove(d.name);
      this._open(null);
      await this.refresh();
    } catch (error) {
      this._options.onError(error);
    }
  }

  /** Requests/min and p50/p95 over the last hour; kept while the data is the same. */
  private _charts(minutes: IDeploymentMinute[]): HTMLElement {
    const trans = this._trans;
    const data = JSON.stringify(minutes);
    if (data === this._chartData && this._chartBox !== null) {
      return this._chartBox;
    }
    this._dropCharts();
    this._chartData = data;
    const box = h('div', 'cellops-deployment-charts');
    this._chartBox = box;
    box.append(
      h(
        'div',
        'cellops-section-title',
        trans.__('Last %1 minutes', String(CHART_WINDOW))
      )
    );
    if (minutes.length === 0) {
      box.append(
        h(
          'div',
          'cellops-deploy-chart-text',
          trans.__('No requests yet: charts appear with the first ones.')
        )
      );
      return box;
    }
    const width = Math.max(140, (this.node.clientWidth || 260) - 90);
    const specs = [
      {
        spec: requestsSpec(minutes, width, trans.__('requests/min')),
        label: trans.__('Requests per minute'),
        kind: 'requests'
      },
      {
        spec: latencySpec(minutes, width, trans.__('latency (ms)')),
        label: trans.__('p50 and p95 latency'),
        kind: 'latency'
      }
    ];
    const total = summarize(minutes, CHART_WINDOW);
    const fallback = trans.__(
      '%1 requests, p50 %2, p95 %3',
      String(total.requests),
      formatLatency(total.p50),
      formatLatency(total.p95)
    );
    for (const { spec, label, kind } of specs) {
      const chart = renderChart(
        this._options.rendermime,
        spec,
        label,
        fallback
      );
      if (chart === null) {
        box.append(h('div', 'cellops-deploy-chart-text', fallback));
        break;
      }
      chart.node.dataset.chart = kind;
      this._chartViews.push(chart);
      box.append(chart.node);
    }
    return box;
  }

  private _dropCharts(): void {
    for (const chart of this._chartViews) {
      chart.renderer.dispose();
    }
    this._chartViews = [];
    this._chartBox = null;
    this._chartData = '';
  }

  private _snippets(d: IDeployment, versions: IModelVersion[]): HTMLElement {
    const trans = this._trans;
    const labels: Record<ISnippet['id'], string> = {
      'curl-v2': trans.__('curl · Open Inference Protocol v2'),
      'python-v2': trans.__('Python · Open Inference Protocol v2'),
      'curl-mlflow': trans.__('curl · MLflow scoring (dataframe_split)'),
      'python-mlflow': trans.__('Python · MLflow scoring (dataframe_split)')
    };
    const served = versions.find(v => v.version === d.version);
    const box = h('div', 'cellops-deployment-snippets');
    box.append(h('div', 'cellops-section-title', trans.__('Call it')));
    if (!d.public) {
      box.append(
        h(
          'div',
          'cellops-deploy-snippet-note',
          trans.__('Set CELLOPS_KEY to the key first: export CELLOPS_KEY=…')
        )
      );
    }
    for (const snippet of snippets(d, served?.signature ?? null)) {
      const block = h('div', 'cellops-deploy-snippet');
      block.dataset.snippet = snippet.id;
      const head = h('div', 'cellops-deploy-snippet-head');
      const copy = button(
        'cellops-deploy-copy',
        trans.__('Copy'),
        trans.__('Copy to the clipboard'),
        () => {
          Clipboard.copyToSystem(snippet.text);
          copy.textContent = trans.__('Copied');
        }
      );
      head.append(
        h('span', 'cellops-deploy-snippet-label', labels[snippet.id]),
        copy
      );
      block.append(head, h('pre', 'cellops-deploy-snippet-code', snippet.text));
      box.append(block);
    }
    return box;
  }

  private _events(events: IDeploymentEvent[]): HTMLElement {
    const trans = this._trans;
    const box = h('div', 'cellops-deployment-events');
    box.append(h('div', 'cellops-section-title', trans.__('Events')));
    if (events.length === 0) {
      box.append(emptyState(trans.__('No events yet.')));
      return box;
    }
    const newest = [...events].sort((a, b) => b.id - a.id);
    for (const event of newest) {
      const row = h('div', 'cellops-deployment-event');
      row.dataset.type = event.type;
      row.append(
        timeSpan('cellops-deployment-event-at', event.at),
        h(
          'span',
          'cellops-deployment-event-who',
          event.actor ?? trans.__('cellops')
        ),
        h('span', 'cellops-deployment-event-what', describeEvent(event))
      );
      box.append(row);
    }
    return box;
  }

  /** Run a change, then show the result (errors go to the panel's notice). */
  private async _act(change: () => Promise<unknown>): Promise<void> {
    try {
      await change();
      await this.refresh();
    } catch (error) {
      this._options.onError(error);
    }
  }

  private async _reload(): Promise<void> {
    try {
      await this.refresh();
    } catch (error) {
      this._options.onError(error);
    }
  }

  private readonly _trans: TranslationBundle;
  private readonly _header = h('div', 'cellops-models-header');
  private readonly _content = h('div', 'cellops-deployments');
  private _selected: string | null = null;
  private _key: { name: string; key: string } | null = null;
  private _timer: number | null = null;
  /** Whether the last render showed a deployment starting (then look again soon). */
  private _starting = false;
  /** The deployment of the detail shown, and its stats element (refreshed in place). */
  private _shown: IDeployment | null = null;
  private _statsNode: HTMLElement | null = null;
  private _chartViews: IChart[] = [];
  private _chartBox: HTMLElement | null = null;
  private _chartData = '';
}

/** Whether `iso` is within the last `minutes` minutes. */
function isRecent(iso: string, minutes: number): boolean {
  return Date.now() - Date.parse(iso) <= minutes * 60_000;
}

/** "version: 2 → 1", "traffic: v3 90% · v4 10%": an event's type and data in one line. */
export function describeEvent(event: IDeploymentEvent): string {
  const parts = Object.entries(event.data).map(([key, value]) => {
    if (key === 'traffic' && Array.isArray(value)) {
      return value
        .map(t => t as { version?: unknown; percent?: unknown })
        .map(t => `v${String(t.version)} ${String(t.percent)}%`)
        .join(' · ');
    }
    const text =
      typeof value === 'object' && value !== null
        ? JSON.stringify(value)
        : String(value);
    return `${key}: ${text}`;
  });
  return parts.length === 0
    ? event.type
    : `${event.type} (${parts.join(', ')})`;
}
