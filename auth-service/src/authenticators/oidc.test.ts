import { describe, expect, test } from '@jest/globals';
import { isAppError } from '../errors.js';
import { fetchGraphGroups, GraphGroupsError, identityFromClaims, oidcSubjectPrefix, type ClaimsMappingOptions } from './oidc.js';

const AZ: ClaimsMappingOptions = { flavour: 'azure', groupsClaim: 'groups', maxGroups: 2000 };
const GEN: ClaimsMappingOptions = { flavour: 'oidc', groupsClaim: 'groups', maxGroups: 2000 };

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
    const mapped = identityFromClaims(AZURE, AZ);
    expect(mapped).toEqual({
      kind: 'ok',
      groupsOverage: false,
      identity: { sub: 'azure:tid-1:oid-1', username: 'alice@contoso.example', name: 'Alice', email: 'alice@contoso.example', emailVerified: false, groups: ['g1', 'g2'], src: 'azure' },
    });
  });

  test('two tenants with the same email are different subjects', () => {
    const a = identityFromClaims(AZURE, AZ);
    const b = identityFromClaims({ ...AZURE, tid: 'attacker-tenant', oid: 'oid-9' }, AZ);
    expect(a.kind === 'ok' && b.kind === 'ok' && a.identity.sub !== b.identity.sub).toBe(true);
  });

  test('generic OIDC: sub is namespaced by a hash of the issuer, so it never equals a local user id', () => {
    const mapped = identityFromClaims({ iss: 'https://idp.example', sub: '42', email: 'x@example.com' }, GEN);
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
    expect(identityFromClaims(claims, { ...AZ, flavour })).toEqual({ kind: 'invalid', reason: 'claims-missing' });
  });

  test('reports an overage when _claim_names names the groups claim, and reads a custom groups claim', () => {
    const overage = identityFromClaims({ ...AZURE, groups: undefined, _claim_names: { groups: 'src1' } }, AZ);
    expect(overage.kind === 'ok' && overage.groupsOverage).toBe(true);
    const custom = identityFromClaims({ ...AZURE, roles: ['Admin'] }, { ...AZ, groupsClaim: 'roles' });
    expect(custom.kind === 'ok' && custom.identity.groups).toEqual(['Admin']);
  });

  const verified: Array<[string, Record<string, unknown>, ClaimsMappingOptions, boolean]> = [
    ['generic: email_verified true is verified', { iss: 'https://idp.example', sub: '1', email: 'a@example.com', email_verified: true }, GEN, true],
    ['generic: email_verified false is not', { iss: 'https://idp.example', sub: '1', email: 'a@example.com', email_verified: false }, GEN, false],
    ['generic: the string "true" is not a boolean true', { iss: 'https://idp.example', sub: '1', email: 'a@example.com', email_verified: 'true' }, GEN, false],
    ['generic: no email_verified claim is not verified', { iss: 'https://idp.example', sub: '1', email: 'a@example.com' }, GEN, false],
    ['Azure: xms_edov true (domain owner verified) is verified', { ...AZURE, xms_edov: true }, AZ, true],
    ['Azure: email_verified is not an Entra claim and is ignored (email is mutable)', { ...AZURE, email_verified: true }, AZ, false],
    ['Azure: xms_edov false is not verified', { ...AZURE, xms_edov: false }, AZ, false],
  ];
  test.each(verified)('%s', (_name, claims, opts, expected) => {
    const mapped = identityFromClaims(claims, opts);
    expect(mapped.kind === 'ok' && mapped.identity.emailVerified).toBe(expected);
  });

  test('carries the provider session id (sid) as idp_sid for front-channel logout', () => {
    const mapped = identityFromClaims({ ...AZURE, sid: 'idp-session-1' }, AZ);
    expect(mapped.kind === 'ok' && mapped.identity.extraClaims).toEqual({ idp_sid: 'idp-session-1' });
  });

  test('refuses more groups than the cap instead of cutting the list', () => {
    const groups = Array.from({ length: 11 }, (_, i) => `g${i}`);
    expect(identityFromClaims({ ...AZURE, groups }, { ...AZ, maxGroups: 10 })).toEqual({ kind: 'too-many-groups', count: 11 });
    const atCap = identityFromClaims({ ...AZURE, groups: groups.slice(0, 10) }, { ...AZ, maxGroups: 10 });
    expect(atCap.kind === 'ok' && atCap.identity.groups).toHaveLength(10);
  });
});

describe('fetchGraphGroups', () => {
  const page = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });

  test('follows @odata.nextLink and takes the object id, never the display name (one form whatever the count)', async () => {
    const calls: string[] = [];
    const fetchFn = (async (url: string | URL | Request) => {
      calls.push(String(url));
      return calls.length === 1
        ? page({ value: [{ id: '1', displayName: 'Finance' }], '@odata.nextLink': 'https://graph.test/v1.0/next?$skiptoken=x' })
        : page({ value: [{ id: '2' }] });
    }) as typeof fetch;
    await expect(fetchGraphGroups({ graphBaseUrl: 'https://graph.test', accessToken: 't', timeoutMs: 1000, maxGroups: 2000, fetch: fetchFn })).resolves.toEqual(['1', '2']);
    expect(calls[0]).toBe('https://graph.test/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id&$top=999');
  });

  test('a group without an id is a malformed answer (503), not a shorter list', async () => {
    const fetchFn = (async () => page({ value: [{ id: 'a' }, { displayName: 'No id' }] })) as typeof fetch;
    const err = await fetchGraphGroups({ graphBaseUrl: 'https://graph.test', accessToken: 't', timeoutMs: 1000, maxGroups: 2000, fetch: fetchFn }).catch((e: unknown) => e);
    expect(err instanceof GraphGroupsError && err.reason).toBe('graph-unavailable');
  });

  test('never sends the access token to a nextLink on another origin', async () => {
    const calls: string[] = [];
    const fetchFn = (async (url: string | URL | Request) => {
      calls.push(String(url));
      return page({ value: [], '@odata.nextLink': 'https://evil.example/steal' });
    }) as typeof fetch;
    const err = await fetchGraphGroups({ graphBaseUrl: 'https://graph.test', accessToken: 't', timeoutMs: 1000, maxGroups: 2000, fetch: fetchFn }).catch((e: unknown) => e);
    expect(isAppError(err) && err.status).toBe(503);
    expect(calls).toHaveLength(1);
  });

  test('a Graph error answer is a 503, not an empty group list', async () => {
    const fetchFn = (async () => new Response('{}', { status: 403 })) as typeof fetch;
    const err = await fetchGraphGroups({ graphBaseUrl: 'https://graph.test', accessToken: 't', timeoutMs: 1000, maxGroups: 2000, fetch: fetchFn }).catch((e: unknown) => e);
    expect(isAppError(err) && err.code).toBe('ERR_IDP_UNAVAILABLE');
  });

  const failures: Array<[string, (url: string, calls: number) => unknown, number, string]> = [
    ['a nextLink that points back to the first page is a loop, not an endless read', (url) => ({ value: [{ id: 'x' }], '@odata.nextLink': url }), 2000, 'graph-loop'],
    ['a loop through two pages is found too', (_url, n) => ({ value: [], '@odata.nextLink': `https://graph.test/v1.0/p?${n % 2}` }), 2000, 'graph-loop'],
    ['endless new pages stop at the page cap', (_url, n) => ({ value: [], '@odata.nextLink': `https://graph.test/v1.0/p?${n}` }), 100, 'graph-too-many-pages'],
    ['more groups than the cap end the read with an error, not a cut list', (_url, n) => ({ value: [{ id: `a${n}` }, { id: `b${n}` }], '@odata.nextLink': `https://graph.test/v1.0/p?${n}` }), 5, 'too-many-groups'],
  ];
  test.each(failures)('%s', async (_name, answer, maxGroups, reason) => {
    let calls = 0;
    const fetchFn = (async (url: string | URL | Request) => page(answer(String(url), ++calls))) as typeof fetch;
    const err = await fetchGraphGroups({ graphBaseUrl: 'https://graph.test', accessToken: 't', timeoutMs: 1000, maxGroups, fetch: fetchFn }).catch((e: unknown) => e);
    expect(err instanceof GraphGroupsError && err.reason).toBe(reason);
    expect(calls).toBeLessThanOrEqual(Math.ceil(maxGroups / 100) + 5);
  });

  test('reads 1,000 groups across pages when the cap allows them', async () => {
    const fetchFn = (async (url: string | URL | Request) => {
      const n = Number(new URL(String(url)).searchParams.get('p') ?? '0');
      const value = Array.from({ length: 100 }, (_, i) => ({ id: `id-${n * 100 + i}`, displayName: `Gruppe ${n * 100 + i}` }));
      return page(n < 9 ? { value, '@odata.nextLink': `https://graph.test/v1.0/next?p=${n + 1}` } : { value });
    }) as typeof fetch;
    const groups = await fetchGraphGroups({ graphBaseUrl: 'https://graph.test', accessToken: 't', timeoutMs: 1000, maxGroups: 1000, fetch: fetchFn });
    expect(groups).toHaveLength(1000);
    expect(new Set(groups).size).toBe(1000);
  });
});
