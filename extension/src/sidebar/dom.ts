import { absoluteTime, relativeTime } from './format';

/** An element with classes and optional text. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A button with a tooltip that runs `onClick`. */
export function button(
  className: string,
  text: string,
  title: string,
  onClick: () => void
): HTMLButtonElement {
  const node = h('button', className, text);
  node.title = title;
  node.addEventListener('click', onClick);
  return node;
}

/** "2 minutes ago", with the exact time as its tooltip. */
export function timeSpan(className: string, iso: string): HTMLElement {
  const node = h('time', className, relativeTime(iso));
  node.dateTime = iso;
  node.title = absoluteTime(iso);
  return node;
}

/** A message shown instead of content (`.cellops-empty`). */
export function emptyState(text: string): HTMLElement {
  const node = h('div', 'cellops-empty', text);
  node.setAttribute('role', 'status');
  return node;
}

/** Makes a non-button element act like one for mouse and keyboard. */
export function makeActivatable(
  node: HTMLElement,
  label: string,
  activate: () => void
): void {
  node.tabIndex = 0;
  node.setAttribute('role', 'button');
  node.setAttribute('aria-label', label);
  node.addEventListener('click', activate);
  node.addEventListener('keydown', event => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      activate();
    }
  });
}
