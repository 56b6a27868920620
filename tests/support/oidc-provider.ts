/**
 * A real OpenID Provider (panva's oidc-provider) for tests, shaped like Azure AD v2.0: the issuer is
 * `http://127.0.0.1:<port>/<tenant>/v2.0`, ID tokens carry `tid`, `oid` and `groups`, and a switch
 * makes it report a groups overage (`_claim_names`/`_claim_sources`) instead, as Azure does above
 * 200 groups. Login and consent are automatic: the interaction route signs in the account chosen
 * with `setAccount` without showing a form.
 *
 * `setTamper` rewrites the ID token of the next token responses (expired, other issuer, other
 * audience, or `alg: none`), re-signed with the provider's own key, so the relying party's checks
 * are exercised on tokens that are otherwise perfectly valid.
 */
import crypto from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import express from 'express';

export interface OidcTestAccount {
  oid: string;
  preferredUsername: string;
  name?: string;
  email?: string;
  groups: string[];
}

export type IdTokenTamper = 'none' | 'expired' | 'wrong-issuer' | 'wrong-audience' | 'alg-none';

export interface OidcProviderOptions {
  tenant?: string;
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  accounts: OidcTestAccount[];
  /** Where the overage form points (`_claim_sources.src1.endpoint`). */
  graphBaseUrl?: string;
}

export interface TestOidcProvider {
  issuer: string;
  tenant: string;
  port: number;
  setAccount(oid: string): void;
  setOverage(on: boolean): void;
  setTamper(mode: IdTokenTamper): void;
  /** True when `token` is an access token this provider issued and that has not expired. */
  isAccessToken(token: string): Promise<boolean>;
  close(): Promise<void>;
}

/** The parts of oidc-provider's API used here (the package ships no type declarations). */
interface ProviderInstance {
  callback(): (req: unknown, res: unknown) => void;
  use(middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void;
  interactionDetails(req: unknown, res: unknown): Promise<InteractionDetails>;
  interactionFinished(req: unknown, res: unknown, result: unknown, opts?: { mergeWithLastSubmission?: boolean }): Promise<void>;
  Grant: new (init: { accountId: string; clientId: string }) => GrantInstance;
  AccessToken: { find(token: string): Promise<unknown> };
  on(event: string, fn: (...args: unknown[]) => void): void;
}
interface KoaContext {
  path: string;
  method: string;
  body: unknown;
}
interface GrantInstance {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}
interface InteractionDetails {
  prompt: { name: string; details: { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> } };
  params: { client_id: string };
  session?: { accountId: string };
  grantId?: string;
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

export async function startOidcProvider(opts: OidcProviderOptions): Promise<TestOidcProvider> {
  // The package is ESM-only and untyped: import it by a non-literal name so tsc does not look for types.
  const moduleName = 'oidc-provider';
  const { default: Provider } = (await import(moduleName)) as { default: new (issuer: string, config: unknown) => ProviderInstance };

  const tenant = opts.tenant ?? '9188040d-6c67-4c5b-b112-36a304b66dad';
  const basePath = `/${tenant}/v2.0`;
  const app = express();
  const server: Server = createServer(app);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}${basePath}`;

  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key-1', use: 'sig', alg: 'RS256' };

  let currentOid = opts.accounts[0]?.oid ?? '';
  let overage = false;
  let tamper: IdTokenTamper = 'none';
  const accounts = new Map(opts.accounts.map((a) => [a.oid, a]));

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: opts.clientId,
        client_secret: opts.clientSecret,
        redirect_uris: opts.redirectUris,
        post_logout_redirect_uris: opts.postLogoutRedirectUris ?? [],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    // Azure puts groups in the ID token; oidc-provider only does that when told not to conform.
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub', 'tid', 'oid', 'groups'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
    },
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `${basePath}/interaction/${interaction.uid}` },
    findAccount: (_ctx: unknown, sub: string) => {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        claims: () => {
          const claims: Record<string, unknown> = {
            sub: account.oid,
            tid: tenant,
            oid: account.oid,
            preferred_username: account.preferredUsername,
            name: account.name,
            email: account.email,
          };
          if (overage) {
            claims._claim_names = { groups: 'src1' };
            claims._claim_sources = { src1: { endpoint: `${opts.graphBaseUrl ?? 'https://graph.microsoft.com'}/v1.0/users/${account.oid}/getMemberObjects` } };
          } else {
            claims.groups = account.groups;
          }
          return claims;
        },
      };
    },
  });

  provider.use(async (ctx, next) => {
    await next();
    if (tamper === 'none' || ctx.method !== 'POST' || !ctx.path.endsWith('/token')) return;
    const body = ctx.body as { id_token?: string } | undefined;
    if (body?.id_token === undefined) return;
    const [headerPart, payloadPart] = body.id_token.split('.') as [string, string];
    const payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8')) as Record<string, unknown>;
    const now = Math.floor(Date.now() / 1000);
    if (tamper === 'expired') Object.assign(payload, { iat: now - 7200, exp: now - 3600 });
    if (tamper === 'wrong-issuer') payload.iss = `https://login.microsoftonline.com/${tenant}/v2.0`;
    if (tamper === 'wrong-audience') payload.aud = 'another-application';
    if (tamper === 'alg-none') {
      body.id_token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
      return;
    }
    const signingInput = `${headerPart}.${b64(payload)}`;
    body.id_token = `${signingInput}.${crypto.sign('sha256', Buffer.from(signingInput), privateKey).toString('base64url')}`;
  });

  // Automatic login and consent: no form, the chosen account signs in at once.
  app.get(`${basePath}/interaction/:uid`, async (req, res, next) => {
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        await provider.interactionFinished(req, res, { login: { accountId: currentOid } }, { mergeWithLastSubmission: false });
        return;
      }
      const grant = new provider.Grant({ accountId: details.session!.accountId, clientId: details.params.client_id });
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } catch (err) {
      next(err);
    }
  });
  app.use(basePath, provider.callback() as express.RequestHandler);

  return {
    issuer,
    tenant,
    port,
    setAccount: (oid) => {
      currentOid = oid;
    },
    setOverage: (on) => {
      overage = on;
    },
    setTamper: (mode) => {
      tamper = mode;
    },
    isAccessToken: async (token) => (await provider.AccessToken.find(token)) !== undefined,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
