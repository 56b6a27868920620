/**
 * The counters the app moves (real HTTP, real PostgreSQL), and the client address and ISO time on
 * its auth events. Serving them on the internal listener is in main.test.ts.
 */
import { describe, expect, test } from '@jest/globals';
import { appsOnTestDatabase, setCookies } from './app.testkit.js';
import { createMetrics, type AuthMetrics } from './metrics.js';

const apps = appsOnTestDatabase((db) => db.createUser('alice', 'correct horse battery'));

/** The value of `name` with exactly these labels (0 when that series has not been touched). */
async function valueOf(metrics: AuthMetrics, name: string, labels: Record<string, string | number>): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const match = values.find((v) => Object.keys(labels).length === Object.keys(v.labels).length && Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return match?.value ?? 0;
}

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('metrics moved by real requests', () => {
  test('counts a success and a failure by source, with the latency histogram', async () => {
    const metrics = createMetrics();
    const app = await apps.start({ deps: { metrics } });
    expect((await app.login('alice', 'correct horse battery')).status).toBe(302);
    expect((await app.login('alice', 'wrong')).status).toBe(401);
    expect((await app.login('nobody', 'wrong')).status).toBe(401);
    expect(await valueOf(metrics, 'gateway_auth_logins_total', { source: 'local', result: 'success' })).toBe(1);
    expect(await valueOf(metrics, 'gateway_auth_logins_total', { source: 'local', result: 'failure' })).toBe(2);
    expect(await valueOf(metrics, 'gateway_auth_login_duration_seconds', { source: 'local', result: 'failure', le: '+Inf' })).toBe(2);
    const text = await metrics.registry.metrics();
    expect(text).toContain('gateway_auth_login_duration_seconds_sum{source="local",result="success"}');
    // Typed usernames never become labels (an attacker could otherwise grow the series without bound).
    expect(text).not.toContain('nobody');
  });

  test('counts rate-limit hits by limit, and the refused attempt as rate_limited', async () => {
    const metrics = createMetrics();
    const app = await apps.start({ env: { LOGIN_RATE_LIMIT_USER_IP: '1/300' }, deps: { metrics } });
    expect((await app.login('alice', 'wrong')).status).toBe(401);
    expect((await app.login('alice', 'wrong')).status).toBe(429);
    expect((await app.login('alice', 'wrong')).status).toBe(429);
    expect(await valueOf(metrics, 'gateway_auth_rate_limit_hits_total', { scope: 'user-ip' })).toBe(2);
    expect(await valueOf(metrics, 'gateway_auth_logins_total', { source: 'password', result: 'rate_limited' })).toBe(2);
  });

  test('counts renewals: renewed, and refused by reason', async () => {
    const metrics = createMetrics();
    const app = await apps.start({ deps: { metrics } });
    const cookie = setCookies(await app.login('alice', 'correct horse battery'))
      .find((c) => c.startsWith('gw_session='))!
      .split(';')[0]!;
    expect((await app.request('POST', '/auth/renew', { cookie })).status).toBe(204);
    expect((await app.request('POST', '/auth/renew')).status).toBe(401);
    expect((await app.request('POST', '/auth/renew', { cookie: 'gw_session=forged.token.here' })).status).toBe(401);
    expect(await valueOf(metrics, 'gateway_auth_renewals_total', { result: 'renewed' })).toBe(1);
    expect(await valueOf(metrics, 'gateway_auth_renewals_total', { result: 'token-missing' })).toBe(1);
    expect(await valueOf(metrics, 'gateway_auth_renewals_total', { result: 'token-invalid' })).toBe(1);
  });
});

describe('auth events', () => {
  test('carry the client address (from the trusted proxy) and an ISO-8601 UTC time', async () => {
    const app = await apps.start();
    // The default AUTH_TRUST_PROXY trusts loopback, so X-Forwarded-For from it names the client.
    await app.login('alice', 'correct horse battery', { headers: { 'x-forwarded-for': '198.51.100.7' } });
    await app.login('alice', 'wrong', { headers: { 'x-forwarded-for': '2001:db8::9' } });
    const success = app.events('auth_success')[0]!;
    const failure = app.events('auth_failure')[0]!;
    expect(success).toMatchObject({ ip: '198.51.100.7', user: 'alice' });
    expect(failure).toMatchObject({ ip: '2001:db8::9', reason: 'invalid' });
    expect(String(success.time)).toMatch(ISO_TIME);
    // Only auth events get the address; the request line keeps its shape.
    expect(app.events('request').every((l) => !('ip' in l) && ISO_TIME.test(String(l.time)))).toBe(true);
  });

  test('an untrusted X-Forwarded-For is not believed: the address is the connection peer', async () => {
    const app = await apps.start({ env: { AUTH_TRUST_PROXY: 'false' } });
    await app.login('alice', 'wrong', { headers: { 'x-forwarded-for': '198.51.100.7' } });
    expect(app.events('auth_failure')[0]).toMatchObject({ ip: '127.0.0.1' });
  });
});
