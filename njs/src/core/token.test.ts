import { describe, expect, it } from '@jest/globals';
import { CLIENT_IP, LEEWAY, NOW, decodeBase64url, hmacBase64url, makeConfig, sha256Hex } from '../../test/cases/fixtures.js';
import { tokenCases } from '../../test/cases/token-cases.js';
import { verifySessionToken } from './token.js';
import type { VerifyInput } from './token.js';
import type { IpBinding } from './session-contract.js';

function inputFor(remoteAddr: string | undefined, ipBinding: IpBinding | undefined, counters?: { decode: number }): VerifyInput {
  return {
    config: makeConfig({ leewaySeconds: LEEWAY, ipBinding: ipBinding === undefined ? 'exact' : ipBinding }),
    now: NOW,
    remoteAddr: remoteAddr === undefined ? CLIENT_IP : remoteAddr,
    hmac: hmacBase64url,
    digest: sha256Hex,
    decode: (s) => {
      if (counters) counters.decode++;
      return decodeBase64url(s);
    },
  };
}

describe('verifySessionToken', () => {
  it.each(tokenCases(NOW).map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const result = verifySessionToken(c.token, inputFor(c.remoteAddr, c.ipBinding));
    if (c.expect === 'ok') {
      expect(result).toMatchObject({ ok: true });
    } else {
      expect(result).toEqual({ ok: false, reason: c.expect });
    }
  });

  it('returns the verified claims', () => {
    const ok = tokenCases(NOW)[0];
    const result = verifySessionToken(ok.token, inputFor(undefined, undefined));
    expect(result.ok && result.claims.username).toBe('alice');
  });

  it('never decodes the payload of a token whose MAC does not match', () => {
    const counters = { decode: 0 };
    for (const c of tokenCases(NOW)) {
      if (c.expect === 'token-invalid') verifySessionToken(c.token, inputFor(c.remoteAddr, c.ipBinding, counters));
    }
    expect(counters.decode).toBe(0);
  });

  it('the low-bit-flipped signature really decodes to the same MAC bytes (why the canonical check exists)', () => {
    const good = tokenCases(NOW)[0].token.split('.')[2];
    const flipped = tokenCases(NOW).filter((c) => c.name.indexOf('low bits') >= 0)[0].token.split('.')[2];
    expect(flipped).not.toBe(good);
    expect(Buffer.from(flipped, 'base64url').equals(Buffer.from(good, 'base64url'))).toBe(true);
  });
});
