import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker } from '@jupyterlab/notebook';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CellopsClient, IModel, IModelVersion } from '../api';
import { ModelReview, callerOf, showRefusedMove } from '../review/modelReview';
import { IFailedRule, IMe, ReviewClient, failedRules } from '../reviewClient';
import { button, emptyState, h, timeSpan } from './dom';
import { describeFingerprint, describeSignature, formatMetric } from './format';
import { openAsNewNotebook } from './lineageOpen';
import { askAliasName, confirmAliasMove, confirmDelete } from './modelDialogs';
import { ISidebarView } from './tabs';

export interface IModelsViewOptions {
  client: CellopsClient;
  trans: TranslationBundle;
  onError: (error: unknown) => void;
  /** Show the execution that produced a version (in the Runs tab). */
  onOpenExecution: (executionId: number) => void;
  /** Show the notebook version a model came from (in the Versions tab). */
  onOpenNotebookVersion: (notebook: string, versionId: number) => void;
  /** Opens lineage notebooks as documents (without it, they can only be downloaded). */
  docManager?: IDocumentManager;
  /** New lineage notebooks go in the current notebook's folder (else the root). */
  notebooks?: INotebookTracker;
  /** Deploy a version (Deploy… on each version; absent: no button). */
  onDeploy?: (v: IModelVersion) => void;
}

/**
 * The "Models" tab: registered models (team-wide, not only this notebook's); click one
 * for its versions with metrics, lineage and who registered them; move aliases (after
 * confirming), open or download lineage notebooks, archive and delete versions and models.
 */
export class ModelsView extends Widget implements ISidebarView {
  constructor(private readonly _options: IModelsViewOptions) {
    super();
    this._trans = _options.trans;
    this._archivedToggle = this._makeArchivedToggle();
    this._reviewClient = ReviewClient.of(_options.client);
    this.addClass('cellops-models-view');
    this.node.append(this._header, this._list);
  }

  async refresh(): Promise<void> {
    // An answer about what is no longer asked for (the user or a command moved on) is dropped.
    const model = this._model;
    const archived = this._showArchived;
    const current = (): boolean =>
      this._model === model && this._showArchived === archived;
    if (model === null) {
      const page = await this._options.client.models(undefined, 100, archived);
      if (current()) {
        this._renderModels(page.items);
      }
    } else {
      const client = this._options.client;
      const [page, me, guarded] = await Promise.all([
        client.modelVersions(model, undefined, 100, archived),
        callerOf(this._reviewClient),
        this._hasProtectedAliases(model)
      ]);
      if (current()) {
        this._renderVersions(model, page.items);
        await this._updateReviews(page.items, me, guarded);
        // The review blocks above it have grown meanwhile: scroll to it again, once.
        this._revealFocused(true);
      }
    }
  }

  /** Whether the model's policy protects any alias (then versions show what is missing). */
  private async _hasProtectedAliases(model: string): Promise<boolean> {
    try {
      const policy = await this._reviewClient.policy(model);
      return Object.keys(policy.protected_aliases).length > 0;
    } catch {
      return false; // no policy API (older backend): nothing is protected to show
    }
  }

  /** The review block of each version shown (kept across refreshes: threads survive). */
  private async _updateReviews(
    versions: IModelVersion[],
    me: IMe | null,
    guarded: boolean
  ): Promise<void> {
    await Promise.all(
      versions.map(v => this._reviewOf(v).update(v, me, guarded))
    );
  }

  private _reviewOf(v: IModelVersion): ModelReview {
    const key = `${v.model}\u0000${String(v.version)}`;
    let review = this._reviewBlocks.get(key);
    if (!review) {
      review = new ModelReview(
        {
          client: this._reviewClient,
          trans: this._trans,
          onError: this._options.onError,
          onChanged: () => void this._reload()
        },
        v
      );
      this._reviewBlocks.set(key, review);
    }
    return review;
  }

  /** Forget the review blocks of versions no longer shown. */
  private _dropReviews(shown: IModelVersion[]): void {
    const keep = new Set(
      shown.map(v => `${v.model}\u0000${String(v.version)}`)
    );
    for (const [key, review] of this._reviewBlocks) {
      if (!keep.has(key)) {
        review.dispose();
        this._reviewBlocks.delete(key);
      }
    }
  }

  reset(): void {
    // Models belong to the team, not to a notebook: keep what is shown.
  }

  /**
   * Show the versions of model `name`; with `version`, mark that version's row and
   * scroll it into view (e.g. from a link in a notebook's model card).
   */
  async showModel(name: string, version?: number): Promise<void> {
    this._open(name, version ?? null);
    await this.refresh();
  }

  /** Show model `name` (null: the list of models) on the next refresh. */
  private _open(name: string | null, focused: number | null = null): void {
    this._model = name;
    this._focused = focused;
    // Scroll once, not on every live refresh that follows.
    this._reveal = focused !== null;
  }

  private _renderModels(models: IModel[]): void {
    this._dropReviews([]);
    this._header.replaceChildren(
      h('span', 'cellops-model-title', this._trans.__('Models')),
      this._archivedToggle
    );
    this._list.className = 'cellops-models';
    if (models.length === 0) {
      this._list.replaceChildren(
        emptyState(
          this._trans.__(
            'No models yet. Register one from a cell: cellops.register(model, "name")'
          )
        )
      );
      return;
    }
    this._list.replaceChildren(...models.map(m => this._modelEntry(m)));
  }

  /** "Show archived": archived models and versions are listed too, marked. */
  private _makeArchivedToggle(): HTMLElement {
    const label = h('label', 'cellops-show-archived');
    const box = h('input', '');
    box.type = 'checkbox';
    box.addEventListener('change', () => {
      this._showArchived = box.checked;
      void this._reload();
    });
    label.append(box, this._trans.__('Show archived'));
    label.title = this._trans.__(
      'Archived models and versions are hidden; they stay loadable'
    );
    return label;
  }

  /** A model's row (click: its versions) and its Archive / Delete buttons. */
  private _modelEntry(model: IModel): HTMLElement {
    const trans = this._trans;
    const entry = h('div', 'cellops-model-entry');
    entry.dataset.model = model.name;
    entry.classList.toggle('cellops-archived', model.archived);
    const aliases = Object.keys(model.aliases);
    const bar = h('div', 'cellops-model-actions');
    bar.append(
      this._archiveButton(
        model.archived,
        aliases,
        () =>
          this._options.client.setModelArchived(model.name, !model.archived),
        trans.__('the model')
      ),
      this._deleteButton(aliases, trans.__('the model'), async () => {
        const ok = await confirmDelete(
          trans.__('the model %1', model.name),
          trans.__(
            'All its versions (up to v%1) and their artifacts go, for everyone; a new registration of %2 starts again at version 1. This cannot be undone.',
            String(model.latest_version),
            model.name
          ),
          trans
        );
        if (ok) {
          await this._act(() => this._options.client.deleteModel(model.name));
        }
      })
    );
    entry.append(this._modelRow(model), bar);
    return entry;
  }

  /** Archive (or Unarchive); disabled, saying why, while an alias is in the way. */
  private _archiveButton(
    archived: boolean,
    aliases: string[],
    change: () => Promise<unknown>,
    what: string
  ): HTMLButtonElement {
    const trans = this._trans;
    const node = button(
      archived ? 'cellops-unarchive' : 'cellops-archive',
      archived ? trans.__('Unarchive') : trans.__('Archive'),
      archived
        ? trans.__('List %1 again', what)
        : trans.__('Hide %1 from the list; it stays loadable', what),
      () => void this._act(change)
    );
    if (!archived && aliases.length > 0) {
      this._blockedBy(node, aliases);
    }
    return node;
  }

  private _deleteButton(
    aliases: string[],
    what: string,
    onClick: () => Promise<void>
  ): HTMLButtonElement {
    const node = button(
      'cellops-delete',
      this._trans.__('Delete…'),
      this._trans.__('Delete %1 and its artifacts', what),
      () => void onClick()
    );
    if (aliases.length > 0) {
      this._blockedBy(node, aliases);
    }
    return node;
  }

  /** Disable an action an alias prevents (the server refuses it too), naming the alias. */
  private _blockedBy(node: HTMLButtonElement, aliases: string[]): void {
    node.disabled = true;
    node.title = this._trans.__(
      'In use by the alias %1: move or remove it first',
      aliases.join(', ')
    );
  }

  private _modelRow(model: IModel): HTMLElement {
    const row = h('button', 'cellops-model');
    row.dataset.model = model.name;
    row.title = this._trans.__('Show the versions of %1', model.name);
    row.append(
      h('span', 'cellops-model-name', model.name),
      h(
        'span',
        'cellops-model-latest',
        this._trans.__('v%1', String(model.latest_version))
      ),
      ...Object.entries(model.aliases).map(([alias, version]) =>
        h('span', 'cellops-alias', `${alias} → v${String(version)}`)
      )
    );
    if (model.archived) {
      row.append(this._archivedBadge());
    }
    row.addEventListener('click', () => {
      this._open(model.name);
      void this._reload();
    });
    return row;
  }

  private _renderVersions(name: string, versions: IModelVersion[]): void {
    const back = h('button', 'cellops-back', this._trans.__('‹ Models'));
    back.addEventListener('click', () => {
      this._open(null);
      void this._reload();
    });
    this._header.replaceChildren(
      back,
      h('span', 'cellops-model-title', name),
      this._archivedToggle
    );
    this._shown = versions;
    this._dropReviews(versions);
    this._list.className = 'cellops-model-versions';
    this._list.replaceChildren(...versions.map(v => this._versionRow(v)));
    this._revealFocused(false);
  }

  /**
   * Scroll the focused version into view; `done`: the rows are complete (their review
   * blocks loaded), so later refreshes leave the scroll position to the user.
   */
  private _revealFocused(done: boolean): void {
    const row = this._list.querySelector('.cellops-model-version-focused');
    // Hidden, nothing scrolls: keep the request for when the view shows.
    if (this._reveal && row && this.isVisible) {
      row.scrollIntoView({ block: 'nearest' });
      this._reveal = !done;
    }
  }

  private _versionRow(v: IModelVersion): HTMLElement {
    const trans = this._trans;
    const row = h('div', 'cellops-model-version');
    row.dataset.version = String(v.version);
    row.classList.toggle(
      'cellops-model-version-focused',
      v.version === this._focused
    );
    row.classList.toggle('cellops-archived', v.archived);
    const title = h('div', 'cellops-model-version-title');
    title.append(
      h('strong', '', trans.__('Version %1', String(v.version))),
      ...v.aliases.map(alias => this._aliasChip(v.model, alias))
    );
    if (v.archived) {
      title.append(this._archivedBadge());
    }
    title.append(this._registered(v));
    const metrics = h('dl', 'cellops-model-metrics');
    for (const [key, value] of Object.entries(v.metrics)) {
      metrics.append(h('dt', '', key), h('dd', '', formatMetric(value)));
    }
    row.append(
      title,
      metrics,
      this._inputs(v),
      this._lineage(v),
      this._actions(v),
      this._reviewOf(v).node
    );
    return row;
  }

  /** "registered by alice · 2 days ago" (the exact time as its tooltip). */
  private _registered(v: IModelVersion): HTMLElement {
    const line = h('span', 'cellops-model-version-registered');
    line.append(
      v.created_by
        ? h(
            'span',
            'cellops-model-version-author',
            this._trans.__('by %1', v.created_by)
          )
        : '',
      timeSpan('cellops-model-version-created', v.created_at)
    );
    return line;
  }

  private _archivedBadge(): HTMLElement {
    return h('span', 'cellops-archived-badge', this._trans.__('archived'));
  }

  private _aliasChip(model: string, alias: string): HTMLElement {
    const chip = h('span', 'cellops-alias', alias);
    chip.append(
      button(
        'cellops-alias-remove',
        '×',
        this._trans.__('Remove the alias %1', alias),
        () =>
          void this._act(() => this._options.client.deleteAlias(model, alias))
      )
    );
    return chip;
  }

  /** What the model takes (its signature) and the data it was trained on. */
  private _inputs(v: IModelVersion): HTMLElement {
    const box = h('div', 'cellops-model-inputs');
    box.append(
      h(
        'div',
        'cellops-model-signature',
        this._trans.__('Input: %1', describeSignature(v.signature, this._trans))
      ),
      ...v.lineage.data_fingerprints.map(print =>
        h(
          'div',
          'cellops-model-data',
          this._trans.__('Trained on %1', describeFingerprint(print))
        )
      )
    );
    return box;
  }

  private _lineage(v: IModelVersion): HTMLElement {
    const line = h('div', 'cellops-model-lineage');
    const id = v.lineage.execution_id;
    if (id === null) {
      line.textContent = this._trans.__(
        'Lineage: the producing execution is not stored yet'
      );
      return line;
    }
    line.append(
      button(
        'cellops-lineage-execution',
        this._trans.__('from execution %1', String(id)),
        this._trans.__('Show the execution that registered this version'),
        () => {
          this._options.onOpenExecution(id);
        }
      )
    );
    const { notebook, version_id, version_number } = v.lineage;
    if (notebook !== null) {
      line.append(h('span', 'cellops-lineage-notebook', notebook));
    }
    if (notebook !== null && version_id !== null && version_number !== null) {
      line.append(
        button(
          'cellops-lineage-version',
          this._trans.__('notebook version %1', String(version_number)),
          this._trans.__(
            'Show the notebook as it was when this model was registered'
          ),
          () => {
            this._options.onOpenNotebookVersion(notebook, version_id);
          }
        )
      );
    }
    return line;
  }

  private _actions(v: IModelVersion): HTMLElement {
    const trans = this._trans;
    const bar = h('div', 'cellops-model-actions');
    const alias = button(
      'cellops-set-alias',
      trans.__('Set alias…'),
      trans.__('Point an alias at this version'),
      () => void this._askAlias(v)
    );
    if (v.archived) {
      alias.disabled = true;
      alias.title = trans.__('Unarchive this version to point an alias at it');
    }
    bar.append(alias);
    const onDeploy = this._options.onDeploy;
    if (onDeploy) {
      const deploy = button(
        'cellops-deploy',
        trans.__('Deploy…'),
        trans.__('Serve this version over HTTP (a deployment)'),
        () => {
          onDeploy(v);
        }
      );
      if (v.archived) {
        deploy.disabled = true;
        deploy.title = trans.__('Unarchive this version to deploy it');
      }
      bar.append(deploy);
    }
    // Only a version registered from a cell, once its execution is stored, has one.
    if (this._options.docManager && v.lineage.execution_id !== null) {
      bar.append(
        button(
          'cellops-open-lineage',
          trans.__('Open lineage'),
          trans.__(
            'Open the cells that ran up to the registration as a new notebook'
          ),
          () => void this._openLineage(v)
        )
      );
    }
    const full = button(
      'cellops-download-lineage',
      trans.__('Download'),
      trans.__(
        'Download the lineage notebook: the cells that ran up to the registration'
      ),
      () => void this._download(v, false)
    );
    const minimal = button(
      'cellops-download-minimal',
      trans.__('Minimal'),
      trans.__('Download only the cells this model depends on'),
      () => void this._download(v, true)
    );
    const what = trans.__('version %1', String(v.version));
    bar.append(
      full,
      minimal,
      this._archiveButton(
        v.archived,
        v.aliases,
        () =>
          this._options.client.setModelVersionArchived(
            v.model,
            v.version,
            !v.archived
          ),
        what
      ),
      this._deleteButton(v.aliases, what, () => this._deleteVersion(v))
    );
    return bar;
  }

  private async _deleteVersion(v: IModelVersion): Promise<void> {
    const trans = this._trans;
    const ok = await confirmDelete(
      trans.__('version %1 of %2', String(v.version), v.model),
      trans.__(
        'It goes for everyone, with its artifact unless another version has the same bytes; its number is not used again. This cannot be undone.'
      ),
      trans
    );
    if (ok) {
      await this._act(() =>
        this._options.client.deleteModelVersion(v.model, v.version)
      );
    }
  }

  private async _askAlias(v: IModelVersion): Promise<void> {
    const alias = await askAliasName(v, this._trans);
    if (alias === null) {
      return;
    }
    await this._act(async () => {
      const current = await this._aliasTarget(v.model, alias);
      if (
        current !== null &&
        current.version !== v.version &&
        !(await confirmAliasMove(alias, current, v.version, this._trans))
      ) {
        return;
      }
      await this._moveAlias(v, alias);
    });
  }

  /**
   * Point `alias` at `v`. A protected alias the version may not take is refused (409;
   * asked first, so that the usual refusal is no failed request): the dialog lists each
   * failed rule, and an admin may override with a written reason.
   */
  private async _moveAlias(v: IModelVersion, alias: string): Promise<void> {
    const checks = await this._reviewClient
      .promotionChecks(v.model, v.version)
      .catch(() => []); // an older backend has no policies: the move decides
    const check = checks.find(c => c.alias === alias);
    if (check && !check.allowed) {
      await this._refused(v, alias, check.failed);
      return;
    }
    try {
      await this._options.client.setAlias(v.model, alias, v.version);
    } catch (error) {
      // A teammate changed the policy or the reviews since: the server has the last word.
      const failed = failedRules(error);
      if (failed === null) {
        throw error;
      }
      await this._refused(v, alias, failed);
    }
  }

  /** Show why the move is refused; an admin's written reason overrides the rules. */
  private async _refused(
    v: IModelVersion,
    alias: string,
    failed: IFailedRule[]
  ): Promise<void> {
    const me = await callerOf(this._reviewClient);
    const reason = await showRefusedMove(
      v.model,
      alias,
      v.version,
      failed,
      me?.role === 'admin',
      this._trans
    );
    if (reason !== null) {
      await this._reviewClient.moveAlias(v.model, alias, v.version, reason);
    }
  }

  /** The version `alias` points at now (asked afresh: a teammate may have moved it). */
  private async _aliasTarget(
    model: string,
    alias: string
  ): Promise<IModelVersion | null> {
    const client = this._options.client;
    // A Map: a plain lookup would find Object's own keys (an alias may be 'constructor').
    const aliases = new Map(
      Object.entries((await client.model(model)).aliases)
    );
    const version = aliases.get(alias);
    if (version === undefined) {
      return null;
    }
    const shown = this._shown.find(
      v => v.model === model && v.version === version
    );
    return shown ?? client.modelVersion(model, version);
  }

  /** The lineage notebook as a new notebook document, in the current folder. */
  private async _openLineage(v: IModelVersion): Promise<void> {
    const docManager = this._options.docManager;
    if (!docManager) {
      return;
    }
    try {
      const notebook = await this._options.client.lineageNotebook(
        v.model,
        v.version,
        false
      );
      const path = this._options.notebooks?.currentWidget?.context.path;
      await openAsNewNotebook(
        docManager,
        path ? PathExt.dirname(path) : '',
        `${v.model}-v${String(v.version)}-lineage`,
        notebook
      );
    } catch (error) {
      this._options.onError(error);
    }
  }

  private async _download(v: IModelVersion, minimal: boolean): Promise<void> {
    try {
      const notebook = await this._options.client.lineageNotebook(
        v.model,
        v.version,
        minimal
      );
      const blob = new Blob([JSON.stringify(notebook, null, 1)], {
        type: 'application/x-ipynb+json'
      });
      const url = URL.createObjectURL(blob);
      const anchor = document.createElement('a');
      anchor.href = url;
      anchor.download = `${v.model}-v${String(v.version)}${minimal ? '-minimal' : ''}.ipynb`;
      anchor.click();
      URL.revokeObjectURL(url);
    } catch (error) {
      this._options.onError(error);
    }
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
  private readonly _reviewClient: ReviewClient;
  private readonly _reviewBlocks = new Map<string, ModelReview>();
  private readonly _header = h('div', 'cellops-models-header');
  private readonly _list = h('div', 'cellops-models');
  private readonly _archivedToggle: HTMLElement;
  private _showArchived = false;
  /** The versions on screen (for the alias move's confirmation). */
  private _shown: IModelVersion[] = [];
  private _model: string | null = null;
  private _focused: number | null = null;
  private _reveal = false;
}
