import { describe, expect, test } from '@jest/globals';
import { createStateSealer, type OidcFlowState } from './oidc-state.js';

const SECRET = 'a'.repeat(20) + 'B7-long-enough-secret-for-tests';
const NOW = 1_800_000_000_000;
const STATE: OidcFlowState = { state: 's1', nonce: 'n1', codeVerifier: 'v'.repeat(43), returnPath: '/reports?x=1', expiresAt: NOW / 1000 + 600 };

describe('OIDC state cookie', () => {
  const sealer = createStateSealer(SECRET);

  test('opens what it sealed, and the verifier is not readable in the cookie', () => {
    const sealed = sealer.seal(STATE);
    expect(sealer.open(sealed, NOW)).toEqual(STATE);
    expect(Buffer.from(sealed, 'base64url').toString('latin1')).not.toContain(STATE.codeVerifier);
  });

  const flipLast = (v: string) => v.slice(0, -2) + (v.at(-2) === 'A' ? 'B' : 'A') + v.at(-1);
  const rejected: Array<[string, (sealed: string) => string | undefined, number]> = [
    ['rejects a missing cookie', () => undefined, NOW],
    ['rejects a cookie with one character changed (forged)', flipLast, NOW],
    ['rejects a cookie sealed with another JWT secret', () => createStateSealer(SECRET + 'x').seal(STATE), NOW],
    ['rejects a cookie opened after its 10 minutes', (s) => s, NOW + 600_000],
    ['rejects a value that is not base64url', () => 'not a cookie value!'.repeat(4), NOW],
    ['rejects a value too short to hold an IV and a tag', () => 'AAAA'.repeat(10), NOW],
  ];
  test.each(rejected)('%s', (_name, make, now) => {
    expect(sealer.open(make(sealer.seal(STATE)), now)).toBeNull();
  });
});
