/**
 * Monitoring through the real parts: the gateway's own health location (no session, neither the app
 * nor the auth service asked), stub_status on nginx's internal listener only, and the auth service's
 * metrics on its internal listener only, moved by a sign-in made through nginx.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { freePort } from '../../scripts/lib/nginx-runtime.js';
import { SEED_POLICY_FILE } from '../support/policy.js';
import { accessLogEntry, rawRequest, stackTest, startStack, type Stack } from '../support/stack.js';

describe('monitoring endpoints', () => {
  let stack: Stack;
  let statusPort: number;
  let metricsPort: number;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    statusPort = await freePort();
    metricsPort = await freePort();
    stack = await startStack({
      env: { POLICY_FILE: SEED_POLICY_FILE, METRICS_PORT: String(metricsPort) },
      nginxVars: { NGINX_STATUS_PORT: String(statusPort) },
    });
    await stack.createUser('uhura', 'uhuras password', { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('GET /_gate/health answers 200 JSON without a session, and reaches neither the app nor the access log', async () => {
    const before = stack.upstream.seen.length;
    for (const method of ['GET', 'HEAD']) {
      const res = await stack.request(method, '/_gate/health', { accept: 'text/html' });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/json');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['set-cookie']).toBeUndefined();
      if (method === 'GET') expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    }
    // A garbage session cookie changes nothing: the gate is not asked.
    expect((await stack.request('GET', '/_gate/health', { cookie: 'gw_session=garbage' })).status).toBe(200);
    expect(stack.upstream.seen.length).toBe(before);
    // A request after it is logged; the health checks before it are not.
    await stack.request('GET', '/after-health', { accept: 'application/json' });
    expect(await accessLogEntry(stack.nginx, (e) => e.path === '/after-health')).toBeDefined();
    expect(stack.nginx.accessLog()).not.toContain('/_gate/health');
  });

  test("the gateway's health does not depend on the auth service (whose outage is /readyz's business)", async () => {
    await stack.stopAuthService();
    try {
      expect((await stack.request('GET', '/_gate/health')).status).toBe(200);
      // While sign-in itself is down.
      expect((await stack.request('GET', '/login', { accept: 'text/html' })).status).toBe(502);
    } finally {
      await stack.restartAuthService({});
    }
  });

  test('stub_status answers on the internal listener only', async () => {
    const status = await rawRequest(statusPort, 'GET', '/stub_status');
    expect(status.status).toBe(200);
    expect(status.body).toMatch(/^Active connections: \d+ \nserver accepts handled requests\n \d+ \d+ \d+ \nReading: \d+ Writing: \d+ Waiting: \d+ \n$/);
    expect((await rawRequest(statusPort, 'GET', '/anything-else')).status).toBe(404);
    expect((await rawRequest(statusPort, 'GET', '/_gate/health')).status).toBe(200);
    // On the public server /stub_status is an ordinary protected path: anonymous callers are refused.
    const before = stack.upstream.seen.length;
    const pub = await stack.request('GET', '/stub_status', { accept: 'application/json' });
    expect(pub.status).toBe(401);
    expect(pub.body).not.toContain('Active connections');
    expect(stack.upstream.seen.length).toBe(before);
  });

  test('the auth service counts a sign-in made through nginx; /metrics is not reachable through nginx', async () => {
    const { res, session } = await stack.login('uhura', 'uhuras password');
    expect(res.status).toBe(302);
    const scraped = await rawRequest(metricsPort, 'GET', '/metrics');
    expect(scraped.status).toBe(200);
    expect(scraped.body).toMatch(/^gateway_auth_logins_total\{source="local",result="success"\} 1$/m);
    // Through nginx, /metrics is the protected app's path, never the auth service's metrics.
    const seen = stack.upstream.seen.length;
    const viaNginx = await stack.request('GET', '/metrics', { accept: 'application/json', cookie: session! });
    expect(viaNginx.body).not.toContain('gateway_auth_');
    expect(stack.upstream.seen.length).toBe(seen + 1);
    expect(stack.upstream.seen[seen]!.url).toBe('/metrics');
    // The sign-in's auth event names the client address nginx forwarded.
    const success = stack
      .authLogs()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.event === 'auth_success' && l.user === 'uhura');
    expect(success).toMatchObject({ ip: '127.0.0.1' });
  });
});
