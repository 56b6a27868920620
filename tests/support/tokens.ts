/**
 * Hand-made session tokens for attack tests: forged, expired, wrong-IP, `alg: none`, other keys.
 * Signed here with Node's crypto so the test does not depend on the service's own signing code.
 */
import { createHmac, randomBytes } from 'node:crypto';

export const b64url = (s: string | object): string =>
  Buffer.from(typeof s === 'string' ? s : JSON.stringify(s), 'utf8').toString('base64url');

export function signWith(headerSegment: string, claims: object, secret: string): string {
  const signingInput = `${headerSegment}.${b64url(claims)}`;
  return `${signingInput}.${createHmac('sha256', Buffer.from(secret, 'utf8')).update(signingInput).digest('base64url')}`;
}

/** Claims that the gate would accept at `nowSeconds` from `ip`, with overrides. */
export function claimsFor(ip: string, nowSeconds: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sub: '00000000-0000-4000-8000-000000000001',
    username: 'kirk',
    name: 'James T. Kirk',
    email: 'kirk@enterprise.example',
    groups: ['Federation'],
    src: 'local',
    ip,
    sid: randomBytes(16).toString('base64url'),
    iat: nowSeconds,
    exp: nowSeconds + 600,
    ...overrides,
  };
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
