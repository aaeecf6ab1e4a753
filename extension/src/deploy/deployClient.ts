/**
 * Typed client of the deployment endpoints (issue 12): create, list, read, change (roll
 * back, follow an alias, split traffic, public or keyed), delete, events, per-minute
 * metrics, drift per feature and key rotation.
 *
 * Calls go through `requestAPI` (token + XSRF via `ServerConnection.makeRequest`) with the
 * settings of a `CellopsClient`. The wire types are generated from the section
 * "deployments (issue 12)" of server/cellops_server/schemas.py.
 */
import { ServerConnection } from '@jupyterlab/services';

import { CellopsClient, requestAPI } from '../api';
import type { components } from '../generated/openapi';

// -- Wire types: generated from schemas.py (extension/openapi.json, `jlpm build:api`) ------

type Schemas = components['schemas'];

export type DeploymentState = Schemas['Deployment']['state'];

/** One version's share of the requests, in percent. */
export type ITrafficShare = Schemas['TrafficShare'];

/**
 * A deployment: what it serves (`version`, or the `alias` it follows), its `state` and
 * `error`, the traffic split, its URLs (`v2`: OIP, `invocations`: MLflow scoring), public.
 */
export type IDeployment = Schemas['Deployment'];

/** `POST deployments`: the deployment and, this once, its key (null when public). */
export type IDeploymentCreated = Schemas['DeploymentCreated'];

/** `POST deployments`: one of `version` or `alias` (neither: the latest version). */
export type IDeploymentCreate = Schemas['DeploymentCreate'];

/** `PATCH deployments/{name}`: exactly one change. */
export type IDeploymentPatch =
  | { version: number }
  | { alias: string }
  | { traffic: ITrafficShare[] }
  | { public: boolean };

/** What happened to a deployment, who (null: the serving router) and when. */
export type IDeploymentEvent = Schemas['DeploymentEvent'];

/** One version's requests in one minute; latencies in seconds (null: no requests). */
export type IDeploymentMinute = Schemas['DeploymentMinute'];

/** `GET deployments/{name}/metrics?window=`: per minute and version. */
export type IDeploymentMetrics = Schemas['DeploymentMetrics'];

/** `GET deployments/{name}/drift?window=`: per served version, per feature. */
export type IDeploymentDrift = Schemas['DeploymentDrift'];

// -- The client -----------------------------------------------------------------------------

function deploymentPath(name: string, rest = ''): string {
  return `deployments/${encodeURIComponent(name)}${rest}`;
}

/**
 * One method per deployment endpoint of `cellops/api/v1` (see `openapi.json`).
 */
export class DeployClient {
  constructor(
    readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  /** A deploy client talking to the same server as `client`. */
  static of(client: CellopsClient): DeployClient {
    return new DeployClient(client.settings);
  }

  async list(): Promise<IDeployment[]> {
    const reply = await this._request<Schemas['DeploymentList']>('deployments');
    return reply.items;
  }

  get(name: string): Promise<IDeployment> {
    return this._request(deploymentPath(name));
  }

  /** Deploy; the answer carries the inference key this once. */
  create(body: IDeploymentCreate): Promise<IDeploymentCreated> {
    return this._request('deployments', 'POST', body);
  }

  /** One change: roll back or pin a version, follow an alias, split traffic, public. */
  update(name: string, patch: IDeploymentPatch): Promise<IDeployment> {
    return this._request(deploymentPath(name), 'PATCH', patch);
  }

  async remove(name: string): Promise<void> {
    await this._request(deploymentPath(name), 'DELETE');
  }

  /** What happened to it, with who and when. */
  async events(name: string): Promise<IDeploymentEvent[]> {
    const reply = await this._request<Schemas['DeploymentEventList']>(
      deploymentPath(name, '/events')
    );
    return reply.items;
  }

  /** Per minute and version, the last `window` minutes. */
  metrics(name: string, window = 60): Promise<IDeploymentMetrics> {
    return this._request(
      deploymentPath(name, `/metrics?window=${String(window)}`)
    );
  }

  /** Drift per feature of the sampled requests of the last `window` minutes. */
  drift(name: string, window = 60): Promise<IDeploymentDrift> {
    return this._request(
      deploymentPath(name, `/drift?window=${String(window)}`)
    );
  }

  /** A new inference key, shown this once; the old one stops working. */
  async rotateKey(name: string): Promise<string> {
    const reply = await this._request<Schemas['DeploymentKey']>(
      deploymentPath(name, '/key'),
      'POST'
    );
    return reply.key;
  }

  private _request<T>(
    endpoint: string,
    method = 'GET',
    body?: unknown
  ): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    return requestAPI<T>(endpoint, init, this.settings);
  }
}
