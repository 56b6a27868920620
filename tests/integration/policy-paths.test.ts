/**
 * Path tricks against the example policy (nginx/policy.yaml: /federation only for the Federation
 * group), sent verbatim through the real nginx. For each one:
 * - mccoy (not in Federation) gets the expected answer: 400 path-ambiguous from the gate, nginx's
 *   own 400, 403 from the policy, or 200 from the default; and never a 2xx for which the upstream saw
 *   a path that any liberal reading (liberalNormalise) puts under /federation;
 * - kirk (Federation) sends the same request: what nginx itself made of the path (its normalised $uri,
 *   which proxy_pass sends the upstream re-escaped) agrees with the gate's decision for mccoy.
 * The access log names the path as sent (query cut) and the rule that decided.
 *
 * The requests go through stack.request (node:http), which sends the request target byte for byte
 * (checked against a plain socket server: `..;`, backslashes and `%XX` arrive as written).
 */
import { afterAll, beforeAll, beforeEach, describe, expect } from '@jest/globals';
import { stackTest, type Stack } from '../support/stack.js';
import { isUnder, liberalNormalise, requestLogged, startSeedStack } from '../support/policy.js';

type Outcome =
  /** The gate refuses the path as ambiguous (400, reason path-ambiguous) before looking at the session. */
  | { kind: 'ambiguous' }
  /** nginx refuses the request line itself (400); the gate never runs. */
  | { kind: 'nginx-400' }
  /** Under /federation: 403 for mccoy; kirk reaches it, nginx's $uri is `uri` and the upstream gets `upstream`. */
  | { kind: 'federation'; uri: string; upstream: string }
  /** Outside /federation: the default (allow) decides for both. */
  | { kind: 'default'; uri: string; upstream: string };

const tricks: Array<{ target: string; why: string; outcome: Outcome }> = [
  // `..;` : Tomcat/Spring cut `;params` and then resolve `..`; nginx keeps `..;` as a name.
  { target: '/public/..;/federation', why: 'Tomcat path parameter on ..', outcome: { kind: 'ambiguous' } },
  { target: '/federation/..;/', why: 'climbing out of the prefix with ..;', outcome: { kind: 'ambiguous' } },
  { target: '/x/..;/federation', why: '..; from an unprotected segment', outcome: { kind: 'ambiguous' } },
  // Backslashes: IIS reads them as '/'; nginx on Unix does not.
  { target: '/public%5c..%5cfederation', why: 'encoded backslashes', outcome: { kind: 'ambiguous' } },
  { target: '/public\\..\\federation', why: 'raw backslashes', outcome: { kind: 'ambiguous' } },
  // Double encoding: nginx decodes once; a decoding upstream would decode again.
  { target: '/public/%252e%252e/federation', why: 'double-encoded dots', outcome: { kind: 'ambiguous' } },
  { target: '/fed%2565ration', why: 'double-encoded letter', outcome: { kind: 'ambiguous' } },
  // Windows/IIS drops trailing dots and spaces from a segment: these name /federation there.
  { target: '/federation.', why: 'trailing dot (Windows)', outcome: { kind: 'ambiguous' } },
  { target: '/federation%2e', why: 'encoded trailing dot (Windows)', outcome: { kind: 'ambiguous' } },
  { target: '/federation%20', why: 'encoded trailing space (Windows)', outcome: { kind: 'ambiguous' } },
  { target: '/federation./secret', why: 'inner segment with a trailing dot (Windows)', outcome: { kind: 'ambiguous' } },
  // Control characters that nginx decodes into $uri.
  { target: '/federation%01', why: 'encoded control character', outcome: { kind: 'ambiguous' } },
  // Encoded '?' and '#': an upstream that decodes and re-parses the path cuts it there (issue 8).
  { target: '/federation%23', why: 'encoded # (re-parsed as a fragment)', outcome: { kind: 'ambiguous' } },
  { target: '/federation%3f', why: 'encoded ? (re-parsed as a query)', outcome: { kind: 'ambiguous' } },
  { target: '/federation%3Fx=1', why: 'encoded ? with a fake query', outcome: { kind: 'ambiguous' } },
  // Non-ASCII letters that .NET/Java case-insensitive compares read as ASCII (issue 8).
  { target: '/federat%C4%B1on', why: 'dotless i (U+0131)', outcome: { kind: 'ambiguous' } },
  { target: '/%c5%bfecret', why: 'long s (U+017F)', outcome: { kind: 'ambiguous' } },
  { target: '/%e2%84%aaeys', why: 'Kelvin sign (U+212A)', outcome: { kind: 'ambiguous' } },
  { target: '/FEDERAT%C4%B0ON', why: 'dotted capital I (U+0130)', outcome: { kind: 'ambiguous' } },
  { target: '/federation/%ff', why: 'invalid UTF-8', outcome: { kind: 'ambiguous' } },
  { target: '/federation/%c0%ae', why: 'overlong UTF-8 dot', outcome: { kind: 'ambiguous' } },
  // Requests nginx itself refuses.
  { target: '/%2e%2e/federation', why: 'encoded .. above the root', outcome: { kind: 'nginx-400' } },
  { target: '/x/../../federation', why: '.. above the root', outcome: { kind: 'nginx-400' } },
  { target: '/a%00b', why: 'encoded NUL', outcome: { kind: 'nginx-400' } },
  { target: '/100%', why: 'a lone % (not ordinary: nginx refuses it)', outcome: { kind: 'nginx-400' } },
  { target: '/federation%zz', why: '% without two hex digits', outcome: { kind: 'nginx-400' } },
  // nginx normalises these to a path under /federation: the policy sees it there.
  { target: '/public/%2e%2e/federation', why: 'encoded dot segments', outcome: { kind: 'federation', uri: '/federation', upstream: '/federation' } },
  { target: '/fed%65ration', why: 'encoded letter', outcome: { kind: 'federation', uri: '/federation', upstream: '/federation' } },
  { target: '/FEDERATION', why: 'upper case (IIS/Tableau on Windows ignore case)', outcome: { kind: 'federation', uri: '/FEDERATION', upstream: '/FEDERATION' } },
  { target: '/Federation/', why: 'mixed case with a trailing slash', outcome: { kind: 'federation', uri: '/Federation/', upstream: '/Federation/' } },
  { target: '//federation', why: 'double slash', outcome: { kind: 'federation', uri: '/federation', upstream: '/federation' } },
  { target: '/federation/', why: 'trailing slash', outcome: { kind: 'federation', uri: '/federation/', upstream: '/federation/' } },
  { target: '/federation;jsessionid=1', why: 'Java session path parameter', outcome: { kind: 'federation', uri: '/federation;jsessionid=1', upstream: '/federation;jsessionid=1' } },
  { target: '/federation;x=1/a', why: 'path parameter inside the path', outcome: { kind: 'federation', uri: '/federation;x=1/a', upstream: '/federation;x=1/a' } },
  { target: '/federation%3bx', why: 'encoded semicolon', outcome: { kind: 'federation', uri: '/federation;x', upstream: '/federation;x' } },
  { target: '/federation?x=/public', why: 'a harmless-looking query', outcome: { kind: 'federation', uri: '/federation', upstream: '/federation?x=/public' } },
  { target: '/./federation', why: 'dot segment', outcome: { kind: 'federation', uri: '/federation', upstream: '/federation' } },
  { target: '/x/../federation', why: 'dot-dot segment', outcome: { kind: 'federation', uri: '/federation', upstream: '/federation' } },
  { target: '/federation/.', why: 'trailing dot segment', outcome: { kind: 'federation', uri: '/federation/', upstream: '/federation/' } },
  { target: '/federation%2f', why: 'encoded trailing slash', outcome: { kind: 'federation', uri: '/federation/', upstream: '/federation/' } },
  { target: '/federation%2Fa', why: 'encoded inner slash', outcome: { kind: 'federation', uri: '/federation/a', upstream: '/federation/a' } },
  // Outside /federation, whatever the query says.
  { target: '/public?x=/federation', why: 'the query never counts as path', outcome: { kind: 'default', uri: '/public', upstream: '/public?x=/federation' } },
  { target: '/federation/%2e%2e/public', why: 'leaving the prefix with encoded ..', outcome: { kind: 'default', uri: '/public', upstream: '/public' } },
];

const expectedStatus = (o: Outcome): number => (o.kind === 'federation' ? 403 : o.kind === 'default' ? 200 : 400);
const pathOf = (url: string): string => url.split('?')[0];

describe('path tricks against the example policy, through nginx', () => {
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

  for (const t of tricks) {
    const o = t.outcome;
    test(`mccoy ${t.target} (${t.why}) → ${expectedStatus(o)} ${o.kind}`, async () => {
      const { res, log } = await requestLogged(stack, 'GET', t.target, { accept: 'application/json', cookie: mccoy });

      // The invariant, whatever the expectation below: no 2xx on which the upstream could read /federation.
      if (res.status >= 200 && res.status < 300) {
        for (const seen of stack.upstream.seen) expect(isUnder(liberalNormalise(seen.url), '/federation')).toBe(false);
      } else {
        expect(stack.upstream.seen).toHaveLength(0);
      }

      expect(res.status).toBe(expectedStatus(o));
      // The log names the path as the client sent it (query cut), nginx's own 400s included.
      expect(log.path).toBe(pathOf(t.target));
      switch (o.kind) {
        case 'ambiguous':
          expect(JSON.parse(res.body)).toEqual({ error: 'bad-request', reason: 'path-ambiguous' });
          expect(log).toMatchObject({ status: 400, reason: 'path-ambiguous', rule: '', user: '' });
          break;
        case 'nginx-400':
          // The same JSON error body, but nginx's own reason: it answered before any location ran.
          expect(JSON.parse(res.body)).toEqual({ error: 'bad-request', reason: 'malformed-request' });
          expect(log).toMatchObject({ status: 400, reason: 'malformed-request', rule: '', user: '' });
          break;
        case 'federation':
          expect(JSON.parse(res.body)).toEqual({ error: 'forbidden', reason: 'policy-denied' });
          expect(log).toMatchObject({ status: 403, reason: 'policy-denied', rule: 'federation-others', user: 'mccoy', src: 'local' });
          // The log also has what nginx matched (its normalised $uri), not the error page's URI.
          expect(log.uri).toBe(o.uri);
          break;
        case 'default':
          expect(log).toMatchObject({ status: 200, reason: 'session-valid', rule: 'default', user: 'mccoy' });
          expect(stack.upstream.seen.map((s) => s.url)).toEqual([o.upstream]);
          break;
      }
    });

    test(`kirk ${t.target}: nginx's own reading agrees with the gate's`, async () => {
      const { res, log } = await requestLogged(stack, 'GET', t.target, { accept: 'application/json', cookie: kirk });
      if (o.kind === 'ambiguous' || o.kind === 'nginx-400') {
        // Refused whoever asks: the path is judged before the session.
        expect(res.status).toBe(400);
        expect(log).toMatchObject({ status: 400, reason: o.kind === 'ambiguous' ? 'path-ambiguous' : 'malformed-request', rule: '' });
        expect(stack.upstream.seen).toHaveLength(0);
        return;
      }
      expect(res.status).toBe(200);
      expect(log).toMatchObject({ status: 200, user: 'kirk', path: pathOf(t.target), uri: o.uri, rule: o.kind === 'federation' ? 'federation-members' : 'default' });
      // What nginx made of the path: proxy_pass with a URI part sends the upstream nginx's normalised
      // $uri (re-escaped) plus the raw query, so the upstream shows nginx's reading.
      expect(stack.upstream.seen.map((s) => s.url)).toEqual([o.upstream]);
      const nginxUri = decodeURIComponent(pathOf(stack.upstream.seen[0].url));
      expect(nginxUri).toBe(o.uri);
      // Under /federation for nginx (and under the liberal reading) exactly when the gate refused mccoy.
      expect(isUnder(liberalNormalise(nginxUri), '/federation')).toBe(o.kind === 'federation');
      expect(stack.upstream.seen[0].headers['x-payload-username']).toBe('kirk');
    });
  }

  test('a browser gets the branded 400 page for an ambiguous path', async () => {
    const { res, log } = await requestLogged(stack, 'GET', '/public/..;/federation', { accept: 'text/html', cookie: mccoy });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('<h1>Bad request</h1>');
    // The page the auth service wrote for nginx, with the request id of the access log filled in.
    expect(res.body).toContain(`Request id: <code>${String(log!.request_id)}</code>`);
    expect(stack.upstream.seen).toHaveLength(0);
    expect(log).toMatchObject({ status: 400, reason: 'path-ambiguous' });
  });

  test('an anonymous request with an ambiguous path gets the 400, not a login redirect', async () => {
    const { res } = await requestLogged(stack, 'GET', '/public%5c..%5cfederation', { accept: 'text/html' });
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(stack.upstream.seen).toHaveLength(0);
  });
});
