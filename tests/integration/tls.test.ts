/**
 * HTTPS (issue 10) with the repo's own nginx config and a throwaway CA made with openssl:
 * - nginx terminating TLS itself (TLS_CERT_FILE, TLS_KEY_FILE): sign-in over https sets __Host-
 *   Secure cookies, responses carry HSTS, plain http is redirected to https;
 * - a TLS-terminating balancer (a second nginx on loopback) in front of the gateway's http listener,
 *   trusted by address (TRUSTED_PROXIES): sign-in works and the session too; a client that is not
 *   the balancer cannot claim https with its own X-Forwarded-Proto.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startNginx, type RunningNginx } from '../../scripts/lib/nginx-runtime.js';
import { hiddenFields, setCookies, stackTest, startStack, type HttpResult, type Stack } from '../support/stack.js';
import { httpsRequest, makeTestCa, type TestCa } from '../support/tls.js';

const password = 'correct horse battery staple';
let dir: string;
let ca: TestCa;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gw-tls-'));
  ca = makeTestCa(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The `name=value` pairs of a response's Set-Cookie lines. */
function cookiePairs(res: HttpResult): string[] {
  return setCookies(res).map((c) => c.split(';')[0]!);
}

/** Signs in through `send` (login form GET, then the POST with `origin`); returns both responses. */
async function signIn(send: (method: string, path: string, headers: Record<string, string>, body?: string) => Promise<HttpResult>, origin: string, csrfName: string) {
  const form = await send('GET', '/login?rd=%2Fbridge', { accept: 'text/html' });
  const csrf = cookiePairs(form).find((c) => c.startsWith(csrfName + '='));
  if (csrf === undefined) throw new Error(`no ${csrfName} cookie on the login form (status ${form.status}): ${JSON.stringify(form.headers['set-cookie'])}`);
  const body = new URLSearchParams({ ...hiddenFields(form.body), username: 'kirk', password }).toString();
  const post = await send(
    'POST',
    '/login',
    { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', cookie: csrf, origin, 'content-length': String(Buffer.byteLength(body)) },
    body,
  );
  return { form, post };
}

describe('nginx serving HTTPS itself', () => {
  let stack: Stack;
  let httpsPort: number;
  const test = stackTest(() => stack);
  const send = (method: string, path: string, headers: Record<string, string> = {}, body?: string) => httpsRequest(httpsPort, ca.caPem, method, path, headers, body);

  beforeAll(async () => {
    httpsPort = await freePort();
    stack = await startStack({
      nginxVars: { TLS_CERT_FILE: ca.certFile, TLS_KEY_FILE: ca.keyFile, HTTPS_PORT: String(httpsPort) },
      env: { PUBLIC_BASE_URL: `https://localhost:${httpsPort}`, AUTH_COOKIE_SECURE: 'true' },
    });
    await stack.createUser('kirk', password);
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('sign-in over https sets __Host- Secure cookies, and the session reaches the app', async () => {
    const { form, post } = await signIn(send, `https://localhost:${httpsPort}`, '__Host-gw_csrf');
    expect(setCookies(form).find((c) => c.startsWith('__Host-gw_csrf='))).toMatch(/^__Host-gw_csrf=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Secure$/);
    expect(post.status).toBe(302);
    expect(post.headers.location).toBe('/bridge');
    const sessionLine = setCookies(post).find((c) => c.startsWith('__Host-gw_session='));
    expect(sessionLine).toMatch(/^__Host-gw_session=[^;]+; HttpOnly; SameSite=Lax; Path=\/; Max-Age=[0-9]+; Secure$/);

    stack.upstream.reset();
    const page = await send('GET', '/bridge', { accept: 'text/html', cookie: sessionLine!.split(';')[0]! });
    expect(page.status).toBe(200);
    expect(page.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(stack.upstream.seen).toHaveLength(1);
    expect(stack.upstream.seen[0]!.headers['x-payload-username']).toBe('kirk');
    expect(stack.upstream.seen[0]!.headers['x-forwarded-proto']).toBe('https');
    // The session cookie never reaches the app.
    expect(stack.upstream.seen[0]!.headers.cookie ?? '').not.toContain('gw_session');
  });

  test('https responses carry HSTS: the app\'s pages, the login form and the gate\'s own pages', async () => {
    const hsts = 'max-age=31536000';
    expect((await send('GET', '/login', { accept: 'text/html' })).headers['strict-transport-security']).toBe(hsts);
    const denied = await send('GET', '/bridge', { accept: 'application/json' });
    expect(denied.status).toBe(401);
    expect(denied.headers['strict-transport-security']).toBe(hsts);
  });

  test('plain http is redirected to https, same host and path, without HSTS', async () => {
    const res = await stack.request('GET', '/bridge?tab=crew', { host: `localhost:${stack.proxyPort}`, accept: 'text/html' });
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe(`https://localhost:${httpsPort}/bridge?tab=crew`);
    expect(res.headers['strict-transport-security']).toBeUndefined();
    expect(stack.upstream.seen.filter((s) => s.url.startsWith('/bridge?tab=crew'))).toHaveLength(0);
  });

  test('TLS 1.1 is refused', async () => {
    const { connect } = await import('node:tls');
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: httpsPort, ca: ca.caPem, servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1.1' });
      socket.once('secureConnect', () => { socket.destroy(); resolve('connected'); });
      socket.once('error', (err) => resolve(err.message));
    });
    expect(outcome).not.toBe('connected');
  });
});

describe('behind a load balancer that terminates TLS', () => {
  let stack: Stack;
  let balancer: RunningNginx;
  let balancerPort: number;
  const test = stackTest(() => stack);
  // The balancer connects to the gateway from 127.0.0.3, the only address TRUSTED_PROXIES lists; the
  // test's own direct requests come from 127.0.0.1, like any other client.
  const BALANCER_ADDRESS = '127.0.0.3';
  const viaBalancer = (method: string, path: string, headers: Record<string, string> = {}, body?: string) =>
    httpsRequest(balancerPort, ca.caPem, method, path, { host: `localhost:${balancerPort}`, ...headers }, body);

  beforeAll(async () => {
    stack = await startStack({ nginxVars: { TRUSTED_PROXIES: `${BALANCER_ADDRESS},10.0.0.0/8` }, env: { AUTH_COOKIE_SECURE: 'true' } });
    await stack.createUser('kirk', password);
    balancerPort = await freePort();
    const prefix = join(dir, 'balancer');
    for (const sub of ['conf', 'logs', 'temp']) mkdirSync(join(prefix, sub), { recursive: true });
    writeFileSync(
      join(prefix, 'conf', 'nginx.conf'),
      `worker_processes 1;
pid logs/nginx.pid;
events { worker_connections 64; }
http {
    client_body_temp_path temp/client_body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    access_log logs/access.log;
    server {
        listen 127.0.0.1:${balancerPort} ssl;
        ssl_certificate ${ca.certFile};
        ssl_certificate_key ${ca.keyFile};
        location / {
            proxy_pass http://127.0.0.1:${stack.proxyPort};
            proxy_bind ${BALANCER_ADDRESS};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto https;
        }
    }
}
`,
    );
    balancer = await startNginx(prefix, balancerPort);
  }, 60_000);
  afterAll(async () => {
    await balancer?.stop();
    await stack?.stop();
  });

  test('sign-in through the balancer succeeds (Origin https://...) and the session works', async () => {
    const { post } = await signIn(viaBalancer, `https://localhost:${balancerPort}`, 'gw_csrf');
    expect(post.status).toBe(302);
    const session = cookiePairs(post).find((c) => c.startsWith('gw_session=') && c.length > 'gw_session='.length);
    expect(session).toBeDefined();

    stack.upstream.reset();
    const page = await viaBalancer('GET', '/bridge', { accept: 'text/html', cookie: session! });
    expect(page.status).toBe(200);
    const seen = stack.upstream.seen[0]!;
    expect(seen.headers['x-payload-username']).toBe('kirk');
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    // realip: the client's address, not the balancer's (the session is bound to it).
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  test('a client that is not the balancer cannot claim https: its X-Forwarded-Proto is ignored', async () => {
    stack.upstream.reset();
    await stack.request('GET', '/login', { 'x-forwarded-proto': 'https' });
    const form = await stack.loginForm();
    const body = new URLSearchParams({ ...form.fields, username: 'kirk', password }).toString();
    const post = await stack.request(
      'POST',
      '/login',
      {
        accept: 'text/html',
        'content-type': 'application/x-www-form-urlencoded',
        cookie: form.csrfCookie,
        origin: `https://127.0.0.1:${stack.proxyPort}`,
        'x-forwarded-proto': 'https',
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    );
    expect(post.status).toBe(403);
    expect(stack.authLogs()).toContain('origin-mismatch');

    const login = await stack.login('kirk', password);
    expect(login.session).not.toBeNull();
    stack.upstream.reset();
    await stack.request('GET', '/bridge', { cookie: login.session!, 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' });
    expect(stack.upstream.seen[0]!.headers['x-forwarded-proto']).toBe('http');
    expect(stack.upstream.seen[0]!.headers['x-forwarded-for']).toBe('127.0.0.1');
  });
});
