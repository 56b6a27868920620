import { describe, expect, test } from '@jest/globals';
import { decideFrontChannelLogout, type FrontChannelInput } from './oidc-frontchannel.js';

const ISSUER = 'https://idp.example/realms/corp';
const SESSION = { sub: 'oidc:abc:1', username: 'alice', src: 'oidc', idp_sid: 'sid-1' };
const base: FrontChannelInput = { iss: ISSUER, sid: 'sid-1', issuer: ISSUER, flavour: 'oidc', session: SESSION };

describe('decideFrontChannelLogout', () => {
  const cases: Array<[string, Partial<FrontChannelInput>, ReturnType<typeof decideFrontChannelLogout>]> = [
    ['ends the session whose provider sid and issuer match', {}, { kind: 'logout' }],
    ['refuses a bare link from any site (no sid)', { iss: undefined, sid: undefined }, { kind: 'refused', reason: 'sid-missing' }],
    ['refuses another session id (a guessed or stale sid)', { sid: 'sid-2' }, { kind: 'refused', reason: 'sid-mismatch' }],
    ['refuses another issuer', { iss: 'https://evil.example' }, { kind: 'refused', reason: 'iss-mismatch' }],
    ['refuses a generic OIDC request without iss (the spec requires both)', { iss: undefined }, { kind: 'refused', reason: 'iss-missing' }],
    ['refuses repeated parameters (?sid=a&sid=b)', { sid: ['sid-1', 'sid-1'] }, { kind: 'refused', reason: 'sid-missing' }],
    ['refuses for a local session, which has no provider session', { session: { ...SESSION, src: 'local', idp_sid: undefined } }, { kind: 'refused', reason: 'not-an-oidc-session' }],
    ['refuses an OIDC session signed in without a provider sid', { session: { ...SESSION, idp_sid: undefined } }, { kind: 'refused', reason: 'sid-mismatch' }],
    ['has nothing to end without a session', { session: null }, { kind: 'no-session' }],
    ['Entra: accepts sid without iss (Entra omits iss)', { flavour: 'azure', iss: undefined, session: { ...SESSION, src: 'azure' } }, { kind: 'logout' }],
    ['Entra: a present iss must still match', { flavour: 'azure', iss: 'https://evil.example', session: { ...SESSION, src: 'azure' } }, { kind: 'refused', reason: 'iss-mismatch' }],
  ];
  test.each(cases)('%s', (_name, change, expected) => {
    expect(decideFrontChannelLogout({ ...base, ...change })).toEqual(expected);
  });
});
