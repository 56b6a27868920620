/**
 * Runs the shared test tables inside the njs 0.7.9 CLI against the SHIPPED bundle:
 *   npm run test:njs   (= node scripts/build-njs.mjs && njs njs/dist/gate-tests.js)
 *
 * Token, cookie and decision cases go through gate.check(fakeRequest) exactly as nginx calls it
 * (js_set), checking the returned action and every js_var the gate writes. Tokens are signed
 * with njs's own crypto. The return-URL and request-path cases use core/return-url.ts and
 * core/request-path.ts bundled into this runner, since the shipped gate does not expose them.
 * The policy cases give the gate its gate_policy as nginx preloads it: frozen, without prototypes.
 *
 * Last stdout line: "N passed, N failed". Any failure ends in an uncaught exception, which makes
 * the njs CLI exit non-zero. njs 0.7.9 subset only (this file is bundled for njs).
 */
import gate from './gate.js';
import gate08 from './gate-njs08.js';
import tableau from './tableau.js';
import openRedirectList from './fixtures/oauth2-proxy-openredirects.txt';
import { COOKIE_NAME, TOKEN, readCookieCases, removeCookieCases } from './cases/cookie-cases.js';
import { decisionCases } from './cases/decision-cases.js';
import type { DecisionExpectation } from './cases/decision-cases.js';
import { CLIENT_IP, CURRENT_KEY, NOW, base64url, headerSegment, makeConfig, sha256Hex, signToken, validClaims, withClaims } from './cases/fixtures.js';
import { asPreloaded, policyCaseCookie, policyCases, policyFixture } from './cases/policy-cases.js';
import { FOLD_TABLE_SHA256, foldTable } from './cases/case-fold-cases.js';
import { requestPathCases } from './cases/request-path-cases.js';
import { loginLocationCases, openRedirectCases, returnPathCases, returnTargetCases, returnTargetOrigins } from './cases/return-url-cases.js';
import type { ReturnPathCase } from './cases/return-url-cases.js';
import { tokenCases } from './cases/token-cases.js';
import { revocationReplyCases } from './cases/revocation-cases.js';
import { nextCursor, parseRevocationsReply } from '../src/core/revocations.js';
import { readCookie } from '../src/core/cookie.js';
import type { CookieHeaders } from '../src/core/cookie.js';
import { policyPath } from '../src/core/request-path.js';
import { loginRedirectLocation, safeReturnPath, safeReturnTarget } from '../src/core/return-url.js';
import { FORWARDED_CLAIMS } from '../src/core/session-contract.js';
/** Every $gate_h_ variable: the forwarded claims plus the derived source-qualified id. */
const FORWARDED_HEADERS = FORWARDED_CLAIMS;

interface FakeRequest {
  method: string;
  headersIn: { [name: string]: string | undefined };
  variables: { [name: string]: string | undefined };
  remoteAddress: string;
  warnings: string[];
  errors: string[];
  infos: string[];
  warn(message: string): void;
  error(message: string): void;
  log(message: string): void;
}

interface RequestSpec {
  cookie: CookieHeaders;
  accept?: string;
  requestUri?: string;
  /** $uri; the path part of requestUri when absent. */
  uri?: string;
  method?: string;
  remoteAddr?: string;
  /** $gate_app; absent: the variable is unset (the default app). */
  app?: string;
}

/** Reasons the gate logs at warn (adapter.ts isWarned); the others stay quiet. */
const FORGED_REASONS = ['token-invalid', 'token-malformed', 'token-duplicate', 'token-key-retired', 'token-too-old', 'ip-mismatch'];
const REQUEST_ID = '0123456789abcdef0123456789abcdef';

let passed = 0;
let failed = 0;

function check(name: string, problems: string[]): void {
  if (problems.length === 0) {
    passed++;
    return;
  }
  failed++;
  console.log('FAIL ' + name + '\n  ' + problems.join('\n  '));
}

function setConfig(config: unknown): void {
  (globalThis as unknown as { gate_config: unknown }).gate_config = config;
}

/** What nginx preloads as gate_policy; `{ version: 1, off: true }` is "no policy configured". */
function setPolicy(policy: unknown): void {
  (globalThis as unknown as { gate_policy: unknown }).gate_policy = policy;
}
setPolicy({ version: 1, off: true });

/**
 * A request as njs presents it to js_set. Several Cookie headers reach the handler as one string
 * joined with ';' (measured with nginx 1.22 + njs 0.7.9: r.headersIn.Cookie), so arrays are
 * joined the same way here.
 */
function fakeRequest(spec: RequestSpec): FakeRequest {
  const cookie = spec.cookie;
  const requestUri = spec.requestUri || '/';
  const r: FakeRequest = {
    method: spec.method || 'GET',
    headersIn: {
      Cookie: Array.isArray(cookie) ? cookie.join(';') : cookie,
      Accept: spec.accept,
    },
    variables: { request_uri: requestUri, uri: spec.uri === undefined ? requestUri.split('?')[0] : spec.uri, request_id: REQUEST_ID, gate_app: spec.app },
    remoteAddress: spec.remoteAddr || CLIENT_IP,
    warnings: [],
    errors: [],
    infos: [],
    warn: function (m: string) {
      r.warnings.push(m);
    },
    error: function (m: string) {
      r.errors.push(m);
    },
    log: function (m: string) {
      r.infos.push(m);
    },
  };
  return r;
}

function eq(problems: string[], what: string, actual: unknown, expected: unknown): void {
  if (actual !== expected) problems.push(what + ': expected ' + JSON.stringify(expected) + ', got ' + JSON.stringify(actual));
}

function v(r: FakeRequest, name: string): string {
  const value = r.variables[name];
  return value === undefined ? '' : value;
}

/** The access log's user, as nginx/gate.conf's $gate_log_user map derives it. */
function loggedUser(r: FakeRequest): string {
  return v(r, 'gate_h_username') === '' ? v(r, 'gate_user') : v(r, 'gate_h_username');
}

/**
 * Runs gate.check and compares the action, every js_var and the log lines with `expect`. `njs08`:
 * the gate-njs08.js bundle's check (the revocation-aware gate) instead of gate.js's.
 */
function runGate(name: string, spec: RequestSpec, expect: DecisionExpectation, secretsNotLogged: string[], njs08?: boolean): void {
  const r = fakeRequest(spec);
  const problems: string[] = [];
  const action = njs08 ? gate08.check(r) : gate.check(r);
  eq(problems, 'action', action, expect.action);
  eq(problems, '$gate_reason', v(r, 'gate_reason'), expect.action === 'allow' ? 'session-valid' : expect.reason);
  eq(problems, '$gate_location', v(r, 'gate_location'), expect.action === 'login' || expect.action === 'renew' ? expect.location : '');
  if (expect.action === 'allow') {
    eq(problems, '$gate_cookie', v(r, 'gate_cookie'), expect.upstreamCookie);
    const headers = expect.headers || {};
    eq(problems, '$gate_user (written on refusals only)', v(r, 'gate_user'), '');
    eq(problems, 'logged user', loggedUser(r), headers.username || '');
    for (let i = 0; i < FORWARDED_HEADERS.length; i++) {
      const claim = FORWARDED_HEADERS[i];
      eq(problems, '$gate_h_' + claim, v(r, 'gate_h_' + claim), headers[claim] || '');
    }
  } else {
    // Nothing about the identity may leak into variables on a refusal.
    eq(problems, '$gate_user', v(r, 'gate_user'), '');
    eq(problems, '$gate_cookie', v(r, 'gate_cookie'), '');
    for (let i = 0; i < FORWARDED_HEADERS.length; i++) {
      eq(problems, '$gate_h_' + FORWARDED_HEADERS[i], v(r, 'gate_h_' + FORWARDED_HEADERS[i]), '');
    }
  }
  const forged = expect.reason !== undefined && FORGED_REASONS.indexOf(expect.reason) >= 0;
  eq(problems, 'warn lines', r.warnings.length, forged ? 1 : 0);
  eq(problems, 'error lines', r.errors.length, 0);
  if (forged && r.warnings.length === 1) {
    const line = r.warnings[0];
    if (line.indexOf('reason=' + expect.reason) < 0) problems.push('warn line lacks the reason: ' + line);
    if (line.indexOf('request_id=' + REQUEST_ID) < 0) problems.push('warn line lacks the request id: ' + line);
  }
  const logged = r.warnings.concat(r.errors, r.infos).join('\n');
  for (let i = 0; i < secretsNotLogged.length; i++) {
    if (secretsNotLogged[i] !== '' && logged.indexOf(secretsNotLogged[i]) >= 0) problems.push('a token or cookie was logged');
  }
  check((njs08 ? 'gate-njs08: ' : 'gate: ') + name, problems);
}

function substituteToken(headers: CookieHeaders, token: string): CookieHeaders {
  if (headers === undefined) return undefined;
  if (typeof headers === 'string') return headers.split(TOKEN).join(token);
  const out: string[] = [];
  for (let i = 0; i < headers.length; i++) out.push(headers[i].split(TOKEN).join(token));
  return out;
}

function containsToken(headers: CookieHeaders): boolean {
  if (headers === undefined) return false;
  return (typeof headers === 'string' ? headers : headers.join(';')).indexOf(TOKEN) >= 0;
}

function runTokenCases(): void {
  const cases = tokenCases(NOW);
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    setConfig(makeConfig({ ipBinding: c.ipBinding === undefined ? 'exact' : c.ipBinding }));
    const r = fakeRequest({ cookie: COOKIE_NAME + '=' + c.token, accept: 'application/json', remoteAddr: c.remoteAddr });
    // The decision cases check every variable; here the action, reason, user and log lines.
    const problems: string[] = [];
    // An expired token that is otherwise valid is renewed (issue 9); every other refusal is a 401.
    eq(problems, 'action', gate.check(r), c.expect === 'ok' ? 'allow' : c.expect === 'token-expired' ? 'renew' : 'deny');
    eq(problems, '$gate_reason', v(r, 'gate_reason'), c.expect === 'ok' ? 'session-valid' : c.expect);
    if (c.expect === 'ok') eq(problems, 'logged user', loggedUser(r), 'alice');
    const forged = c.expect !== 'ok' && FORGED_REASONS.indexOf(c.expect) >= 0;
    eq(problems, 'warn lines', r.warnings.length, forged ? 1 : 0);
    eq(problems, 'error lines', r.errors.length, 0);
    if (r.warnings.concat(r.errors).join('\n').indexOf(c.token) >= 0 && c.token !== '') problems.push('the token was logged');
    check('token: ' + c.name, problems);
  }
}

function runCookieCases(): void {
  setConfig(makeConfig());
  const token = signToken(validClaims(NOW));
  for (let i = 0; i < readCookieCases.length; i++) {
    const c = readCookieCases[i];
    const cookie = substituteToken(c.headers, token);
    let expect: DecisionExpectation;
    if (c.expect.status === 'missing') expect = { action: 'deny', reason: 'token-missing' };
    else if (c.expect.status === 'duplicate') expect = { action: 'deny', reason: 'token-duplicate' };
    else if (c.expect.value === TOKEN) expect = { action: 'allow' };
    else expect = { action: 'deny', reason: 'token-invalid' };
    const r = fakeRequest({ cookie: cookie, accept: 'application/json' });
    const problems: string[] = [];
    eq(problems, 'action', gate.check(r), expect.action);
    eq(problems, '$gate_reason', v(r, 'gate_reason'), expect.reason || 'session-valid');
    check('cookie: ' + c.name, problems);
  }
  for (let i = 0; i < removeCookieCases.length; i++) {
    const c = removeCookieCases[i];
    // Only cases where the session is valid reach the allow path (one session cookie).
    if (!containsToken(c.headers) || readCookie(substituteToken(c.headers, 'x'), COOKIE_NAME).status !== 'ok') continue;
    const r = fakeRequest({ cookie: substituteToken(c.headers, token), accept: 'application/json' });
    const problems: string[] = [];
    eq(problems, 'action', gate.check(r), 'allow');
    eq(problems, '$gate_cookie', v(r, 'gate_cookie'), c.expectJoined === undefined ? c.expect : c.expectJoined);
    check('upstream cookie: ' + c.name, problems);
  }
}

/** A stand-in for njs 0.8's shared dict (js_shared_dict_zone) holding `keys`. */
function fakeDict(keys: string[]): { has(key: string): boolean } {
  return {
    has: function (key: string) {
      return keys.indexOf(key) >= 0;
    },
  };
}

/**
 * nginx's `ngx` object, which the njs CLI lacks: njs 0.7.9's has no `shared` (`zones` undefined);
 * njs 0.8's has one entry per js_shared_dict_zone.
 */
function setNgx(zones: { [zone: string]: unknown } | undefined): void {
  (globalThis as unknown as { ngx: unknown }).ngx = zones === undefined ? {} : { shared: zones };
}

/** The revocation poller's reply parsing (core/revocations.ts), in the engine that runs it. */
function runRevocationReplyCases(): void {
  for (let i = 0; i < revocationReplyCases.length; i++) {
    const c = revocationReplyCases[i];
    const reply = parseRevocationsReply(c.body);
    const problems: string[] = [];
    eq(problems, 'reply', JSON.stringify(reply), JSON.stringify(c.expect));
    if (reply !== null) eq(problems, 'cursor', nextCursor(reply), c.cursor);
    check('revocations: ' + c.name, problems);
  }
}

/**
 * Every decision case through gate.js (njs 0.7.9: no ngx.shared) and through gate-njs08.js (njs 0.8:
 * the revocation dict the case lists, else an empty one). The cases with a revocation dict only
 * through gate-njs08.js: gate.js never looks at one.
 */
function runDecisionCases(): void {
  setConfig(makeConfig());
  const cases = decisionCases(NOW);
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    const secrets = typeof c.cookie === 'string' ? [c.cookie] : [];
    const spec = { cookie: c.cookie, accept: c.accept, requestUri: c.requestUri, remoteAddr: c.remoteAddr };
    if (c.revoked === undefined) {
      setNgx(undefined);
      runGate(c.name, spec, c.expect, secrets);
    }
    setNgx({ gate_revoked: fakeDict(c.revoked === undefined ? [] : c.revoked) });
    runGate(c.name, spec, c.expect, secrets, true);
  }
  setNgx(undefined);
}

/**
 * The signed identity assertion (core/assertion.ts) through the shipped gate: with
 * `assertion` in gate_config, a bound assertion cookie is forwarded ($gate_assertion) and every
 * assertion cookie is cut from $gate_cookie; anything else is 'renew' with an assertion-only key.
 */
function runAssertionCases(): void {
  setConfig(makeConfig({ assertion: { cookieName: COOKIE_NAME + '_asr' } }));
  const token = signToken(validClaims(NOW));
  const other = signToken(withClaims(validClaims(NOW), { sid: 'another' }));
  const sig = token.slice(token.lastIndexOf('.') + 1);
  const assertionFor = function (t: string): string {
    const binding = t.substr(t.lastIndexOf('.') + 1, 12);
    return base64url('{"alg":"EdDSA","kid":"k"}') + '.' + base64url('{"bind":"' + binding + '","sub":"x"}') + '.' + 'A'.repeat(86);
  };
  const bound = assertionFor(token);
  const cases: Array<{ name: string; cookie: string; action: string; assertion?: string; cookieUp?: string; renewKey?: string }> = [
    { name: 'a bound assertion is forwarded, no gateway cookie goes upstream', cookie: 'a=1; ' + COOKIE_NAME + '=' + token + '; ' + COOKIE_NAME + '_asr=' + bound + '; ' + COOKIE_NAME + '_asr_wiki=W', action: 'allow', assertion: bound, cookieUp: 'a=1' },
    { name: 'a missing assertion is fetched through the renewal path', cookie: COOKIE_NAME + '=' + token, action: 'renew', renewKey: sig + ':' },
    { name: "another session's assertion is not forwarded", cookie: COOKIE_NAME + '=' + token + '; ' + COOKIE_NAME + '_asr=' + assertionFor(other), action: 'renew', renewKey: sig + ':' },
    { name: 'a duplicated assertion cookie is not forwarded', cookie: COOKIE_NAME + '=' + token + '; ' + COOKIE_NAME + '_asr=' + bound + '; ' + COOKIE_NAME + '_asr=' + bound, action: 'renew', renewKey: sig + ':' },
  ];
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    const r = fakeRequest({ cookie: c.cookie, accept: 'application/json' });
    const problems: string[] = [];
    eq(problems, 'action', gate.check(r), c.action);
    if (c.assertion !== undefined) eq(problems, '$gate_assertion', v(r, 'gate_assertion'), c.assertion);
    if (c.cookieUp !== undefined) eq(problems, '$gate_cookie', v(r, 'gate_cookie'), c.cookieUp);
    if (c.renewKey !== undefined) {
      eq(problems, '$gate_reason', v(r, 'gate_reason'), 'assertion-missing');
      eq(problems, '$gate_renew_key', v(r, 'gate_renew_key'), c.renewKey);
      eq(problems, 'nothing forwarded', v(r, 'gate_assertion'), '');
    }
    eq(problems, 'quiet', r.warnings.length + r.errors.length, 0);
    check('assertion: ' + c.name, problems);
  }
  // A named app (a policy section of its own): its own cookie, `family_<app>`, is the one read.
  const section = function (): unknown {
    return { version: 1, default: 'allow', compiledAt: NOW, horizonStart: NOW - 31622400, horizonEnd: NOW + 157680000, rules: [], exact: {}, prefix: {}, regex: [], zones: {} };
  };
  const appsPolicy = section() as { [k: string]: unknown };
  appsPolicy.apps = { app07: section() };
  setPolicy(appsPolicy);
  const named = fakeRequest({ cookie: COOKIE_NAME + '=' + token + '; ' + COOKIE_NAME + '_asr=' + assertionFor(other) + '; ' + COOKIE_NAME + '_asr_app07=' + bound, accept: 'application/json', app: 'app07' });
  const namedProblems: string[] = [];
  eq(namedProblems, 'action', gate.check(named), 'allow');
  eq(namedProblems, '$gate_assertion', v(named, 'gate_assertion'), bound);
  eq(namedProblems, '$gate_cookie', v(named, 'gate_cookie'), '');
  check("assertion: a named app's own cookie is read, the default app's is not", namedProblems);
  setPolicy({ version: 1, off: true });
  setConfig(makeConfig());
}

/** Behaviour only the adapter has: config loading, fail-closed errors, the real clock. */
function runAdapterCases(realNowMs: number): void {
  const token = signToken(validClaims(NOW));
  const cookie = COOKIE_NAME + '=' + token;

  setConfig(undefined);
  runFailClosed('denies with gate-error when gate_config was not preloaded', fakeRequest({ cookie: cookie, accept: 'text/html' }), token);

  const broken = makeConfig() as unknown as { [field: string]: unknown };
  broken.ipBinding = true;
  setConfig(broken);
  runFailClosed('denies with gate-error when gate_config is malformed (ipBinding true, the old boolean)', fakeRequest({ cookie: cookie }), token);

  const noMax = makeConfig() as unknown as { [field: string]: unknown };
  delete noMax.maxSessionSeconds;
  setConfig(noMax);
  runFailClosed('denies with gate-error when gate_config has no maxSessionSeconds (an older writer)', fakeRequest({ cookie: cookie }), token);

  setConfig(makeConfig());
  const throwing = fakeRequest({ cookie: cookie });
  Object.defineProperty(throwing, 'headersIn', {
    get: function () {
      throw new Error('headers unavailable near ' + token);
    },
  });
  runFailClosed('denies with gate-error when reading the request throws, without logging the token', throwing, token);

  setConfig(makeConfig({ cookieName: '__Host-gw' }));
  runGate(
    'uses the configured cookie name and forwards a cookie named like the default one',
    { cookie: 'gw_session=x; __Host-gw=' + token, accept: 'application/json' },
    {
      action: 'allow',
      headers: {
        sub: validClaims(NOW).sub,
        username: 'alice',
        name: 'Alice Example',
        email: 'alice@example.test',
        groups: 'staff,federation',
        src: 'local',
        sid: validClaims(NOW).sid,
      },
      upstreamCookie: 'gw_session=x',
    },
    [token],
  );

  // njs 0.8 without the revocation zone (NJS_REVOCATIONS=off): ngx.shared exists, gate_revoked not.
  setConfig(makeConfig());
  setNgx({ other_zone: fakeDict([validClaims(NOW).sid]) });
  const noZone = fakeRequest({ cookie: cookie, accept: 'application/json' });
  const noZoneProblems: string[] = [];
  eq(noZoneProblems, 'action', gate08.check(noZone), 'allow');
  eq(noZoneProblems, 'error lines', noZone.errors.length, 0);
  check('gate-njs08: allows a valid session when there is no gate_revoked zone', noZoneProblems);
  // gate.js never reads the dict, even where there is one (the njs 0.7.9 bundle).
  setNgx({ gate_revoked: fakeDict([validClaims(NOW).sid]) });
  const ignored = fakeRequest({ cookie: cookie, accept: 'application/json' });
  const ignoredProblems: string[] = [];
  eq(ignoredProblems, 'action', gate.check(ignored), 'allow');
  check('gate: never looks at a revocation dict (that is gate-njs08.js)', ignoredProblems);
  // gate-njs08.js on njs 0.7.9 (no ngx.shared): works like gate.js.
  setNgx(undefined);
  const old = fakeRequest({ cookie: cookie, accept: 'application/json' });
  const oldProblems: string[] = [];
  eq(oldProblems, 'action', gate08.check(old), 'allow');
  eq(oldProblems, 'error lines', old.errors.length, 0);
  check('gate-njs08: allows a valid session where ngx has no shared dicts (njs 0.7.9)', oldProblems);

  // The real clock, unfrozen: Math.floor(Date.now() / 1000) inside the adapter.
  Date.now = realDateNow;
  const realNow = Math.floor(realNowMs / 1000);
  setConfig(makeConfig());
  const live = fakeRequest({ cookie: COOKIE_NAME + '=' + signToken(validClaims(realNow)) });
  const stale = fakeRequest({ cookie: COOKIE_NAME + '=' + signToken(withClaims(validClaims(realNow), { exp: realNow - 3600 })) });
  const problems: string[] = [];
  eq(problems, 'live action', gate.check(live), 'allow');
  eq(problems, 'stale action', gate.check(stale), 'renew');
  eq(problems, 'stale reason', v(stale, 'gate_reason'), 'token-expired');
  eq(problems, 'expired is quiet', stale.warnings.length + stale.errors.length, 0);
  check('gate: reads the real clock (Date.now) when not frozen', problems);
}

/** `mentions`: text the error line must contain (what was wrong). */
function runFailClosed(name: string, r: FakeRequest, token: string, mentions?: string): void {
  const problems: string[] = [];
  eq(problems, 'action', gate.check(r), 'deny');
  eq(problems, '$gate_reason', v(r, 'gate_reason'), 'gate-error');
  eq(problems, '$gate_user', v(r, 'gate_user'), '');
  eq(problems, '$gate_rule', v(r, 'gate_rule'), '');
  eq(problems, 'error lines', r.errors.length, 1);
  if (r.errors.length === 1 && r.errors[0].indexOf('request_id=' + REQUEST_ID) < 0) problems.push('error line lacks the request id: ' + r.errors[0]);
  if (r.errors.join('\n').indexOf(token) >= 0) problems.push('the token was logged');
  if (mentions !== undefined && r.errors.join('\n').indexOf(mentions) < 0) problems.push('error line lacks ' + JSON.stringify(mentions) + ': ' + r.errors.join('\n'));
  check('gate: ' + name, problems);
}

/** A claim as its $gate_h_ variable holds it (the cases use strings and string arrays only). */
function headerText(value: unknown): string {
  if (value === undefined || value === null) return '';
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** The policy cases through gate.check, with gate_policy frozen and prototype-less like nginx's. */
function runPolicyCases(): void {
  setConfig(makeConfig());
  const preloaded = asPreloaded(policyFixture());
  // If the fixture kept its prototypes, a method call on a compiled array would go unnoticed here.
  const problems: string[] = [];
  eq(problems, 'prototype of prefix list', Object.getPrototypeOf(preloaded.prefix['/federation']), null);
  eq(problems, 'typeof regex.indexOf', typeof (preloaded.regex as unknown as { indexOf: unknown }).indexOf, 'undefined');
  eq(problems, 'frozen rules', Object.isFrozen(preloaded.rules), true);
  check('policy: the fixture is preloaded like nginx does it (no prototypes, frozen)', problems);
  setPolicy(preloaded);

  const cases = policyCases(NOW);
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    const e = c.expect;
    const cookie = policyCaseCookie(c);
    const r = fakeRequest({ cookie: cookie, accept: c.accept, requestUri: c.requestUri, uri: c.uri, method: c.method, remoteAddr: c.remoteAddr, app: c.app });
    const p: string[] = [];
    eq(p, 'action', gate.check(r), e.action);
    eq(p, '$gate_reason', v(r, 'gate_reason'), e.reason);
    eq(p, '$gate_rule', v(r, 'gate_rule'), e.rule);
    eq(p, 'logged user', loggedUser(r), e.user || '');
    eq(p, '$gate_location', v(r, 'gate_location'), e.action === 'login' || e.action === 'renew' ? e.location : '');
    eq(p, '$gate_cookie', v(r, 'gate_cookie'), e.action === 'allow' ? e.upstreamCookie || '' : '');
    // Identity headers only on an allow for a session; never on a refusal or an anonymous public pass.
    const identity = e.action === 'allow' && e.user !== undefined && c.claims !== null;
    for (let k = 0; k < FORWARDED_CLAIMS.length; k++) {
      const claim = FORWARDED_CLAIMS[k];
      eq(p, '$gate_h_' + claim, v(r, 'gate_h_' + claim), identity && c.claims !== null ? headerText(c.claims[claim]) : '');
    }
    // A forged token is logged even where a public rule lets the request through anonymously.
    const forged = (e.action !== 'allow' && FORGED_REASONS.indexOf(e.reason) >= 0) || (c.forged === true && e.action === 'allow' && e.reason === 'public');
    eq(p, 'warn lines', r.warnings.length, forged ? 1 : 0);
    if (forged && r.warnings.length === 1 && r.warnings[0].indexOf('reason=token-invalid') < 0) p.push('warn line lacks the reason: ' + r.warnings[0]);
    // An unknown app is a config error: one error line naming the app and the request id.
    const appUnknown = e.reason === 'app-unknown';
    eq(p, 'error lines', r.errors.length, appUnknown ? 1 : 0);
    if (appUnknown && r.errors.length === 1 && r.errors[0].indexOf('app=' + c.app + ' request_id=' + REQUEST_ID) < 0) p.push('error line lacks app and request id: ' + r.errors[0]);
    if (cookie !== undefined && r.warnings.concat(r.errors, r.infos).join('\n').indexOf(cookie) >= 0) p.push('the cookie was logged');
    check('policy: ' + c.name, p);
  }
  setPolicy({ version: 1, off: true });
  // Without a policy, a named app is refused too: nothing says what it may reach.
  const r = fakeRequest({ cookie: COOKIE_NAME + '=' + signToken(validClaims(NOW)), accept: 'application/json', requestUri: '/', app: 'finance' });
  const p: string[] = [];
  eq(p, 'action', gate.check(r), 'forbidden');
  eq(p, '$gate_reason', v(r, 'gate_reason'), 'app-unknown');
  eq(p, 'error lines', r.errors.length, 1);
  check('policy: refuses a named app when no policy is configured (app-unknown)', p);
}

/** A missing or broken gate_policy denies with gate-error; it never means "no policy". */
function runPolicyFailClosed(): void {
  const token = signToken(validClaims(NOW));
  const cookie = COOKIE_NAME + '=' + token;
  setConfig(makeConfig());
  const broken: { name: string; policy: unknown }[] = [
    { name: 'gate_policy was not preloaded', policy: undefined },
    { name: 'gate_policy is null', policy: null },
    { name: 'gate_policy has another version', policy: asPreloaded({ version: 2, off: true }) },
    { name: 'gate_policy is {version: 1} without fields', policy: asPreloaded({ version: 1 }) },
    { name: 'gate_policy has no rule indexes', policy: asPreloaded({ version: 1, default: 'allow', rules: [], regex: [], zones: {}, horizonStart: 0, horizonEnd: 1 }) },
  ];
  for (let i = 0; i < broken.length; i++) {
    setPolicy(broken[i].policy);
    const r = fakeRequest({ cookie: cookie, accept: 'text/html', requestUri: '/healthz' });
    runFailClosed('denies with gate-error when ' + broken[i].name, r, token, 'invalid gate_policy');
  }
  setPolicy({ version: 1, off: true });
}

function runRequestPathCases(): void {
  for (let i = 0; i < requestPathCases.length; i++) {
    const c = requestPathCases[i];
    const problems: string[] = [];
    eq(problems, 'policyPath', policyPath(c.uri, c.requestUri), c.expect);
    check('request path: ' + c.name, problems);
  }
}

/** njs's case tables give foldCase the same result as Node's (the compiler and the CLI). */
function runCaseFoldDigest(): void {
  const problems: string[] = [];
  eq(problems, 'sha256(foldTable())', sha256Hex(foldTable()), FOLD_TABLE_SHA256);
  check('case folding: njs folds the BMP as Node does', problems);
}

function runReturnPathCases(cases: ReturnPathCase[]): void {
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    const problems: string[] = [];
    eq(problems, 'safeReturnPath', safeReturnPath(c.rd), c.expect);
    check('return-url: ' + c.name, problems);
  }
}

/** safeReturnTarget with APP_ORIGINS (issue 12): its table, and every open-redirect line still refused. */
function runReturnTargetCases(cases: ReturnPathCase[], allRefused: boolean): void {
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    const problems: string[] = [];
    eq(problems, 'safeReturnTarget', safeReturnTarget(c.rd, returnTargetOrigins), allRefused ? '/' : c.expect);
    check('return-target: ' + c.name, problems);
  }
}

function runLoginLocationCases(): void {
  for (let i = 0; i < loginLocationCases.length; i++) {
    const c = loginLocationCases[i];
    const problems: string[] = [];
    eq(problems, 'loginRedirectLocation', loginRedirectLocation(c.loginPath, c.requestUri), c.expect);
    check('login location: ' + c.name, problems);
  }
}

const realDateNow = Date.now;
const startedMs = realDateNow();
// Freeze the adapter's clock (it reads Date.now) at the tables' NOW, mid-second.
Date.now = function () {
  return NOW * 1000 + 500;
};
setNgx(undefined);
runTokenCases();
runCookieCases();
runDecisionCases();
runAssertionCases();
runRevocationReplyCases();
runPolicyCases();
runPolicyFailClosed();
runAdapterCases(startedMs);
runReturnPathCases(returnPathCases);
runReturnPathCases(openRedirectCases(openRedirectList));
runReturnTargetCases(returnTargetCases, false);
runReturnTargetCases(openRedirectCases(openRedirectList), true);
runLoginLocationCases();
runRequestPathCases();
runCaseFoldDigest();

/** A js_content request for tableau.api: records the answer or the internal redirect. */
interface ContentRequest extends FakeRequest {
  headersOut: { [name: string]: string };
  answered: { status: number; body: string } | null;
  redirectedTo: string | null;
  return(status: number, body: string): void;
  internalRedirect(uri: string): void;
}

function contentRequest(cookie: string | undefined, requestUri: string): ContentRequest {
  const base = fakeRequest({ cookie: cookie, accept: 'application/json', requestUri: requestUri });
  const r = base as ContentRequest;
  r.headersOut = {};
  r.answered = null;
  r.redirectedTo = null;
  r.return = function (status: number, body: string) {
    r.answered = { status: status, body: body };
  };
  r.internalRedirect = function (uri: string) {
    r.redirectedTo = uri;
  };
  return r;
}

interface Subtle {
  importKey(format: string, key: unknown, alg: string, extractable: boolean, usage: string[]): Promise<unknown>;
  encrypt(alg: { name: string; iv: unknown }, key: unknown, data: string): Promise<ArrayBuffer>;
}

/** Seals `json` the way the auth service does: base64url(iv | ciphertext | tag), AES-256-GCM. */
function seal(keyBytes: Buffer, json: string): Promise<string> {
  const subtle = (globalThis as unknown as { crypto: { subtle: Subtle } }).crypto.subtle;
  const iv = Buffer.from('0123456789ab');
  return subtle.importKey('raw', keyBytes, 'AES-GCM', false, ['encrypt']).then(function (key) {
    return subtle.encrypt({ name: 'AES-GCM', iv: iv }, key, json).then(function (ct) {
      return Buffer.concat([iv, Buffer.from(ct)]).toString('base64url');
    });
  });
}

/** tableau.api in the njs engine itself: real AES-GCM via crypto.subtle, sealed here too. */
async function runTableauApiCases(): Promise<void> {
  // runAdapterCases unfroze the clock; the sessions below are valid at NOW.
  Date.now = function () {
    return NOW * 1000 + 500;
  };
  const keyBytes = Buffer.from('k'.repeat(32));
  const tableauKeys: { [segment: string]: string } = {};
  tableauKeys[headerSegment(CURRENT_KEY.kid)] = keyBytes.toString('base64url');
  const withTableau = makeConfig({ tableau: { origin: 'https://tableau.example.test', host: 'tableau.example.test', keys: tableauKeys } });
  const creds = JSON.stringify({ t: 'tableau-token-1', s: 'site-1', u: 'user-1', v: '3.19', x: NOW + 600 });
  const sealed = await seal(keyBytes, creds);
  const expired = await seal(keyBytes, JSON.stringify({ t: 'tableau-token-1', s: 'site-1', u: 'user-1', v: '3.19', x: NOW - 1 }));
  const otherKey = await seal(Buffer.from('z'.repeat(32)), creds);
  const session = function (tta: string | undefined): string {
    const claims = tta === undefined ? validClaims(NOW) : withClaims(validClaims(NOW), { tta: tta });
    return COOKIE_NAME + '=' + signToken(claims);
  };
  const uri = '/api/3.19/sites/site-1/workbooks?pageSize=5';
  // status 0: redirected to Tableau's proxy; -1: handed to @protected_app; else answered with it.
  const cases: { name: string; config: unknown; cookie: string | undefined; status: number; reason: string; warns: number; revoked?: string[] }[] = [
    { name: 'redirects a Tableau session to the internal proxy with its token', config: withTableau, cookie: session(sealed), status: 0, reason: 'session-valid', warns: 0 },
    { name: 'hands /api/ to the protected app when Tableau is not configured', config: makeConfig(), cookie: session(sealed), status: -1, reason: '', warns: 0 },
    { name: 'answers 401 without a session cookie', config: withTableau, cookie: undefined, status: 401, reason: 'token-missing', warns: 0 },
    { name: 'answers 401 for a session without tta', config: withTableau, cookie: session(undefined), status: 401, reason: 'tableau-session-missing', warns: 0 },
    { name: 'answers 401 and warns when tta was sealed with another key', config: withTableau, cookie: session(otherKey), status: 401, reason: 'tableau-session-invalid', warns: 1 },
    { name: 'answers 401 for expired Tableau credentials', config: withTableau, cookie: session(expired), status: 401, reason: 'tableau-session-expired', warns: 0 },
    { name: 'answers 401 for a revoked session (njs >= 0.8 dict)', config: withTableau, cookie: session(sealed), status: 401, reason: 'session-revoked', warns: 0, revoked: [validClaims(NOW).sid] },
    { name: 'redirects a session the dict does not list', config: withTableau, cookie: session(sealed), status: 0, reason: 'session-valid', warns: 0, revoked: ['0123456789abcdefghijAB'] },
  ];
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    setConfig(c.config);
    setNgx(c.revoked === undefined ? undefined : { gate_revoked: fakeDict(c.revoked) });
    const r = contentRequest(c.cookie, uri);
    await tableau.api(r);
    const problems: string[] = [];
    eq(problems, '$gate_reason', v(r, 'gate_reason'), c.reason);
    eq(problems, 'warn lines', r.warnings.length, c.warns);
    eq(problems, 'error lines', r.errors.length, 0);
    if (c.status === -1) {
      eq(problems, 'redirect', r.redirectedTo, '@protected_app');
      eq(problems, 'answered', r.answered, null);
      eq(problems, '$gate_tableau_token', v(r, 'gate_tableau_token'), '');
    } else if (c.status === 0) {
      eq(problems, 'redirect', r.redirectedTo, '/_gate/tableau-api');
      eq(problems, 'answered', r.answered, null);
      eq(problems, '$gate_tableau_token', v(r, 'gate_tableau_token'), 'tableau-token-1');
      eq(problems, '$gate_tableau_url', v(r, 'gate_tableau_url'), 'https://tableau.example.test' + uri);
      eq(problems, '$gate_tableau_host', v(r, 'gate_tableau_host'), 'tableau.example.test');
    } else {
      eq(problems, 'redirect', r.redirectedTo, null);
      eq(problems, 'status', r.answered === null ? 0 : r.answered.status, c.status);
      eq(problems, '$gate_tableau_token', v(r, 'gate_tableau_token'), '');
      eq(problems, 'content type', r.headersOut['Content-Type'], 'application/json');
    }
    if (r.warnings.concat(r.errors).join('\n').indexOf('tableau-token-1') >= 0) problems.push('the Tableau token was logged');
    check('tableau api: ' + c.name, problems);
  }
}

runTableauApiCases().then(function () {
  console.log(passed + ' passed, ' + failed + ' failed');
  if (failed > 0 || passed === 0) throw new Error('njs gate tests failed');
});
