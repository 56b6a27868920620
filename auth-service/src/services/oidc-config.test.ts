import { describe, expect, test } from '@jest/globals';
import { loadOidcConfig } from './oidc-config.js';

const AZURE = { AZURE_TENANT_ID: '9188040d-6c67-4c5b-b112-36a304b66dad', AZURE_CLIENT_ID: 'app-id', AZURE_CLIENT_SECRET: 'azure-secret-value', PUBLIC_BASE_URL: 'https://gw.example.com/' };
const GENERIC = { OIDC_ISSUER: 'https://idp.example/realms/x', OIDC_CLIENT_ID: 'gw', OIDC_CLIENT_SECRET: 'generic-secret-value', PUBLIC_BASE_URL: 'https://gw.example.com' };

function load(env: Record<string, string>, insecure = false) {
  const errors: string[] = [];
  return { settings: loadOidcConfig(env, errors, insecure), errors };
}

describe('loadOidcConfig', () => {
  test('is off without any OIDC or Azure variable', () => {
    expect(load({})).toEqual({ settings: { oidc: null, loginMethods: { password: true, oidc: false }, publicBaseUrl: null }, errors: [] });
  });

  test('Azure preset: issuer from the tenant, Azure defaults, redirect URI from PUBLIC_BASE_URL', () => {
    const { settings, errors } = load(AZURE);
    expect(errors).toEqual([]);
    expect(settings.loginMethods).toEqual({ password: true, oidc: true });
    expect(settings.oidc).toEqual({
      flavour: 'azure',
      issuer: 'https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0',
      clientId: 'app-id',
      clientSecret: 'azure-secret-value',
      redirectPath: '/login/oauth2/code/azure',
      redirectUri: 'https://gw.example.com/login/oauth2/code/azure',
      scopes: 'openid profile email offline_access',
      displayName: 'Microsoft',
      timeoutMs: 5000,
      groupsClaim: 'groups',
      graphBaseUrl: 'https://graph.microsoft.com',
      metadataTtlSeconds: 600,
      maxGroups: 2000,
    });
  });

  test.each(['contoso.onmicrosoft.com', 'common', 'organizations', '9188040d6c674c5bb11236a304b66dad', '9188040d-6c67-4c5b-b112-36a304b66dad/v2.0'])(
    'AZURE_TENANT_ID %s is refused at start-up with where to find the GUID, not at the first sign-in',
    (tenant) => {
      const { settings, errors } = load({ ...AZURE, AZURE_TENANT_ID: tenant });
      expect(settings.oidc).toBeNull();
      expect(errors).toEqual([expect.stringMatching(/^AZURE_TENANT_ID: must be the Directory \(tenant\) ID, a GUID .*Entra admin center/)]);
    },
  );

  test('generic OIDC defaults and LOGIN_METHODS=oidc', () => {
    const { settings, errors } = load({ ...GENERIC, LOGIN_METHODS: 'oidc' });
    expect(errors).toEqual([]);
    expect(settings.loginMethods).toEqual({ password: false, oidc: true });
    expect(settings.oidc).toMatchObject({ flavour: 'oidc', redirectPath: '/login/oauth2/code/oidc', displayName: 'your identity provider' });
  });

  const invalid: Array<[string, Record<string, string>, RegExp]> = [
    ['requires PUBLIC_BASE_URL (never the Host header)', { ...GENERIC, PUBLIC_BASE_URL: '' }, /^PUBLIC_BASE_URL: is required/],
    ['requires the client secret', { ...GENERIC, OIDC_CLIENT_SECRET: '' }, /^OIDC_CLIENT_SECRET: is required/],
    ['refuses a plain-http issuer without ALLOW_INSECURE_HTTP_IDP', { ...GENERIC, OIDC_ISSUER: 'http://idp.example' }, /^OIDC_ISSUER: must use https/],
    ['refuses a redirect path outside /login/', { ...GENERIC, OIDC_REDIRECT_PATH: '/callback' }, /^OIDC_REDIRECT_PATH:/],
    ['refuses scopes without openid', { ...GENERIC, OIDC_SCOPES: 'profile email' }, /^OIDC_SCOPES:/],
    ['refuses LOGIN_METHODS=oidc with no provider', { LOGIN_METHODS: 'oidc' }, /^LOGIN_METHODS: includes oidc/],
    ['refuses an unknown login method', { ...GENERIC, LOGIN_METHODS: 'password,saml' }, /^LOGIN_METHODS: must be/],
    ['refuses a PUBLIC_BASE_URL with a path', { ...GENERIC, PUBLIC_BASE_URL: 'https://gw.example.com/app' }, /^PUBLIC_BASE_URL: must be the gateway origin/],
    ['refuses a timeout out of range', { ...GENERIC, OIDC_TIMEOUT_MS: '10' }, /^OIDC_TIMEOUT_MS:/],
    ['refuses a metadata TTL of 0 (metadata must be cached)', { ...GENERIC, OIDC_METADATA_TTL_SECONDS: '0' }, /^OIDC_METADATA_TTL_SECONDS: must be an integer from 1 to 86400 \(received "0"\)/],
    ['refuses a group cap that is not a number', { ...GENERIC, OIDC_MAX_GROUPS: 'many' }, /^OIDC_MAX_GROUPS: must be an integer from 1 to 10000/],
    ['refuses Azure and generic client settings together', { ...AZURE, OIDC_CLIENT_ID: 'x' }, /^OIDC_CLIENT_ID: set either/],
  ];
  test.each(invalid)('%s', (_name, env, message) => {
    const { settings, errors } = load(env);
    expect(errors.some((e) => message.test(e))).toBe(true);
    expect(settings.oidc).toBeNull();
  });

  test('reads the metadata TTL and the group cap', () => {
    const { settings, errors } = load({ ...GENERIC, OIDC_METADATA_TTL_SECONDS: '30', OIDC_MAX_GROUPS: '5000' });
    expect(errors).toEqual([]);
    expect(settings.oidc).toMatchObject({ metadataTtlSeconds: 30, maxGroups: 5000 });
  });

  test('never prints a client secret', () => {
    const { errors } = load({ ...AZURE, AZURE_CLIENT_ID: '', PUBLIC_BASE_URL: 'nope' });
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.join('\n')).not.toContain('azure-secret-value');
  });

  test('allows a plain-http issuer and Graph URL when ALLOW_INSECURE_HTTP_IDP is on (tests only)', () => {
    const { settings, errors } = load({ ...GENERIC, OIDC_ISSUER: 'http://127.0.0.1:9/t/v2.0', GRAPH_BASE_URL: 'http://127.0.0.1:8/' }, true);
    expect(errors).toEqual([]);
    expect(settings.oidc?.graphBaseUrl).toBe('http://127.0.0.1:8');
  });
});
