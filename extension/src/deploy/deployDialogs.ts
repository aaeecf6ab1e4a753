/**
 * The dialogs of deployments: Deploy (name, pinned version or followed alias, public),
 * Rollback (an earlier version), Canary (a second version and its percent), and the
 * inference key shown once.
 */
import { Clipboard, Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import type { IModelVersion } from '../api';
import { h } from '../sidebar/dom';
import type { IDeployment, IDeploymentCreate } from './deployClient';

/**
 * The server's deployment name rule (schemas.py DeploymentCreate.name; the server checks
 * every name): 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.
 */
const NAME_RULE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** The same rule as an input's `pattern` (compiled with the `v` flag: '-' escaped). */
const NAME_PATTERN = '[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}';

export function isValidDeploymentName(name: string): boolean {
  return NAME_RULE.test(name);
}

/** A labelled row of a dialog form. */
function field(label: string, control: HTMLElement): HTMLElement {
  const row = h('label', 'cellops-deploy-field');
  row.append(h('span', 'cellops-deploy-field-label', label), control);
  return row;
}

function select(options: [string, string][]): HTMLSelectElement {
  const node = h('select', 'cellops-deploy-select');
  for (const [value, text] of options) {
    const option = h('option', '', text);
    option.value = value;
    node.append(option);
  }
  return node;
}

/** The Deploy dialog's form; `getValue` answers the create body, null while invalid. */
class DeployBody
  extends Widget
  implements Dialog.IBodyWidget<IDeploymentCreate | null>
{
  constructor(
    private readonly _v: IModelVersion,
    trans: TranslationBundle
  ) {
    super();
    this.addClass('cellops-deploy-dialog');
    this._name.type = 'text';
    this._name.className = 'cellops-deploy-name';
    this._name.value = isValidDeploymentName(_v.model) ? _v.model : '';
    // Native validation: `:invalid` changes with the value, before any listener runs, so
    // the dialog (which refuses to accept while an input is `:invalid`) sees it at once.
    this._name.required = true;
    this._name.pattern = NAME_PATTERN;
    this._name.setAttribute('aria-label', trans.__('Deployment name'));
    this._name.addEventListener('input', () => {
      this._validate();
    });
    const rule = h(
      'div',
      'cellops-deploy-rule',
      trans.__(
        "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit; part of the endpoint's URL"
      )
    );
    const options: [string, string][] = [
      ['', trans.__('Pin version %1', String(_v.version))],
      ..._v.aliases.map((alias): [string, string] => [
        alias,
        trans.__('Follow the alias %1 (now v%2)', alias, String(_v.version))
      ])
    ];
    this._target = select(options);
    this._target.classList.add('cellops-deploy-target');
    this._public.type = 'checkbox';
    this._public.className = 'cellops-deploy-public-box';
    const warning = h(
      'div',
      'cellops-deploy-public-warning',
      trans.__(
        'Public: anyone who can reach the serving port can call it, without a key. Leave it off to get a key (shown once).'
      )
    );
    this._public.addEventListener('change', () => {
      warning.classList.toggle('cellops-mod-warn', this._public.checked);
    });
    const publicRow = h('label', 'cellops-deploy-public-row');
    publicRow.append(this._public, trans.__('Public (no key)'));
    this.node.append(
      field(trans.__('Name'), this._name),
      rule,
      field(trans.__('Serve'), this._target),
      publicRow,
      warning
    );
    if (_v.aliases.length === 0) {
      this._target.disabled = true;
      this._target.title = trans.__(
        'No alias points at this version: it is pinned'
      );
    }
  }

  getValue(): IDeploymentCreate | null {
    const name = this._name.value.trim();
    if (!isValidDeploymentName(name)) {
      return null;
    }
    const alias = this._target.value;
    const body: IDeploymentCreate = {
      name,
      model: this._v.model,
      public: this._public.checked
    };
    if (alias === '') {
      body.version = this._v.version;
    } else {
      body.alias = alias;
    }
    return body;
  }

  /** Mark the name and disable Deploy while the name breaks the rule. */
  _validate(): void {
    const invalid = !isValidDeploymentName(this._name.value.trim());
    this._name.setAttribute('aria-invalid', String(invalid));
    const accept = this.node
      .closest('.jp-Dialog')
      ?.querySelector<HTMLButtonElement>('button.jp-mod-accept');
    if (accept) {
      accept.disabled = invalid;
    }
  }

  private readonly _name = document.createElement('input');
  private readonly _target: HTMLSelectElement;
  private readonly _public = document.createElement('input');
}

/** Ask how to deploy version `v`; null if cancelled. */
export async function askDeploy(
  v: IModelVersion,
  trans: TranslationBundle
): Promise<IDeploymentCreate | null> {
  const body = new DeployBody(v, trans);
  const dialog = new Dialog({
    title: trans.__('Deploy %1 version %2', v.model, String(v.version)),
    body,
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: trans.__('Deploy') })
    ],
    focusNodeSelector: 'input.cellops-deploy-name'
  });
  const shown = dialog.launch();
  body._validate();
  const result = await shown;
  return result.button.accept ? result.value : null;
}

/** A single select in a dialog; `getValue` answers the chosen number. */
class VersionBody extends Widget implements Dialog.IBodyWidget<number> {
  constructor(text: string, label: string, versions: number[]) {
    super();
    this.addClass('cellops-deploy-dialog');
    this._select = select(versions.map(v => [String(v), `v${String(v)}`]));
    this._select.classList.add('cellops-deploy-version');
    this.node.append(
      h('p', 'cellops-deploy-dialog-text', text),
      field(label, this._select)
    );
  }

  getValue(): number {
    return Number(this._select.value);
  }

  protected readonly _select: HTMLSelectElement;
}

/** Ask which earlier version to roll back to; null if cancelled. */
export async function askRollback(
  d: IDeployment,
  earlier: number[],
  trans: TranslationBundle
): Promise<number | null> {
  const text = d.alias
    ? trans.__(
        '%1 serves v%2 and follows the alias %3. Rolling back pins the chosen version: it stops following %3.',
        d.name,
        String(d.version),
        d.alias
      )
    : trans.__(
        '%1 serves v%2. The chosen version is loaded and checked before it takes the traffic.',
        d.name,
        String(d.version)
      );
  const result = await showDialog({
    title: trans.__('Roll back %1', d.name),
    body: new VersionBody(text, trans.__('Version'), earlier),
    buttons: [
      Dialog.cancelButton(),
      Dialog.warnButton({ label: trans.__('Roll back') })
    ]
  });
  return result.button.accept && result.value !== null ? result.value : null;
}

/** The Canary dialog: a second version and the percent of requests it takes. */
class CanaryBody extends VersionBody implements Dialog.IBodyWidget<number> {
  constructor(d: IDeployment, versions: number[], trans: TranslationBundle) {
    super(
      trans.__(
        'Send a share of the requests to another version; v%1 keeps the rest. Metrics are kept per version.',
        String(d.version)
      ),
      trans.__('Canary version'),
      versions
    );
    this.percent.type = 'number';
    this.percent.min = '1';
    this.percent.max = '99';
    this.percent.value = '10';
    this.percent.className = 'cellops-deploy-percent';
    this.node.append(field(trans.__('Percent of requests'), this.percent));
  }

  get version(): number {
    return this.getValue();
  }

  readonly percent = document.createElement('input');
}

/** Ask for a canary; null if cancelled or the percent is not 1-99. */
export async function askCanary(
  d: IDeployment,
  others: number[],
  trans: TranslationBundle
): Promise<{ version: number; percent: number } | null> {
  const body = new CanaryBody(d, others, trans);
  const result = await showDialog({
    title: trans.__('Canary for %1', d.name),
    body,
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: trans.__('Split traffic') })
    ]
  });
  const percent = Math.round(Number(body.percent.value));
  if (!result.button.accept || !(percent >= 1 && percent <= 99)) {
    return null;
  }
  return { version: body.version, percent };
}

/** Ask a yes/no question with a warning button labelled `action`. */
export async function confirmAction(
  title: string,
  text: string,
  action: string,
  trans: TranslationBundle
): Promise<boolean> {
  const result = await showDialog({
    title,
    body: new Widget({ node: h('p', 'cellops-deploy-dialog-text', text) }),
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.warnButton({ label: action })
    ]
  });
  return result.button.accept;
}

/** A read-only key with a Copy button (`.cellops-deploy-key`). */
export function keyBox(key: string, trans: TranslationBundle): HTMLElement {
  const box = h('div', 'cellops-deploy-key');
  const input = h('input', 'cellops-deploy-key-value');
  input.type = 'text';
  input.readOnly = true;
  input.value = key;
  input.setAttribute('aria-label', trans.__('Inference key'));
  input.addEventListener('focus', () => {
    input.select();
  });
  const copy = h('button', 'cellops-deploy-copy', trans.__('Copy'));
  copy.title = trans.__('Copy the key to the clipboard');
  copy.addEventListener('click', () => {
    Clipboard.copyToSystem(key);
    copy.textContent = trans.__('Copied');
  });
  box.append(input, copy);
  return box;
}
