import { describe, expect, it } from '@jest/globals';
import { CLIENT_IP, NOW, base64url, decodeBase64url, hmacBase64url, makeConfig, sha256Hex, signToken, validClaims } from '../../test/cases/fixtures.js';
import { ASSERTION_PAYLOAD_PREFIX, assertionBindingOf, assertionCookieName, isAppName } from './assertion.js';
import { decideRequest } from './decide.js';
import type { GatePolicy } from './policy-contract.js';

/**
 * Allows everyone, in the default app and in `finance` (a named app needs a section of its own):
 * what the auth service's compilePolicy writes for `{default: allow, apps: {finance: {default: allow}}}`.
 */
function section(): Record<string, unknown> {
  return { version: 1, default: 'allow', compiledAt: NOW, horizonStart: NOW - 31622400, horizonEnd: NOW + 157680000, rules: [], exact: {}, prefix: {}, regex: [], zones: {} };
}
const POLICY = { ...section(), apps: { finance: section() } } as unknown as GatePolicy;

const TOKEN = signToken(validClaims(NOW));
const OTHER_TOKEN = signToken({ ...validClaims(NOW), sid: 'another-session' });

/** An assertion-shaped value whose payload starts with `{"bind":"<binding>"` (the signature is not the gate's business). */
function assertionFor(token: string, extra = ',"sub":"x"}'): string {
  return `${base64url('{"alg":"ES256","kid":"k1"}')}.${base64url(`{"bind":"${assertionBindingOf(token)}"${extra}`)}.${'s'.repeat(86)}`;
}

function decide(cookie: string, app?: string) {
  return decideRequest({
    cookieHeaders: cookie,
    accept: 'application/json',
    requestUri: '/x',
    uri: '/x',
    method: 'GET',
    policy: POLICY,
    remoteAddr: CLIENT_IP,
    now: NOW,
    config: makeConfig({ assertion: { cookieName: 'gw_session_asr' } }),
    app,
    hmac: hmacBase64url,
    digest: sha256Hex,
    decode: decodeBase64url,
  });
}

describe('the assertion binding (core/assertion.ts)', () => {
  it('every assertion payload of a token starts with the same 28 characters: the prefix and the encoded binding', () => {
    const a = assertionFor(TOKEN).split('.')[1]!;
    const b = assertionFor(TOKEN, ',"aud":"finance","username":"alice"}').split('.')[1]!;
    expect(a.slice(0, 12)).toBe(ASSERTION_PAYLOAD_PREFIX);
    expect(a.slice(0, 28)).toBe(b.slice(0, 28));
    expect(decodeBase64url(a.slice(12, 28))).toBe(TOKEN.slice(TOKEN.lastIndexOf('.') + 1, TOKEN.lastIndexOf('.') + 13));
  });
  it.each([
    ['finance', true],
    ['wiki-2_b', true],
    ['', false],
    ['a b', false],
    ['a;b', false],
    ['x'.repeat(65), false],
    // One rule with the policy's app names (APP_NAME_PATTERN): a name no policy can define is none.
    ['Finance', false],
    ['x'.repeat(33), false],
  ])('isAppName(%j) is %s', (name, ok) => expect(isAppName(name)).toBe(ok));
  it('names one cookie per app, all starting with the family name', () => {
    expect(assertionCookieName('gw_session_asr', '')).toBe('gw_session_asr');
    expect(assertionCookieName('gw_session_asr', 'finance')).toBe('gw_session_asr_finance');
  });
});

describe('decideRequest with assertions on', () => {
  it('forwards the bound assertion as it is and keeps every gateway cookie from the upstream', () => {
    const asr = assertionFor(TOKEN);
    const d = decide(`a=1; gw_session=${TOKEN}; gw_session_asr=${asr}; gw_session_asr_wiki=W; b=2`);
    expect(d).toMatchObject({ action: 'allow', reason: 'session-valid', assertion: asr, upstreamCookie: 'a=1; b=2' });
  });
  it("reads the named app's own cookie", () => {
    const asr = assertionFor(TOKEN);
    expect(decide(`gw_session=${TOKEN}; gw_session_asr=nope; gw_session_asr_finance=${asr}`, 'finance')).toMatchObject({ action: 'allow', assertion: asr });
  });
  it.each([
    ['missing: renewed (assertion only)', () => `gw_session=${TOKEN}`, ''],
    ["another session's (a swapped or stolen cookie)", () => `gw_session=${TOKEN}; gw_session_asr=${assertionFor(OTHER_TOKEN)}`, ''],
    ['not a JWT', () => `gw_session=${TOKEN}; gw_session_asr=garbage`, ''],
    ['the binding characters without the payload prefix', () => `gw_session=${TOKEN}; gw_session_asr=h.${assertionFor(TOKEN).split('.')[1]!.slice(12)}.s`, ''],
    ['duplicated (one planted for a parent domain)', () => `gw_session=${TOKEN}; gw_session_asr=${assertionFor(TOKEN)}; gw_session_asr=${assertionFor(TOKEN)}`, ''],
    ["the default app's for a named app", () => `gw_session=${TOKEN}; gw_session_asr=${assertionFor(TOKEN)}`, 'finance'],
  ] as Array<[string, () => string, string]>)('%s: renew, with a key of its own', (_name, cookie, app) => {
    const d = decide(cookie(), app);
    expect(d).toMatchObject({ action: 'renew', reason: 'assertion-missing' });
    // ':' keys an assertion-only renewal, '.' an expired token's: nginx caches answers under them.
    if (d.action === 'renew') expect(d.renewKey).toBe(TOKEN.slice(TOKEN.lastIndexOf('.') + 1) + ':' + app);
  });
  it('an expired token is renewed as before, its key naming the app', () => {
    const expired = signToken({ ...validClaims(NOW), exp: NOW - 100 });
    const d = decide(`gw_session=${expired}; gw_session_asr=${assertionFor(expired)}`, 'finance');
    expect(d).toMatchObject({ action: 'renew', reason: 'token-expired' });
    if (d.action === 'renew') expect(d.renewKey).toBe(expired.slice(expired.lastIndexOf('.') + 1) + '.finance');
  });
  it('no session: no assertion is looked at', () => {
    expect(decide(`gw_session_asr=${assertionFor(TOKEN)}`)).toMatchObject({ action: 'deny', reason: 'token-missing' });
  });
});
