/**
 * Typed client of the team-review endpoints (issue 11): who am I, members, comments,
 * review requests, reviews, promotion checks, policies, the activity feed and the inbox.
 *
 * Wire types come from the generated OpenAPI types; calls go through `requestAPI`
 * (token + XSRF via `ServerConnection.makeRequest`) with the settings of a `CellopsClient`.
 */
import { ServerConnection } from '@jupyterlab/services';

import {
  CellopsAPIError,
  CellopsClient,
  IModel,
  IPage,
  requestAPI
} from './api';
import type { components } from './generated/openapi';

type Schemas = components['schemas'];

// -- Wire types -----------------------------------------------------------------------------

/** viewer < commenter < editor < approver < admin. */
export type Role = Schemas['Me']['role'];

/** `GET me`: the caller (embedded mode: the Jupyter user, admin). */
export type IMe = Schemas['Me'];

/** One member of the team (`GET users`). */
export type IUser = Schemas['UserItem'];

/** What a comment is about, as sent (`POST comments`). */
export type ICommentTarget = Schemas['CommentCreate']['target'];

/** A cell target: notebook path + cell id (+ `owner` for a teammate's notebook). */
export type ICellTarget = Schemas['CellTarget-Input'];

/** Which kinds of target exist: `cell`, `execution`, `run`, `model_version`. */
export type TargetKind = ICommentTarget['kind'];

/**
 * One comment. `html` is the server-rendered, sanitized Markdown body (a backend older
 * than this frontend may omit it: then the body is shown as plain text).
 */
export type IComment = Omit<Schemas['Comment'], 'html'> & { html?: string };

/** `PATCH comments/{id}`: a field left out is left as it is. */
export type ICommentUpdate = Schemas['CommentUpdate'];

/** Comments per cell of a notebook: the cell badges. */
export type ICellCommentCount = Schemas['CellCommentCount'];

export type ReviewState = Schemas['VersionReviews']['state'];

export type Verdict = Schemas['ReviewCreate']['verdict'];

/** One verdict of a reviewer. */
export type IReview = Schemas['Review'];

/** A version's review state, approvals, outstanding requests and every verdict. */
export type IVersionReviews = Schemas['VersionReviews'];

/** One rule a version fails for a protected alias (also in a refused move's 409). */
export type IFailedRule = Schemas['FailedRule'];

/** May this version take a protected alias now, and if not, what is missing. */
export type IAliasCheck = Schemas['AliasCheck'];

/** A model's promotion policy as read (`GET models/{name}/policy`). */
export type IPromotionPolicy = Schemas['PromotionPolicy-Output'];

/** A model's promotion policy as written (`PUT models/{name}/policy`). */
export type IPromotionPolicyInput = Schemas['PromotionPolicy-Input'];

/** The rule of one protected alias. */
export type IAliasRule = Schemas['AliasRule-Input'];

/** One record of the team's activity feed. */
export type IActivityItem = Schemas['ActivityItem'];

/** One item of the caller's inbox. */
export type IInboxItem = Schemas['InboxItem'];

/** The caller's inbox, newest first, and how many items are unread. */
export type IInboxPage = Schemas['InboxPage'];

/**
 * Filter of `GET comments`: exactly one target. A notebook may carry the identity
 * fields of `notebookIdentity` (a teammate's notebook), and `cell` narrows to one cell.
 */
export type ICommentQuery =
  | {
      notebook: string;
      cell?: string;
      owner?: string;
      repo?: string;
      repo_path?: string;
      own?: '0' | '1';
    }
  | { execution: number }
  | { run: number }
  | { model: string; version: number };

// -- Roles ----------------------------------------------------------------------------------

const ROLE_ORDER: readonly Role[] = [
  'viewer',
  'commenter',
  'editor',
  'approver',
  'admin'
];

/** Whether `role` is `needed` or above (unknown roles allow nothing). */
export function roleAllows(
  role: Role | null | undefined,
  needed: Role
): boolean {
  if (!role) {
    return false;
  }
  const have = ROLE_ORDER.indexOf(role);
  return have >= 0 && have >= ROLE_ORDER.indexOf(needed);
}

// -- Helpers --------------------------------------------------------------------------------

function query(
  params: Record<string, string | number | boolean | undefined | null>
): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') {
      search.set(key, String(value));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

function modelPath(name: string, version?: number): string {
  const base = `models/${encodeURIComponent(name)}`;
  return version === undefined ? base : `${base}/versions/${String(version)}`;
}

/**
 * The failed rules of a refused alias move (a 409 whose `detail.failed` lists them),
 * or `null` when `error` is something else.
 */
export function failedRules(error: unknown): IFailedRule[] | null {
  if (!(error instanceof CellopsAPIError) || error.status !== 409) {
    return null;
  }
  const detail = error.body?.detail as { failed?: unknown } | undefined;
  if (!detail || !Array.isArray(detail.failed)) {
    return null;
  }
  return detail.failed.filter(
    (rule): rule is IFailedRule =>
      typeof rule === 'object' &&
      rule !== null &&
      typeof (rule as Record<string, unknown>).rule === 'string'
  );
}

/** The notebook path a target concerns (cell targets), for `?notebook=` on writes. */
function targetNotebook(target: ICommentTarget): string | undefined {
  return target.kind === 'cell' ? target.notebook : undefined;
}

// -- The client -----------------------------------------------------------------------------

/**
 * One method per issue-11 endpoint of `cellops/api/v1` (see `openapi.json`).
 */
export class ReviewClient {
  constructor(
    readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  /** A review client talking to the same server as `client`. */
  static of(client: CellopsClient): ReviewClient {
    return new ReviewClient(client.settings);
  }

  /** The caller's name and role. */
  me(): Promise<IMe> {
    return this._get('me');
  }

  /**
   * The caller, asked once per client (a role changes only when an admin edits the
   * team); a failed answer is forgotten so the next call asks again.
   */
  whoami(): Promise<IMe> {
    if (!this._me) {
      const asked = this.me();
      this._me = asked;
      asked.catch(() => {
        if (this._me === asked) {
          this._me = null;
        }
      });
    }
    return this._me;
  }

  /** The team's members (mention completion, reviewer pickers). */
  async users(): Promise<IUser[]> {
    const list = await this._get<Schemas['UserList']>('users');
    return list.items;
  }

  // Comments

  /**
   * Comments on one target, oldest first, replies included (with `parent_id`); every
   * page of them (the server answers at most 2000 at a time).
   */
  async comments(filter: ICommentQuery): Promise<IComment[]> {
    const all: IComment[] = [];
    let after: number | null = null;
    for (;;) {
      const page: { items: IComment[]; next?: number | null } = await this._get(
        `comments${query({ ...filter, after })}`
      );
      all.push(...page.items);
      if (
        page.next === undefined ||
        page.next === null ||
        page.next === after
      ) {
        return all;
      }
      after = page.next;
    }
  }

  /** Per cell of a notebook: how many comments, how many unresolved threads. */
  async commentCounts(
    notebook: string,
    identity: Record<string, string | undefined> = {}
  ): Promise<ICellCommentCount[]> {
    const counts = await this._get<Schemas['CommentCounts']>(
      `comments/counts${query({ ...identity, notebook })}`
    );
    return counts.items;
  }

  /**
   * Start a thread on `target`, or reply to `parentId` (same target). `?notebook=` is
   * added for a cell so that a team client's forwarder adds the notebook's identity.
   */
  createComment(
    target: ICommentTarget,
    body: string,
    parentId?: number
  ): Promise<IComment> {
    const payload: Schemas['CommentCreate'] = { target, body };
    if (parentId !== undefined) {
      payload.parent_id = parentId;
    }
    return this._send(
      'POST',
      `comments${query({ notebook: targetNotebook(target) })}`,
      payload
    );
  }

  /** Edit a comment's body (author only) and/or resolve / reopen its thread. */
  updateComment(id: number, update: ICommentUpdate): Promise<IComment> {
    return this._send('PATCH', `comments/${String(id)}`, update);
  }

  /** Edit your own comment. */
  editComment(id: number, body: string): Promise<IComment> {
    return this.updateComment(id, { body });
  }

  /** Resolve (`true`) or reopen (`false`) a thread by its root comment. */
  resolveComment(id: number, resolved: boolean): Promise<IComment> {
    return this.updateComment(id, { resolved });
  }

  /** Delete a comment (yours; an admin any). One with replies leaves a tombstone. */
  deleteComment(id: number): Promise<void> {
    return requestAPI(
      `comments/${String(id)}`,
      { method: 'DELETE' },
      this.settings
    );
  }

  // Reviews

  /** Ask `reviewers` (user names) to review a version. */
  requestReview(
    name: string,
    version: number,
    reviewers: string[]
  ): Promise<IVersionReviews> {
    return this._send('POST', `${modelPath(name, version)}/review-requests`, {
      reviewers
    } satisfies Schemas['ReviewRequestCreate']);
  }

  /** A version's review state, approvals, outstanding requests and verdicts. */
  reviews(name: string, version: number): Promise<IVersionReviews> {
    return this._get(`${modelPath(name, version)}/reviews`);
  }

  /** Approve or request changes, with an optional comment (approver role). */
  submitReview(
    name: string,
    version: number,
    verdict: Verdict,
    body?: string
  ): Promise<IVersionReviews> {
    const payload: Schemas['ReviewCreate'] = { verdict };
    if (body !== undefined && body.trim() !== '') {
      payload.body = body;
    }
    return this._send('POST', `${modelPath(name, version)}/reviews`, payload);
  }

  /** For each protected alias: may this version take it now, and what is missing. */
  async promotionChecks(name: string, version: number): Promise<IAliasCheck[]> {
    const checks = await this._get<Schemas['PromotionChecks']>(
      `${modelPath(name, version)}/promotion`
    );
    return checks.items;
  }

  // Policies and aliases

  /** A model's promotion policy (empty `protected_aliases` when none is set). */
  policy(name: string): Promise<IPromotionPolicy> {
    return this._get(`${modelPath(name)}/policy`);
  }

  /** Replace a model's promotion policy (admin). */
  setPolicy(
    name: string,
    policy: IPromotionPolicyInput
  ): Promise<IPromotionPolicy> {
    return this._send('PUT', `${modelPath(name)}/policy`, policy);
  }

  /**
   * Point `alias` at `version`; `override` (admin) is the written reason to move a
   * protected alias although rules fail. A refusal is a 409: see `failedRules`.
   */
  moveAlias(
    name: string,
    alias: string,
    version: number,
    override?: string
  ): Promise<IModel> {
    const payload: Schemas['AliasSet'] = { version };
    if (override !== undefined) {
      payload.override = override;
    }
    return this._send(
      'PUT',
      `${modelPath(name)}/aliases/${encodeURIComponent(alias)}`,
      payload
    );
  }

  // Activity and inbox

  /** One page of the team's activity, newest first; `mine`: only what concerns me. */
  activity(
    options: { cursor?: string; limit?: number; mine?: boolean } = {}
  ): Promise<IPage<IActivityItem>> {
    return this._get(
      `activity${query({
        cursor: options.cursor,
        limit: options.limit,
        mine: options.mine ? 'true' : undefined
      })}`
    );
  }

  /** The caller's inbox, newest first, with the unread count. */
  inbox(limit?: number): Promise<IInboxPage> {
    return this._get(`inbox${query({ limit })}`);
  }

  /** Mark the caller's inbox items `ids` read; answers the inbox. */
  markInboxRead(ids: number[]): Promise<IInboxPage> {
    return this._send('POST', 'inbox/read', {
      ids
    } satisfies Schemas['InboxRead']);
  }

  private _me: Promise<IMe> | null = null;

  private _get<T>(endpoint: string): Promise<T> {
    return requestAPI<T>(endpoint, {}, this.settings);
  }

  private _send<T>(
    method: 'POST' | 'PUT' | 'PATCH',
    endpoint: string,
    body: unknown
  ): Promise<T> {
    return requestAPI<T>(
      endpoint,
      { method, body: JSON.stringify(body) },
      this.settings
    );
  }
}
