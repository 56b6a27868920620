/**
 * The access policy through the real nginx: the documented example (nginx/policy.yaml, the seed
 * scenario) and one rule per condition kind. Each case asserts the status, the body a browser or an
 * API client gets, what the upstream saw (nothing on a refusal), and the rule the access log names.
 */
import { afterAll, beforeAll, beforeEach, describe, expect } from '@jest/globals';
import { stackTest, startStack, type Stack } from '../support/stack.js';
import { policyFixture, requestLogged, signIn, startSeedStack } from '../support/policy.js';

const password = 'correct horse battery staple';
const json = { accept: 'application/json' };
const html = { accept: 'text/html,application/xhtml+xml' };

describe('the example policy (nginx/policy.yaml): /federation only for the Federation group', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  let kirk: string;
  let mccoy: string;

  beforeAll(async () => {
    ({ stack, kirk, mccoy } = await startSeedStack());
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });
  beforeEach(() => stack.upstream.reset());

  for (const path of ['/federation', '/federation/x']) {
    test(`a Federation member reaches ${path}, and the upstream receives the identity (rule federation-members)`, async () => {
      const { res, log } = await requestLogged(stack, 'GET', path, { ...html, cookie: kirk });
      expect(res.status).toBe(200);
      expect(stack.upstream.seen).toHaveLength(1);
      expect(stack.upstream.seen[0].url).toBe(path);
      expect(stack.upstream.seen[0].headers['x-payload-username']).toBe('kirk');
      expect(stack.upstream.seen[0].headers['x-payload-groups']).toBe('Federation');
      expect(log).toMatchObject({ path, status: 200, user: 'kirk', reason: 'session-valid', rule: 'federation-members' });
    });
  }

  test('a signed-in non-member gets the branded 403 page in a browser, and the upstream sees nothing', async () => {
    const { res, log } = await requestLogged(stack, 'GET', '/federation', { ...html, cookie: mccoy });
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('<h1>Access denied</h1>');
    // The page the auth service wrote for nginx, with the request id of the access log filled in.
    expect(res.body).toContain(`Request id: <code>${String(log!.request_id)}</code>`);
    expect(res.body).not.toContain('federation-others'); // the rule is logged, never shown
    expect(stack.upstream.seen).toHaveLength(0);
    expect(log).toMatchObject({ status: 403, user: 'mccoy', reason: 'policy-denied', rule: 'federation-others' });
  });

  test('a signed-in non-member gets 403 JSON as an API client, under the prefix too', async () => {
    for (const path of ['/federation', '/federation/x']) {
      const { res, log } = await requestLogged(stack, 'GET', path, { ...json, cookie: mccoy });
      expect(res.status).toBe(403);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(JSON.parse(res.body)).toEqual({ error: 'forbidden', reason: 'policy-denied' });
      expect(log).toMatchObject({ status: 403, user: 'mccoy', reason: 'policy-denied', rule: 'federation-others' });
    }
    expect(stack.upstream.seen).toHaveLength(0);
  });

  test('the access log of a refusal names the refused path, not the error page it was answered with', async () => {
    const { log } = await requestLogged(stack, 'POST', '/federation/x?tab=1', { ...json, cookie: mccoy, 'content-type': 'text/plain' }, 'x');
    expect(log).toMatchObject({ status: 403, rule: 'federation-others', user: 'mccoy', path: '/federation/x' });
    expect(stack.upstream.seen).toHaveLength(0);
  });

  // The 403 is answered through `error_page 403`, an internal redirect that turns every method but
  // HEAD into GET; the gate keeps the real method for the log.
  test('the access log of a refusal names the refused method (not the GET of the error page)', async () => {
    const { log } = await requestLogged(stack, 'POST', '/federation/x', { ...json, cookie: mccoy, 'content-type': 'text/plain' }, 'x');
    expect(log).toMatchObject({ status: 403, rule: 'federation-others', method: 'POST' });
  });

  test('an API client without Accept gets the JSON 403, not the page', async () => {
    const { res } = await requestLogged(stack, 'GET', '/federation', { cookie: mccoy });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toEqual({ error: 'forbidden', reason: 'policy-denied' });
    expect(stack.upstream.seen).toHaveLength(0);
  });

  test('an anonymous browser is sent to the login first (not a 403), with the path as rd', async () => {
    const { res, log } = await requestLogged(stack, 'GET', '/federation', html);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/login?rd=%2Ffederation');
    expect(stack.upstream.seen).toHaveLength(0);
    // No session means login first: the missing session decided, not the deny rule that matched the
    // path (that rule would not have applied to kirk), so no rule is logged.
    expect(log).toMatchObject({ status: 302, user: '', reason: 'token-missing', rule: '' });
  });

  test('an anonymous API client gets 401 JSON', async () => {
    const { res, log } = await requestLogged(stack, 'GET', '/federation', json);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'unauthenticated', reason: 'token-missing' });
    expect(stack.upstream.seen).toHaveLength(0);
    expect(log).toMatchObject({ status: 401, reason: 'token-missing' });
  });

  test('/federationX is not under the /federation prefix: the default (allow) decides for mccoy', async () => {
    const { res, log } = await requestLogged(stack, 'GET', '/federationX', { ...json, cookie: mccoy });
    expect(res.status).toBe(200);
    expect(stack.upstream.seen.map((s) => s.url)).toEqual(['/federationX']);
    expect(stack.upstream.seen[0].headers['x-payload-username']).toBe('mccoy');
    expect(log).toMatchObject({ path: '/federationX', status: 200, user: 'mccoy', rule: 'default' });
  });

  test('any other path follows the default (allow) for a signed-in user', async () => {
    const { res, log } = await requestLogged(stack, 'GET', '/sickbay', { ...json, cookie: mccoy });
    expect(res.status).toBe(200);
    expect(log).toMatchObject({ path: '/sickbay', status: 200, user: 'mccoy', reason: 'session-valid', rule: 'default' });
  });

  test('the default never exempts from logging in: anonymous elsewhere still gets 401', async () => {
    const { res, log } = await requestLogged(stack, 'GET', '/sickbay', json);
    expect(res.status).toBe(401);
    expect(stack.upstream.seen).toHaveLength(0);
    expect(log).toMatchObject({ status: 401, rule: '' });
  });

  for (const method of ['GET', 'HEAD']) {
    test(`anonymous ${method} /healthz passes without a login and without identity headers (rule healthz)`, async () => {
      const { res, log } = await requestLogged(stack, method, '/healthz', {
        ...json,
        'X-Payload-username': 'kirk',
        'x-payload-groups': 'Federation',
        X_Payload_Sub: 'forged',
      });
      expect(res.status).toBe(200);
      expect(stack.upstream.seen).toHaveLength(1);
      const seen = stack.upstream.seen[0];
      expect(seen.method).toBe(method);
      expect(seen.url).toBe('/healthz');
      // Neither the gate's headers (there is no identity) nor the client's forged ones arrive.
      expect(Object.keys(seen.headers).filter((h) => /^x[-_]payload/i.test(h))).toEqual([]);
      expect(log).toMatchObject({ path: '/healthz', status: 200, user: '', reason: 'public', rule: 'healthz' });
    });
  }

  test('the public rule is for GET/HEAD only: an anonymous POST /healthz needs a login', async () => {
    const { res, log } = await requestLogged(stack, 'POST', '/healthz', { ...json, 'content-type': 'text/plain' }, 'x');
    expect(res.status).toBe(401);
    expect(stack.upstream.seen).toHaveLength(0);
    expect(log).toMatchObject({ status: 401, reason: 'token-missing', rule: '' });
  });

  test('an anonymous request to /healthz keeps its other cookies and loses a stray session cookie', async () => {
    const { res } = await requestLogged(stack, 'GET', '/healthz', { ...json, cookie: 'theme=dark; gw_session=garbage' });
    expect(res.status).toBe(200);
    expect(stack.upstream.seen[0].headers.cookie).toBe('theme=dark');
  });
});

describe('each condition kind through nginx (tests/fixtures/policy/conditions.yaml, default deny)', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  let kirk: string;
  let mccoy: string;
  let spock: string;

  beforeAll(async () => {
    stack = await startStack({ env: { POLICY_FILE: policyFixture('conditions.yaml') } });
    await stack.createUser('kirk', password, { groups: ['Federation'], email: 'kirk@enterprise.example' });
    await stack.createUser('mccoy', password, { email: 'mccoy@enterprise.example' });
    await stack.createUser('spock', password, { email: 'spock@Starfleet.Example' });
    kirk = await signIn(stack, 'kirk', password);
    mccoy = await signIn(stack, 'mccoy', password);
    spock = await signIn(stack, 'spock', password);
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });
  beforeEach(() => stack.upstream.reset());

  const cases: Array<{ name: string; who: () => string; user: string; method: string; path: string; status: 200 | 403; rule: string }> = [
    { name: 'users: a listed user (listed as KIRK) is allowed', who: () => kirk, user: 'kirk', method: 'GET', path: '/bridge', status: 200, rule: 'bridge-captain' },
    { name: 'users: anyone else falls to the default deny', who: () => mccoy, user: 'mccoy', method: 'GET', path: '/bridge/helm', status: 403, rule: 'default' },
    { name: 'claims: email_domain matches case-insensitively', who: () => spock, user: 'spock', method: 'GET', path: '/mail', status: 200, rule: 'starfleet-mail' },
    { name: 'claims: another email domain is not enough', who: () => kirk, user: 'kirk', method: 'GET', path: '/mail', status: 403, rule: 'default' },
    { name: 'methods: GET is allowed by the read rule', who: () => mccoy, user: 'mccoy', method: 'GET', path: '/reports/q3', status: 200, rule: 'reports-read' },
    { name: 'methods: HEAD is allowed by the read rule', who: () => mccoy, user: 'mccoy', method: 'HEAD', path: '/reports/q3', status: 200, rule: 'reports-read' },
    { name: 'methods: POST is refused by the write rule', who: () => mccoy, user: 'mccoy', method: 'POST', path: '/reports/q3', status: 403, rule: 'reports-no-writes' },
    { name: 'methods: DELETE is refused by the write rule, even for kirk', who: () => kirk, user: 'kirk', method: 'DELETE', path: '/reports', status: 403, rule: 'reports-no-writes' },
    { name: 'sourceIps: 127.0.0.1 is inside 127.0.0.0/8', who: () => mccoy, user: 'mccoy', method: 'GET', path: '/console', status: 200, rule: 'loopback-console' },
    { name: 'sourceIps: 127.0.0.1 is outside 10.0.0.0/8 and 2001:db8:abcd::/48', who: () => kirk, user: 'kirk', method: 'GET', path: '/intranet', status: 403, rule: 'default' },
    { name: 'default deny: a path no rule names is refused to a signed-in user', who: () => kirk, user: 'kirk', method: 'GET', path: '/engineering', status: 403, rule: 'default' },
  ];

  for (const c of cases) {
    test(`${c.name}: ${c.user} ${c.method} ${c.path} → ${c.status} (rule ${c.rule})`, async () => {
      const body = c.method === 'POST' ? '{"q":3}' : undefined;
      const headers = { ...json, cookie: c.who(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
      const { res, log } = await requestLogged(stack, c.method, c.path, headers, body);
      expect(res.status).toBe(c.status);
      expect(log).toMatchObject({ status: c.status, user: c.user, rule: c.rule });
      if (c.status === 200) {
        expect(stack.upstream.seen).toHaveLength(1);
        expect(stack.upstream.seen[0]).toMatchObject({ method: c.method, url: c.path });
        expect(stack.upstream.seen[0].headers['x-payload-username']).toBe(c.user);
        expect(log).toMatchObject({ path: c.path, reason: 'session-valid' });
      } else {
        expect(stack.upstream.seen).toHaveLength(0);
        expect(log).toMatchObject({ reason: 'policy-denied' });
        if (c.method !== 'HEAD') expect(JSON.parse(res.body)).toEqual({ error: 'forbidden', reason: 'policy-denied' });
      }
    });
  }

  test('default deny still sends an anonymous browser to the login, not to a 403', async () => {
    const { res, log } = await requestLogged(stack, 'GET', '/engineering', html);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/login?rd=%2Fengineering');
    expect(stack.upstream.seen).toHaveLength(0);
    expect(log).toMatchObject({ status: 302, rule: '', reason: 'token-missing' });
  });

  test('identity conditions never match an anonymous request: anonymous /bridge needs a login', async () => {
    const { res } = await requestLogged(stack, 'GET', '/bridge', json);
    expect(res.status).toBe(401);
    expect(stack.upstream.seen).toHaveLength(0);
  });
});
