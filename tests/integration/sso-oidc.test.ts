/**
 * Single sign-on hand-off after an OIDC sign-in (issue 12): an app host that shares no parent
 * domain with the gateway (app.beta.test) sends the browser to the gateway's public origin
 * (http://gw.test), the user signs in at the provider, and the callback hands the session back to
 * the app host with a one-time code, exactly as after a password sign-in.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { rawRequest, setCookies } from '../support/http.js';
import { oidcWalk, type Jar } from '../support/oidc-walk.js';
import { azureGatewayEnv, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { stackTest, startStack, type Stack } from '../support/stack.js';

const PUBLIC = 'http://gw.test';
const APP = 'http://app.beta.test';
const CALLBACK = '/login/oauth2/code/azure';
const CLIENT = { id: 'b6a2c1f0-gateway', secret: 'client secret for tests only 1234567890' };
const ALICE = { oid: '00000000-0000-0000-0000-00000000a11c', preferredUsername: 'alice@contoso.example', name: 'Alice Example', email: 'alice@contoso.example', groups: ['g-sales'] };
const { follow } = oidcWalk(PUBLIC);

describe('single sign-on hand-off after an OIDC sign-in', () => {
  let stack: Stack;
  let provider: TestOidcProvider;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    provider = await startOidcProvider({ clientId: CLIENT.id, clientSecret: CLIENT.secret, redirectUris: [PUBLIC + CALLBACK], postLogoutRedirectUris: [PUBLIC + '/login'], accounts: [ALICE] });
    stack = await startStack({ env: azureGatewayEnv(provider, CLIENT, PUBLIC, { APP_ORIGINS: APP }) });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await provider?.close();
  });

  const onApp = (path: string, cookie?: string) => rawRequest(stack.proxyPort, 'GET', path, { host: 'app.beta.test', accept: 'text/html', ...(cookie ? { cookie } : {}) });

  test('the app host sends the browser to the gateway, the provider signs in, and the callback hands over with a code', async () => {
    const toGateway = await onApp('/login?rd=%2Freports');
    expect(toGateway.headers.location).toBe(`${PUBLIC}/login?rd=${encodeURIComponent(`${APP}/reports`)}`);

    const jar: Jar = new Map();
    const { url } = await follow(stack, jar, `/login/oidc?rd=${encodeURIComponent(`${APP}/reports`)}`, (next) => next.origin === APP);
    const handoff = new URL(url);
    expect(handoff.pathname).toBe('/login/handoff');
    expect(handoff.searchParams.get('rd')).toBe('/reports');

    const redeemed = await onApp(handoff.pathname + handoff.search);
    expect(redeemed.status).toBe(302);
    expect(redeemed.headers.location).toBe('/reports');
    const pair = setCookies(redeemed).map((c) => c.split(';')[0]!).find((c) => c.startsWith('gw_session=') && c.length > 11)!;
    const page = await onApp('/reports', pair);
    expect(page.status).toBe(200);
    expect(stack.upstream.seen[stack.upstream.seen.length - 1]!.headers).toMatchObject({ 'x-payload-username': ALICE.preferredUsername, 'x-payload-src': 'azure' });
  }, 30_000);
});
