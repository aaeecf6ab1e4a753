/**
 * The comment threads of one target (a cell, an execution, a run, a model version):
 * `.cellops-thread[data-target-kind]`. Used by the Review tab, the execution detail and
 * the Models tab.
 *
 * Threads are a root comment with its replies, oldest first. The caller's role decides
 * which boxes and buttons are shown (a viewer reads only); the server decides what is
 * allowed. Text being typed survives live refreshes: boxes are kept and moved, not rebuilt.
 */
import type { IRenderMime } from '@jupyterlab/rendermime';
import type { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CellopsAPIError } from '../api';
import {
  IComment,
  ICommentQuery,
  ICommentTarget,
  IMe,
  ReviewClient,
  roleAllows
} from '../reviewClient';
import { h } from '../sidebar/dom';
import { absoluteTime, relativeTime } from '../sidebar/format';
import { renderCommentBody } from './markdown';

/** How a thread offers to start a new thread. */
export type NewThreadMode = 'open' | 'button' | 'none';

export interface ICommentThreadOptions {
  client: ReviewClient;
  target: ICommentTarget;
  trans: TranslationBundle;
  /** The caller; when left out it is asked once (`client.whoami()`). */
  me?: IMe | null;
  sanitizer?: IRenderMime.ISanitizer;
  /**
   * `open` (default): the new-thread box is shown; `button`: behind a "New thread"
   * button; `none`: only replies.
   */
  newThread?: NewThreadMode;
  /**
   * The owner supplies the comments with `setComments` (e.g. one request for a whole
   * notebook); `refresh` then only asks the owner through `onChanged`.
   */
  external?: boolean;
  /** Called after a comment was written here (the owner may refetch counts, etc.). */
  onChanged?: () => void;
  /** Text shown when there is no comment yet. */
  emptyText?: string;
  /** A heading above the threads (e.g. "Comments"). */
  title?: string;
}

/** The `GET comments` filter that lists a target's comments. */
export function targetQuery(target: ICommentTarget): ICommentQuery {
  switch (target.kind) {
    case 'cell':
      return {
        notebook: target.notebook,
        cell: target.cell_id,
        ...(target.owner ? { owner: target.owner } : {})
      };
    case 'execution':
      return { execution: target.id };
    case 'run':
      return { run: target.id };
    case 'model_version':
      return { model: target.model, version: target.version };
  }
}

/** The roots of `comments` in order, each with its replies (replies of replies too). */
export function groupThreads(
  comments: IComment[]
): { root: IComment; replies: IComment[] }[] {
  const byId = new Map(comments.map(c => [c.id, c]));
  const rootOf = (comment: IComment): IComment => {
    let current = comment;
    const seen = new Set<number>();
    while (current.parent_id !== null && !seen.has(current.id)) {
      seen.add(current.id);
      const parent = byId.get(current.parent_id);
      if (!parent) {
        break;
      }
      current = parent;
    }
    return current;
  };
  const threads = new Map<number, { root: IComment; replies: IComment[] }>();
  for (const comment of comments) {
    const root = rootOf(comment);
    let thread = threads.get(root.id);
    if (!thread) {
      thread = { root, replies: [] };
      threads.set(root.id, thread);
    }
    if (root !== comment) {
      thread.replies.push(comment);
    }
  }
  return [...threads.values()];
}

/**
 * The threads of one target, with boxes to start a thread, reply, edit, resolve.
 */
export class CommentThread extends Widget {
  constructor(options: ICommentThreadOptions) {
    super();
    this._options = options;
    this._trans = options.trans;
    this._me = options.me ?? null;
    this._newMode = options.newThread ?? 'open';
    this.addClass('cellops-thread');
    this.node.dataset.targetKind = options.target.kind;
    if (options.title !== undefined) {
      this.node.append(h('div', 'cellops-thread-title', options.title));
    }
    this.node.append(this._error, this._list, this._newBox);
    this._error.setAttribute('role', 'alert');
    this._error.hidden = true;
    if (this._me === null) {
      void options.client.whoami().then(
        me => {
          this._me = me;
          this._render();
        },
        () => {
          // Unknown caller: read-only; the server still decides on every write.
        }
      );
    }
    this._render();
  }

  /** The target the threads are about. */
  get target(): ICommentTarget {
    return this._options.target;
  }

  /** The comments shown, oldest first. */
  get comments(): readonly IComment[] {
    return this._comments;
  }

  /** Unresolved threads (roots that are neither resolved nor deleted). */
  get unresolved(): number {
    return groupThreads(this._comments).filter(
      t => !t.root.resolved && !t.root.deleted
    ).length;
  }

  /** Set the caller (the owner knows it already). */
  setMe(me: IMe | null): void {
    this._me = me;
    this._render();
  }

  /**
   * While deferred, the threads are not built (a long Review tab builds only the groups
   * near its viewport); undeferring builds them.
   */
  setDeferred(deferred: boolean): void {
    this._deferred = deferred;
    if (!deferred && this._dirty) {
      this._render();
    }
  }

  /** Show `comments` (of this target, oldest first). */
  setComments(comments: IComment[]): void {
    this._comments = comments;
    this._loaded = true;
    this._render();
  }

  /** Fetch the target's comments again (unless the owner supplies them). */
  async refresh(): Promise<void> {
    if (this._options.external) {
      this._options.onChanged?.();
      return;
    }
    const comments = await this._options.client.comments(
      targetQuery(this._options.target)
    );
    if (!this.isDisposed) {
      this.setComments(comments);
    }
  }

  /** `refresh`, showing a failure in the thread instead of throwing it. */
  async load(): Promise<void> {
    try {
      await this.refresh();
      this._showError(null);
    } catch (error) {
      this._showError(error);
    }
  }

  /** Open the new-thread box and put the cursor in it. */
  focusNew(): void {
    if (this._newMode === 'none' || !this._canComment()) {
      return;
    }
    this._newOpen = true;
    this._deferred = false;
    this._render();
    const box = this._box('new');
    box.focus();
    box.scrollIntoView({ block: 'nearest' });
  }

  // -- rendering ----------------------------------------------------------------------------

  private _render(): void {
    if (this._deferred) {
      this._dirty = true;
      return;
    }
    this._dirty = false;
    const active = document.activeElement;
    const selection =
      active instanceof HTMLTextAreaElement
        ? [active.selectionStart, active.selectionEnd]
        : null;
    const threads = groupThreads(this._comments);
    this.node.dataset.count = String(this._comments.length);
    this.node.dataset.unresolved = String(
      threads.filter(t => !t.root.resolved && !t.root.deleted).length
    );
    // `.cellops-comment-resolved` marks the root once every thread here is resolved
    // (usually there is one); each thread says so in `data-resolved`.
    this.node.classList.toggle(
      'cellops-comment-resolved',
      threads.length > 0 && threads.every(t => t.root.resolved)
    );
    const items = threads.map(t => this._thread(t.root, t.replies));
    if (items.length === 0 && this._loaded && this._options.emptyText) {
      items.push(h('div', 'cellops-thread-empty', this._options.emptyText));
    }
    this._list.replaceChildren(...items);
    this._renderNewBox();
    this._forgetDrafts(threads.map(t => t.root.id));
    // Moving a focused box blurs it: give focus (and the caret) back.
    if (
      active instanceof HTMLTextAreaElement &&
      active !== document.activeElement &&
      this.node.contains(active)
    ) {
      active.focus();
      if (selection) {
        active.setSelectionRange(selection[0], selection[1]);
      }
    }
  }

  private _thread(root: IComment, replies: IComment[]): HTMLElement {
    const item = h('div', 'cellops-thread-item');
    item.dataset.threadId = String(root.id);
    item.dataset.resolved = String(root.resolved);
    const rootNode = this._comment(root, true);
    item.append(rootNode, ...replies.map(c => this._comment(c, false)));
    if (root.resolved) {
      item.classList.add('cellops-mod-resolved');
      const by = root.resolved_by
        ? this._trans.__('Resolved by %1', root.resolved_by)
        : this._trans.__('Resolved');
      item.append(h('div', 'cellops-thread-resolved-note', by));
    }
    const actions = this._threadActions(root);
    if (actions) {
      item.append(actions);
    }
    return item;
  }

  private _comment(comment: IComment, isRoot: boolean): HTMLElement {
    const node = h('div', 'cellops-comment');
    node.dataset.commentId = String(comment.id);
    node.dataset.author = comment.author;
    if (!isRoot) {
      node.classList.add('cellops-comment-reply');
    }
    const head = h('div', 'cellops-comment-head');
    head.append(
      h('span', 'cellops-comment-author', comment.author),
      timeText(comment.created_at)
    );
    if (comment.edited_at !== null && !comment.deleted) {
      const edited = h(
        'span',
        'cellops-comment-edited',
        this._trans.__('edited')
      );
      edited.title = this._trans.__('Edited %1', comment.edited_at);
      head.append(edited);
    }
    if (comment.outdated) {
      const badge = h(
        'span',
        'cellops-comment-outdated',
        this._trans.__('outdated')
      );
      badge.title = this._trans.__(
        "The cell's code has changed since this comment was written"
      );
      head.append(badge);
    }
    node.append(head);
    if (comment.deleted) {
      node.classList.add('cellops-comment-deleted');
      node.append(
        h(
          'div',
          'cellops-comment-body cellops-mod-tombstone',
          this._trans.__('This comment was deleted.')
        )
      );
      return node;
    }
    if (this._editing.has(comment.id)) {
      node.append(this._editor(comment));
    } else {
      node.append(this._body(comment));
      head.append(...this._commentButtons(comment));
    }
    return node;
  }

  /** The rendered body, reused while the comment is unchanged. */
  private _body(comment: IComment): HTMLElement {
    const key = `${comment.html ?? comment.body}\u0000${comment.edited_at ?? ''}`;
    const cached = this._bodies.get(comment.id);
    if (cached?.key === key) {
      return cached.node;
    }
    const node = renderCommentBody(comment, this._options.sanitizer);
    this._bodies.set(comment.id, { key, node });
    return node;
  }

  private _commentButtons(comment: IComment): HTMLElement[] {
    const mine = this._me !== null && comment.author === this._me.name;
    const buttons: HTMLElement[] = [];
    if (mine && this._canComment()) {
      buttons.push(
        this._button(
          'cellops-comment-edit',
          this._trans.__('Edit'),
          this._trans.__('Edit your comment'),
          () => {
            this._editing.add(comment.id);
            this._box(`edit:${String(comment.id)}`).value = comment.body;
            this._render();
            this._box(`edit:${String(comment.id)}`).focus();
          }
        )
      );
    }
    if ((mine && this._canComment()) || this._me?.role === 'admin') {
      buttons.push(
        this._button(
          'cellops-comment-delete',
          this._trans.__('Delete'),
          mine
            ? this._trans.__('Delete your comment')
            : this._trans.__('Delete this comment (admin)'),
          () => void this._delete(comment)
        )
      );
    }
    return buttons;
  }

  private _editor(comment: IComment): HTMLElement {
    const key = `edit:${String(comment.id)}`;
    const box = h('div', 'cellops-comment-editor');
    const textarea = this._box(key);
    const save = this._button(
      'cellops-comment-save jp-mod-accept',
      this._trans.__('Save'),
      this._trans.__('Save the edited comment (Ctrl+Enter)'),
      () => void this._saveEdit(comment, textarea)
    );
    const cancel = this._button(
      'cellops-comment-cancel',
      this._trans.__('Cancel'),
      this._trans.__('Keep the comment as it was'),
      () => {
        this._editing.delete(comment.id);
        this._drafts.delete(key);
        this._render();
      }
    );
    this._onSubmit(textarea, () => void this._saveEdit(comment, textarea));
    box.append(textarea, h('div', 'cellops-thread-buttons'));
    box.lastElementChild?.append(save, cancel);
    return box;
  }

  /** Reply box and Resolve / Reopen of a thread, if the caller may comment. */
  private _threadActions(root: IComment): HTMLElement | null {
    if (!this._canComment()) {
      return null;
    }
    const wrap = h('div', 'cellops-thread-actions');
    if (!root.resolved) {
      const key = `reply:${String(root.id)}`;
      const reply = h('div', 'cellops-thread-reply');
      const textarea = this._box(key);
      textarea.placeholder = this._trans.__('Reply…');
      textarea.setAttribute('aria-label', this._trans.__('Reply'));
      const send = this._button(
        'cellops-thread-send',
        this._trans.__('Reply'),
        this._trans.__('Send the reply (Ctrl+Enter)'),
        () => void this._create(key, textarea, root.id)
      );
      this._onSubmit(textarea, () => void this._create(key, textarea, root.id));
      reply.append(textarea, send);
      wrap.append(reply);
    }
    wrap.append(
      this._button(
        'cellops-thread-resolve',
        root.resolved ? this._trans.__('Reopen') : this._trans.__('Resolve'),
        root.resolved
          ? this._trans.__('Reopen this thread')
          : this._trans.__('Mark this thread as resolved'),
        () => void this._resolve(root, !root.resolved)
      )
    );
    return wrap;
  }

  private _renderNewBox(): void {
    const box = this._newBox;
    box.replaceChildren();
    box.hidden = this._newMode === 'none' || !this._canComment();
    if (box.hidden) {
      return;
    }
    if (this._newMode === 'button' && !this._newOpen) {
      box.append(
        this._button(
          'cellops-thread-start',
          this._trans.__('New thread'),
          this._trans.__('Start a new thread here'),
          () => {
            this.focusNew();
          }
        )
      );
      return;
    }
    const textarea = this._box('new');
    textarea.placeholder = this._trans.__(
      'Comment… (Markdown, @name mentions a member)'
    );
    textarea.setAttribute('aria-label', this._trans.__('New comment'));
    const send = this._button(
      'cellops-thread-send jp-mod-accept',
      this._trans.__('Comment'),
      this._trans.__('Start a thread with this comment (Ctrl+Enter)'),
      () => void this._create('new', textarea)
    );
    this._onSubmit(textarea, () => void this._create('new', textarea));
    const buttons = h('div', 'cellops-thread-buttons');
    buttons.append(send);
    if (this._newMode === 'button') {
      buttons.append(
        this._button(
          'cellops-thread-cancel',
          this._trans.__('Cancel'),
          this._trans.__('Close the box (the text is kept)'),
          () => {
            this._newOpen = false;
            this._render();
          }
        )
      );
    }
    box.append(textarea, buttons);
  }

  // -- actions ------------------------------------------------------------------------------

  private async _create(
    key: string,
    textarea: HTMLTextAreaElement,
    parentId?: number
  ): Promise<void> {
    const body = textarea.value;
    if (body.trim() === '') {
      textarea.focus();
      return;
    }
    await this._write(textarea, async () => {
      const comment = await this._options.client.createComment(
        this._options.target,
        body,
        parentId
      );
      this._drafts.delete(key);
      this._comments = [...this._comments, comment];
      if (key === 'new' && this._newMode === 'button') {
        this._newOpen = false;
      }
    });
  }

  private async _saveEdit(
    comment: IComment,
    textarea: HTMLTextAreaElement
  ): Promise<void> {
    const body = textarea.value;
    if (body.trim() === '') {
      textarea.focus();
      return;
    }
    await this._write(textarea, async () => {
      const updated = await this._options.client.editComment(comment.id, body);
      this._editing.delete(comment.id);
      this._drafts.delete(`edit:${String(comment.id)}`);
      this._replace(updated);
    });
  }

  private async _resolve(root: IComment, resolved: boolean): Promise<void> {
    await this._write(null, async () => {
      this._replace(
        await this._options.client.resolveComment(root.id, resolved)
      );
    });
  }

  private async _delete(comment: IComment): Promise<void> {
    await this._write(null, async () => {
      await this._options.client.deleteComment(comment.id);
      // Without replies it is gone; with replies the refetch shows its tombstone.
      this._comments = this._comments.filter(c => c.id !== comment.id);
    });
  }

  /**
   * Run a write: disable the thread's buttons meanwhile, show the server's answer if it
   * refuses, then re-render and let the owner (or a refetch) bring the truth.
   */
  private async _write(
    textarea: HTMLTextAreaElement | null,
    action: () => Promise<void>
  ): Promise<void> {
    if (this._busy) {
      return;
    }
    this._busy = true;
    this.node.classList.add('cellops-mod-busy');
    this._showError(null);
    try {
      await action();
      this._render();
      void this.refresh().catch((error: unknown) => {
        this._showError(error);
      });
      if (!this._options.external) {
        this._options.onChanged?.();
      }
    } catch (error) {
      this._showError(error);
      textarea?.focus();
    } finally {
      this._busy = false;
      this.node.classList.remove('cellops-mod-busy');
    }
  }

  private _replace(updated: IComment): void {
    this._comments = this._comments.map(c =>
      c.id === updated.id ? updated : c
    );
  }

  private _showError(error: unknown): void {
    this._error.hidden = error === null;
    this._error.textContent = error === null ? '' : errorText(error);
  }

  // -- helpers ------------------------------------------------------------------------------

  private _canComment(): boolean {
    return roleAllows(this._me?.role, 'commenter');
  }

  /** The textarea for `key`, kept across renders (drafts survive live refreshes). */
  private _box(key: string): HTMLTextAreaElement {
    let box = this._drafts.get(key);
    if (!box) {
      box = h('textarea', 'cellops-thread-input');
      box.rows = key === 'new' ? 3 : 1;
      box.maxLength = MAX_BODY;
      this._drafts.set(key, box);
    }
    return box;
  }

  /** Drop reply boxes of threads that are gone (and are empty). */
  private _forgetDrafts(rootIds: number[]): void {
    const alive = new Set(rootIds.map(id => `reply:${String(id)}`));
    for (const [key, box] of this._drafts) {
      if (key.startsWith('reply:') && !alive.has(key) && box.value === '') {
        this._drafts.delete(key);
      }
    }
  }

  private _onSubmit(textarea: HTMLTextAreaElement, submit: () => void): void {
    textarea.onkeydown = event => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        submit();
      }
    };
  }

  private _button(
    className: string,
    label: string,
    title: string,
    onClick: () => void
  ): HTMLButtonElement {
    const node = h('button', `${className} jp-Button cellops-thread-button`);
    node.type = 'button';
    node.textContent = label;
    node.title = title;
    node.addEventListener('click', onClick);
    return node;
  }

  private readonly _options: ICommentThreadOptions;
  private readonly _trans: TranslationBundle;
  private readonly _newMode: NewThreadMode;
  private readonly _list = h('div', 'cellops-thread-list');
  private readonly _newBox = h('div', 'cellops-thread-new');
  private readonly _error = h('div', 'cellops-thread-error');
  private readonly _drafts = new Map<string, HTMLTextAreaElement>();
  private readonly _editing = new Set<number>();
  private readonly _bodies = new Map<
    number,
    { key: string; node: HTMLElement }
  >();
  private _me: IMe | null;
  private _comments: IComment[] = [];
  private _loaded = false;
  private _deferred = false;
  private _dirty = false;
  private _newOpen = false;
  private _busy = false;
}

/** "2 minutes ago"; the exact time as a tooltip, formatted when first pointed at. */
function timeText(iso: string): HTMLElement {
  const node = h('time', 'cellops-comment-time', relativeTime(iso));
  node.dateTime = iso;
  node.addEventListener(
    'pointerenter',
    () => {
      node.title = absoluteTime(iso);
    },
    { once: true }
  );
  return node;
}

/** What went wrong, for people: the server's `error` (and `detail` if it is text). */
export function errorText(error: unknown): string {
  if (error instanceof CellopsAPIError) {
    const detail = error.body?.detail;
    return typeof detail === 'string' && detail !== ''
      ? `${error.message}: ${detail}`
      : error.message;
  }
  return error instanceof Error ? error.message : JSON.stringify(error);
}

/** Characters of Markdown in one comment (schemas.MAX_COMMENT_BODY). */
const MAX_BODY = 10000;
