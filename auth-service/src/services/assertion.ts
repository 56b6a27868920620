/**
 * The signed identity assertion (issue 12): the JWT nginx forwards to the upstream as
 * X-Gateway-Assertion, signed with a key of its own (ASSERTION_KEY_FILE: ES256 on P-256, or EdDSA on
 * Ed25519), never the session secret, so an app holding the public key (JWKS) can verify it and
 * can never mint one or a session. How it travels and how the gate binds it to the session without
 * decoding it: njs/src/core/assertion.ts.
 */
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ASSERTION_BINDING_CLAIM, assertionBindingOf, assertionCookieName, isAppName } from '../../../njs/src/core/assertion.js';
import { FORWARDED_CLAIMS, qualifiedUserId, type SessionClaims } from '../../../njs/src/core/session-contract.js';
import { serializeCookie } from '../security/cookies.js';

/** The header of /auth/renew's answer that carries the new assertion's Set-Cookie line (nginx: $gate_renewed_assertion). */
export const ASSERTION_COOKIE_HEADER = 'X-Gate-Assertion-Cookie';
/** The header nginx sends the auth service with the app's name ($gate_app, snippets/auth-proxy-headers.conf), absent for the default app. */
export const APP_HEADER = 'x-gateway-app';

export type AssertionAlg = 'ES256' | 'EdDSA';

/** One assertion key: the public JWK (with kid, alg, use) and the key itself (private for the active one). */
export interface AssertionKey {
  kid: string;
  alg: AssertionAlg;
  jwk: crypto.JsonWebKey & { kid: string; alg: AssertionAlg; use: 'sig' };
  privateKey: crypto.KeyObject;
}

/** A previous key: published, never used to sign, so its file may hold the public key only. */
export type PublishedAssertionKey = Omit<AssertionKey, 'privateKey'>;

export interface AssertionConfig {
  /** ASSERTION_KEY_FILE: signs every new assertion. */
  key: AssertionKey;
  /** ASSERTION_PREVIOUS_KEY_FILES: published in the JWKS only (rotation), never used to sign. */
  previousKeys: PublishedAssertionKey[];
  /** `iss` of every assertion: the PUBLIC_BASE_URL origin, or DEFAULT_ASSERTION_ISSUER without it. */
  issuer: string;
  /** Name of the default app's assertion cookie (the session cookie's name + '_asr'); a named app's adds '_' + app. */
  cookieName: string;
}

/** `iss` (and the default app's `aud`) when PUBLIC_BASE_URL is unset. */
export const DEFAULT_ASSERTION_ISSUER = 'identity-gateway';

/**
 * Reads a PEM private key and checks it is P-256 (ES256) or Ed25519 (EdDSA). The kid is the RFC 7638
 * JWK thumbprint of the public key, so the same key always has the same kid on every instance.
 * Throws with a message that names the problem, never the key.
 */
export function loadAssertionKey(file: string): AssertionKey {
  const key = readKeyFile(file, 'private');
  return { ...describeKey(key, file), privateKey: key };
}

/** A previous key (ASSERTION_PREVIOUS_KEY_FILES): its PEM file may hold the private or only the public key. */
export function loadPublishedAssertionKey(file: string): PublishedAssertionKey {
  return describeKey(readKeyFile(file, 'public'), file);
}

function readKeyFile(file: string, kind: 'private' | 'public'): crypto.KeyObject {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`must name a readable file (received ${JSON.stringify(file)}: ${typeof code === 'string' ? code : 'unreadable'})`);
  }
  try {
    return kind === 'private' ? crypto.createPrivateKey(pem) : crypto.createPublicKey(pem);
  } catch {
    throw new Error(`must hold a PEM ${kind} key, e.g. from make assertion-key (received ${JSON.stringify(file)}; contents masked)`);
  }
}

function describeKey(key: crypto.KeyObject, file: string): PublishedAssertionKey {
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  let alg: AssertionAlg;
  if (type === 'ec' && curve === 'prime256v1') alg = 'ES256';
  else if (type === 'ed25519') alg = 'EdDSA';
  else throw new Error(`must be an EC P-256 (ES256) or Ed25519 (EdDSA) key (received a ${type ?? 'symmetric'}${curve ? ' ' + curve : ''} key in ${JSON.stringify(file)})`);
  const pub = (key.type === 'public' ? key : crypto.createPublicKey(key)).export({ format: 'jwk' });
  // The thumbprint's first 8 characters: unique enough among the few keys of a JWKS, and every
  // character of the assertion travels in a cookie on every request (its size is the gate's cost).
  const kid = jwkThumbprint(pub).slice(0, 8);
  return { kid, alg, jwk: { ...pub, kid, alg, use: 'sig' } };
}

/** RFC 7638 thumbprint (SHA-256, base64url) of an EC or OKP public JWK. */
export function jwkThumbprint(jwk: crypto.JsonWebKey): string {
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return crypto.createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/** The JWKS served at /.well-known/gateway/jwks.json: the active key first, then the previous ones. */
export function assertionJwks(config: AssertionConfig | null): { keys: AssertionKey['jwk'][] } {
  if (config === null) return { keys: [] };
  return { keys: [config.key, ...config.previousKeys].map((k) => k.jwk) };
}

/** `aud` of an app's assertion: its name, or, for the default app (''), the issuer. */
export function assertionAudience(config: Pick<AssertionConfig, 'issuer'>, app: string): string {
  return app === '' ? config.issuer : app;
}

/**
 * Signs the assertion of the session token `token` (whose claims are `claims`) for `app` ('' = the
 * default app).
 *
 * Guaranteed: the payload JSON starts with `{"bind":"<the first 12 characters of the token's
 * signature>"` (which binds it for the gate, njs/src/core/assertion.ts); then iss, aud, sub, `user`
 * (the source-qualified id X-Payload-user carries), and the session's forwarded identity claims as
 * they are in the token (username, name, email, groups with groups_count/groups_digest when the
 * token left groups out, src, Tableau ids; not sid), iat = now and exp = the token's exp (never
 * later). Header: alg and kid (8 characters of the key's RFC 7638 thumbprint), no `typ` (optional,
 * RFC 7519 5.1; every byte costs on every request).
 * Not checked: the token itself (callers pass a token they verified or just signed, and its claims).
 */
export function signAssertion(config: Pick<AssertionConfig, 'key' | 'issuer'>, token: string, claims: SessionClaims, app: string, nowSeconds: number): string {
  const binding = assertionBindingOf(token);
  if (!/^[A-Za-z0-9_-]{12}$/.test(binding)) throw new Error('not a signed session token');
  // Insertion order is JSON order: the binding must come first (see njs/src/core/assertion.ts).
  const payload: Record<string, unknown> = { [ASSERTION_BINDING_CLAIM]: binding };
  payload.iss = config.issuer;
  payload.aud = assertionAudience(config, app);
  payload.sub = claims.sub;
  payload.user = qualifiedUserId(claims.src, claims.username, claims.sub);
  // The identity the X-Payload headers carry; not `sid` (log correlation, in X-Payload-sid): every
  // byte of the assertion travels in a cookie on every request.
  for (const claim of FORWARDED_CLAIMS) {
    if (claim !== 'sub' && claim !== 'sid' && claims[claim] !== undefined) payload[claim] = claims[claim];
  }
  payload.iat = Math.min(nowSeconds, claims.exp);
  payload.exp = claims.exp;
  const header = { alg: config.key.alg, kid: config.key.kid };
  const signingInput = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const signature =
    config.key.alg === 'ES256'
      ? crypto.sign('sha256', Buffer.from(signingInput), { key: config.key.privateKey, dsaEncoding: 'ieee-p1363' })
      : crypto.sign(null, Buffer.from(signingInput), config.key.privateKey);
  return `${signingInput}.${signature.toString('base64url')}`;
}

/**
 * The Set-Cookie line of `app`'s assertion: host-only, HttpOnly, SameSite=Lax, Path=/, Secure like the
 * session cookie, and Max-Age `maxAgeSeconds` (the session cookie's, so that a stale assertion is
 * still sent and replaced rather than silently missing).
 */
export function assertionCookieLine(
  config: Pick<AssertionConfig, 'key' | 'issuer' | 'cookieName'>,
  token: string,
  claims: SessionClaims,
  app: string,
  nowSeconds: number,
  cookie: { secure: boolean; maxAgeSeconds: number },
): string {
  return serializeCookie(assertionCookieName(config.cookieName, app), signAssertion(config, token, claims, app, nowSeconds), {
    sameSite: 'Lax',
    maxAge: cookie.maxAgeSeconds,
    secure: cookie.secure,
  });
}

/**
 * Set-Cookie lines that delete every assertion cookie (`family`, `family_<app>`) the Cookie header
 * carries, for a sign-out: they no longer bind to any session, but each still holds a signed
 * assertion until its `exp`, which an app could otherwise receive on a public path. Host-only, as
 * they were set; names are taken from the header only when they are plain cookie names.
 */
export function clearAssertionCookies(cookieHeader: string | undefined, family: string, secure: boolean): string[] {
  if (cookieHeader === undefined) return [];
  const names = new Set<string>();
  for (const pair of cookieHeader.split(';')) {
    const name = pair.slice(0, pair.indexOf('=') < 0 ? pair.length : pair.indexOf('=')).trim();
    if ((name === family || (name.startsWith(family + '_') && isAppName(name.slice(family.length + 1)))) && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) names.add(name);
  }
  return [...names].map((name) => serializeCookie(name, '', { sameSite: 'Lax', maxAge: 0, secure }));
}
