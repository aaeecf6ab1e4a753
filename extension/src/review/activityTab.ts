/**
 * The sidebar's Activity tab: the caller's inbox (unread first to see, mark read) above
 * the team's feed (newest first, paged, "Mine" filter). Every row links to what it
 * concerns: a model opens the Models tab on it, a comment or run its notebook.
 *
 * All text is set with `textContent`: names, aliases and reasons come from other users.
 */
import { PathExt } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IActivityItem, IInboxItem, IInboxPage } from '../reviewClient';
import {
  button,
  emptyState,
  h,
  makeActivatable,
  timeSpan
} from '../sidebar/dom';
import { ISidebarView } from '../sidebar/tabs';
import { InboxWatcher } from './notifications';
import {
  describePipelineActivity,
  pipelineDetail,
  pipelineWarning
} from './pipelineActivity';
import { WebhooksSection } from './webhooks';
import { WebhooksClient } from '../webhooksClient';

/** Feed items per page (the server's default page, so "Mine" shows what the API does). */
const PAGE = 50;

export interface IActivityTabOptions {
  watcher: InboxWatcher;
  trans: TranslationBundle;
  /** Open what an item concerns (Models tab, a notebook's Review or Runs tab). */
  onOpen: (item: IActivityItem) => void;
  onError: (error: unknown) => void;
}

/** A string field of an item's free-form `data`, or null. */
function text(data: Record<string, unknown>, key: string): string | null {
  const value = data[key];
  return typeof value === 'string' ? value : null;
}

/** A version number of an item's `data` ("from", "to"), or null. */
function number(data: Record<string, unknown>, key: string): number | null {
  const value = data[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** "churn v3", "churn", or a notebook's file name: what an item is about. */
export function subjectOf(
  item: IActivityItem,
  trans: TranslationBundle
): string {
  if (item.model !== null && item.version !== null) {
    return trans.__('%1 v%2', item.model, String(item.version));
  }
  if (item.model !== null) {
    return item.model;
  }
  if (item.notebook !== null) {
    return PathExt.basename(item.notebook);
  }
  return trans.__('something');
}

/** One line saying who did what ("bob asked ada, carl to review churn v3"). */
export function describeActivity(
  item: IActivityItem,
  trans: TranslationBundle
): string {
  const who = item.actor ?? trans.__('cellops');
  const what = subjectOf(item, trans);
  const data = item.data;
  switch (item.type) {
    case 'run.started':
      return trans.__('%1 started a run of %2', who, what);
    case 'model_version.created':
      return trans.__('%1 registered %2', who, what);
    case 'alias.moved': {
      const alias = text(data, 'alias') ?? '?';
      const to = number(data, 'to');
      return to === null
        ? trans.__(
            '%1 removed the alias %2 of %3',
            who,
            alias,
            item.model ?? ''
          )
        : trans.__(
            '%1 moved %2 of %3 to v%4',
            who,
            alias,
            item.model ?? '',
            String(to)
          );
    }
    case 'alias.override':
      return trans.__(
        '%1 overrode the rules of %2 to move it to %3: "%4"',
        who,
        text(data, 'alias') ?? '?',
        what,
        text(data, 'reason') ?? ''
      );
    case 'comment.created':
      return trans.__('%1 commented on %2', who, what);
    case 'comment.edited':
      return trans.__('%1 edited a comment on %2', who, what);
    case 'comment.resolved':
      return trans.__('%1 resolved a thread on %2', who, what);
    case 'comment.reopened':
      return trans.__('%1 reopened a thread on %2', who, what);
    case 'comment.deleted':
      return trans.__('%1 deleted a comment on %2', who, what);
    case 'review.requested': {
      const reviewers = Array.isArray(data.reviewers)
        ? data.reviewers.filter((r): r is string => typeof r === 'string')
        : [];
      return trans.__(
        '%1 asked %2 to review %3',
        who,
        reviewers.join(', '),
        what
      );
    }
    case 'review.submitted':
      return text(data, 'verdict') === 'approve'
        ? trans.__('%1 approved %2', who, what)
        : trans.__('%1 requested changes on %2', who, what);
    case 'policy.changed':
      return trans.__('%1 changed the promotion policy of %2', who, what);
    default:
      return (
        describePipelineActivity(item, who, what, trans) ??
        trans.__('%1: %2 (%3)', who, item.type, what)
      );
  }
}

/** What a toast says about an inbox item ("alice mentioned you on analysis.ipynb"). */
export function describeInboxItem(
  item: IInboxItem,
  trans: TranslationBundle
): string {
  const activity = item.activity;
  const who = activity.actor ?? trans.__('cellops');
  const what = subjectOf(activity, trans);
  switch (item.reason) {
    case 'mention':
      return trans.__('%1 mentioned you on %2', who, what);
    case 'reply':
      return trans.__('%1 replied to you on %2', who, what);
    case 'review_request':
      return trans.__('%1 asked you to review %2', who, what);
    default:
      return describeActivity(activity, trans);
  }
}

/** Whether an item links anywhere (a model, or a notebook). */
function hasTarget(item: IActivityItem): boolean {
  return item.model !== null || item.notebook !== null;
}

/**
 * The Activity tab (`teamWide`: it needs no open notebook).
 */
export class ActivityTab extends Widget implements ISidebarView {
  constructor(private readonly _options: IActivityTabOptions) {
    super();
    const trans = _options.trans;
    this.addClass('cellops-activity-view');
    this._unread.hidden = true;
    this._readAll.className = 'cellops-inbox-read-all';
    this._readAll.textContent = trans.__('Mark all read');
    this._readAll.title = trans.__('Mark every item of your inbox read');
    this._readAll.addEventListener('click', () => {
      void this._guard(() => this._options.watcher.markRead());
    });
    const inboxHead = h('div', 'cellops-section-header');
    inboxHead.append(
      h('span', 'cellops-section-title', trans.__('Inbox')),
      this._unread,
      this._readAll
    );
    this._inbox.append(inboxHead, this._inboxList);

    this._mine.type = 'checkbox';
    this._mine.className = 'cellops-activity-mine';
    this._mine.addEventListener('change', () => {
      this._items = [];
      this._next = null;
      this._older = false;
      void this._guard(() => this.refresh());
    });
    const mine = h('label', 'cellops-activity-mine-label');
    mine.title = trans.__('Only what you did or what concerns you');
    mine.append(this._mine, trans.__('Mine'));
    const feedHead = h('div', 'cellops-section-header');
    feedHead.append(
      h('span', 'cellops-section-title', trans.__('Activity')),
      mine
    );
    this._more.className = 'cellops-activity-more';
    this._more.textContent = trans.__('Older…');
    this._more.addEventListener('click', () => {
      void this._guard(() => this._loadOlder());
    });
    this._webhooks = new WebhooksSection({
      client: WebhooksClient.of(_options.watcher.client),
      trans,
      me: () => _options.watcher.me,
      onError: _options.onError
    });
    this.node.append(
      this._webhooks.node,
      this._inbox,
      feedHead,
      this._feed,
      this._more
    );
    _options.watcher.changed.connect(this._onInbox, this);
    this._renderInbox(_options.watcher.inbox);
  }

  /** The unread count shown on the tab's own button too (`.cellops-inbox-unread`). */
  set tabBadge(badge: HTMLElement | null) {
    this._tabBadge = badge;
    this._renderInbox(this._options.watcher.inbox);
  }

  /** The newest page of the feed (older pages already loaded stay) and the inbox. */
  async refresh(): Promise<void> {
    const mine = this._mine.checked;
    const [page] = await Promise.all([
      this._options.watcher.client.activity({ limit: PAGE, mine }),
      this._options.watcher.refresh(),
      this._webhooks.refresh()
    ]);
    if (mine !== this._mine.checked) {
      return; // the filter changed while this was asked
    }
    const count = page.items.length;
    const oldest = count > 0 ? page.items[count - 1].id : null;
    if (page.next === null || oldest === null || !this._older) {
      // Everything fits in one page, or only one page was shown: take it as it is.
      this._items = page.items;
      this._next = page.next;
      this._older = false;
    } else {
      // Keep the older pages the user loaded; the first page replaces its own range.
      this._items = [...page.items, ...this._items.filter(i => i.id < oldest)];
    }
    this._renderFeed();
  }

  reset(): void {
    // The feed is the team's, not a notebook's: keep what is shown.
  }

  override dispose(): void {
    this._options.watcher.changed.disconnect(this._onInbox, this);
    this._webhooks.dispose();
    super.dispose();
  }

  private async _loadOlder(): Promise<void> {
    const cursor = this._next;
    if (cursor === null) {
      return;
    }
    const mine = this._mine.checked;
    const page = await this._options.watcher.client.activity({
      cursor,
      limit: PAGE,
      mine
    });
    if (mine !== this._mine.checked || cursor !== this._next) {
      return;
    }
    const known = new Set(this._items.map(i => i.id));
    this._items = [...this._items, ...page.items.filter(i => !known.has(i.id))];
    this._next = page.next;
    this._older = true;
    this._renderFeed();
  }

  private _renderFeed(): void {
    const trans = this._options.trans;
    this._more.hidden = this._next === null;
    if (this._items.length === 0) {
      this._feed.replaceChildren(
        emptyState(
          this._mine.checked
            ? trans.__('Nothing you did or were asked about yet.')
            : trans.__(
                'No activity yet: runs, registrations, comments and reviews show here.'
              )
        )
      );
      return;
    }
    this._feed.replaceChildren(...this._items.map(i => this._feedItem(i)));
  }

  private _feedItem(item: IActivityItem): HTMLElement {
    const trans = this._options.trans;
    const row = h('div', 'cellops-activity-item');
    row.dataset.type = item.type;
    row.dataset.id = String(item.id);
    const line = describeActivity(item, trans);
    const body = h('span', 'cellops-activity-text', line);
    const excerpt = text(item.data, 'excerpt');
    if (excerpt) {
      // Markdown source quoted as plain text: nothing in it is rendered or run.
      body.append(h('span', 'cellops-activity-excerpt', excerpt));
    }
    const detail = excerpt ? null : pipelineDetail(item, trans);
    if (detail) {
      // Parameters, failed rules, a delivery's error: plain text, wrapped in full.
      body.append(h('span', 'cellops-activity-detail', detail));
    }
    row.append(body, timeSpan('cellops-activity-time', item.at));
    if (item.type === 'alias.override') {
      row.classList.add('cellops-mod-override');
    }
    row.classList.toggle('cellops-mod-warning', pipelineWarning(item));
    if (hasTarget(item)) {
      makeActivatable(row, line, () => {
        this._options.onOpen(item);
      });
    }
    return row;
  }

  private readonly _onInbox = (_: InboxWatcher, page: IInboxPage): void => {
    this._renderInbox(page);
    if (this._webhooks.node.hidden && this._webhooks.visible) {
      void this._webhooks.refresh(); // the caller became known: an admin sees webhooks
    }
  };

  private _renderInbox(page: IInboxPage | null): void {
    const trans = this._options.trans;
    const unread = page?.unread ?? 0;
    for (const badge of [this._unread, this._tabBadge]) {
      if (badge) {
        badge.textContent = String(unread);
        badge.hidden = unread === 0;
        badge.dataset.count = String(unread);
        badge.title = trans._n('%1 unread item', '%1 unread items', unread);
      }
    }
    this._readAll.disabled = unread === 0;
    const items = page?.items ?? [];
    if (items.length === 0) {
      this._inboxList.replaceChildren(
        emptyState(
          trans.__(
            'Your inbox is empty: mentions and review requests land here.'
          )
        )
      );
      return;
    }
    this._inboxList.replaceChildren(...items.map(i => this._inboxItem(i)));
  }

  private _inboxItem(item: IInboxItem): HTMLElement {
    const trans = this._options.trans;
    const row = h('div', 'cellops-inbox-item');
    row.dataset.read = String(item.read);
    row.dataset.reason = item.reason;
    row.dataset.id = String(item.id);
    const line = describeInboxItem(item, trans);
    row.append(
      h('span', 'cellops-inbox-text', line),
      timeSpan('cellops-inbox-time', item.activity.at)
    );
    if (!item.read) {
      const read = button(
        'cellops-inbox-mark-read',
        trans.__('Read'),
        trans.__('Mark this item read'),
        () => {
          void this._guard(() => this._options.watcher.markRead([item.id]));
        }
      );
      // Marking read is not opening: the row's own click must not follow.
      read.addEventListener('click', event => {
        event.stopPropagation();
      });
      row.append(read);
    }
    makeActivatable(row, line, () => {
      if (!item.read) {
        void this._guard(() => this._options.watcher.markRead([item.id]));
      }
      if (hasTarget(item.activity)) {
        this._options.onOpen(item.activity);
      }
    });
    return row;
  }

  private async _guard(action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      this._options.onError(error);
    }
  }

  private readonly _webhooks: WebhooksSection;
  private readonly _inbox = h('section', 'cellops-inbox');
  private readonly _inboxList = h('div', 'cellops-inbox-list');
  private readonly _unread = h('span', 'cellops-inbox-unread');
  private readonly _readAll = document.createElement('button');
  private readonly _mine = document.createElement('input');
  private readonly _feed = h('div', 'cellops-activity-feed');
  private readonly _more = document.createElement('button');
  private _tabBadge: HTMLElement | null = null;
  private _items: IActivityItem[] = [];
  private _next: string | null = null;
  /** Whether older pages were loaded (a live refresh keeps them). */
  private _older = false;
}
