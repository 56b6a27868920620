/**
 * Shared test fixtures for jest (Node) and the njs CLI runner. Everything here runs in both, so it
 * stays in the njs 0.7.9 subset. `crypto` is Node's in jest and njs's in the runner; the two agree
 * byte for byte on createHmac(...).digest('base64url') and on Buffer base64url.
 */
import crypto from 'crypto';
import { sessionJwtHeader } from '../../src/core/session-contract.js';
import type { GateConfig, SessionClaims } from '../../src/core/session-contract.js';

/** The frozen clock of every table case, seconds. */
export const NOW = 1700000000;

/** Test-only keys. Never used outside tests. */
export const CURRENT_KEY = { kid: 'k2', secret: 'test-only-current-key-3f9a1c7e5b2d4f6a8c0e' };
export const PREVIOUS_KEY = { kid: 'k1', secret: 'test-only-previous-key-9e8d7c6b5a4f3e2d1c0b' };
/** A previous key whose grace period ended exactly at NOW (its secret still in the config). */
export const RETIRED_KEY = { kid: 'k0', secret: 'test-only-retired-key-5c4b3a2f1e0d9c8b7a6f' };
/** A previous key that had retired when the config was written: listed, but its secret dropped. */
export const DROPPED_KEY = { kid: 'kx', secret: 'test-only-dropped-key-1f2e3d4c5b6a7f8e9d0c' };
/** A key the gate does not know. */
export const UNKNOWN_KEY = { kid: 'k9', secret: 'test-only-unknown-key-0a1b2c3d4e5f6a7b8c9d' };

export const CLIENT_IP = '203.0.113.7';
export const LEEWAY = 30;
/** GateConfig.maxSessionSeconds of every table case. */
export const MAX_SESSION = 28800;
/** PREVIOUS_KEY retires one second after NOW: still accepted by every case at NOW. */
export const PREVIOUS_KEY_RETIRES = NOW + 1;

export function base64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}

export function hmacBase64url(secret: string, data: string): string {
  return crypto.createHmac('sha256', secret).update(data).digest('base64url');
}

export function sha256Hex(s: string): string {
  return crypto.createHash('sha256').update(s).digest('hex');
}

export function decodeBase64url(s: string): string {
  return Buffer.from(s, 'base64url').toString();
}

/** The exact header segment the auth service emits for `kid`. */
export function headerSegment(kid: string): string {
  return base64url(JSON.stringify(sessionJwtHeader(kid)));
}

export function makeConfig(overrides?: Partial<GateConfig>): GateConfig {
  const keys: { [segment: string]: string } = {};
  keys[headerSegment(CURRENT_KEY.kid)] = CURRENT_KEY.secret;
  keys[headerSegment(PREVIOUS_KEY.kid)] = PREVIOUS_KEY.secret;
  keys[headerSegment(RETIRED_KEY.kid)] = RETIRED_KEY.secret;
  const retired: { [segment: string]: number } = {};
  retired[headerSegment(PREVIOUS_KEY.kid)] = PREVIOUS_KEY_RETIRES;
  retired[headerSegment(RETIRED_KEY.kid)] = NOW;
  retired[headerSegment(DROPPED_KEY.kid)] = NOW - 86400;
  const base: GateConfig = {
    cookieName: 'gw_session',
    ipBinding: 'exact',
    leewaySeconds: LEEWAY,
    maxSessionSeconds: MAX_SESSION,
    loginPath: '/login',
    keys: keys,
    keyRetiredAt: retired,
  };
  return Object.assign(base, overrides || {});
}

/** Claims of a valid session at NOW, bound to CLIENT_IP. */
export function validClaims(now: number): SessionClaims {
  return {
    sub: '6f1c2b9e-7d4a-4c1e-9b3a-2e5f8d7c6b1a',
    username: 'alice',
    name: 'Alice Example',
    email: 'alice@example.test',
    groups: ['staff', 'federation'],
    src: 'local',
    ip: CLIENT_IP,
    sid: 'c2lkLTEyMzQ1Njc4',
    iat: now - 60,
    exp: now + 3600,
  };
}

/** Returns a copy of `claims` with `changes` applied; a change to undefined deletes the claim. */
export function withClaims(claims: object, changes: { [claim: string]: unknown }): { [claim: string]: unknown } {
  const out = Object.assign({}, claims) as { [claim: string]: unknown };
  const names = Object.keys(changes);
  for (let i = 0; i < names.length; i++) {
    if (changes[names[i]] === undefined) delete out[names[i]];
    else out[names[i]] = changes[names[i]];
  }
  return out;
}

/** Signs `payloadJson` (already a JSON string, or any text) under `header` with `secret`. */
export function signRaw(header: string, payloadJson: string, secret: string): string {
  const payload = base64url(payloadJson);
  return header + '.' + payload + '.' + hmacBase64url(secret, header + '.' + payload);
}

/** A token exactly as the auth service would issue it with `key`. */
export function signToken(claims: unknown, key?: { kid: string; secret: string }): string {
  const k = key || CURRENT_KEY;
  return signRaw(headerSegment(k.kid), JSON.stringify(claims), k.secret);
}
