import type { ISettingRegistry } from '@jupyterlab/settingregistry';
import {
  JSONExt,
  type PartialJSONObject,
  type PartialJSONValue
} from '@lumino/coreutils';
import { type ISignal, Signal } from '@lumino/signaling';

import type { ActivityStream } from './activity';
import type { CellopsClient, IActivityEvent, ITrackingSettings } from './api';

/** The plugin whose settings schema (schema/plugin.json) holds the tracking settings. */
export const SETTINGS_PLUGIN_ID = 'cellops:plugin';

/** The key `max_output_size` had before it took the server's name. */
export const LEGACY_MAX_OUTPUT_KEY = 'maxOutputSize';

/** Least milliseconds between two retries of a failed attempt, or two reloads on `reset`. */
const RETRY_INTERVAL = 5000;

/** Defaults of schema/plugin.json, used for values that are missing or malformed. */
const DEFAULTS: ITrackingSettings = {
  tracking: true,
  exclude: [],
  max_output_size: 10000
};

const KEYS = Object.keys(DEFAULTS) as (keyof ITrackingSettings)[];

/** The tracking settings the registry holds (the schema validated them already). */
export function toTrackingSettings(
  settings: ISettingRegistry.ISettings
): ITrackingSettings {
  const tracking = settings.get('tracking').composite;
  const exclude = settings.get('exclude').composite;
  const maxOutputSize = settings.get('max_output_size').composite;
  return {
    tracking: typeof tracking === 'boolean' ? tracking : DEFAULTS.tracking,
    exclude: Array.isArray(exclude)
      ? exclude.filter((p): p is string => typeof p === 'string')
      : DEFAULTS.exclude,
    max_output_size:
      typeof maxOutputSize === 'number'
        ? maxOutputSize
        : DEFAULTS.max_output_size
  };
}

function same(a: ITrackingSettings, b: ITrackingSettings | null): boolean {
  return b !== null && JSONExt.deepEqual(a, b);
}

/**
 * Keeps the settings editor and the server's tracking settings in step. The server is
 * the one source of truth (it records, and keeps the settings across restarts):
 * - on load, its values are written into the registry (so it wins over anything the
 *   registry held while no page was open);
 * - a change in the settings editor is PUT to the server;
 * - a change made elsewhere (the API, another tab) arrives as a `settings` activity
 *   event and is written into the registry.
 * Loops are cut twice: registry values equal to what the server last said are never
 * sent back, and the server announces only a PUT that changed something.
 */
export class TrackingSettingsSync {
  constructor(
    private readonly _client: CellopsClient,
    private readonly _activity: ActivityStream | null = null
  ) {}

  /** Emits after each attempt to sync, whether it worked or not. */
  get applied(): ISignal<this, void> {
    return this._applied;
  }

  /** Why the last attempt failed, or `null` if it worked (or none was made). */
  get error(): string | null {
    return this._error;
  }

  /** Load the plugin's settings from `registry`, take the server's, and follow both. */
  async start(registry: ISettingRegistry): Promise<void> {
    let settings: ISettingRegistry.ISettings;
    try {
      settings = await registry.load(SETTINGS_PLUGIN_ID);
      await this._migrate(settings);
    } catch (reason) {
      this._fail(reason, null);
      return;
    }
    this._settings = settings;
    settings.changed.connect(this._onRegistryChanged, this);
    this._activity?.changed.connect(this._onActivity, this);
    await this._pull();
  }

  /**
   * Redo the last failed attempt (e.g. the server was down at start-up); call when the
   * server answers again. Rate-limited.
   */
  retry(): void {
    if (
      this._failed !== null &&
      this._settings !== null &&
      Date.now() - this._lastAttempt >= RETRY_INTERVAL
    ) {
      void (this._failed === 'push' ? this._push() : this._pull());
    }
  }

  /** Move a value stored under the old key to the new one, so it is not lost. */
  private async _migrate(settings: ISettingRegistry.ISettings): Promise<void> {
    const user = settings.user as PartialJSONObject;
    if (!(LEGACY_MAX_OUTPUT_KEY in user)) {
      return;
    }
    const { [LEGACY_MAX_OUTPUT_KEY]: legacy, ...rest } = user;
    if (typeof legacy === 'number' && rest.max_output_size === undefined) {
      rest.max_output_size = legacy;
    }
    await this._write(settings, rest);
  }

  private readonly _onRegistryChanged = (
    settings: ISettingRegistry.ISettings
  ): void => {
    // Our own writes, and values the server already has, are not news for the server.
    if (!this._writing && !same(toTrackingSettings(settings), this._server)) {
      void this._push();
    }
  };

  private readonly _onActivity = (
    _: ActivityStream,
    events: IActivityEvent[]
  ): void => {
    const changed = events.some(e => e.type === 'settings');
    const reset = events.some(e => e.type === 'reset');
    // A reset may hide a missed change; it repeats every few seconds while the server is away.
    if (
      changed ||
      (reset && Date.now() - this._lastAttempt >= RETRY_INTERVAL)
    ) {
      void this._pull();
    }
  };

  /** Take the server's values into the registry. */
  private _pull(): Promise<void> {
    return this._queue('pull', async settings => {
      const server = await this._client.trackingSettings();
      this._server = server;
      if (!same(toTrackingSettings(settings), server)) {
        await this._write(settings, this._userWith(settings, server));
      }
    });
  }

  /** Send the registry's values (a change in the settings editor) to the server. */
  private _push(): Promise<void> {
    return this._queue('push', async settings => {
      const wanted = toTrackingSettings(settings);
      if (!same(wanted, this._server)) {
        this._server = await this._client.setTrackingSettings(wanted);
      }
    });
  }

  /** Run `step` after the steps before it: PUTs and GETs must not overtake each other. */
  private _queue(
    kind: 'pull' | 'push',
    step: (settings: ISettingRegistry.ISettings) => Promise<void>
  ): Promise<void> {
    const settings = this._settings;
    if (settings === null) {
      return Promise.resolve();
    }
    const next = this._pending.then(async () => {
      this._lastAttempt = Date.now();
      try {
        await step(settings);
        this._error = null;
        this._failed = null;
      } catch (reason) {
        this._fail(reason, kind);
        return;
      }
      this._applied.emit();
    });
    this._pending = next;
    return next;
  }

  /** The user's settings with the server's values; defaults are left out, as the editor does. */
  private _userWith(
    settings: ISettingRegistry.ISettings,
    server: ITrackingSettings
  ): PartialJSONObject {
    const others = Object.entries(settings.user).filter(
      ([key]) => !(KEYS as string[]).includes(key)
    );
    const user = Object.fromEntries(others) as PartialJSONObject;
    for (const key of KEYS) {
      const value = server[key] as PartialJSONValue;
      if (!JSONExt.deepEqual(value, settings.default(key) ?? DEFAULTS[key])) {
        user[key] = value;
      }
    }
    return user;
  }

  /** Save `user` as the plugin's settings, in one write, without sending it back. */
  private async _write(
    settings: ISettingRegistry.ISettings,
    user: PartialJSONObject
  ): Promise<void> {
    this._writing = true;
    try {
      await settings.save(JSON.stringify(user, null, 2));
    } finally {
      this._writing = false;
    }
  }

  private _fail(reason: unknown, kind: 'pull' | 'push' | null): void {
    // Silent on purpose: the status bar item shows "unavailable" with this reason.
    this._error = reason instanceof Error ? reason.message : String(reason);
    this._failed = kind;
    this._applied.emit();
  }

  private _error: string | null = null;
  private _failed: 'pull' | 'push' | null = null;
  private _settings: ISettingRegistry.ISettings | null = null;
  /** What the server last said its settings are. */
  private _server: ITrackingSettings | null = null;
  private _writing = false;
  private _lastAttempt = 0;
  private _pending: Promise<void> = Promise.resolve();
  private readonly _applied = new Signal<this, void>(this);
}
