/**
 * The caller's inbox, kept current from the activity stream, and a JupyterLab toast per
 * new unread item ("alice mentioned you on analysis.ipynb").
 */
import { Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ISignal, Signal } from '@lumino/signaling';

import { ActivityStream } from '../activity';
import { CellopsAPIError, IActivityEvent } from '../api';
import { CoalescedRun } from '../coalesce';
import { IInboxItem, IInboxPage, IMe, ReviewClient } from '../reviewClient';
import { describeInboxItem } from './activityTab';

/** How many inbox items one fetch reads (the server's own default page). */
const INBOX_LIMIT = 50;

/** A toast stays this long unless the user closes it or hovers it. */
const TOAST_MS = 8000;

/**
 * The caller's inbox. Refetched when an `activity` event names the caller (or the
 * stream resets); `changed` emits each new state, `arrived` the unread items never
 * seen before — each item at most once, whatever the number of fetches.
 */
export class InboxWatcher {
  constructor(
    readonly client: ReviewClient,
    private readonly _activity: ActivityStream
  ) {
    _activity.changed.connect(this._onActivity);
  }

  /** The caller (GET me), once known. */
  get me(): IMe | null {
    return this._me;
  }

  /** The last inbox fetched, or null before the first answer. */
  get inbox(): IInboxPage | null {
    return this._inbox;
  }

  /** Emits the inbox after every fetch or change. */
  get changed(): ISignal<this, IInboxPage> {
    return this._changed;
  }

  /** Emits unread items that arrived since the watcher started, oldest first. */
  get arrived(): ISignal<this, IInboxItem[]> {
    return this._arrived;
  }

  /**
   * Learn who the caller is and what their inbox already holds: items there before
   * JupyterLab opened are counted as unread, not toasted.
   */
  async start(): Promise<void> {
    try {
      this._me = await this.client.me();
      await this.refresh();
    } catch (error) {
      // No review API (an older backend) or no server yet: stay quiet, retry on reset.
      this._me = null;
      if (!(error instanceof CellopsAPIError)) {
        throw error;
      }
    } finally {
      this._started = true;
    }
  }

  /** Fetch the inbox now (coalesced: one fetch at a time, one more queued at most). */
  refresh(): Promise<void> {
    return this._fetches.run();
  }

  /** Mark `ids` read (all unread items when omitted); the answer is the new inbox. */
  async markRead(ids?: number[]): Promise<void> {
    const wanted =
      ids ?? (this._inbox?.items ?? []).filter(i => !i.read).map(i => i.id);
    if (wanted.length === 0) {
      return;
    }
    this._apply(await this.client.markInboxRead(wanted));
  }

  dispose(): void {
    this._activity.changed.disconnect(this._onActivity);
    Signal.clearData(this);
  }

  private async _fetch(): Promise<void> {
    this._apply(await this.client.inbox(INBOX_LIMIT));
  }

  private _apply(page: IInboxPage): void {
    const fresh = page.items.filter(i => !this._seen.has(i.id));
    for (const item of page.items) {
      this._seen.add(item.id);
    }
    const first = this._inbox === null;
    this._inbox = page;
    this._changed.emit(page);
    // The first answer is what was there before: nothing "arrived".
    const arrived = fresh.filter(i => !i.read).reverse();
    if (!first && arrived.length > 0) {
      this._arrived.emit(arrived);
    }
  }

  private readonly _onActivity = (
    _: ActivityStream,
    events: IActivityEvent[]
  ): void => {
    if (!this._started) {
      return;
    }
    const name = this._me?.name;
    const concerns = events.some(
      e =>
        e.type === 'reset' ||
        (e.type === 'activity' && name !== undefined && e.users.includes(name))
    );
    if (!concerns) {
      return;
    }
    if (this._me === null) {
      void this.start(); // the review API may have come up since
      return;
    }
    this.refresh().catch(() => {
      // A failed fetch is retried at the next event; the inbox shown stays as it was.
    });
  };

  private _me: IMe | null = null;
  private _inbox: IInboxPage | null = null;
  private _started = false;
  private readonly _seen = new Set<number>();
  private readonly _fetches = new CoalescedRun(() => this._fetch());
  private readonly _changed = new Signal<this, IInboxPage>(this);
  private readonly _arrived = new Signal<this, IInboxItem[]>(this);
}

/**
 * Show a JupyterLab notification per inbox item that arrives, with a button that opens
 * what it concerns.
 */
export function startNotifications(
  watcher: InboxWatcher,
  trans: TranslationBundle,
  open: (item: IInboxItem) => void
): void {
  watcher.arrived.connect((_, items) => {
    for (const item of items) {
      Notification.info(describeInboxItem(item, trans), {
        autoClose: TOAST_MS,
        actions: [
          {
            label: trans.__('Show'),
            caption: trans.__('Show it and mark it read'),
            callback: () => {
              open(item);
              void watcher.markRead([item.id]).catch(() => undefined);
            }
          }
        ]
      });
    }
  });
}
