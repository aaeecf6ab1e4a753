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
