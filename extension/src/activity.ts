import { ISignal, Signal } from '@lumino/signaling';

import { CellopsAPIError, CellopsClient, IActivityEvent } from './api';

/**
 * Timings of the loop; tests and callers may shorten them.
 */
export interface IActivityTimings {
  /** Seconds the server may hold one long poll open. */
  longPoll: number;
  /** Milliseconds between synthetic events while `events` is missing (404). */
  pollInterval: number;
  /** Milliseconds between probes of a missing `events` endpoint. */
  probeInterval: number;
  /** Upper bound of the back-off after an error, in milliseconds. */
  maxBackoff: number;
}

const DEFAULT_TIMINGS: IActivityTimings = {
  longPoll: 25,
  pollInterval: 2000,
  probeInterval: 30000,
  maxBackoff: 10000
};

/**
 * Live activity of the cellops server: a long-poll loop over `events`.
 *
 * Views subscribe to `changed` and refetch what an event concerns. When the loop
 * cannot trust that it saw every event (first answer after an error, a server that
 * restarted, an `events` endpoint that does not exist), it emits a synthetic `reset`
 * so that views refetch everything.
 */
export class ActivityStream {
  constructor(
    private readonly _client: CellopsClient,
    timings: Partial<IActivityTimings> = {}
  ) {
    this._timings = { ...DEFAULT_TIMINGS, ...timings };
    void this._loop();
  }

  /** Emits each batch of events, oldest first. */
  get changed(): ISignal<this, IActivityEvent[]> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._abort.signal.aborted;
  }

  /** Stops the loop and aborts the pending request. */
  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._abort.abort();
    Signal.clearData(this);
  }

  private async _loop(): Promise<void> {
    const signal = this._abort.signal;
    let after: number | undefined;
    let backoff = 0;
    let lastProbe = 0;
    let polling = false;
    while (!signal.aborted) {
      if (polling && Date.now() - lastProbe < this._timings.probeInterval) {
        // `events` is missing: views poll at a steady pace instead.
        this._emitReset();
        await sleep(this._timings.pollInterval, signal);
        continue;
      }
      try {
        lastProbe = Date.now();
        const reply = await this._client.events(
          after,
          this._timings.longPoll,
          signal
        );
        if (
          polling ||
          backoff > 0 ||
          (after !== undefined && reply.last < after)
        ) {
          // Back after a gap (or the server restarted): events may have been missed.
          this._emitReset();
        } else if (after !== undefined && reply.events.length > 0) {
          this._changed.emit(reply.events);
        }
        after = reply.last;
        polling = false;
        backoff = 0;
      } catch (error) {
        if (this.isDisposed) {
          return;
        }
        if (error instanceof CellopsAPIError && error.status === 404) {
          polling = true;
          continue;
        }
        if (backoff === 0) {
          // Let views show what is wrong now rather than at the next event.
          this._emitReset();
        }
        backoff = Math.min(
          Math.max(backoff * 2, 1000),
          this._timings.maxBackoff
        );
        await sleep(backoff, signal);
      }
    }
  }

  private _emitReset(): void {
    this._changed.emit([
      {
        seq: -1,
        type: 'reset',
        notebooks: [],
        models: [],
        users: [],
        deployments: [],
        at: new Date().toISOString()
      }
    ]);
  }

  private readonly _abort = new AbortController();
  private readonly _changed = new Signal<this, IActivityEvent[]>(this);
  private readonly _timings: IActivityTimings;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
