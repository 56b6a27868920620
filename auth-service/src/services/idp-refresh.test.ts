import crypto from 'node:crypto';
import { describe, expect, test } from '@jest/globals';
import { openIdpRefresh, sealIdpRefresh } from './idp-refresh.js';
import { sealTableauCredentials } from './tableau-token.js';

const active = crypto.randomBytes(48).toString('base64url');
const previous = crypto.randomBytes(48).toString('base64url');
const retired = crypto.randomBytes(48).toString('base64url');
const SID = 'AAAAAAAAAAAAAAAAAAAAAA';
const REFRESH = 'rt-0123456789abcdefghijklmnopqrstuvwxyz';

describe('a provider refresh token sealed for the session row', () => {
  test('round-trips under the active secret and never shows the token (a database dump alone does not)', () => {
    const sealed = sealIdpRefresh(REFRESH, SID, active);
    expect(openIdpRefresh(sealed, SID, [active])).toBe(REFRESH);
    expect(Buffer.from(sealed, 'base64url').toString('latin1')).not.toContain('rt-0123');
    expect(sealed).not.toBe(sealIdpRefresh(REFRESH, SID, active));
  });

  test('key rotation: opens under a previous secret still in its grace period; not once that secret is gone', () => {
    const sealed = sealIdpRefresh(REFRESH, SID, previous);
    expect(openIdpRefresh(sealed, SID, [active, previous])).toBe(REFRESH);
    expect(openIdpRefresh(sealed, SID, [active])).toBeNull();
    expect(openIdpRefresh(sealIdpRefresh(REFRESH, SID, retired), SID, [active, previous])).toBeNull();
  });

  test('a value copied into another session row does not open there (the sid is authenticated data)', () => {
    expect(openIdpRefresh(sealIdpRefresh(REFRESH, SID, active), 'BBBBBBBBBBBBBBBBBBBBBB', [active])).toBeNull();
  });

  test('a tampered value, a sealed Tableau token (another key) or garbage does not open', () => {
    const raw = Buffer.from(sealIdpRefresh(REFRESH, SID, active), 'base64url');
    raw[14]! ^= 1;
    expect(openIdpRefresh(raw.toString('base64url'), SID, [active])).toBeNull();
    const tableau = sealTableauCredentials({ token: REFRESH, siteId: 's', userId: 'u', apiVersion: '3.19', expiresAt: 1 }, active);
    expect(openIdpRefresh(tableau, SID, [active])).toBeNull();
    expect(openIdpRefresh('', SID, [active])).toBeNull();
    expect(openIdpRefresh('not base64url!', SID, [active])).toBeNull();
  });
});
