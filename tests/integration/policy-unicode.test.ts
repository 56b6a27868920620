/**
 * Issue 8 through the real nginx and gate, with tests/fixtures/policy/unicode-identity.yaml:
 * non-ASCII deny rules (nginx hands njs $uri as UTF-8 bytes), source-qualified `users:`, verified
 * e-mail domains, `_method` in the query on method rules, the path length bound, and the access
 * log (src, the rule of anonymous refusals). Sessions are signed with the stack's key, so identities
 * from other sources (an OIDC account named kirk) need no provider.
 */
import { afterAll, beforeAll, beforeEach, describe, expect } from '@jest/globals';
import { stackTest, startStack, type Stack } from '../support/stack.js';
import { policyFixture, requestLogged, sessionCookieAt } from '../support/policy.js';

const JSON_CLIENT = { accept: 'application/json' };

describe('non-ASCII paths, identities and method overrides through nginx', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  const now = () => Math.floor(Date.now() / 1000);
  /** A local user outside Federation whose e-mail is verified (local accounts always are). */
  const mccoy = () => sessionCookieAt(stack, now(), { username: 'mccoy', groups: ['Medical'], email: 'mccoy@starfleet.example', email_verified: true });
  const localKirk = () => sessionCookieAt(stack, now(), { username: 'kirk', groups: [] });
  /** An OIDC account that chose the username kirk (preferred_username is user-editable). */
  const oidcKirk = (extra: Record<string, unknown> = {}) =>
    sessionCookieAt(stack, now(), { src: 'oidc', sub: 'AbC-123', username: 'kirk', groups: [], ...extra });

  beforeAll(async () => {
    stack = await startStack({ env: { POLICY_FILE: policyFixture('unicode-identity.yaml') } });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });
  beforeEach(() => stack.upstream.reset());

  const denied: Array<[string, string]> = [
    ['/%C3%84rzte', 'aerzte'],
    ['/%C3%A4rzte/liste', 'aerzte'],
    ['/%C3%84RZTE', 'aerzte'],
    ['/CAF%C3%89', 'cafe'],
    ['/caf%C3%A9', 'cafe'],
    ['/R%C3%89SUM%C3%89', 'resume'],
  ];
  for (const [target, rule] of denied) {
    test(`denies ${target} by the non-ASCII rule ${rule} (403, upstream sees nothing)`, async () => {
      const { res, log } = await requestLogged(stack, 'GET', target, { ...JSON_CLIENT, cookie: mccoy() });
      expect(res.status).toBe(403);
      expect(stack.upstream.seen).toHaveLength(0);
      expect(log).toMatchObject({ reason: 'policy-denied', rule, user: 'mccoy', src: 'local' });
    });
  }

  test('refuses a raw Latin-1 byte in the request line (0xC9: not UTF-8; IIS may read it in its code page)', async () => {
    // node:http writes the request line as Latin-1, so \u00c9 leaves as the single byte 0xC9.
    const { res, log } = await requestLogged(stack, 'GET', '/CAF\u00c9', { ...JSON_CLIENT, cookie: mccoy() });
    expect(res.status).toBe(400);
    expect(log).toMatchObject({ reason: 'path-ambiguous' });
    expect(stack.upstream.seen).toHaveLength(0);
  });

  for (const target of ['/secre%C5%A3', '/%c5%bfecret', '/%e2%84%aaeys', '/%c5%bfECRET/x']) {
    const expected = target === '/secre%C5%A3' ? 200 : 400;
    test(`${target}: ${expected === 400 ? 'refused as ambiguous (folds to ASCII elsewhere)' : 'an ordinary non-ASCII path'}`, async () => {
      const { res, log } = await requestLogged(stack, 'GET', target, { ...JSON_CLIENT, cookie: mccoy() });
      expect(res.status).toBe(expected);
      if (expected === 400) {
        expect(JSON.parse(res.body)).toEqual({ error: 'bad-request', reason: 'path-ambiguous' });
        expect(stack.upstream.seen).toHaveLength(0);
        expect(log).toMatchObject({ reason: 'path-ambiguous' });
      }
    });
  }

  for (const [target, rule] of [['/reports-archive', 'escaped-dash'], ['/M%C3%9CNCHEN', 'escaped-umlaut']]) {
    test(`applies a regex rule written with escapes (${rule}) to ${target}`, async () => {
      const { res, log } = await requestLogged(stack, 'GET', target, { ...JSON_CLIENT, cookie: mccoy() });
      expect(res.status).toBe(403);
      expect(log).toMatchObject({ rule });
    });
  }

  test('users: [kirk] admits the local kirk and logs src local', async () => {
    const { res, log } = await requestLogged(stack, 'GET', '/admin', { ...JSON_CLIENT, cookie: localKirk() });
    expect(res.status).toBe(200);
    expect(log).toMatchObject({ rule: 'admins', user: 'kirk', src: 'local' });
  });

  test('users: [kirk] refuses an OIDC account whose username is kirk, and logs src oidc', async () => {
    const { res, log } = await requestLogged(stack, 'GET', '/admin', { ...JSON_CLIENT, cookie: oidcKirk() });
    expect(res.status).toBe(403);
    expect(stack.upstream.seen).toHaveLength(0);
    expect(log).toMatchObject({ rule: 'admin-others', user: 'kirk', src: 'oidc' });
  });

  test('email_domain admits a verified address', async () => {
    const { res } = await requestLogged(stack, 'GET', '/mail', { ...JSON_CLIENT, cookie: mccoy() });
    expect(res.status).toBe(200);
  });

  test('email_domain refuses the same domain when email_verified is false', async () => {
    const cookie = oidcKirk({ email: 'kirk@starfleet.example', email_verified: false });
    const { res, log } = await requestLogged(stack, 'GET', '/mail', { ...JSON_CLIENT, cookie });
    expect(res.status).toBe(403);
    expect(log).toMatchObject({ rule: 'mail-others' });
  });

  test('refuses _method in the query on a path with a method rule (400 method-override)', async () => {
    const { res, log } = await requestLogged(stack, 'POST', '/reports/q3?_method=DELETE', { ...JSON_CLIENT, cookie: mccoy() }, '');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ error: 'bad-request', reason: 'method-override' });
    expect(stack.upstream.seen).toHaveLength(0);
    expect(log).toMatchObject({ reason: 'method-override', method: 'POST' });
  });

  test('lets _method through where no rule names methods', async () => {
    const { res } = await requestLogged(stack, 'POST', '/other?_method=DELETE', { ...JSON_CLIENT, cookie: mccoy() }, '');
    expect(res.status).toBe(200);
  });

  test('refuses a path over 2,048 bytes before any regex runs (400 path-too-long)', async () => {
    const { res, log } = await requestLogged(stack, 'GET', '/reports/' + 'a'.repeat(2100), { ...JSON_CLIENT, cookie: mccoy() });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ error: 'bad-request', reason: 'path-too-long' });
    expect(log).toMatchObject({ reason: 'path-too-long' });
  });

  test('logs an anonymous 401 without the rule that did not decide it', async () => {
    const { res, log } = await requestLogged(stack, 'GET', '/secret', JSON_CLIENT);
    expect(res.status).toBe(401);
    expect(log).toMatchObject({ reason: 'token-missing', rule: '', user: '', src: '' });
  });
});
