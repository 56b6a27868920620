/**
 * The return URL (`rd`) through the real nginx and auth service: every payload of the open-redirect
 * list is neutralised, and good paths survive the round trip.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { REPO_ROOT } from '../../scripts/lib/nginx-runtime.js';
import { stackTest, startStack, type Stack } from '../support/stack.js';

const payloads = readFileSync(join(REPO_ROOT, 'njs', 'test', 'fixtures', 'oauth2-proxy-openredirects.txt'), 'utf8')
  .split('\n')
  .filter((l) => l.length > 0);

describe('return URLs', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  const password = 'a long enough demo password';

  beforeAll(async () => {
    stack = await startStack({ env: { LOGIN_RATE_LIMIT_IP: '1000/60', LOGIN_RATE_LIMIT_USER: '1000/60', LOGIN_RATE_LIMIT_USER_IP: '1000/60' } });
    await stack.createUser('mccoy', password);
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test(`the login form turns each of the ${payloads.length} open-redirect payloads into "/"`, async () => {
    expect(payloads.length).toBeGreaterThan(50);
    const kept: string[] = [];
    for (const p of payloads) {
      const form = await stack.loginForm(p);
      if (form.fields.rd !== '/') kept.push(`${JSON.stringify(p)} -> ${JSON.stringify(form.fields.rd)}`);
    }
    expect(kept).toEqual([]);
  }, 120_000);

  test('a successful login with a hostile rd lands on "/"', async () => {
    for (const rd of ['//evil.example', '/\\evil.example', 'https://evil.example/', '/%2f%2fevil.example', '/\t/evil.example']) {
      const form = await stack.loginForm();
      const body = new URLSearchParams({ ...form.fields, rd, username: 'mccoy', password }).toString();
      const res = await stack.request(
        'POST',
        '/login',
        { 'content-type': 'application/x-www-form-urlencoded', cookie: form.csrfCookie, origin: stack.baseUrl, 'content-length': String(Buffer.byteLength(body)) },
        body,
      );
      expect({ rd, status: res.status, location: res.headers.location }).toEqual({ rd, status: 302, location: '/' });
    }
  }, 30_000);

  test('the original request URI survives the round trip, query and encoding included', async () => {
    const original = '/federation/crew?rank=captain&q=a%2Fb&empty=';
    const redirect = await stack.request('GET', original, { accept: 'text/html' });
    const rd = new URL(String(redirect.headers.location), stack.baseUrl).searchParams.get('rd');
    expect(rd).toBe(original);
    const { res } = await stack.login('mccoy', password, String(rd));
    expect(res.headers.location).toBe(original);
  }, 20_000);
});
