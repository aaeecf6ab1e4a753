import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

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

// -- Wire types: mirror the pydantic models of server/cellops_server/schemas.py --------------

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

/** A run: one kernel session on a notebook. */
export interface IRun {
  id: number;
  notebook: string;
  kernel_id: string;
  user: string | null;
  started_at: string;
  ended_at: string | null;
  git: IGitState | null;
  kernel_spec: Record<string, unknown> | null;
  executions: number;
  errors: number;
}

export type ExecutionStatus = 'running' | 'ok' | 'error' | 'aborted';

export interface IExecutionError {
  ename: string;
  evalue: string;
  traceback: string[];
}

/**
 * One executed cell. `outputs` follow nbformat's output shapes, except that binary
 * data is `{"blob": sha256, "size": n}` (bytes at `blobs/{sha256}`) and data too large to
 * store is `{"omitted": reason, "size": n}`; an `{"output_type": "note", "text"}` item
 * says that outputs were dropped.
 */
export interface IExecution {
  id: number;
  run_id: number;
  notebook: string;
  seq: number;
  msg_id: string;
  cell_id: string | null;
  code: string;
  status: ExecutionStatus;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  execution_count: number | null;
  outputs: Record<string, unknown>[];
  mime_types: string[];
  error: IExecutionError | null;
  version: number | null;
}

/** A numbered executed state of a notebook. */
export interface IVersion {
  id: number;
  notebook: string;
  number: number;
  created_at: string;
  execution_id: number | null;
  cells: number;
}

export interface ILineChange {
  op: 'equal' | 'insert' | 'delete';
  text: string;
}

export interface ICellChange {
  cell_id: string;
  old: string;
  new: string;
  lines: ILineChange[];
  unified: string;
}

export interface ICellCode {
  cell_id: string;
  code: string;
}

export interface IVersionDiff {
  notebook: string;
  from_version: IVersion;
  to_version: IVersion;
  added: ICellCode[];
  removed: ICellCode[];
  changed: ICellChange[];
  unchanged: number;
}

export interface IRestoreResult {
  path: string;
}

export interface IStatus {
  version: string;
  mode: 'embedded' | 'team-client' | 'team-backend';
  /** Tracking switched on for this server. */
  tracking: boolean;
  /** Whether executions of `?notebook=` are recorded (off if tracking is off or it is excluded). */
  notebook_tracking: boolean | null;
  spool_pending: number;
  backend_reachable: boolean | null;
  last_error: string | null;
}

/** What the server honours from the user's settings (`GET`/`PUT settings`). */
export interface ITrackingSettings {
  tracking: boolean;
  exclude: string[];
  max_output_size: number;
}

/**
 * Something changed on the server: records of `notebooks` were stored (`executions`),
 * `models` got versions or their versions or aliases changed (`models`), or anything
 * may have changed (`reset`).
 */
export interface IActivityEvent {
  seq: number;
  type: 'executions' | 'models' | 'reset';
  notebooks: string[];
  models: string[];
  at: string;
}

export interface IEventsReply {
  events: IActivityEvent[];
  /** Pass as `?after=` on the next call. */
  last: number;
}

/** A registered model (`GET models`). */
export interface IModel {
  name: string;
  description: string | null;
  latest_version: number;
  aliases: Record<string, number>;
  created_at: string;
  updated_at: string;
}

/** Where a model version came from; ids are null until the writer stored them. */
export interface ILineage {
  msg_id: string | null;
  execution_id: number | null;
  run_id: number | null;
  version_id: number | null;
  /** The notebook version's number, as the Versions tab shows it. */
  version_number: number | null;
  notebook: string | null;
  data_fingerprints: Record<string, unknown>[];
}

/** One logged value of a metric (`GET executions/{id}/logs`). */
export interface IMetricPoint {
  value: number;
  step: number | null;
  at: string;
}

/** What an execution logged with `cellops.log_*` (`GET executions/{id}/logs`). */
export interface IExecutionLogs {
  params: Record<string, unknown>;
  /** Every logged value, oldest first. */
  metrics: Record<string, IMetricPoint[]>;
  tags: Record<string, string>;
}

/** One version of a model (`GET models/{name}/versions`). */
export interface IModelVersion {
  model: string;
  version: number;
  aliases: string[];
  artifact: string;
  artifact_size: number;
  flavor: string;
  library_versions: Record<string, string>;
  signature: Record<string, unknown> | null;
  metrics: Record<string, number>;
  params: Record<string, unknown>;
  tags: Record<string, string>;
  description: string | null;
  created_by: string | null;
  created_at: string;
  lineage: ILineage;
}

// -- The typed client -----------------------------------------------------------------------

function query(
  params: Record<string, string | number | undefined | null>
): string {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

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

  models(cursor?: string, limit = 100): Promise<IPage<IModel>> {
    return requestAPI(`models${query({ cursor, limit })}`, {}, this.settings);
  }

  modelVersions(
    name: string,
    cursor?: string,
    limit = 100
  ): Promise<IPage<IModelVersion>> {
    return requestAPI(
      `models/${encodeURIComponent(name)}/versions${query({ cursor, limit })}`,
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
}
