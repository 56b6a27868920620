/**
 * Users of a Tableau Server or Tableau Cloud site, checked through Tableau's REST API: sign in with
 * the user's own name and password, read the user's details and groups, sign out.
 * REST API reference: https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_authentication.htm
 */
import type { Logger } from 'pino';
import type { TableauConfig } from '../config.js';
import { AppError } from '../errors.js';
import { createTrustedFetch } from '../security/trusted-fetch.js';
import { TABLEAU_TOKEN_CLAIM, type TableauCredentials } from '../services/tableau-token.js';
import type { AuthOutcome, Identity, PasswordAuthenticator } from './types.js';

export const TABLEAU_SOURCE = 'tableau';

/**
 * The fetch every call to Tableau goes through: one that trusts only TABLEAU_CA_FILE's CAs when it
 * is set, else undefined (the global fetch, with Node's built-in CA list).
 */
export function tableauFetch(tableau: Pick<TableauConfig, 'caPem'>): typeof globalThis.fetch | undefined {
  return tableau.caPem === null ? undefined : createTrustedFetch(tableau.caPem);
}

export const IDP_UNAVAILABLE_MESSAGE = 'Tableau is not reachable right now. Try again shortly.';

/** For a Tableau that answers but cannot work with this gateway as configured: retrying cannot help. */
export const IDP_MISCONFIGURED_MESSAGE =
  'Sign-in with Tableau is not set up correctly on this gateway, so trying again will not help. Please tell your administrator (the gateway log says what to change).';

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

/**
 * Thrown inside this module only: Tableau answered, but not in a way this gateway can work with as
 * configured (REST API too old, a version it refuses). Retrying cannot help, so it becomes
 * ERR_IDP_MISCONFIGURED, and its message says what the administrator must change.
 */
class TableauSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TableauSetupError';
  }
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

/** " (Tableau error 404001)", or '' when the answer carries no error code. */
function describeCode(res: TableauResponse): string {
  const code = errorCode(res.body);
  return code === undefined ? '' : ` (Tableau error ${code})`;
}

/** Tableau's "Version 'x' is not a valid version of the API" (HTTP 404). */
const VERSION_REFUSED_CODE = '404001';

/** The Tableau source, plus the start-up check `main` runs once. */
export interface TableauAuthenticator extends PasswordAuthenticator {
  /**
   * Asks Tableau once (serverinfo, no credentials) whether sign-in can work as configured and logs
   * the answer: `tableau_ready`, `tableau_setup_required` (with what to change) or
   * `tableau_unavailable`. Resolves true when ready; never throws and never blocks sign-in.
   */
  checkServer(): Promise<boolean>;
}

/**
 * Creates the Tableau source.
 *
 * Guaranteed: `sub` is `tableau:<site-id>:<user-id>` (Tableau's ids, never the renamable name);
 * `email` comes with `emailVerified: true` (administrators set it in Tableau, users cannot);
 * a rejected sign-in (401001, which Tableau also answers for an unknown user or site) and any other
 * 4xx answer to the sign-in are `invalid`, with Tableau's error code logged; an unreachable, slow
 * (each request is cut after `timeoutMs`) or failing (5xx, unexpected answer) Tableau throws
 * AppError('ERR_IDP_UNAVAILABLE', 503); a Tableau that answers but cannot work as configured (REST
 * API older than 3.7, a refused API version) throws AppError('ERR_IDP_MISCONFIGURED', 503) and logs
 * `tableau_setup_required` with what the administrator must change; all group pages are read.
 * Once Tableau has accepted the password, every failure signs its session out again (best effort),
 * and so does a success without `sealCredentials`; with it, the session is kept, sealed into `tta`,
 * and the outcome's `discard` signs it out if no session cookie is issued after all. The password
 * and the Tableau token are never logged.
 * Version detection: serverinfo at REST API 2.4, and at 3.7 when a server refuses 2.x; a detected
 * version is cached, a failed detection is not.
 * Not checked: that the user may query itself on servers that restrict Query User On Site to
 * administrators (such a server answers 403, reported as unavailable and logged); timing parity
 * between unknown users and wrong passwords (Tableau's own); a server upgrade after a successful
 * detection is only noticed after a restart (a downgrade is: its sign-in refuses the version).
 */
export function createTableauAuthenticator(opts: TableauAuthenticatorOptions): TableauAuthenticator {
  const { site, timeoutMs, logger } = opts;
  const configuredVersion = opts.apiVersion;
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
    return new TableauCallError(`${what} answered ${res.status}${describeCode(res)}`, code);
  }

  /** A 4xx answer to serverinfo, which needs no sign-in: the server refuses that API version (or the REST API is off). */
  function refused(res: TableauResponse): boolean {
    return res.status >= 400 && res.status < 500;
  }

  /** The version serverinfo reports, checked against what this gateway needs. */
  function supportedVersion(res: TableauResponse, probe: string): string {
    const version = field(res.body, 'serverInfo', 'restApiVersion');
    if (res.status !== 200 || typeof version !== 'string' || !API_VERSION.test(version)) throw unexpected(`serverinfo (REST API ${probe})`, res);
    if (compareApiVersions(version, MIN_API_VERSION) < 0) {
      throw new TableauSetupError(
        `the Tableau server speaks REST API ${version}, but ${MIN_API_VERSION} (Tableau Server 2020.1) or newer is needed for Get Groups for a User: upgrade Tableau Server`,
      );
    }
    return version;
  }

  async function detectVersion(): Promise<string> {
    let probe = DISCOVERY_VERSION;
    let res = await call('GET', `/api/${probe}/serverinfo`);
    if (refused(res)) {
      // Servers that have retired the 2.x versions refuse the 2.4 probe (404001) but still answer
      // serverinfo under a 3.x version; the oldest this gateway can use is the one to ask.
      logger.info(
        { event: 'tableau_api_probe_refused', src: TABLEAU_SOURCE, api_version: probe, status: res.status, tableau_code: errorCode(res.body) ?? null },
        `Tableau refused serverinfo at REST API ${probe}; asking at ${MIN_API_VERSION}`,
      );
      probe = MIN_API_VERSION;
      res = await call('GET', `/api/${probe}/serverinfo`);
      if (refused(res)) {
        throw new TableauSetupError(
          `Tableau refused serverinfo at REST API ${DISCOVERY_VERSION} and ${MIN_API_VERSION} (${res.status}${describeCode(res)}): ` +
            `the server is older than REST API ${MIN_API_VERSION} (upgrade to Tableau Server 2020.1 or newer), its REST API is off ` +
            `(tsm configuration set -k api.server.enabled -v true), or TABLEAU_URL is not the server root. ` +
            `If the server speaks a newer version, set TABLEAU_API_VERSION to it (e.g. 3.19)`,
        );
      }
    }
    const version = supportedVersion(res, probe);
    logger.info({ event: 'tableau_api_version', src: TABLEAU_SOURCE, api_version: version }, `Tableau REST API ${version} detected`);
    return version;
  }

  function apiVersion(): Promise<string> {
    versionPromise ??= detectVersion().catch((err: unknown) => {
      // Not cached: the next sign-in asks again (an upgraded or restarted server needs no restart here).
      versionPromise = null;
      throw err;
    });
    return versionPromise;
  }

  /** What the administrator must do when Tableau refuses the version in use (404001 at sign-in). */
  function versionRefused(version: string, res: TableauResponse): TableauSetupError {
    const what = `Tableau refused REST API ${version} at sign-in (${res.status}${describeCode(res)})`;
    if (configuredVersion !== undefined) {
      return new TableauSetupError(`${what}: TABLEAU_API_VERSION=${configuredVersion} is not a version this server speaks; set it to the server's version (at least ${MIN_API_VERSION}) or unset it to detect it`);
    }
    // A detected version the server no longer accepts (downgraded or replaced): detect again next time.
    versionPromise = null;
    return new TableauSetupError(`${what}: the server changed since REST API ${version} was detected; it is detected again at the next sign-in`);
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

  /** Ends the Tableau session of `token`; best effort, logged, never throws. True when Tableau accepted it. */
  async function signOut(api: string, token: string, requestId: string, why: string): Promise<boolean> {
    try {
      const res = await call('POST', `${api}/auth/signout`, { token });
      if (res.status >= 300) throw unexpected('sign-out', res);
      logger.debug({ event: 'tableau_signout', src: TABLEAU_SOURCE, request_id: requestId, reason: why });
      return true;
    } catch (err) {
      logger.warn({ event: 'tableau_signout_failed', src: TABLEAU_SOURCE, request_id: requestId, reason: (err as Error).message, after: why }, 'Tableau sign-out failed');
      return false;
    }
  }

  async function authenticate(username: string, password: string, requestId: string): Promise<AuthOutcome> {
    const version = await apiVersion();
    const api = `/api/${version}`;
    const signIn = await call('POST', `${api}/auth/signin`, { body: { credentials: { name: username, password, site: { contentUrl: site } } } });
    if (signIn.status === 404 && errorCode(signIn.body) === VERSION_REFUSED_CODE) throw versionRefused(version, signIn);
    if (signIn.status >= 400 && signIn.status < 500) {
      const code = errorCode(signIn.body);
      logger.info({ event: 'tableau_signin_rejected', src: TABLEAU_SOURCE, user: username, status: signIn.status, tableau_code: code ?? null, request_id: requestId });
      return { kind: 'invalid' };
    }
    const token = text(field(signIn.body, 'credentials', 'token'));
    if (signIn.status !== 200 || token === undefined) throw unexpected('sign-in', signIn);

    // From here on Tableau holds a live session for this token (240 minutes by default): every way
    // out that does not hand it to the session cookie signs it out again.
    let keep = false;
    let why = 'sign-in-failed';
    try {
      const siteId = text(field(signIn.body, 'credentials', 'site', 'id'));
      const userId = text(field(signIn.body, 'credentials', 'user', 'id'));
      if (siteId === undefined || userId === undefined) throw new TableauCallError('sign-in answered 200 without a site id or user id');
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
      if (email !== undefined) {
        identity.email = email;
        // Users cannot change their e-mail address in Tableau; a site or server administrator sets it
        // (or the AD/LDAP directory it is synchronised from), so Tableau vouches for it.
        identity.emailVerified = true;
      }
      if (opts.sealCredentials === undefined) {
        why = 'identity-read';
        return { kind: 'success', identity };
      }
      const expiresAt = Math.floor((opts.now ?? Date.now)() / 1000) + TOKEN_LIFETIME_SECONDS;
      identity.extraClaims![TABLEAU_TOKEN_CLAIM] = opts.sealCredentials({ token, siteId, userId, apiVersion: version, expiresAt });
      keep = true;
      return { kind: 'success', identity, discard: () => signOut(api, token, requestId, 'session-not-issued').then(() => undefined) };
    } finally {
      if (!keep) await signOut(api, token, requestId, why);
    }
  }

  function describeFailure(err: TableauSetupError | TableauCallError, username: string | null, requestId: string | null): void {
    if (err instanceof TableauSetupError) {
      logger.error({ event: 'tableau_setup_required', src: TABLEAU_SOURCE, user: username, reason: err.message, request_id: requestId }, 'Tableau cannot be used as configured');
      return;
    }
    logger.warn(
      { event: 'tableau_unavailable', src: TABLEAU_SOURCE, user: username, reason: err.message, tableau_code: err.tableauCode ?? null, request_id: requestId },
      'Tableau could not be asked',
    );
  }

  return {
    id: TABLEAU_SOURCE,
    async authenticate({ username, password }, ctx): Promise<AuthOutcome> {
      try {
        return await authenticate(username, password, ctx.requestId);
      } catch (err) {
        if (!(err instanceof TableauCallError) && !(err instanceof TableauSetupError)) throw err;
        describeFailure(err, username, ctx.requestId);
        if (err instanceof TableauSetupError) throw new AppError('ERR_IDP_MISCONFIGURED', 503, IDP_MISCONFIGURED_MESSAGE, { cause: err });
        throw new AppError('ERR_IDP_UNAVAILABLE', 503, IDP_UNAVAILABLE_MESSAGE, { cause: err });
      }
    },
    async checkServer(): Promise<boolean> {
      try {
        let version: string;
        if (configuredVersion === undefined) {
          version = await apiVersion();
        } else {
          // serverinfo under the configured version: a version the server refuses shows up here, at
          // start-up, rather than as a failed sign-in later.
          const res = await call('GET', `/api/${configuredVersion}/serverinfo`);
          if (refused(res)) {
            throw new TableauSetupError(
              `Tableau refused REST API ${configuredVersion} (serverinfo answered ${res.status}${describeCode(res)}): TABLEAU_API_VERSION=${configuredVersion} is not a version this server speaks; set it to the server's version (at least ${MIN_API_VERSION}) or unset it to detect it`,
            );
          }
          supportedVersion(res, configuredVersion);
          version = configuredVersion;
        }
        logger.info({ event: 'tableau_ready', src: TABLEAU_SOURCE, api_version: version }, `Tableau answers; sign-in uses REST API ${version}`);
        return true;
      } catch (err) {
        if (!(err instanceof TableauCallError) && !(err instanceof TableauSetupError)) throw err;
        describeFailure(err, null, null);
        return false;
      }
    },
  };
}
