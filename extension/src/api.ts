import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { components } from './generated/openapi';

/**
 * URL namespace of the cellops server extension, relative to the base URL.
 */
export const API_NAMESPACE = 'cellops/api/v1';

/**
 * The JSON body the cellops server sends with an error status.
 */
export interface IErrorBody {
  error: string;
  [key: string]: unknown;
}

/**
 * An error answer from the cellops server (any non-2xx status).
 */
export class CellopsAPIError extends ServerConnection.ResponseError {
  /**
   * @param response the HTTP response
   * @param body the parsed `{"error": ...}` body, or `null` if there was none
   */
  constructor(
    response: Response,
    readonly body: IErrorBody | null
  ) {
    super(
      response,
      body?.error ??
        `cellops API ${String(response.status)} ${response.statusText}`
    );
    this.name = 'CellopsAPIError';
  }

  /**
   * The HTTP status code.
   */
  get status(): number {
    return this.response.status;
  }
}

function isErrorBody(value: unknown): value is IErrorBody {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<string, unknown>).error === 'string'
  );
}

/**
 * Call the cellops REST API.
 *
 * @param endpoint path below `cellops/api/v1`, e.g. `'status'`
 * @param init fetch options (method, body, ...)
 * @param settings server connection settings (default: the page's)
 * @returns the decoded JSON answer (`undefined` for an empty body)
 * @throws {CellopsAPIError} if the server answers with an error status
 * @throws {ServerConnection.NetworkError} if the server cannot be reached
 */
export async function requestAPI<T>(
  endpoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endpoint);

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }

  const text = await response.text();
  let data: unknown = undefined;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }

  if (!response.ok) {
    throw new CellopsAPIError(response, isErrorBody(data) ? data : null);
  }
  return data as T;
}

// -- Wire types: generated from the pydantic models of server/cellops_server/schemas.py ------
// (extension/openapi.json -> src/generated/openapi.ts: `jlpm build:api`; README "Developing").

type Schemas = components['schemas'];

/** `T` with the fields `K` optional: a team backend older than this frontend omits them. */
type WithOptional<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;

/**
 * One page of a list endpoint; pass `next` back as `?cursor=` for the following page.
 */
export interface IPage<T> {
  items: T[];
  next: string | null;
}

export interface IGitState {
  commit?: string;
  branch?: string | null;
  dirty?: boolean;
  [key: string]: unknown;
}

/** The CI job that ran a headless run (`cellops run` under CI); `url` is user-supplied. */
export type IRunCI = Schemas['CiInfo'];

/** How a headless run ended; null for interactive runs and runs still going. */
export type RunOutcome = 'ok' | 'error' | 'timeout';

/**
 * A run: one kernel session on a notebook, or one `cellops run` (`source` "headless",
 * with its parameters, CI job and outcome; a backend older than issue 13 omits those).
 */
export type IRun = WithOptional<
  Omit<Schemas['Run'], 'git'>,
  | 'number'
  | 'metrics'
  | 'params'
  | 'tags'
  | 'source'
  | 'parameters'
  | 'ci'
  | 'outcome'
> & { git: IGitState | null };

export type ExecutionStatus = Schemas['Execution']['status'];

export type IExecutionError = Schemas['ExecutionError'];

/**
 * One executed cell. `outputs` follow nbformat's output shapes, except that binary
 * data is `{"blob": sha256, "size": n}` (bytes at `blobs/{sha256}`) and data too large to
 * store is `{"omitted": reason, "size": n}`; an `{"output_type": "note", "text"}` item
 * says that outputs were dropped.
 */
export type IExecution = Schemas['Execution'];

/** A numbered executed state of a notebook. */
export type IVersion = Schemas['Version'];

export type ILineChange = Schemas['LineChange'];

export type ICellChange = Schemas['CellChange'];

export type ICellCode = Schemas['CellCode'];

export type IVersionDiff = Schemas['VersionDiff'];

export type IRestoreResult = Schemas['RestoreResult'];

export type IStatus = WithOptional<
  Schemas['Status'],
  'excluded_by' | 'kernel_pending' | 'kernel_error'
>;

/** What the server honours from the user's settings (`GET`/`PUT settings`). */
export type ITrackingSettings = Schemas['TrackingSettings-Output'];

/**
 * Something changed on the server: records of `notebooks` were stored (`executions`),
 * `models` got versions or their versions or aliases changed (`models`), the tracking
 * settings changed (`settings`), or anything may have changed (`reset`).
 */
export type IActivityEvent = Schemas['ActivityEvent'];

export type IEventsReply = Schemas['EventsReply'];

/** A registered model (`GET models`). */
export type IModel = Schemas['Model'];

/** Where a model version came from; ids are null until the writer stored them. */
export type ILineage = Schemas['Lineage'];

/** One logged value of a metric (`GET executions/{id}/logs`). */
export type IMetricPoint = Schemas['MetricPoint'];

/** What an execution logged with `cellops.log_*` (`GET executions/{id}/logs`). */
export type IExecutionLogs = Schemas['ExecutionLogs'];

/** One version of a model (`GET models/{name}/versions`). */
export type IModelVersion = Schemas['ModelVersion'];

// -- The typed client -----------------------------------------------------------------------

function query(
  params: Record<string, string | number | undefined | null>
): string {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/** A tracked notebook (`GET notebooks`): whose it is and how active. */
export type INotebook = Schemas['Notebook'];

/** One cell of a notebook version with its latest execution's summary. */
export type INotebookCell = Schemas['NotebookCell'];

/** A notebook's cells, read-only (`GET notebooks/{id}/cells`). */
export type INotebookCells = Schemas['NotebookCells'];

/** Filters of `GET notebooks`: `owner` a member's name or `me`, `q` a path substring. */
export interface INotebookQuery {
  owner?: string;
  q?: string;
  cursor?: string;
  limit?: number;
}

/**
 * Filters and sort of `GET runs` (each filter repeatable, all must hold):
 * `metric` "accuracy>0.9", `param` "alpha=0.1", `tag` "baseline" or "stage=baseline",
 * `sort` "-started" (default), "started", "metric:NAME" or "-metric:NAME".
 */
export interface IRunSearch {
  metric?: string[];
  param?: string[];
  tag?: string[];
  sort?: string;
}

export type IVersionChanges = Schemas['VersionChanges'];

/** `PATCH versions/{id}`: a field left out is left as it is; a blank name clears it. */
export type IVersionUpdate = Schemas['VersionUpdate'];

/**
 * One method per endpoint of `cellops/api/v1` (see `openapi.json`).
 */
export class CellopsClient {
  constructor(
    readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  status(notebook?: string): Promise<IStatus> {
    return requestAPI<IStatus>(
      `status${query({ notebook })}`,
      {},
      this.settings
    );
  }

  runs(notebook: string, cursor?: string, limit = 50): Promise<IPage<IRun>> {
    return requestAPI(
      `runs${query({ notebook, cursor, limit })}`,
      {},
      this.settings
    );
  }

  run(id: number): Promise<IRun> {
    return requestAPI(`runs/${String(id)}`, {}, this.settings);
  }

  /** Executions of a run in request order; `limit` up to 500. */
  runExecutions(
    runId: number,
    cursor?: string,
    limit = 500
  ): Promise<IPage<IExecution>> {
    return requestAPI(
      `runs/${String(runId)}/executions${query({ cursor, limit })}`,
      {},
      this.settings
    );
  }

  /** Executions of a notebook (optionally of one cell), newest first. */
  executions(
    notebook: string,
    options: { cell?: string; cursor?: string; limit?: number } = {}
  ): Promise<IPage<IExecution>> {
    return requestAPI(
      `executions${query({ notebook, ...options })}`,
      {},
      this.settings
    );
  }

  execution(id: number): Promise<IExecution> {
    return requestAPI(`executions/${String(id)}`, {}, this.settings);
  }

  /** Params, metrics and tags an execution logged. */
  executionLogs(id: number): Promise<IExecutionLogs> {
    return requestAPI(`executions/${String(id)}/logs`, {}, this.settings);
  }

  /** Versions of a notebook, newest first. */
  versions(
    notebook: string,
    cursor?: string,
    limit = 100
  ): Promise<IPage<IVersion>> {
    return requestAPI(
      `versions${query({ notebook, cursor, limit })}`,
      {},
      this.settings
    );
  }

  diff(fromId: number, toId: number): Promise<IVersionDiff> {
    return requestAPI(
      `versions/${String(fromId)}/diff/${String(toId)}`,
      {},
      this.settings
    );
  }

  restore(versionId: number, path?: string): Promise<IRestoreResult> {
    return requestAPI(
      `versions/${String(versionId)}/restore`,
      { method: 'POST', body: JSON.stringify(path ? { path } : {}) },
      this.settings
    );
  }

  /** URL of a stored binary output, for `fetch` with the server's credentials. */
  async blob(sha: string): Promise<Blob> {
    const url = URLExt.join(this.settings.baseUrl, API_NAMESPACE, 'blobs', sha);
    const response = await ServerConnection.makeRequest(url, {}, this.settings);
    if (!response.ok) {
      throw new CellopsAPIError(response, null);
    }
    return response.blob();
  }

  /** Models; archived ones too with `archived`. */
  models(
    cursor?: string,
    limit = 100,
    archived = false
  ): Promise<IPage<IModel>> {
    return requestAPI(
      `models${query({ cursor, limit, archived: archived ? 'true' : undefined })}`,
      {},
      this.settings
    );
  }

  /** Versions of a model, newest first; archived ones too with `archived`. */
  modelVersions(
    name: string,
    cursor?: string,
    limit = 100,
    archived = false
  ): Promise<IPage<IModelVersion>> {
    return requestAPI(
      `models/${encodeURIComponent(name)}/versions${query({ cursor, limit, archived: archived ? 'true' : undefined })}`,
      {},
      this.settings
    );
  }

  /** Point `alias` at `version` (moves it if it pointed elsewhere). */
  setAlias(name: string, alias: string, version: number): Promise<IModel> {
    return requestAPI(
      `models/${encodeURIComponent(name)}/aliases/${encodeURIComponent(alias)}`,
      { method: 'PUT', body: JSON.stringify({ version }) },
      this.settings
    );
  }

  deleteAlias(name: string, alias: string): Promise<void> {
    return requestAPI(
      `models/${encodeURIComponent(name)}/aliases/${encodeURIComponent(alias)}`,
      { method: 'DELETE' },
      this.settings
    );
  }

  /** The notebook that produced a version (`minimal`: only the cells it needs). */
  lineageNotebook(
    name: string,
    version: number,
    minimal: boolean
  ): Promise<Record<string, unknown>> {
    return requestAPI(
      `models/${encodeURIComponent(name)}/versions/${String(version)}/notebook${query({ minimal: minimal ? 'true' : undefined })}`,
      {},
      this.settings
    );
  }

  trackingSettings(): Promise<ITrackingSettings> {
    return requestAPI('settings', {}, this.settings);
  }

  setTrackingSettings(value: ITrackingSettings): Promise<ITrackingSettings> {
    return requestAPI(
      'settings',
      { method: 'PUT', body: JSON.stringify(value) },
      this.settings
    );
  }

  /**
   * Long poll: answers as soon as there are events after `after` (or after `timeout`
   * seconds with none). Without `after`, answers at once with the current `last`.
   */
  events(
    after?: number,
    timeout = 25,
    signal?: AbortSignal
  ): Promise<IEventsReply> {
    return requestAPI(
      `events${query({ after, timeout })}`,
      { signal },
      this.settings
    );
  }

  /** The team's tracked notebooks, most recently active first. */
  notebooks(options: INotebookQuery = {}): Promise<IPage<INotebook>> {
    return requestAPI(`notebooks${query({ ...options })}`, {}, this.settings);
  }

  /** A notebook's cells at `version` (the latest by default). */
  notebookCells(id: number, version?: number): Promise<INotebookCells> {
    return requestAPI(
      `notebooks/${String(id)}/cells${query({ version })}`,
      {},
      this.settings
    );
  }

  /** Runs of a listed notebook (a teammate's too), newest first. */
  notebookRuns(
    notebook: INotebook,
    cursor?: string,
    limit = 50
  ): Promise<IPage<IRun>> {
    return requestAPI(
      `runs${query({ ...notebookIdentity(notebook), cursor, limit })}`,
      {},
      this.settings
    );
  }

  /** Versions of a listed notebook (a teammate's too), newest first. */
  notebookVersions(
    notebook: INotebook,
    cursor?: string,
    limit = 100
  ): Promise<IPage<IVersion>> {
    return requestAPI(
      `versions${query({ ...notebookIdentity(notebook), cursor, limit })}`,
      {},
      this.settings
    );
  }

  /** A version as an nbformat 4 notebook. */
  versionNotebook(id: number): Promise<Record<string, unknown>> {
    return requestAPI(`versions/${String(id)}`, {}, this.settings);
  }

  /**
   * Runs of `notebook` matching `search`, in its order (newest first by default).
   * `identity` tells a teammate's notebook apart (`notebookIdentity`).
   */
  searchRuns(
    notebook: string,
    search: IRunSearch,
    cursor?: string,
    limit = 50,
    identity: Record<string, string | undefined> = {}
  ): Promise<IPage<IRun>> {
    const params = new URLSearchParams({ notebook, limit: String(limit) });
    for (const [key, value] of Object.entries(identity)) {
      if (value !== undefined) {
        params.set(key, value);
      }
    }
    for (const kind of ['metric', 'param', 'tag'] as const) {
      (search[kind] ?? []).forEach(value => {
        params.append(kind, value);
      });
    }
    if (search.sort) {
      params.set('sort', search.sort);
    }
    if (cursor) {
      params.set('cursor', cursor);
    }
    return requestAPI(`runs?${params.toString()}`, {}, this.settings);
  }

  /** Name and/or pin a version (its notebook's owner only, in team mode). */
  patchVersion(versionId: number, update: IVersionUpdate): Promise<IVersion> {
    return requestAPI(
      `versions/${String(versionId)}`,
      { method: 'PATCH', body: JSON.stringify(update) },
      this.settings
    );
  }

  /** A model: its highest version and aliases. */
  model(name: string): Promise<IModel> {
    return requestAPI(`models/${encodeURIComponent(name)}`, {}, this.settings);
  }

  /** One version of a model (archived or not). */
  modelVersion(name: string, version: number): Promise<IModelVersion> {
    return requestAPI(
      `models/${encodeURIComponent(name)}/versions/${String(version)}`,
      {},
      this.settings
    );
  }

  /** Archive (hide; 409 while an alias points at it) or unarchive a version. */
  setModelVersionArchived(
    name: string,
    version: number,
    archived: boolean
  ): Promise<IModelVersion> {
    return requestAPI(
      `models/${encodeURIComponent(name)}/versions/${String(version)}`,
      { method: 'PATCH', body: JSON.stringify({ archived }) },
      this.settings
    );
  }

  /** Delete a version (409 while an alias points at it). */
  deleteModelVersion(name: string, version: number): Promise<void> {
    return requestAPI(
      `models/${encodeURIComponent(name)}/versions/${String(version)}`,
      { method: 'DELETE' },
      this.settings
    );
  }

  /** Archive (hide; 409 while it has an alias) or unarchive a model. */
  setModelArchived(name: string, archived: boolean): Promise<IModel> {
    return requestAPI(
      `models/${encodeURIComponent(name)}`,
      { method: 'PATCH', body: JSON.stringify({ archived }) },
      this.settings
    );
  }

  /** Delete a model and all its versions (409 while it has an alias). */
  deleteModel(name: string): Promise<void> {
    return requestAPI(
      `models/${encodeURIComponent(name)}`,
      { method: 'DELETE' },
      this.settings
    );
  }
}

/**
 * `?notebook=` plus what tells a listed notebook apart from others at its path:
 * its owner, or its git repository (an embedded notebook is the path alone).
 */
export function notebookIdentity(
  notebook: INotebook
): Record<string, string | undefined> {
  if (notebook.repo !== null && notebook.repo_path !== null) {
    return {
      notebook: notebook.path,
      repo: notebook.repo,
      repo_path: notebook.repo_path
    };
  }
  return { notebook: notebook.path, owner: notebook.owner ?? undefined };
}
