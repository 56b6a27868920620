/**
 * A tiny upstream app to put behind the gateway. It trusts the gateway completely: whatever
 * `X-Payload-*` headers arrive are shown as the signed-in user's identity. That is only safe when
 * the app is reachable through the gateway alone (nginx strips client-sent `X-Payload-*` headers
 * and sets its own), which is how docker-compose.yml and `make up` wire it.
 *
 * Run it alone with `tsx examples/demo-app/server.ts` (env DEMO_APP_HOST, DEMO_APP_PORT).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface DemoAppOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Shown in every page title (`Home · <name>`), to tell two apps apart (DEMO_APP_NAME). Default `Demo app`. */
  name?: string;
}

/** What a page shows besides the identity headers: the app's name and the names of the cookies it received. */
interface PageContext {
  name: string;
  cookieNames: string[];
}

/**
 * The names (never the values) of the cookies a request carries. The gateway keeps its own session
 * cookie from the app, so it must never be listed here.
 */
export function readCookieNames(req: IncomingMessage): string[] {
  const header = req.headers.cookie ?? '';
  return header
    .split(';')
    .map((part) => part.split('=')[0]!.trim())
    .filter((n) => n !== '');
}

export interface DemoApp {
  port: number;
  close(): Promise<void>;
}

const PAYLOAD_PREFIX = 'x-payload-';

// The pages hold a user's identity: never cache them, never frame them, run no script.
const PAGE_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
  'Referrer-Policy': 'same-origin',
};

const STYLE = `
body { font-family: system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #999; padding: .3rem .6rem; text-align: left; }
th { background: #eee; }
button { font-size: 1rem; padding: .4rem 1rem; }
`;

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * The `X-Payload-*` headers of a request, in the order received, labelled `X-Payload-<claim>` with the
 * claim in lower case (Node lower-cases header names; nginx forwards e.g. `X-Payload-username`).
 * Values are decoded as UTF-8. Nothing here checks that the gateway, not a client, set them.
 */
export function readPayloadHeaders(req: IncomingMessage): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(req.headers)) {
    if (!name.startsWith(PAYLOAD_PREFIX) || value === undefined) continue;
    const raw = Array.isArray(value) ? value.join(', ') : value;
    // Node hands header bytes over as latin1; nginx forwards claims such as names as UTF-8 bytes.
    const text = Buffer.from(raw, 'latin1').toString('utf8');
    rows.push(['X-Payload-' + name.slice(PAYLOAD_PREFIX.length), text]);
  }
  return rows;
}

/**
 * The group names of an `X-Payload-groups` value: the gateway comma-joins the names and
 * percent-encodes each one where it holds `,`, `%`, control characters or non-ASCII (README,
 * "Protecting your own app"), so split first, then decode each item. An item that is not valid
 * percent-encoding (not from the gateway) is kept as it is.
 */
export function parseGroupsHeader(value: string | undefined): string[] {
  if (value === undefined || value === '') return [];
  return value.split(',').map((item) => {
    try {
      return decodeURIComponent(item);
    } catch {
      return item;
    }
  });
}

function payloadValue(rows: Array<[string, string]>, claim: string): string | undefined {
  const label = 'X-Payload-' + claim;
  const row = rows.find(([name, value]) => name === label && value !== '');
  return row?.[1];
}

function renderPayloadTable(rows: Array<[string, string]>): string {
  if (rows.length === 0) {
    return '<p>No <code>X-Payload-*</code> headers were received. Is the gateway in front of this app?</p>';
  }
  const body = rows
    .map(([name, value]) => `<tr><th scope="row">${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`)
    .join('\n');
  return `<table>
<caption>Identity headers set by the gateway</caption>
<thead><tr><th scope="col">Header</th><th scope="col">Value</th></tr></thead>
<tbody>
${body}
</tbody>
</table>`;
}

function renderGroups(rows: Array<[string, string]>): string {
  const groups = parseGroupsHeader(payloadValue(rows, 'groups'));
  if (groups.length === 0) return '';
  return `<p>Your groups (X-Payload-groups, decoded):</p>\n<ul>${groups.map((g) => `<li>${escapeHtml(g)}</li>`).join('')}</ul>`;
}

function renderCookies(ctx: PageContext): string {
  const names = ctx.cookieNames.length === 0 ? 'none' : ctx.cookieNames.map((n) => `<code>${escapeHtml(n)}</code>`).join(', ');
  return `<p>Cookies this app received (names only): ${names}</p>`;
}

function renderPage(ctx: PageContext, title: string, heading: string, intro: string, rows: Array<[string, string]>): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · ${escapeHtml(ctx.name)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<nav aria-label="Main">
<a href="/">Home</a>
<a href="/federation">Federation members area</a>
</nav>
</header>
<main>
<h1>${escapeHtml(heading)}</h1>
<p>${intro}</p>
${renderPayloadTable(rows)}
${renderGroups(rows)}
${renderCookies(ctx)}
<form method="post" action="/logout"><button type="submit">Sign out</button></form>
</main>
</body>
</html>
`;
}

function renderHome(ctx: PageContext, rows: Array<[string, string]>): string {
  const who = payloadValue(rows, 'name') ?? payloadValue(rows, 'username') ?? 'guest';
  return renderPage(
    ctx,
    'Home',
    `Welcome, ${who}`,
    'You are signed in through the gateway. Visit the <a href="/federation">Federation members area</a>.',
    rows,
  );
}

function renderFederation(ctx: PageContext, rows: Array<[string, string]>): string {
  return renderPage(
    ctx,
    'Federation',
    'Federation members area',
    'Only signed-in members reach this page. The gateway told this app who you are:',
    rows,
  );
}

function send(res: ServerResponse, method: string, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, { ...headers, 'Content-Length': String(Buffer.byteLength(body)) });
  res.end(method === 'HEAD' ? undefined : body);
}

function handle(req: IncomingMessage, res: ServerResponse, name: string): void {
  const method = req.method ?? 'GET';
  // Only the path matters; the base is a placeholder so relative URLs parse.
  const path = new URL(req.url ?? '/', 'http://demo.invalid').pathname;
  const pages: Record<string, (ctx: PageContext, rows: Array<[string, string]>) => string> = {
    '/': renderHome,
    '/federation': renderFederation,
  };
  const render = path === '/healthz' ? undefined : pages[path];
  if (path !== '/healthz' && render === undefined) {
    send(res, method, 404, { 'Content-Type': 'text/plain; charset=utf-8' }, 'not found\n');
    return;
  }
  if (method !== 'GET' && method !== 'HEAD') {
    send(res, method, 405, { 'Content-Type': 'text/plain; charset=utf-8', Allow: 'GET, HEAD' }, 'method not allowed\n');
    return;
  }
  if (render === undefined) {
    send(res, method, 200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }, 'ok');
    return;
  }
  send(res, method, 200, PAGE_HEADERS, render({ name, cookieNames: readCookieNames(req) }, readPayloadHeaders(req)));
}

/** Starts the demo app. Resolves once it listens; `close()` stops it and drops idle keep-alive sockets. */
export function startDemoApp({ host = '127.0.0.1', port = 0, name = 'Demo app' }: DemoAppOptions = {}): Promise<DemoApp> {
  const server = createServer((req, res) => handle(req, res, name));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error('demo app: unexpected listen address'));
        return;
      }
      resolve({
        port: address.port,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            server.closeIdleConnections();
          }),
      });
    });
  });
}

function isMainModule(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainModule()) {
  const host = process.env.DEMO_APP_HOST ?? '127.0.0.1';
  const portText = process.env.DEMO_APP_PORT ?? '5000';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`DEMO_APP_PORT must be an integer 0-65535, got "${portText}"`);
    process.exit(1);
  }
  const app = await startDemoApp({ host, port, name: process.env.DEMO_APP_NAME || undefined });
  console.log(JSON.stringify({ level: 'info', msg: 'demo app listening', host, port: app.port }));
  const stop = (): void => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
