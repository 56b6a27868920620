import { describe, expect, test } from '@jest/globals';
import { isAppError } from '../errors.js';
import { fetchGraphGroups, identityFromClaims, oidcSubjectPrefix } from './oidc.js';

const AZURE = {
  iss: 'https://login.microsoftonline.com/tid-1/v2.0',
  sub: 'pairwise-sub',
  tid: 'tid-1',
  oid: 'oid-1',
  preferred_username: 'alice@contoso.example',
  email: 'alice@contoso.example',
  name: 'Alice',
  groups: ['g1', 7, '', 'g2'],
};

describe('identityFromClaims', () => {
  test('Azure: sub is tid + oid, never the email or preferred_username (nOAuth)', () => {
    const mapped = identityFromClaims(AZURE, 'azure', 'groups');
    expect(mapped).toEqual({
      kind: 'ok',
      groupsOverage: false,
      identity: { sub: 'azure:tid-1:oid-1', username: 'alice@contoso.example', name: 'Alice', email: 'alice@contoso.example', groups: ['g1', 'g2'], src: 'azure' },
    });
  });

  test('two tenants with the same email are different subjects', () => {
    const a = identityFromClaims(AZURE, 'azure', 'groups');
    const b = identityFromClaims({ ...AZURE, tid: 'attacker-tenant', oid: 'oid-9' }, 'azure', 'groups');
    expect(a.kind === 'ok' && b.kind === 'ok' && a.identity.sub !== b.identity.sub).toBe(true);
  });

  test('generic OIDC: sub is namespaced by a hash of the issuer, so it never equals a local user id', () => {
    const mapped = identityFromClaims({ iss: 'https://idp.example', sub: '42', email: 'x@example.com' }, 'oidc', 'groups');
    expect(mapped.kind === 'ok' && mapped.identity).toMatchObject({ sub: `${oidcSubjectPrefix('https://idp.example')}:42`, username: 'x@example.com', groups: [], src: 'oidc' });
    expect(oidcSubjectPrefix('https://idp.example')).toMatch(/^oidc:[0-9a-f]{16}$/);
  });

  const missing: Array<[string, Record<string, unknown>, 'azure' | 'oidc']> = [
    ['rejects an Azure token without tid', { ...AZURE, tid: undefined }, 'azure'],
    ['rejects an Azure token without oid', { ...AZURE, oid: undefined }, 'azure'],
    ['rejects an Azure token whose oid is not a string', { ...AZURE, oid: 12 }, 'azure'],
    ['rejects a generic token without sub', { iss: 'https://idp.example' }, 'oidc'],
  ];
  test.each(missing)('%s', (_name, claims, flavour) => {
    expect(identityFromClaims(claims, flavour, 'groups')).toEqual({ kind: 'invalid', reason: 'claims-missing' });
  });

  test('reports an overage when _claim_names names the groups claim, and reads a custom groups claim', () => {
    const overage = identityFromClaims({ ...AZURE, groups: undefined, _claim_names: { groups: 'src1' } }, 'azure', 'groups');
    expect(overage.kind === 'ok' && overage.groupsOverage).toBe(true);
    const custom = identityFromClaims({ ...AZURE, roles: ['Admin'] }, 'azure', 'roles');
    expect(custom.kind === 'ok' && custom.identity.groups).toEqual(['Admin']);
  });
});

describe('fetchGraphGroups', () => {
  const page = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });

  test('follows @odata.nextLink and takes displayName, else id', async () => {
    const calls: string[] = [];
    const fetchFn = (async (url: string | URL | Request) => {
      calls.push(String(url));
      return calls.length === 1
        ? page({ value: [{ id: '1', displayName: 'Finance' }], '@odata.nextLink': 'https://graph.test/v1.0/next?$skiptoken=x' })
        : page({ value: [{ id: '2' }] });
    }) as typeof fetch;
    await expect(fetchGraphGroups({ graphBaseUrl: 'https://graph.test', accessToken: 't', timeoutMs: 1000, fetch: fetchFn })).resolves.toEqual(['Finance', '2']);
    expect(calls[0]).toBe('https://graph.test/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id,displayName');
  });

  test('never sends the access token to a nextLink on another origin', async () => {
    const calls: string[] = [];
    const fetchFn = (async (url: string | URL | Request) => {
      calls.push(String(url));
      return page({ value: [], '@odata.nextLink': 'https://evil.example/steal' });
    }) as typeof fetch;
    const err = await fetchGraphGroups({ graphBaseUrl: 'https://graph.test', accessToken: 't', timeoutMs: 1000, fetch: fetchFn }).catch((e: unknown) => e);
    expect(isAppError(err) && err.status).toBe(503);
    expect(calls).toHaveLength(1);
  });

  test('a Graph error answer is a 503, not an empty group list', async () => {
    const fetchFn = (async () => new Response('{}', { status: 403 })) as typeof fetch;
    const err = await fetchGraphGroups({ graphBaseUrl: 'https://graph.test', accessToken: 't', timeoutMs: 1000, fetch: fetchFn }).catch((e: unknown) => e);
    expect(isAppError(err) && err.code).toBe('ERR_IDP_UNAVAILABLE');
  });
});
