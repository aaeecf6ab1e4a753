import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import type { Message } from '@lumino/messaging';
import { Panel, Widget } from '@lumino/widgets';

import { ActivityStream } from '../activity';
import {
  CellopsAPIError,
  CellopsClient,
  IActivityEvent,
  IModelVersion
} from '../api';
import { CoalescedRun } from '../coalesce';
import { DeployClient } from '../deploy/deployClient';
import { DeploymentsTab } from '../deploy/deploymentsTab';
import { cellopsIcon } from '../icons';
import { ActivityTab } from '../review/activityTab';
import { InboxWatcher } from '../review/notifications';
import { ReviewTab } from '../review/reviewTab';
import { IActivityItem, ReviewClient } from '../reviewClient';
import { emptyState } from './dom';
import { isUnreachable } from './errors';
import { ModelsView } from './models';
import { Notice } from './notice';
import { NotebooksTab } from './notebooksTab';
import { RunsTab } from './runsTab';
import { ISidebarTab, TabBar } from './tabs';
import { VersionsView } from './versions';

export const SIDEBAR_ID = 'cellops-sidebar';

/** While the server extension does not answer, look again at most this often. */
const SERVER_RECHECK_MS = 10000;

/**
 * While the team backend is unreachable, ask for the status again this often: the banner
 * must clear when the backend is back even if no event says so (the writer may report its
 * first successful send after the events that send caused have been handled).
 */
const BACKEND_RECHECK_MS = 3000;

/**
 * The cellops right sidebar: the active notebook's runs, executions and versions,
 * kept live by the activity stream.
 *
 * Refreshes are coalesced (one in flight, at most one more queued) and skipped while
 * the panel is hidden; showing it refreshes.
 */
export class CellopsSidebar extends Panel {
  constructor(options: CellopsSidebar.IOptions) {
    super();
    this._client = options.client;
    this._notebooks = options.notebooks;
    this._activity = options.activity;
    this._docManager = options.docManager;
    this._trans = options.translator.load('cellops');
    this.id = SIDEBAR_ID;
    this.title.icon = cellopsIcon;
    this.title.caption = this._trans.__('cellops');
    this.addClass('cellops-sidebar');

    this._notice = new Notice(this._trans);
    this._tabBar = new TabBar(this._trans, id => {
      this.selectTab(id);
    });
    this._noNotebook.node.appendChild(this._waiting);
    this._noNotebook.addClass('cellops-no-notebook');
    this._body.addClass('cellops-body');
    this.addWidget(this._tabBar);
    this.addWidget(this._notice);
    this.addWidget(this._noNotebook);
    this.addWidget(this._body);

    const report = (error: unknown): void => {
      this._notice.fail('action', error);
    };
    this._models = new ModelsView({
      client: options.client,
      trans: this._trans,
      onError: report,
      onOpenExecution: id => void this.showExecution(id),
      onOpenNotebookVersion: (notebook, id) =>
        void this.showNotebookVersion(notebook, id),
      docManager: options.docManager,
      notebooks: options.notebooks,
      onDeploy: v => void this._guard(() => this._deployVersion(v))
    });
    this._versions = new VersionsView({
      client: options.client,
      trans: this._trans,
      docManager: options.docManager,
      onError: report,
      onOpenExecution: id => void this.showExecution(id)
    });
    // Timeline pages load in the background: a failure there clears with the next refresh.
    this._runs = new RunsTab({
      ...options,
      onError: error => {
        this._notice.fail('request', error);
      }
    });
    this.addTab({
      id: 'runs',
      label: this._trans.__('Runs'),
      caption: this._trans.__(
        'Kernel sessions of this notebook and their executions'
      ),
      view: this._runs
    });
    this.addTab({
      id: 'versions',
      label: this._trans.__('Versions'),
      caption: this._trans.__(
        'Numbered versions of this notebook: compare, restore'
      ),
      view: this._versions
    });
    this._review = new ReviewTab({
      client: ReviewClient.of(options.client),
      notebooks: options.notebooks,
      trans: this._trans,
      sanitizer: options.rendermime.sanitizer,
      onChanged: options.onCommentsChanged
    });
    this.addTab({
      id: 'review',
      label: this._trans.__('Review'),
      caption: this._trans.__(
        "Comment threads on this notebook's cells: reply, resolve, jump to the cell"
      ),
      view: this._review
    });
    this.addTab({
      id: 'models',
      label: this._trans.__('Models'),
      caption: this._trans.__(
        'Registered models: versions, metrics, lineage, aliases'
      ),
      view: this._models,
      teamWide: true
    });
    this.addTab({
      id: 'notebooks',
      label: this._trans.__('Notebooks'),
      caption: this._trans.__(
        "The team's tracked notebooks: open any read-only, even if it is not on your disk"
      ),
      view: new NotebooksTab({ ...options, onError: report }),
      teamWide: true
    });
    this._addActivityTab(options, report);
    this._deployments = new DeploymentsTab({
      client: DeployClient.of(options.client),
      cellops: options.client,
      rendermime: options.rendermime,
      trans: this._trans,
      onError: report,
      requestRefresh: () => void this.refresh(),
      onOpenModel: (model, version) => void this.showModel(model, version)
    });
    this.addTab({
      id: 'deployments',
      label: this._trans.__('Deployments'),
      caption: this._trans.__(
        'Deployed models: state, traffic, latency, errors; rollback, canary, snippets'
      ),
      view: this._deployments,
      teamWide: true
    });
    this.selectTab('runs');

    options.notebooks.currentChanged.connect(this._onCurrentChanged);
    options.activity.changed.connect(this._onActivity);
    this._follow(options.notebooks.currentWidget);
  }

  /** The id of the tab shown. */
  get currentTab(): string {
    return this._current;
  }

  /** Add a tab after the existing ones (later features add theirs). */
  addTab(tab: ISidebarTab): void {
    this._tabs.push(tab);
    this._tabBar.add(tab);
    tab.view.hide();
    this._body.addWidget(tab.view);
  }

  /** Show tab `id` and refresh it. */
  selectTab(id: string): void {
    if (!this._tabs.some(tab => tab.id === id)) {
      return;
    }
    this._current = id;
    this._tabBar.setCurrent(id);
    for (const tab of this._tabs) {
      tab.view.setHidden(tab.id !== id);
    }
    void this.refresh();
  }

  /** Show run `runId`'s timeline in the runs tab. */
  async showRun(runId: number): Promise<void> {
    this.selectTab('runs');
    await this._guard(() => this._runs.showRun(runId));
  }

  /** Open the run of execution `executionId` and show the execution's detail. */
  async showExecution(executionId: number): Promise<void> {
    this.selectTab('runs');
    await this._guard(() => this._runs.showExecution(executionId));
  }

  /**
   * The Versions tab of `notebook` (opened if it is not the one followed) with version
   * `versionId` marked: where a model's lineage points.
   */
  async showNotebookVersion(
    notebook: string,
    versionId: number
  ): Promise<void> {
    await this._guard(async () => {
      if (this._path() !== notebook) {
        const opened = this._docManager.openOrReveal(notebook);
        if (!(opened instanceof NotebookPanel)) {
          throw new Error(this._trans.__('Cannot open %1', notebook));
        }
        await opened.context.ready;
        this._follow(opened);
      }
      this._versions.focusVersion(notebook, versionId);
      this.selectTab('versions');
    });
  }

  /** The Activity tab (feed + inbox) and the unread badge on its button. */
  private _addActivityTab(
    options: CellopsSidebar.IOptions,
    report: (error: unknown) => void
  ): void {
    const watcher =
      options.inbox ??
      new InboxWatcher(ReviewClient.of(options.client), options.activity);
    if (!options.inbox) {
      void watcher.start().catch(report);
    }
    const tab = new ActivityTab({
      watcher,
      trans: this._trans,
      onError: report,
      onOpen: item => void this.showActivityItem(item)
    });
    this.addTab({
      id: 'activity',
      label: this._trans.__('Activity'),
      caption: this._trans.__(
        "The team's activity and your inbox: mentions, review requests, verdicts"
      ),
      view: tab,
      teamWide: true
    });
    const badge = document.createElement('span');
    badge.className = 'cellops-inbox-unread';
    this._tabBar.node
      .querySelector('button.cellops-tab[data-tab="activity"]')
      ?.append(badge);
    tab.tabBadge = badge;
  }

  /**
   * Show what an activity item concerns: a model in the Models tab; a notebook's
   * comment in its Review tab (runs in its Runs tab) when that notebook is open.
   */
  async showActivityItem(item: IActivityItem): Promise<void> {
    if (item.model !== null) {
      await this.showModel(item.model, item.version ?? undefined);
      return;
    }
    const path = item.notebook;
    if (path === null) {
      return;
    }
    const open = this._notebooks.find(p => p.context.localPath === path);
    if (!open) {
      this._notice.fail(
        'action',
        new Error(this._trans.__('Open %1 to see this there', path))
      );
      return;
    }
    // Open already: this only brings its tab to the front.
    const shown = this._docManager.openOrReveal(path);
    this._follow(shown instanceof NotebookPanel ? shown : open);
    const { cell_id: cell, execution_id: execution, run_id: run } = item.data;
    if (typeof execution === 'number') {
      await this.showExecution(execution);
    } else if (typeof run === 'number') {
      await this.showRun(run); // a run finished (a headless one: its parameters, CI job)
    } else if (item.type.startsWith('comment')) {
      this.showReview(typeof cell === 'string' ? cell : undefined);
    } else {
      this.selectTab('runs');
    }
  }

  /**
   * The Review tab; with `cell`, scrolled to that cell's threads (a group is made if it
   * has none) and with `newThread` its new-thread box focused. `cell` is a cell id of the
   * notebook followed, or a cell of notebook `path`.
   */
  showReview(
    cell?: string | { path: string; cellId: string },
    newThread = false
  ): void {
    const path = typeof cell === 'string' ? this._path() : cell?.path;
    const cellId = typeof cell === 'string' ? cell : cell?.cellId;
    if (path != null && cellId !== undefined) {
      this._review.focusCell(path, cellId, newThread);
    }
    this.selectTab('review');
  }

  /** Show model `name`'s versions in the Models tab; `version` marked and scrolled to. */
  async showModel(name: string, version?: number): Promise<void> {
    this.selectTab('models');
    await this._guard(() => this._models.showModel(name, version));
  }

  /** Show deployment `name` in the Deployments tab; `key`: its new key, shown once. */
  async showDeployment(name: string, key: string | null = null): Promise<void> {
    this._deployments.showDeployment(name, key);
    this.selectTab('deployments');
    await this.refresh();
  }

  /** Deploy… of a version in the Models tab: ask, deploy, show it with its key. */
  private async _deployVersion(v: IModelVersion): Promise<void> {
    if (await this._deployments.deploy(v)) {
      this.selectTab('deployments');
    }
  }

  /**
   * Refetch what the current tab shows. Coalesced: while one refresh runs, further
   * calls share one follow-up refresh.
   */
  refresh(): Promise<void> {
    return this._refreshes.run();
  }

  /** One refresh: none while hidden (marked stale, refreshed when shown). */
  private async _refreshIfVisible(): Promise<void> {
    if (!this.isVisible) {
      this._stale = true;
      return;
    }
    this._stale = false;
    try {
      await this._refreshNow();
    } catch (error) {
      this._notice.fail('request', error);
    }
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._notebooks.currentChanged.disconnect(this._onCurrentChanged);
    this._activity.changed.disconnect(this._onActivity);
    this._followed?.context.pathChanged.disconnect(this._onPathChanged);
    if (this._backendRecheck !== null) {
      window.clearTimeout(this._backendRecheck);
    }
    super.dispose();
  }

  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (this._stale) {
      void this.refresh();
    }
  }

  private async _refreshNow(): Promise<void> {
    const path = this._path();
    const tab = this._tabs.find(t => t.id === this._current);
    // Team-wide tabs (models) need no notebook; the others show one's history.
    const waiting = path === null && tab?.teamWide !== true;
    this._waiting.textContent = this._waitingText();
    this._noNotebook.setHidden(!waiting);
    this._body.setHidden(waiting);
    if (!(await this._checkStatus(path))) {
      this._body.hide();
      return;
    }
    if (waiting) {
      return;
    }
    try {
      await tab?.view.refresh(path ?? '');
      this._notice.set('request', null);
    } catch (error) {
      this._notice.fail('request', error);
    }
  }

  /** What to do with no notebook open, naming the tabs that need none. */
  private _waitingText(): string {
    const shared = this._tabs.filter(t => t.teamWide === true);
    const text = this._trans.__('Open a notebook to see its history.');
    return shared.length === 0
      ? text
      : `${text} ${this._trans.__(
          'These tabs work without one: %1.',
          shared.map(t => t.label).join(', ')
        )}`;
  }

  /** Ask the server how it is; answers whether there is a server to talk to. */
  private async _checkStatus(path: string | null): Promise<boolean> {
    try {
      const status = await this._client.status(path ?? undefined);
      // CSS hides "run a cell to start tracking" hints while nothing would be recorded.
      this.node.dataset.tracking = this._notice.applyStatus(status);
      this._serverMissingAt = null;
      if (status.backend_reachable === false) {
        this._recheckBackendSoon();
      }
      return true;
    } catch (error) {
      // Without `status` there is no cellops server at all (404 or no answer).
      if (
        isUnreachable(error) ||
        (error instanceof CellopsAPIError && error.status === 404)
      ) {
        this._notice.showServerMissing();
        this._serverMissingAt = Date.now();
        return false;
      }
      this._notice.fail('request', error);
      return true;
    }
  }

  private _recheckBackendSoon(): void {
    if (this._backendRecheck !== null) {
      return;
    }
    this._backendRecheck = window.setTimeout(() => {
      this._backendRecheck = null;
      if (!this.isDisposed) {
        void this.refresh();
      }
    }, BACKEND_RECHECK_MS);
  }

  private _path(): string | null {
    return this._followed?.context.localPath ?? null;
  }

  private readonly _onCurrentChanged = (): void => {
    this._follow(this._notebooks.currentWidget);
  };

  /** Show `panel`'s notebook from a clean state and follow its renames. */
  private _follow(panel: NotebookPanel | null): void {
    if (panel === this._followed) {
      return;
    }
    this._followed?.context.pathChanged.disconnect(this._onPathChanged);
    this._followed = panel;
    panel?.context.pathChanged.connect(this._onPathChanged);
    for (const tab of this._tabs) {
      if (tab.teamWide !== true) {
        tab.view.reset();
      }
    }
    this._notice.set('action', null);
    void this.refresh();
  }

  private readonly _onPathChanged = (): void => {
    void this.refresh();
  };

  private readonly _onActivity = (
    _: ActivityStream,
    events: IActivityEvent[]
  ): void => {
    if (
      this._serverMissingAt !== null &&
      Date.now() - this._serverMissingAt < SERVER_RECHECK_MS
    ) {
      return; // polling synthetic events every 2 s: do not hammer a missing server
    }
    if (events.some(e => this._concerns(e))) {
      void this.refresh();
    }
  };

  /** Whether `event` may change what the current tab shows. */
  private _concerns(event: IActivityEvent): boolean {
    if (event.type === 'reset') {
      return true;
    }
    if (this._current === 'activity') {
      // Every kind of change may add to the feed (a run started, a version registered).
      return event.type !== 'settings';
    }
    if (event.type === 'models') {
      // Models are team-wide: any model's change counts while their tab shows; a moved
      // alias switches the deployments following it.
      return this._current === 'models' || this._current === 'deployments';
    }
    if (event.type === 'deployments') {
      // Team-wide too: a state, traffic, event or drift verdict of any deployment may be
      // in the list, and the detail's model may be another deployment's.
      return this._current === 'deployments';
    }
    if (
      (event.type === 'reviews' || event.type === 'comments') &&
      event.models.length > 0 &&
      this._current === 'models'
    ) {
      return true; // a version's review state, thread or promotion checks changed
    }
    const path = this._path();
    return path !== null && event.notebooks.includes(path);
  }

  /** Run a user-requested action; failures go to the notice, not the console. */
  private async _guard(action: () => Promise<void>): Promise<void> {
    try {
      await action();
      this._notice.set('action', null);
    } catch (error) {
      this._notice.fail('action', error);
    }
  }

  private readonly _client: CellopsClient;
  private readonly _notebooks: INotebookTracker;
  private readonly _activity: ActivityStream;
  private readonly _trans: TranslationBundle;
  private readonly _notice: Notice;
  private readonly _tabBar: TabBar;
  private readonly _tabs: ISidebarTab[] = [];
  private readonly _noNotebook = new Widget();
  private readonly _waiting = emptyState('');
  private readonly _body = new Panel();
  private readonly _runs: RunsTab;
  private readonly _models: ModelsView;
  private readonly _versions: VersionsView;
  private readonly _review: ReviewTab;
  private readonly _deployments: DeploymentsTab;
  private readonly _docManager: IDocumentManager;
  private _current = 'runs';
  private _followed: NotebookPanel | null = null;
  private readonly _refreshes = new CoalescedRun(() =>
    this._refreshIfVisible()
  );
  private _stale = true;
  private _serverMissingAt: number | null = null;
  private _backendRecheck: number | null = null;
}

// A namespace (not a module-level interface) because index.ts expects `CellopsSidebar.IOptions`.
// eslint-disable-next-line @typescript-eslint/no-namespace
export namespace CellopsSidebar {
  export interface IOptions {
    client: CellopsClient;
    notebooks: INotebookTracker;
    rendermime: IRenderMimeRegistry;
    translator: ITranslator;
    docManager: IDocumentManager;
    activity: ActivityStream;
    /** A comment on notebook `path` was written in the Review tab (badges refetch). */
    onCommentsChanged?: (path: string) => void;
    /** The caller's inbox (shared with the toasts); made here when not given. */
    inbox?: InboxWatcher;
  }
}
