import type { ISettingRegistry } from '@jupyterlab/settingregistry';
import { type ISignal, Signal } from '@lumino/signaling';

import type { CellopsClient, ITrackingSettings } from './api';

/** The plugin whose settings schema (schema/plugin.json) holds the tracking settings. */
export const SETTINGS_PLUGIN_ID = 'cellops:plugin';

/** Least milliseconds between two retries of a failed attempt. */
const RETRY_INTERVAL = 5000;

/** Defaults of schema/plugin.json, used for values that are missing or malformed. */
const DEFAULTS: ITrackingSettings = {
  tracking: true,
  exclude: [],
  max_output_size: 10000
};

/** The server's view of the user's settings (the schema validated them already). */
export function toTrackingSettings(
  settings: ISettingRegistry.ISettings
): ITrackingSettings {
  const tracking = settings.get('tracking').composite;
  const exclude = settings.get('exclude').composite;
  const maxOutputSize = settings.get('maxOutputSize').composite;
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

/**
 * Sends the user's tracking settings to the server when they load and whenever
 * they change, so the server (which does the recording) honours them.
 */
export class TrackingSettingsSync {
  constructor(private readonly _client: CellopsClient) {}

  /** Emits after each attempt to apply the settings, whether it worked or not. */
  get applied(): ISignal<this, void> {
    return this._applied;
  }

  /** Why the last attempt failed, or `null` if it worked (or none was made). */
  get error(): string | null {
    return this._error;
  }

  /** Load the plugin's settings from `registry` and keep the server in sync. */
  async start(registry: ISettingRegistry): Promise<void> {
    let settings: ISettingRegistry.ISettings;
    try {
      settings = await registry.load(SETTINGS_PLUGIN_ID);
    } catch (reason) {
      this._fail(reason);
      return;
    }
    this._settings = settings;
    settings.changed.connect(() => void this._push(settings));
    await this._push(settings);
  }

  /**
   * Apply the settings again if the last attempt failed (e.g. the server was
   * down at start-up); call when the server answers again. Rate-limited.
   */
  retry(): void {
    if (
      this._error !== null &&
      this._settings !== null &&
      Date.now() - this._lastAttempt >= RETRY_INTERVAL
    ) {
      void this._push(this._settings);
    }
  }

  private async _push(settings: ISettingRegistry.ISettings): Promise<void> {
    this._lastAttempt = Date.now();
    // Changes can come faster than the server answers: send them in order.
    const previous = this._pending;
    const next = previous.then(async () => {
      try {
        await this._client.setTrackingSettings(toTrackingSettings(settings));
        this._error = null;
      } catch (reason) {
        this._fail(reason);
        return;
      }
      this._applied.emit();
    });
    this._pending = next;
    await next;
  }

  private _fail(reason: unknown): void {
    // Silent on purpose: the status bar item shows "unavailable" with this reason.
    this._error = reason instanceof Error ? reason.message : String(reason);
    this._applied.emit();
  }

  private _error: string | null = null;
  private _settings: ISettingRegistry.ISettings | null = null;
  private _lastAttempt = 0;
  private _pending: Promise<void> = Promise.resolve();
  private readonly _applied = new Signal<this, void>(this);
}
