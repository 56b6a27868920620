/**
 * Client-sent identity headers never reach the upstream, whatever their spelling; only the gate's
 * values do.
 */
import { afterAll, beforeAll, beforeEach, describe, expect } from '@jest/globals';
import { headerSegmentFor } from '../../auth-service/src/services/gate-config.js';
import { stackTest, startStack, type Stack } from '../support/stack.js';
import { claimsFor, nowSeconds, signWith } from '../support/tokens.js';

describe('spoofed X-Payload-* headers', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  let session: string;

  beforeAll(async () => {
    stack = await startStack();
    session = `gw_session=${signWith(headerSegmentFor(stack.secret), claimsFor('127.0.0.1', nowSeconds(), { email: undefined }), stack.secret)}`;
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });
  beforeEach(() => stack.upstream.reset());

  const spoofs: Array<[string, string]> = [
    ['X-Payload-username', 'admin'],
    ['x-payload-groups', 'Admins'],
    ['X-PAYLOAD-EMAIL', 'admin@evil.example'],
    ['X-Payload-Role', 'superuser'],
    ['X-Payload-Tableau_Site_Role', 'ServerAdministrator'],
    ['X_Payload_Username', 'admin'],
    ['x_payload_groups', 'Admins'],
  ];

  test('a logged-in request: only the gate-set values arrive, no spoofed name survives', async () => {
    const res = await stack.request('GET', '/', [['accept', 'application/json'], ['cookie', session], ...spoofs]);
    expect(res.status).toBe(200);
    const seen = stack.upstream.seen[0];
    expect(seen.headers['x-payload-username']).toBe('kirk');
    expect(seen.headers['x-payload-groups']).toBe('Federation');
    // The token has no email: the client's value must not fill the gap.
    expect(seen.headers['x-payload-email']).toBeUndefined();
    expect(seen.headers['x-payload-role']).toBeUndefined();
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names.filter((n) => n === 'x-payload-username')).toHaveLength(1);
    expect(names.some((n) => n.replace(/_/g, '-').startsWith('x-payload-tableau'))).toBe(false);
    expect(names.some((n) => n.startsWith('x_payload'))).toBe(false);
  });

  test('an anonymous request with spoofed headers is still refused', async () => {
    const res = await stack.request('GET', '/', [['accept', 'application/json'], ...spoofs]);
    expect(res.status).toBe(401);
    expect(stack.upstream.seen).toHaveLength(0);
  });

  test('identity values cannot inject header lines', async () => {
    const evil = signWith(
      headerSegmentFor(stack.secret),
      claimsFor('127.0.0.1', nowSeconds(), { name: 'Kirk\r\nX-Payload-Admin: yes' }),
      stack.secret,
    );
    const res = await stack.request('GET', '/', { accept: 'application/json', cookie: `gw_session=${evil}` });
    expect(res.status).toBe(200);
    const seen = stack.upstream.seen[0];
    expect(seen.headers['x-payload-admin']).toBeUndefined();
    expect(seen.headers['x-payload-name']).toBe('KirkX-Payload-Admin: yes');
  });
});
