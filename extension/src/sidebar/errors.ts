import { ServerConnection } from '@jupyterlab/services';

import { CellopsAPIError, IPage } from '../api';

/** 404 on our own API root or no answer at all: the server extension is not there. */
export function isUnreachable(error: unknown): boolean {
  return (
    error instanceof ServerConnection.NetworkError ||
    (error instanceof CellopsAPIError &&
      error.status === 404 &&
      error.body === null)
  );
}

/** The Jupyter server answered, but the team backend it forwards to did not. */
export function isBackendDown(error: unknown): boolean {
  return (
    error instanceof CellopsAPIError &&
    (error.status === 502 || error.status === 503 || error.status === 504)
  );
}

/**
 * The server's JSON 404 for a notebook it has not recorded yet ("run a cell in it
 * first"): not a failure, just nothing to show.
 */
export function isUntracked(error: unknown): boolean {
  return (
    error instanceof CellopsAPIError &&
    error.status === 404 &&
    error.body !== null
  );
}

/** `request()`, or an empty page when the notebook is not tracked yet. */
export async function pageOrEmpty<T>(
  request: () => Promise<IPage<T>>
): Promise<IPage<T>> {
  try {
    return await request();
  } catch (error) {
    if (isUntracked(error)) {
      return { items: [], next: null };
    }
    throw error;
  }
}
