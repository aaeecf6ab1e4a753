import { InputDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CellopsClient, IModel, IModelVersion } from '../api';
import { button, emptyState, h, timeSpan } from './dom';
import { describeFingerprint, describeSignature, formatMetric } from './format';
import { ISidebarView } from './tabs';

export interface IModelsViewOptions {
  client: CellopsClient;
  trans: TranslationBundle;
  onError: (error: unknown) => void;
  /** Show the execution that produced a version (in the Runs tab). */
  onOpenExecution: (executionId: number) => void;
  /** Show the notebook version a model came from (in the Versions tab). */
  onOpenNotebookVersion: (notebook: string, versionId: number) => void;
}

/**
 * The "Models" tab: registered models (team-wide, not only this notebook's); click one
 * for its versions with metrics and lineage, move aliases, download lineage notebooks.
 */
export class ModelsView extends Widget implements ISidebarView {
  constructor(private readonly _options: IModelsViewOptions) {
    super();
    this._trans = _options.trans;
    this.addClass('cellops-models-view');
    this.node.append(this._header, this._list);
  }

  async refresh(): Promise<void> {
    // An answer about what is no longer asked for (the user or a command moved on) is dropped.
    const model = this._model;
    if (model === null) {
      const page = await this._options.client.models();
      if (this._model === null) {
        this._renderModels(page.items);
      }
    } else {
      const page = await this._options.client.modelVersions(model);
      if (this._model === model) {
        this._renderVersions(model, page.items);
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
    this._header.replaceChildren();
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
    this._list.replaceChildren(...models.map(m => this._modelRow(m)));
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
    this._header.replaceChildren(back, h('span', 'cellops-model-title', name));
    this._list.className = 'cellops-model-versions';
    this._list.replaceChildren(...versions.map(v => this._versionRow(v)));
    this._revealFocused();
  }

  private _revealFocused(): void {
    const row = this._list.querySelector('.cellops-model-version-focused');
    // Hidden, nothing scrolls: keep the request for when the view shows.
    if (this._reveal && row && this.isVisible) {
      row.scrollIntoView({ block: 'nearest' });
      this._reveal = false;
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
    const title = h('div', 'cellops-model-version-title');
    title.append(
      h('strong', '', trans.__('Version %1', String(v.version))),
      ...v.aliases.map(alias => this._aliasChip(v.model, alias)),
      timeSpan('cellops-model-version-created', v.created_at)
    );
    const metrics = h('dl', 'cellops-model-metrics');
    for (const [key, value] of Object.entries(v.metrics)) {
      metrics.append(h('dt', '', key), h('dd', '', formatMetric(value)));
    }
    row.append(
      title,
      metrics,
      this._inputs(v),
      this._lineage(v),
      this._actions(v)
    );
    return row;
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
    const full = button(
      'cellops-download-lineage',
      trans.__('Lineage notebook'),
      trans.__('The cells that ran up to the registration'),
      () => void this._download(v, false)
    );
    const minimal = button(
      'cellops-download-minimal',
      trans.__('Minimal'),
      trans.__('Only the cells this model depends on'),
      () => void this._download(v, true)
    );
    bar.append(alias, full, minimal);
    return bar;
  }

  private async _askAlias(v: IModelVersion): Promise<void> {
    const answer = await InputDialog.getText({
      title: this._trans.__(
        'Alias for %1 version %2',
        v.model,
        String(v.version)
      ),
      placeholder: 'champion'
    });
    const alias = answer.value?.trim();
    if (answer.button.accept && alias) {
      await this._act(() =>
        this._options.client.setAlias(v.model, alias, v.version)
      );
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
  private readonly _header = h('div', 'cellops-models-header');
  private readonly _list = h('div', 'cellops-models');
  private _model: string | null = null;
  private _focused: number | null = null;
  private _reveal = false;
}
