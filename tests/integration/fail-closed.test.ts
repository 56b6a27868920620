/**
 * Fail closed: a gate that cannot trust its own config denies everything (reason gate-error), and
 * sign-in floods get a clear 429.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { headerSegmentFor } from '../../auth-service/src/services/gate-config.js';
import { stackTest, startStack, type Stack } from '../support/stack.js';
import { claimsFor, nowSeconds, signWith } from '../support/tokens.js';

describe('fail closed', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack({ env: { LOGIN_RATE_LIMIT_IP: '3/300' } });
    await stack.createUser('kirk', 'fail closed password 1');
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('too many sign-in attempts from one address get a 429 page with Retry-After', async () => {
    const statuses: number[] = [];
    let last = null as Awaited<ReturnType<Stack['login']>> | null;
    for (let i = 0; i < 5; i++) {
      last = await stack.login('kirk', `wrong ${i}`, '/');
      statuses.push(last.res.status);
    }
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(statuses.slice(3)).toEqual([429, 429]);
    expect(Number(last!.res.headers['retry-after'])).toBeGreaterThan(0);
    expect(last!.res.body).toMatch(/Too many sign-in attempts/);
    expect(last!.session).toBeNull();
  }, 30_000);

  test('a gate config the gate cannot use denies every request with gate-error', async () => {
    const token = signWith(headerSegmentFor(stack.secret), claimsFor('127.0.0.1', nowSeconds()), stack.secret);
    expect((await stack.request('GET', '/x', { accept: 'application/json', cookie: `gw_session=${token}` })).status).toBe(200);

    const file = join(stack.nginx.prefix, 'conf', 'runtime', 'gate-config.json');
    const good = readFileSync(file, 'utf8');
    const broken = JSON.parse(good);
    broken.keys = 'not an object';
    writeFileSync(file, JSON.stringify(broken));
    expect(stack.nginx.reload().ok).toBe(true);

    stack.upstream.reset();
    let res = await stack.request('GET', '/x', { accept: 'application/json', cookie: `gw_session=${token}` });
    for (let i = 0; i < 50 && res.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      stack.upstream.reset();
      res = await stack.request('GET', '/x', { accept: 'application/json', cookie: `gw_session=${token}` });
    }
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body).reason).toBe('gate-error');
    expect(stack.upstream.seen).toHaveLength(0);
    expect(stack.nginx.errorLog()).toMatch(/gate-error request_id=[0-9a-f]{32}/);
    expect(stack.nginx.errorLog()).not.toContain(token.split('.')[2]);
  });
});
