/**
 * A small stand-in for Tableau Server / Tableau Cloud's REST API, for tests. It speaks the documented
 * request and response shapes (XML by default, JSON when the client sends `Accept: application/json`)
 * and error format (`<error code="401001"><summary/><detail/></error>`, or `{"error":{...}}`) for the
 * few calls the gateway makes: serverinfo, auth/signin, auth/signout, Get Current Server Session
 * (`GET /api/{v}/sessions/current`), Query User On Site and Get Groups for a User (paginated), plus
 * Query Workbooks for Site (an empty list that names the token it was called with) and Publish
 * Workbook (201, reports the body size), for the /api/ pass-through tests. It listens on 127.0.0.1 on a free port.
 *
 * Versions: like Tableau, it answers only the REST API versions it speaks (`oldestApiVersion` up to
 * `restApiVersion`); any other `/api/{v}/` gets 404 with error 404001 ("Version 'x' is not a valid
 * version of the API"), which is what a server too old for a version, or one that has retired the
 * 2.x versions, answers.
 *
 * Connected Apps (direct trust), when `connectedApp` registers one: embedded views as the Embedding
 * API v3 loads them. `GET /javascripts/api/tableau.embedding.3.latest.min.js` is a stand-in for
 * Tableau's library: its `<tableau-viz src token>` frames the view and POSTs the token to it (never
 * in a URL). `POST /views/{workbook}/{sheet}` verifies the token exactly as Tableau documents
 * (tableau-connected-app-verify.ts: signature with the registered secret, kid/iss, aud, exp window,
 * jti replay, scope, user on the site) and the embedding page's origin against the domain allowlist,
 * then shows the view ("Signed in to Tableau as ...") or Tableau's refusal (the error code and
 * summary). `GET /views/...` without a token is Tableau's own sign-in page, what a user meets today.
 *
 * Not modelled: personal access tokens, JWT sign-in to the REST API, impersonation, site switching,
 * any permission rule (every signed-in user may query itself), token expiry by time (use the
 * 'expired-token' fault).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { verifyConnectedAppJwt, type ConnectedAppRegistration, type ConnectedAppVerdict } from './tableau-connected-app-verify.js';

export type { ConnectedAppRegistration, ConnectedAppVerdict };

export interface TableauFakeUser {
  name: string;
  password: string;
  fullName?: string;
  email?: string;
  /** e.g. Creator, Explorer, Viewer, SiteAdministratorCreator, Unlicensed. */
  siteRole: string;
  groups: string[];
}

export interface TableauFakeOptions {
  users: TableauFakeUser[];
  /** The one site the fake hosts. Default: the Default site (contentUrl ''). */
  site?: { contentUrl: string; id: string };
  /** What serverinfo reports, and the newest version the fake answers. Default '3.19'. */
  restApiVersion?: string;
  /** The oldest version the fake answers. Default '2.0'; '3.0' models a server that refuses 2.x. */
  oldestApiVersion?: string;
  /**
   * Largest page Get Groups for a User serves; a larger pageSize is served (and reported in
   * `pagination`) as this one, so a client must follow the pages. Default 1000 (Tableau's maximum).
   */
  maxGroupPageSize?: number;
  /**
   * Serve https with this certificate (PEM files) instead of plain http; `url` then names `host`
   * (default 127.0.0.1, which nginx reaches without a resolver).
   */
  tls?: { certFile: string; keyFile: string; host?: string };
  /** A Connected App (direct trust) registered on the site, for embedded views. */
  connectedApp?: ConnectedAppRegistration;
  /** Embeddable views by content path (`Sales/Overview`, as in /views/Sales/Overview) and their title. */
  views?: Record<string, string>;
}

/** One embedded-view sign-in the fake judged (POST /views/...). */
export interface EmbedSignIn {
  view: string;
  /** The embedding page's origin (the form POST's Origin header). */
  origin: string | null;
  verdict: ConnectedAppVerdict | { ok: false; code: string; summary: string; detail: string };
}

/**
 * none: normal; slow: never answers in time (30 s); down: drops every connection without an answer;
 * 500: every call fails with an internal server error; expired-token: every authenticated call
 * answers 401002 as if the token had expired. The rest break one step after a successful sign-in:
 * groups-500: Get Groups for a User fails with 500; user-malformed: Query User On Site answers 200
 * with a user that has no name; signin-malformed: the sign-in answers 200 with a token but no user id;
 * sessions-down: Get Current Server Session drops the connection (everything else works).
 */
export type TableauFault = 'none' | 'slow' | 'down' | '500' | 'expired-token' | 'groups-500' | 'user-malformed' | 'signin-malformed' | 'sessions-down';

export interface RecordedRequest {
  method: string;
  /** Path and query. */
  url: string;
  /** The API version from the path (`/api/3.19/...`), or null. */
  apiVersion: string | null;
  headers: Record<string, string | string[] | undefined>;
  /** Size of the request body in bytes. */
  bodyBytes: number;
}

export interface TableauFake {
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** The sign-in requests that reached the fake (whatever their outcome). */
  signIns(): RecordedRequest[];
  setFault(fault: TableauFault): void;
  /** Changes the versions the fake speaks, as an upgrade, downgrade or retirement of 2.x would. */
  setApiVersions(versions: { oldest: string; newest: string }): void;
  /** Delays every answer by `ms` (as a remote Tableau's round trip would); 0 answers at once. */
  setLatency(ms: number): void;
  /** Tokens issued and not signed out yet. */
  liveTokens(): number;
  /** Whether Tableau would still accept `token` (issued, not signed out, not expired). */
  isLive(token: string): boolean;
  /** Every token the fake issued, oldest first. */
  issuedTokens(): string[];
  /** The X-Tableau-Auth of every sign-out request received. */
  signedOutTokens(): string[];
  /** Ends every live session, as a Tableau session timeout would: later calls answer 401002. */
  expireAllTokens(): void;
  /** Verifies a Connected App JWT as an embedded view's sign-in would (and remembers its jti). */
  verifyConnectedAppToken(token: string): ConnectedAppVerdict;
  /** The embedded-view sign-ins judged so far, oldest first. */
  embedSignIns(): EmbedSignIn[];
  /** Moves the fake's clock (for JWT exp checks) `seconds` ahead of the real one. */
  setClockOffset(seconds: number): void;
  /** Changes the connected app's domain allowlist, as the Tableau admin would (undefined: all domains). */
  setDomainAllowlist(origins: string[] | undefined): void;
  close(): Promise<void>;
}

interface FakeUserRecord extends TableauFakeUser {
  id: string;
}

interface Session {
  userId: string;
  siteId: string;
}

const SLOW_MS = 30_000;

/** Where Tableau serves the Embedding API v3 library (Server and Cloud alike). */
export const EMBEDDING_LIBRARY_PATH = '/javascripts/api/tableau.embedding.3.latest.min.js';

/**
 * The stand-in for the Embedding API v3 library: `<tableau-viz src="{server}/views/W/S" token="JWT">`
 * frames the view and POSTs the token into the frame, so the token never appears in a URL. Without
 * a token it frames the view plainly (Tableau then shows its sign-in page).
 */
const EMBEDDING_LIBRARY = `class TableauViz extends HTMLElement {
  set src(value) { this.setAttribute('src', value); }
  get src() { return this.getAttribute('src'); }
  set token(value) { this.setAttribute('token', value); }
  get token() { return this.getAttribute('token'); }
  connectedCallback() {
    if (this.started) return;
    this.started = true;
    const src = this.getAttribute('src');
    const token = this.getAttribute('token');
    const name = 'tableau-viz-' + Math.random().toString(36).slice(2);
    const frame = document.createElement('iframe');
    frame.name = name;
    frame.title = this.getAttribute('title') || 'Tableau view';
    frame.style.cssText = 'width:100%;height:240px;border:0';
    this.appendChild(frame);
    if (!token) { frame.src = src; return; }
    const form = document.createElement('form');
    form.method = 'POST';
    form.action = src;
    form.target = name;
    form.hidden = true;
    const input = document.createElement('input');
    input.type = 'hidden';
    input.name = 'token';
    input.value = token;
    form.appendChild(input);
    this.appendChild(form);
    form.submit();
    form.remove();
  }
}
if (!customElements.get('tableau-viz')) customElements.define('tableau-viz', TableauViz);
export { TableauViz };
`;

function xmlEscape(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** "3.19" compared with "3.7" numerically. */
function compareVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am !== bm ? am - bm : an - bn;
}

function xmlUnescape(value: string): string {
  return value
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

function xmlAttribute(element: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)')`).exec(element);
  if (!m) return undefined;
  return xmlUnescape(m[1] ?? m[2] ?? '');
}

/** Reads `<credentials name password><site contentUrl/></credentials>` from a tsRequest. */
function parseXmlSignIn(body: string): { name?: string; password?: string; contentUrl?: string } {
  const credentials = /<credentials\b[^>]*>/.exec(body)?.[0] ?? '';
  const site = /<site\b[^>]*>/.exec(body)?.[0] ?? '';
  return { name: xmlAttribute(credentials, 'name'), password: xmlAttribute(credentials, 'password'), contentUrl: xmlAttribute(site, 'contentUrl') };
}

function parseJsonSignIn(body: string): { name?: string; password?: string; contentUrl?: string } {
  try {
    const c = (JSON.parse(body) as { credentials?: { name?: unknown; password?: unknown; site?: { contentUrl?: unknown } } }).credentials;
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    return { name: str(c?.name), password: str(c?.password), contentUrl: str(c?.site?.contentUrl) };
  } catch {
    return {};
  }
}

/** A tiny XML writer for { element: { attr: value, child: {...} | [...] } } shaped data. */
function toXml(name: string, value: Record<string, unknown>): string {
  let attributes = '';
  let children = '';
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) children += v.map((item) => toXml(key, item as Record<string, unknown>)).join('');
    else if (typeof v === 'object' && v !== null) children += toXml(key, v as Record<string, unknown>);
    else attributes += ` ${key}="${xmlEscape(String(v))}"`;
  }
  return children === '' ? `<${name}${attributes}/>` : `<${name}${attributes}>${children}</${name}>`;
}

export async function startTableauFake(opts: TableauFakeOptions): Promise<TableauFake> {
  const site = opts.site ?? { contentUrl: '', id: randomUUID() };
  let restApiVersion = opts.restApiVersion ?? '3.19';
  let oldestApiVersion = opts.oldestApiVersion ?? '2.0';
  const users: FakeUserRecord[] = opts.users.map((u) => ({ ...u, id: randomUUID() }));
  const sessions = new Map<string, Session>();
  const issued: string[] = [];
  const signedOut: string[] = [];
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let fault: TableauFault = 'none';
  let latencyMs = 0;
  let clockOffsetSeconds = 0;
  const usedJtis = new Map<string, number>();
  const embedSignIns: EmbedSignIn[] = [];

  function verifyEmbedToken(token: string): ConnectedAppVerdict {
    if (opts.connectedApp === undefined) return { ok: false, code: '126', summary: 'CONNECTED_APP_NOT_FOUND', detail: 'No connected app is registered' };
    const now = Math.floor(Date.now() / 1000) + clockOffsetSeconds;
    return verifyConnectedAppJwt(token, opts.connectedApp, users.map((u) => u.name), now, usedJtis);
  }

  /** The view pages and the embedding library; true when `req` was one of them. */
  function handleEmbedding(req: IncomingMessage, res: ServerResponse, url: URL, body: string): boolean {
    if (req.method === 'GET' && url.pathname === EMBEDDING_LIBRARY_PATH) {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'access-control-allow-origin': '*' });
      res.end(EMBEDDING_LIBRARY);
      return true;
    }
    const view = /^\/views\/([^/]+\/[^/]+)$/.exec(url.pathname)?.[1];
    if (view === undefined || (req.method !== 'GET' && req.method !== 'POST')) return false;
    const title = opts.views?.[decodeURIComponent(view)];
    const allow = opts.connectedApp?.domainAllowlist;
    const page = (status: number, heading: string, text: string) => {
      res.writeHead(status, {
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': `frame-ancestors ${allow === undefined ? '*' : allow.join(' ') || "'none'"}`,
      });
      res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${xmlEscape(heading)}</title></head><body><main><h1>${xmlEscape(heading)}</h1><p>${xmlEscape(text)}</p></main></body></html>`);
    };
    if (title === undefined) {
      page(404, 'View not found', `There is no view ${decodeURIComponent(view)} on this site.`);
      return true;
    }
    if (req.method === 'GET') {
      page(200, 'Sign in to Tableau', 'Enter your Tableau username and password.');
      return true;
    }
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : null;
    const token = new URLSearchParams(body).get('token') ?? '';
    let verdict: EmbedSignIn['verdict'];
    if (allow !== undefined && (origin === null || !allow.includes(origin))) {
      // The fake's own code for this case: Tableau refuses the frame, its table names no code.
      verdict = { ok: false, code: 'domain', summary: 'EMBED_DOMAIN_NOT_ALLOWED', detail: `The page's origin ${String(origin)} is not in the connected app's domain allowlist` };
    } else {
      verdict = verifyEmbedToken(token);
    }
    embedSignIns.push({ view: decodeURIComponent(view), origin, verdict });
    if (verdict.ok) page(200, title, `Signed in to Tableau as ${verdict.username}.`);
    else page(401, 'Tableau could not sign you in', `Error ${verdict.code} ${verdict.summary}: ${verdict.detail}`);
    return true;
  }

  function send(req: IncomingMessage, res: ServerResponse, status: number, root: string, payload: Record<string, unknown>): void {
    const json = String(req.headers.accept ?? '').includes('application/json');
    if (json) {
      res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8' });
      res.end(JSON.stringify(payload));
      return;
    }
    res.writeHead(status, { 'content-type': 'application/xml;charset=UTF-8' });
    const inner = Object.entries(payload)
      .map(([k, v]) => toXml(k, v as Record<string, unknown>))
      .join('');
    res.end(`<?xml version='1.0' encoding='UTF-8'?><${root} xmlns="http://tableau.com/api">${inner}</${root}>`);
  }

  function sendError(req: IncomingMessage, res: ServerResponse, status: number, code: string, summary: string, detail: string): void {
    const json = String(req.headers.accept ?? '').includes('application/json');
    if (json) {
      res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8' });
      res.end(JSON.stringify({ error: { summary, detail, code } }));
      return;
    }
    res.writeHead(status, { 'content-type': 'application/xml;charset=UTF-8' });
    res.end(
      `<?xml version='1.0' encoding='UTF-8'?><tsResponse xmlns="http://tableau.com/api"><error code="${code}">` +
        `<summary>${xmlEscape(summary)}</summary><detail>${xmlEscape(detail)}</detail></error></tsResponse>`,
    );
  }

  function session(req: IncomingMessage, res: ServerResponse, siteId: string): Session | null {
    const token = req.headers['x-tableau-auth'];
    if (typeof token !== 'string' || token === '') {
      sendError(req, res, 401, '401000', 'Unauthorized Access', 'No authentication credentials were provided');
      return null;
    }
    const s = sessions.get(token);
    if (fault === 'expired-token' || s === undefined) {
      sendError(req, res, 401, '401002', 'Unauthorized Access', 'Invalid authentication credentials were provided');
      return null;
    }
    if (s.siteId !== siteId) {
      sendError(req, res, 403, '403000', 'Forbidden', 'The token does not belong to this site');
      return null;
    }
    return s;
  }

  function handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
    const body = raw.toString('utf8');
    const url = new URL(req.url ?? '/', 'http://fake');
    const m = /^\/api\/([0-9]+\.[0-9]+)(\/.*)$/.exec(url.pathname);
    requests.push({ method: req.method ?? '', url: req.url ?? '', apiVersion: m?.[1] ?? null, headers: { ...req.headers }, bodyBytes: raw.length });

    if (fault === 'down') {
      req.socket.destroy();
      return;
    }
    if (fault === 'slow') {
      const timer = setTimeout(() => {
        timers.delete(timer);
        sendError(req, res, 504, '504000', 'Too slow', 'The fake was told to be slow');
      }, SLOW_MS);
      timers.add(timer);
      return;
    }
    if (fault === '500') {
      sendError(req, res, 500, '500000', 'Internal Server Error', 'The fake was told to fail');
      return;
    }
    if (handleEmbedding(req, res, url, body)) return;
    if (!m) {
      sendError(req, res, 404, '404000', 'Resource Not Found', 'Unknown path');
      return;
    }
    const version = m[1]!;
    if (compareVersions(version, oldestApiVersion) < 0 || compareVersions(version, restApiVersion) > 0) {
      sendError(req, res, 404, '404001', 'Resource Not Found', `Version '${version}' is not a valid version of the API.`);
      return;
    }
    const route = m[2]!;

    if (req.method === 'GET' && route === '/serverinfo') {
      send(req, res, 200, 'tsResponse', { serverInfo: { productVersion: { value: '2023.3.0', build: '20233.23.1017.0948' }, restApiVersion } });
      return;
    }

    if (req.method === 'POST' && route === '/auth/signin') {
      const type = String(req.headers['content-type'] ?? '');
      const creds = type.includes('json') ? parseJsonSignIn(body) : parseXmlSignIn(body);
      if (creds.name === undefined || creds.password === undefined) {
        sendError(req, res, 400, '400000', 'Bad Request', 'The request body is missing credentials');
        return;
      }
      const user = users.find((u) => u.name === creds.name);
      // Tableau answers a wrong password, an unknown user and an unknown site the same way.
      if ((creds.contentUrl ?? '') !== site.contentUrl || user === undefined || user.password !== creds.password) {
        sendError(req, res, 401, '401001', 'Signin Error', 'Error signing in to Tableau Server');
        return;
      }
      const token = randomUUID().replace(/-/g, '') + '|' + randomUUID().replace(/-/g, '');
      sessions.set(token, { userId: user.id, siteId: site.id });
      issued.push(token);
      send(req, res, 200, 'tsResponse', {
        credentials: { token, site: { id: site.id, contentUrl: site.contentUrl }, user: fault === 'signin-malformed' ? {} : { id: user.id } },
      });
      return;
    }

    if (req.method === 'GET' && route === '/sessions/current') {
      if (fault === 'sessions-down') {
        req.socket.destroy();
        return;
      }
      const token = req.headers['x-tableau-auth'];
      const s = typeof token === 'string' ? sessions.get(token) : undefined;
      if (s === undefined || fault === 'expired-token') {
        sendError(req, res, 401, '401002', 'Unauthorized Access', 'Invalid authentication credentials were provided');
        return;
      }
      const user = users.find((u) => u.id === s.userId)!;
      send(req, res, 200, 'tsResponse', {
        session: {
          site: { id: site.id, name: site.contentUrl === '' ? 'Default' : site.contentUrl, contentUrl: site.contentUrl },
          user: { id: user.id, name: user.name, siteRole: user.siteRole, lastLogin: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
        },
      });
      return;
    }

    if (req.method === 'POST' && route === '/auth/signout') {
      const token = req.headers['x-tableau-auth'];
      if (typeof token === 'string') {
        sessions.delete(token);
        signedOut.push(token);
      }
      res.writeHead(204).end();
      return;
    }

    const workbooksRoute = /^\/sites\/([^/]+)\/workbooks$/.exec(route);
    if (req.method === 'GET' && workbooksRoute) {
      const s = session(req, res, workbooksRoute[1]!);
      if (s === null) return;
      // Not Tableau's shape beyond `workbooks`: `calledWith` lets tests see whose token arrived.
      send(req, res, 200, 'tsResponse', {
        pagination: { pageNumber: '1', pageSize: '100', totalAvailable: '0' },
        workbooks: {},
        calledWith: { token: String(req.headers['x-tableau-auth']), userId: s.userId, query: url.search },
      });
      return;
    }

    // Publish Workbook (single request, multipart/mixed): only the size is looked at.
    if (req.method === 'POST' && workbooksRoute) {
      const s = session(req, res, workbooksRoute[1]!);
      if (s === null) return;
      send(req, res, 201, 'tsResponse', { workbook: { id: randomUUID(), name: 'published' }, calledWith: { bodyBytes: raw.length } });
      return;
    }

    const userRoute = /^\/sites\/([^/]+)\/users\/([^/]+)(\/groups)?$/.exec(route);
    if (req.method === 'GET' && userRoute) {
      const [, siteId, userId, groups] = userRoute as unknown as [string, string, string, string | undefined];
      if (siteId !== site.id) {
        sendError(req, res, 404, '404000', 'Site not found', `The site ${siteId} could not be found`);
        return;
      }
      if (session(req, res, siteId) === null) return;
      const user = users.find((u) => u.id === userId);
      if (user === undefined) {
        sendError(req, res, 404, '404002', 'Resource Not Found', `User ${userId} could not be found`);
        return;
      }
      if (groups === undefined) {
        send(req, res, 200, 'tsResponse', {
          user: { id: user.id, name: fault === 'user-malformed' ? undefined : user.name, siteRole: user.siteRole, fullName: user.fullName, email: user.email, authSetting: 'ServerDefault' },
        });
        return;
      }
      if (fault === 'groups-500') {
        sendError(req, res, 500, '500000', 'Internal Server Error', 'The fake was told to fail Get Groups for a User');
        return;
      }
      const pageSize = Number(url.searchParams.get('pageSize') ?? '100');
      const pageNumber = Number(url.searchParams.get('pageNumber') ?? '1');
      if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000 || !Number.isInteger(pageNumber) || pageNumber < 1) {
        sendError(req, res, 400, '400006', 'Bad Request', 'Invalid page size or page number');
        return;
      }
      const served = Math.min(pageSize, opts.maxGroupPageSize ?? 1000);
      const page = user.groups.slice((pageNumber - 1) * served, pageNumber * served);
      // Tableau's JSON carries pagination numbers as strings.
      send(req, res, 200, 'tsResponse', {
        pagination: { pageNumber: String(pageNumber), pageSize: String(served), totalAvailable: String(user.groups.length) },
        groups: { group: page.map((name) => ({ id: `group-${name}`, name, domain: { name: 'local' } })) },
      });
      return;
    }

    sendError(req, res, 404, '404000', 'Resource Not Found', 'Unknown path');
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (latencyMs === 0) return handle(req, res, body);
      const timer = setTimeout(() => {
        timers.delete(timer);
        handle(req, res, body);
      }, latencyMs);
      timers.add(timer);
    });
  };
  const server = opts.tls === undefined ? createServer(onRequest) : createHttpsServer({ cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) }, onRequest);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: opts.tls === undefined ? `http://127.0.0.1:${port}` : `https://${opts.tls.host ?? '127.0.0.1'}:${port}`,
    port,
    requests,
    signIns: () => requests.filter((r) => r.method === 'POST' && r.url.endsWith('/auth/signin')),
    setFault(f) {
      fault = f;
    },
    setApiVersions({ oldest, newest }) {
      oldestApiVersion = oldest;
      restApiVersion = newest;
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    liveTokens: () => sessions.size,
    isLive: (token) => sessions.has(token),
    issuedTokens: () => [...issued],
    signedOutTokens: () => [...signedOut],
    expireAllTokens() {
      sessions.clear();
    },
    verifyConnectedAppToken: verifyEmbedToken,
    embedSignIns: () => [...embedSignIns],
    setClockOffset(seconds) {
      clockOffsetSeconds = seconds;
    },
    setDomainAllowlist(origins) {
      if (opts.connectedApp !== undefined) opts.connectedApp = { ...opts.connectedApp, domainAllowlist: origins };
    },
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
