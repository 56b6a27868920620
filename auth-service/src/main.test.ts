import crypto from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { createFreshDatabase, type FreshDatabase } from '../../tests/support/fresh-database.js';
import { startTcpProxy, type TcpProxy } from '../../tests/support/tcp-proxy.js';
import { FIXED_NOW_MS, hiddenFields, rawRequest, setCookies } from './app.testkit.js';
import { isAppError } from './errors.js';
import { startAuthService, type RunningAuthService } from './main.js';
import { createPasswordHasher, DEFAULT_PASSWORD_POLICY } from './passwords/index.js';
import { createPool } from './storage/db.js';
import { createUsersRepo } from './storage/users-repo.js';
import { deriveKeyId, headerSegmentFor } from './services/gate-config.js';

const secret = crypto.randomBytes(48).toString('base64url');
const previous = crypto.randomBytes(48).toString('base64url');
const ended = crypto.randomBytes(48).toString('base64url');
const dir = mkdtempSync(join(tmpdir(), 'gw-main-'));
let db: FreshDatabase;
let running: RunningAuthService | undefined;

beforeAll(async () => {
  db = await createFreshDatabase();
});

afterEach(async () => {
  await running?.close();
  running = undefined;
});

afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

function collectLogs(): { stream: PassThrough; lines: () => Array<Record<string, unknown>> } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return {
    stream,
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

async function createUser(url: string, username: string, password: string): Promise<void> {
  const pool = createPool(url, { max: 1 });
  try {
    const hasher = createPasswordHasher(DEFAULT_PASSWORD_POLICY);
    await createUsersRepo(pool).create({ username, passwordHash: await hasher.hash(password) });
  } finally {
    await pool.end();
  }
}

/** GET /metrics on the metrics listener, as Prometheus text. */
async function scrape(port: number): Promise<string> {
  const res = await rawRequest(port, 'GET', '/metrics');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.body;
}

/** The value of one sample (`name{labels} value`), or 0 when the series is absent. */
function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const seen = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => seen[k] === v)) return Number(m[3]);
  }
  return 0;
}

async function login(port: number, username: string, password: string) {
  const form = await rawRequest(port, 'GET', '/login');
  const csrfCookie = setCookies(form)[0]!.split(';')[0]!;
  const body = new URLSearchParams({ ...hiddenFields(form.body), username, password }).toString();
  return rawRequest(port, 'POST', '/login', { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfCookie, host: `127.0.0.1:${port}` }, body);
}

describe('startAuthService', () => {
  test('refuses to start with every configuration problem listed, secrets masked', async () => {
    const attempt = startAuthService({ DATABASE_URL: 'nope', JWT_SECRET: 'changeme', AUTH_COOKIE_SECURE: 'yes' });
    await expect(attempt).rejects.toThrow(/Invalid configuration/);
    const err = await attempt.catch((e: unknown) => e);
    expect(isAppError(err) && err.code).toBe('ERR_CONFIG');
    const errors = (err as { cause: string[] }).cause;
    expect(errors).toHaveLength(3);
    expect(errors.map((e) => e.split(':')[0]).sort()).toEqual(['AUTH_COOKIE_SECURE', 'DATABASE_URL', 'JWT_SECRET']);
    expect((err as Error).message).not.toContain('changeme');
  });

  test('starts with the old SESSION_TTL_SECONDS and logs a warning naming SESSION_MAX_SECONDS', async () => {
    const logs = collectLogs();
    running = await startAuthService({ DATABASE_URL: db.url, JWT_SECRET: secret, AUTH_PORT: '0', SESSION_TTL_SECONDS: '3600' }, { logStream: logs.stream });
    expect(logs.lines()).toContainEqual(expect.objectContaining({ level: 'warn', event: 'config_warning', msg: expect.stringMatching(/SESSION_TTL_SECONDS is deprecated.*SESSION_MAX_SECONDS/) }));
  });

  test('migrates, writes the gate config (0600) with both keys, listens and signs users in', async () => {
    const gateFile = join(dir, 'gate.json');
    const logs = collectLogs();
    running = await startAuthService(
      {
        DATABASE_URL: db.url,
        JWT_SECRET: secret,
        // One key in its grace period, one already retired at FIXED_NOW_MS (left out, with a notice).
        JWT_PREVIOUS_SECRETS: `${previous}@${new Date(FIXED_NOW_MS + 86_400_000).toISOString()},${ended}@${new Date(FIXED_NOW_MS).toISOString()}`,
        AUTH_PORT: '0',
        GATE_CONFIG_FILE: gateFile,
        SESSION_COOKIE_NAME: 'corp_sso',
      },
      { logStream: logs.stream, now: () => FIXED_NOW_MS },
    );
    expect(running.isStoreReady()).toBe(true);
    expect(running.port).toBeGreaterThan(0);
    expect(statSync(gateFile).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(gateFile, 'utf8'))).toEqual({
      keys: { [headerSegmentFor(secret)]: secret, [headerSegmentFor(previous)]: previous },
      keyRetiredAt: { [headerSegmentFor(previous)]: Math.floor(FIXED_NOW_MS / 1000) + 86_400, [headerSegmentFor(ended)]: Math.floor(FIXED_NOW_MS / 1000) },
      cookieName: 'corp_sso',
      ipBinding: 'exact',
      leewaySeconds: 30,
      maxSessionSeconds: 43200,
      loginPath: '/login',
    });
    const notice = logs.lines().find((l) => l.event === 'previous_key_ended');
    expect(notice).toMatchObject({ kid: deriveKeyId(ended), retired_at: new Date(Math.floor(FIXED_NOW_MS / 1000) * 1000).toISOString() });

    expect(JSON.parse((await rawRequest(running.port, 'GET', '/healthz')).body)).toEqual({ status: 'ok' });
    expect((await rawRequest(running.port, 'GET', '/readyz')).status).toBe(200);
    await createUser(db.url, 'ivy', 'ivys password');
    const res = await login(running.port, 'ivy', 'ivys password');
    expect(res.status).toBe(302);
    expect(setCookies(res)[0]).toMatch(/^corp_sso=[^;]+; HttpOnly; SameSite=Lax; Path=\/; Max-Age=43200; Secure$/);

    const events = logs.lines().map((l) => l.event);
    expect(events).toEqual(expect.arrayContaining(['store_ready', 'gate_config_written', 'listening', 'auth_success']));
    expect(JSON.stringify(logs.lines())).not.toContain(secret);
    expect(JSON.stringify(logs.lines())).not.toContain(previous);
    expect(JSON.stringify(logs.lines())).not.toContain(ended);
  });

  test('keeps listening when the database is down at start-up, answers 503, and recovers when it comes back', async () => {
    const target = new URL(db.url);
    const relay: TcpProxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    try {
      await relay.cut();
      target.port = String(relay.port);
      const logs = collectLogs();
      running = await startAuthService({ DATABASE_URL: target.toString(), JWT_SECRET: secret, AUTH_PORT: '0', METRICS_PORT: '0' }, { logStream: logs.stream });
      expect(running.isStoreReady()).toBe(false);
      // Alive (nothing restarts it), but not ready: no sign-in can succeed.
      expect(JSON.parse((await rawRequest(running.port, 'GET', '/healthz')).body)).toEqual({ status: 'ok' });
      const notReady = await rawRequest(running.port, 'GET', '/readyz');
      expect(notReady.status).toBe(503);
      expect(JSON.parse(notReady.body)).toEqual({ status: 'not-ready', checks: { config: 'ok', database: 'migrations-pending' } });
      expect(metricValue(await scrape(running.metricsPort!), 'gateway_auth_db_errors_total', { kind: 'unavailable' })).toBeGreaterThanOrEqual(1);
      expect((await login(running.port, 'ivy', 'ivys password')).status).toBe(503);
      // Where the store is and why it cannot be reached, not only "unavailable" (and no password).
      expect(logs.lines()).toContainEqual(
        expect.objectContaining({
          event: 'store_unavailable',
          attempt: 1,
          store: `${target.hostname}:${relay.port}`,
          msg: expect.stringMatching(new RegExp(`^cannot reach the user store at ${target.hostname.replace(/\./g, '\\.')}:${relay.port}: `)),
        }),
      );

      await relay.restore();
      await running.storeReady;
      expect(running.isStoreReady()).toBe(true);
      expect(JSON.parse((await rawRequest(running.port, 'GET', '/readyz')).body)).toEqual({ status: 'ready', checks: { config: 'ok', database: 'ok' } });
      // Cut again once ready: the database no longer answers /readyz's query.
      await relay.cut();
      expect(JSON.parse((await rawRequest(running.port, 'GET', '/readyz')).body).checks.database).toMatch(/^(unavailable|timeout)$/);
      await relay.restore();
      await createUser(db.url, 'jack', 'jacks password');
      expect((await login(running.port, 'jack', 'jacks password')).status).toBe(302);
    } finally {
      await running?.close();
      running = undefined;
      await relay.close();
    }
  });

  test('serves Prometheus metrics on the internal listener only, counting real sign-ins', async () => {
    await createUser(db.url, 'kim', 'kims password');
    const logs = collectLogs();
    running = await startAuthService({ DATABASE_URL: db.url, JWT_SECRET: secret, AUTH_PORT: '0', METRICS_PORT: '0' }, { logStream: logs.stream });
    const metricsPort = running.metricsPort!;
    expect(metricsPort).toBeGreaterThan(0);
    expect(metricsPort).not.toBe(running.port);
    expect(logs.lines()).toContainEqual(expect.objectContaining({ event: 'metrics_listening', host: '127.0.0.1', port: metricsPort }));

    expect((await login(running.port, 'kim', 'kims password')).status).toBe(302);
    expect((await login(running.port, 'kim', 'wrong password')).status).toBe(401);
    const text = await scrape(metricsPort);
    expect(metricValue(text, 'gateway_auth_logins_total', { source: 'local', result: 'success' })).toBe(1);
    expect(metricValue(text, 'gateway_auth_logins_total', { source: 'local', result: 'failure' })).toBe(1);
    expect(metricValue(text, 'gateway_auth_login_duration_seconds_count', { source: 'local', result: 'success' })).toBe(1);
    expect(metricValue(text, 'gateway_auth_login_duration_seconds_bucket', { source: 'local', result: 'success', le: '+Inf' })).toBe(1);
    // The pool has opened connections; the process metrics are there, under the service's prefix.
    expect(metricValue(text, 'gateway_auth_db_pool_connections', { state: 'max' })).toBe(10);
    expect(metricValue(text, 'gateway_auth_db_pool_connections', { state: 'total' })).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^gateway_auth_process_cpu_seconds_total /m);
    // No username, address or session id in any label.
    expect(text).not.toMatch(/kim|127\.0\.0\.1/);

    // Not on the public port (the one nginx proxies), and nothing else on the metrics port.
    expect((await rawRequest(running.port, 'GET', '/metrics')).status).toBe(404);
    expect((await rawRequest(metricsPort, 'GET', '/login')).status).toBe(404);
    expect((await rawRequest(metricsPort, 'POST', '/metrics')).status).toBe(404);

    // Auth events: ISO-8601 UTC time, as nginx's $time_iso8601, and the client's address.
    const success = logs.lines().find((l) => l.event === 'auth_success')!;
    expect(success).toMatchObject({ ip: '127.0.0.1', user: 'kim' });
    expect(String(success.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const { metricsPort: closedMetrics } = running;
    await running.close();
    running = undefined;
    await expect(rawRequest(closedMetrics!, 'GET', '/metrics')).rejects.toThrow(/ECONNREFUSED/);
  });

  test('runs no metrics listener without METRICS_PORT', async () => {
    running = await startAuthService({ DATABASE_URL: db.url, JWT_SECRET: secret, AUTH_PORT: '0' }, { logStream: new PassThrough() });
    expect(running.metricsPort).toBeNull();
  });

  test('close() stops listening and can be called twice', async () => {
    running = await startAuthService({ DATABASE_URL: db.url, JWT_SECRET: secret, AUTH_PORT: '0' }, { logStream: new PassThrough() });
    const { port } = running;
    await Promise.all([running.close(), running.close()]);
    running = undefined;
    await expect(rawRequest(port, 'GET', '/healthz')).rejects.toThrow(/ECONNREFUSED/);
  });
});
