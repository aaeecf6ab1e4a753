import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IModelVersion } from '../api';
import { h } from './dom';
import { relativeTime } from './format';

/**
 * The server's alias rule (server/cellops_server/registry/names.py: ALIAS_RULE anchored, and
 * ALIAS_RULE_TEXT). The server publishes both in the OpenAPI document (AliasSet's
 * x-alias-pattern / x-alias-rule) and still checks every alias; tests/test_model_lifecycle.py
 * fails if these copies drift from it.
 */
const ALIAS_RULE = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const ALIAS_RULE_TEXT =
  "1-64 letters, digits, '_' or '-', starting with a letter";

/** Whether the server would accept `alias` as an alias name. */
export function isValidAlias(alias: string): boolean {
  return ALIAS_RULE.test(alias);
}

/** The alias-name field: says the rule, and what is wrong as the user types. */
class AliasBody extends Widget {
  constructor(trans: TranslationBundle) {
    super();
    this.addClass('cellops-alias-dialog');
    this.input.type = 'text';
    this.input.placeholder = 'champion';
    this.input.setAttribute('aria-label', trans.__('Alias name'));
    const rule = h(
      'div',
      'cellops-alias-rule',
      trans.__('Alias: %1', ALIAS_RULE_TEXT)
    );
    rule.id = `cellops-alias-rule-${String(AliasBody._count++)}`;
    this.input.setAttribute('aria-describedby', rule.id);
    this._rule = rule;
    this._trans = trans;
    this.node.append(this.input, rule);
    // On the document in the capture phase, registered before the dialog's own listener:
    // the dialog checks `:invalid` on every input and must see this keystroke's verdict.
    this._onInput = (event: Event) => {
      if (event.target === this.input) {
        this.validate();
      }
    };
    document.addEventListener('input', this._onInput, true);
    // Enter on an invalid name must not submit: stop it before the dialog's own handler.
    this._onKey = (event: KeyboardEvent) => {
      if (event.key === 'Enter' && event.target === this.input && !this.valid) {
        event.stopPropagation();
        event.preventDefault();
      }
    };
    document.addEventListener('keydown', this._onKey, true);
  }

  get value(): string {
    return this.input.value.trim();
  }

  get valid(): boolean {
    return isValidAlias(this.value);
  }

  /** Mark the field and the dialog's OK button by whether the name is valid. */
  validate(): void {
    const value = this.value;
    const invalid = !this.valid;
    // Nothing typed yet is not an error to show, only a reason to keep OK disabled.
    const shown = invalid && value !== '';
    // `:invalid` keeps the dialog's OK disabled (it refuses to accept while one matches).
    this.input.setCustomValidity(invalid ? ALIAS_RULE_TEXT : '');
    this.input.classList.toggle('jp-mod-error', shown);
    this.input.setAttribute('aria-invalid', String(shown));
    this._rule.classList.toggle('cellops-mod-error', shown);
    this._rule.textContent = shown
      ? this._trans.__(
          '"%1" is not a valid alias: use %2',
          value,
          ALIAS_RULE_TEXT
        )
      : this._trans.__('Alias: %1', ALIAS_RULE_TEXT);
    const accept = this.node
      .closest('.jp-Dialog')
      ?.querySelector<HTMLButtonElement>('button.jp-mod-accept');
    if (accept) {
      accept.disabled = invalid;
    }
  }

  override dispose(): void {
    document.removeEventListener('keydown', this._onKey, true);
    document.removeEventListener('input', this._onInput, true);
    super.dispose();
  }

  readonly input = document.createElement('input');
  private readonly _rule: HTMLElement;
  private readonly _trans: TranslationBundle;
  private readonly _onKey: (event: KeyboardEvent) => void;
  private readonly _onInput: (event: Event) => void;
  private static _count = 0;
}

/** Ask for an alias name for `v`; null if cancelled. Only a valid name is answered. */
export async function askAliasName(
  v: IModelVersion,
  trans: TranslationBundle
): Promise<string | null> {
  const body = new AliasBody(trans);
  const dialog = new Dialog({
    title: trans.__('Alias for %1 version %2', v.model, String(v.version)),
    body,
    buttons: [Dialog.cancelButton(), Dialog.okButton()],
    focusNodeSelector: 'input'
  });
  const shown = dialog.launch();
  body.validate(); // the dialog is attached now: OK starts disabled
  const result = await shown;
  const value = body.value;
  const valid = body.valid;
  body.dispose();
  return result.button.accept && valid ? value : null;
}

/**
 * Ask before moving `alias` from `current` (where it points now) to version `target`.
 */
export async function confirmAliasMove(
  alias: string,
  current: IModelVersion,
  target: number,
  trans: TranslationBundle
): Promise<boolean> {
  const where = current.created_by
    ? trans.__(
        '%1 is on v%2 (registered by %3, %4); move it to v%5?',
        alias,
        String(current.version),
        current.created_by,
        relativeTime(current.created_at),
        String(target)
      )
    : trans.__(
        '%1 is on v%2 (registered %3); move it to v%4?',
        alias,
        String(current.version),
        relativeTime(current.created_at),
        String(target)
      );
  const result = await showDialog({
    title: trans.__('Move the alias %1?', alias),
    body: new Widget({ node: h('p', 'cellops-alias-move', where) }),
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: trans.__('Move') })
    ]
  });
  return result.button.accept;
}

/** Ask before deleting; `what` says what goes ("version 3 of churn"). */
export async function confirmDelete(
  what: string,
  consequence: string,
  trans: TranslationBundle
): Promise<boolean> {
  const result = await showDialog({
    title: trans.__('Delete %1?', what),
    body: new Widget({
      node: h('p', 'cellops-delete-consequence', consequence)
    }),
    buttons: [
      Dialog.cancelButton(),
      Dialog.warnButton({ label: trans.__('Delete') })
    ]
  });
  return result.button.accept;
}
