/**
 * Users of a Tableau Server or Tableau Cloud site, checked through Tableau's REST API: sign in with
 * the user's own name and password, read the user's details and groups, sign out.
 * REST API reference: https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_authentication.htm
 */
import type { Logger } from 'pino';
import { AppError } from '../errors.js';
import { TABLEAU_TOKEN_CLAIM, type TableauCredentials } from '../services/tableau-token.js';
import type { AuthOutcome, Identity, PasswordAuthenticator } from './types.js';

export const TABLEAU_SOURCE = 'tableau';

export const IDP_UNAVAILABLE_MESSAGE = 'Tableau is not reachable right now. Try again shortly.';

/** serverinfo exists from REST API 2.4 on and needs no sign-in; it tells the newest version the server speaks. */
const DISCOVERY_VERSION = '2.4';

/** "Get Groups for a User" needs REST API 3.7 (Tableau 2020.1) or newer. */
export const MIN_API_VERSION = '3.7';

/** Tableau's largest page size; a user in more groups than this costs one more request per page. */
const MAX_PAGE_SIZE = 1000;

/** A user in this many pages of groups is suspicious; stop rather than loop forever on a broken server. */
const MAX_GROUP_PAGES = 50;

/**
 * How long a kept credentials token is assumed to live: Tableau Server's default session timeout
 * (240 minutes). Tableau may end it earlier (idle timeout, restart); the gate then passes on
 * Tableau's 401 and the user signs in again.
 */
const TOKEN_LIFETIME_SECONDS = 240 * 60;

export interface TableauAuthenticatorOptions {
  /** Server root, e.g. https://tableau.example.com (no /api, no trailing slash needed). */
  url: string;
  /** The site's content URL as in /#/site/<contentUrl>/; '' is the Default site. */
  site: string;
  /** e.g. '3.19'. When absent it is read once from serverinfo and cached. */
  apiVersion?: string;
  /** Per request to Tableau. */
  timeoutMs: number;
  fetch?: typeof globalThis.fetch;
  logger: Logger;
  /** Groups per page (1..1000). Default 1000. */
  pageSize?: number;
  /**
   * When set, the Tableau session is kept (no sign-out) and this sealed form of its credentials
   * becomes the `tta` session claim (see services/tableau-token.ts). When absent, the Tableau
   * session is signed out right after reading the user.
   */
  sealCredentials?: (creds: TableauCredentials) => string;
  /** Milliseconds since the epoch, for the token's estimated expiry. Default Date.now. */
  now?: () => number;
}

/** Compares "3.19" with "3.7" numerically: negative, zero or positive. */
export function compareApiVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am !== bm ? am - bm : an - bn;
}

const API_VERSION = /^[0-9]{1,2}\.[0-9]{1,3}$/;

/** A response Tableau did answer, with its status and parsed JSON body (null when not JSON). */
interface TableauResponse {
  status: number;
  body: unknown;
}

/** Thrown inside this module only; becomes ERR_IDP_UNAVAILABLE at the boundary. */
class TableauCallError extends Error {
  constructor(
    message: string,
    readonly tableauCode?: string,
  ) {
    super(message);
    this.name = 'TableauCallError';
  }
}

function field(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Tableau's error code ("401001"), from `{"error":{"code":...}}`, or undefined. */
function errorCode(body: unknown): string | undefined {
  const code = field(body, 'error', 'code');
  return typeof code === 'string' || typeof code === 'number' ? String(code) : undefined;
}

/**
 * Creates the Tableau source.
 *
 * Guaranteed: `sub` is `tableau:<site-id>:<user-id>` (Tableau's ids, never the renamable name);
 * a rejected sign-in (401001, which Tableau also answers for an unknown user or site) and any other
 * 4xx answer to the sign-in are `invalid`, with Tableau's error code logged; an unreachable, slow
 * (each request is cut after `timeoutMs`) or failing (5xx, unexpected answer) Tableau throws
 * AppError('ERR_IDP_UNAVAILABLE', 503); all group pages are read; the Tableau session is signed out
 * again (best effort), unless `sealCredentials` is given: then it is kept and sealed into `tta`. The password and the Tableau token are never logged.
 * Not checked: that the user may query itself on servers that restrict Query User On Site to
 * administrators (such a server answers 403, reported as unavailable and logged); timing parity
 * between unknown users and wrong passwords (Tableau's own); the API version is detected once per
 * process, so a server upgrade is only noticed after a restart.
 */
export function createTableauAuthenticator(opts: TableauAuthenticatorOptions): PasswordAuthenticator {
  const { site, timeoutMs, logger } = opts;
  const baseUrl = opts.url.replace(/\/+$/, '');
  const doFetch = opts.fetch ?? globalThis.fetch;
  const pageSize = Math.min(Math.max(1, Math.floor(opts.pageSize ?? MAX_PAGE_SIZE)), MAX_PAGE_SIZE);
  let versionPromise: Promise<string> | null = opts.apiVersion === undefined ? null : Promise.resolve(opts.apiVersion);

  async function call(method: 'GET' | 'POST', path: string, init: { token?: string; body?: unknown } = {}): Promise<TableauResponse> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (init.token !== undefined) headers['x-tableau-auth'] = init.token;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    let raw: string;
    try {
      response = await doFetch(baseUrl + path, {
        method,
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        redirect: 'error',
        signal: AbortSignal.timeout(timeoutMs),
      });
      raw = await response.text();
    } catch (err) {
      // Duck-typed: fetch's DOMException does not always share this realm's Error.
      const { name, message } = (typeof err === 'object' && err !== null ? err : {}) as { name?: unknown; message?: unknown };
      const timedOut = name === 'TimeoutError' || name === 'AbortError';
      throw new TableauCallError(timedOut ? `no answer within ${timeoutMs} ms` : `request failed: ${typeof message === 'string' ? message : String(err)}`);
    }
    let body: unknown = null;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        body = null;
      }
    }
    return { status: response.status, body };
  }

  function unexpected(what: string, res: TableauResponse): TableauCallError {
    const code = errorCode(res.body);
    return new TableauCallError(`${what} answered ${res.status}${code === undefined ? '' : ` (Tableau error ${code})`}`, code);
  }

  async function detectVersion(): Promise<string> {
    const res = await call('GET', `/api/${DISCOVERY_VERSION}/serverinfo`);
    const version = field(res.body, 'serverInfo', 'restApiVersion');
    if (res.status !== 200 || typeof version !== 'string' || !API_VERSION.test(version)) throw unexpected('serverinfo', res);
    if (compareApiVersions(version, MIN_API_VERSION) < 0) {
      throw new TableauCallError(`the server speaks REST API ${version}; ${MIN_API_VERSION} or newer is needed`);
    }
    logger.info({ event: 'tableau_api_version', src: TABLEAU_SOURCE, api_version: version }, `Tableau REST API ${version} detected`);
    return version;
  }

  function apiVersion(): Promise<string> {
    versionPromise ??= detectVersion().catch((err: unknown) => {
      // Not cached: the next sign-in asks again.
      versionPromise = null;
      throw err;
    });
    return versionPromise;
  }

  async function readGroups(api: string, token: string, siteId: string, userId: string): Promise<string[]> {
    const groups: string[] = [];
    for (let page = 1; page <= MAX_GROUP_PAGES; page++) {
      const res = await call('GET', `${api}/sites/${encodeURIComponent(siteId)}/users/${encodeURIComponent(userId)}/groups?pageSize=${pageSize}&pageNumber=${page}`, {
        token,
      });
      if (res.status !== 200) throw unexpected('get groups for user', res);
      let list = field(res.body, 'groups', 'group');
      if (list === undefined) list = [];
      if (!Array.isArray(list)) list = [list];
      for (const g of list as unknown[]) {
        const name = text(field(g, 'name'));
        if (name !== undefined) groups.push(name);
      }
      const total = Number(field(res.body, 'pagination', 'totalAvailable'));
      const size = Number(field(res.body, 'pagination', 'pageSize'));
      const number = Number(field(res.body, 'pagination', 'pageNumber'));
      // Without a usable pagination element there is nothing to follow.
      if (!Number.isFinite(total) || !Number.isFinite(size) || !Number.isFinite(number) || size < 1) return groups;
      if (number * size >= total || (list as unknown[]).length === 0) return groups;
    }
    throw new TableauCallError(`more than ${MAX_GROUP_PAGES} pages of groups`);
  }

  async function signOut(api: string, token: string, requestId: string): Promise<void> {
    try {
      const res = await call('POST', `${api}/auth/signout`, { token });
      if (res.status >= 300) throw unexpected('sign-out', res);
    } catch (err) {
      logger.warn({ event: 'tableau_signout_failed', src: TABLEAU_SOURCE, request_id: requestId, reason: (err as Error).message }, 'Tableau sign-out failed');
    }
  }

  async function authenticate(username: string, password: string, requestId: string): Promise<AuthOutcome> {
    const version = await apiVersion();
    const api = `/api/${version}`;
    const signIn = await call('POST', `${api}/auth/signin`, { body: { credentials: { name: username, password, site: { contentUrl: site } } } });
    if (signIn.status >= 400 && signIn.status < 500) {
      const code = errorCode(signIn.body);
      logger.info({ event: 'tableau_signin_rejected', src: TABLEAU_SOURCE, user: username, status: signIn.status, tableau_code: code ?? null, request_id: requestId });
      return { kind: 'invalid' };
    }
    const token = text(field(signIn.body, 'credentials', 'token'));
    const siteId = text(field(signIn.body, 'credentials', 'site', 'id'));
    const userId = text(field(signIn.body, 'credentials', 'user', 'id'));
    if (signIn.status !== 200 || token === undefined || siteId === undefined || userId === undefined) throw unexpected('sign-in', signIn);

    let keep = false;
    try {
      const userRes = await call('GET', `${api}/sites/${encodeURIComponent(siteId)}/users/${encodeURIComponent(userId)}`, { token });
      const user = field(userRes.body, 'user');
      const name = text(field(user, 'name'));
      if (userRes.status !== 200 || name === undefined) throw unexpected('query user on site', userRes);
      const groups = await readGroups(api, token, siteId, userId);
      const siteRole = text(field(user, 'siteRole'));
      const identity: Identity = {
        sub: `${TABLEAU_SOURCE}:${siteId}:${userId}`,
        username: name,
        groups,
        src: TABLEAU_SOURCE,
        extraClaims: { tableau_site_id: siteId, tableau_user_id: userId, tableau_site_role: siteRole ?? '' },
      };
      const fullName = text(field(user, 'fullName'));
      const email = text(field(user, 'email'));
      if (fullName !== undefined) identity.name = fullName;
      if (email !== undefined) identity.email = email;
      if (opts.sealCredentials !== undefined) {
        const expiresAt = Math.floor((opts.now ?? Date.now)() / 1000) + TOKEN_LIFETIME_SECONDS;
        identity.extraClaims![TABLEAU_TOKEN_CLAIM] = opts.sealCredentials({ token, siteId, userId, apiVersion: version, expiresAt });
        keep = true;
      }
      return { kind: 'success', identity };
    } finally {
      if (!keep) await signOut(api, token, requestId);
    }
  }

  return {
    id: TABLEAU_SOURCE,
    async authenticate({ username, password }, ctx): Promise<AuthOutcome> {
      try {
        return await authenticate(username, password, ctx.requestId);
      } catch (err) {
        if (!(err instanceof TableauCallError)) throw err;
        logger.warn(
          { event: 'tableau_unavailable', src: TABLEAU_SOURCE, user: username, reason: err.message, tableau_code: err.tableauCode ?? null, request_id: ctx.requestId },
          'Tableau could not be asked',
        );
        throw new AppError('ERR_IDP_UNAVAILABLE', 503, IDP_UNAVAILABLE_MESSAGE, { cause: err });
      }
    },
  };
}
