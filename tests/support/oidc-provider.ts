/**
 * A real OpenID Provider (panva's oidc-provider) for tests, shaped like Azure AD v2.0: the issuer is
 * `http://127.0.0.1:<port>/<tenant>/v2.0`, ID tokens carry `tid`, `oid` and `groups`, and a switch
 * makes it report a groups overage (`_claim_names`/`_claim_sources`) instead, as Azure does above
 * 200 groups. Login and consent are automatic: the interaction route signs in the account chosen
 * with `setAccount` without showing a form.
 *
 * `setTamper` rewrites the token endpoint's answers on their way out, as a hostile relay in front of
 * it would: ID tokens re-signed with the provider's own key (expired, other issuer, other audience),
 * unsigned (`alg: none`), signed with a key the provider never published (`foreign-key`), or with a
 * changed payload under the original signature (`payload-altered`); or the endpoint itself fails
 * (`server-error`: 500 with an HTML body, `drop-connection`, `hang`).
 *
 * `rebuild` replaces the provider behind the same issuer URL, with a new signing key (new `kid`)
 * and/or another authorization endpoint path, as a key rotation or a metadata change at a real
 * provider; `jwksRequests()` counts the key set downloads.
 *
 * ID tokens carry `sid` (the provider's session id), as providers with front-channel logout do.
 *
 * With `refreshTokens`, the client may use the refresh_token grant and, as at Entra, a sign-in that
 * asked for `offline_access` gets a refresh token without `prompt=consent` (oidc-provider follows
 * OIDC Core 11 there and would drop the scope). Every refresh rotates the refresh token, and a
 * rotated token used again revokes the whole grant. `disableAccount` makes the provider refuse the
 * account's refresh tokens (invalid_grant), as a disabled or deleted user at a real provider.
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
  /** Generic OIDC `email_verified`. */
  emailVerified?: boolean;
  /** Entra's optional `xms_edov` (email domain owner verified). */
  xmsEdov?: boolean;
  groups: string[];
}

export type IdTokenTamper =
  | 'none'
  | 'expired'
  | 'wrong-issuer'
  | 'wrong-audience'
  | 'alg-none'
  | 'foreign-key'
  | 'payload-altered'
  | 'server-error'
  | 'drop-connection'
  | 'hang';

export interface ProviderShape {
  /** Sign with a new RSA key under this kid (the old key leaves the JWKS). */
  kid?: string;
  /** Path of the authorization endpoint below the issuer (default `/auth`). */
  authorizationPath?: string;
}

export interface OidcProviderOptions {
  tenant?: string;
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  accounts: OidcTestAccount[];
  /** Where the overage form points (`_claim_sources.src1.endpoint`). */
  graphBaseUrl?: string;
  /** Allow the refresh_token grant and issue refresh tokens for offline_access (see above). */
  refreshTokens?: boolean;
}

export interface TestOidcProvider {
  issuer: string;
  tenant: string;
  port: number;
  setAccount(oid: string): void;
  setOverage(on: boolean): void;
  setTamper(mode: IdTokenTamper): void;
  /** Replaces the provider (same issuer URL) with a new key and/or endpoint paths. */
  rebuild(shape: ProviderShape): void;
  /** How many times the JWKS was downloaded. */
  jwksRequests(): number;
  /** The provider's current signing key id. */
  kid(): string;
  /** True when `token` is an access token this provider issued and that has not expired. */
  isAccessToken(token: string): Promise<boolean>;
  /** The account no longer exists for the provider: its refresh tokens are refused (until enabled again). */
  disableAccount(oid: string, disabled?: boolean): void;
  /** The `scope` of every authorization request so far, in order. */
  authorizationScopes(): string[];
  /** How many refresh_token grants reached the token endpoint. */
  refreshRequests(): number;
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
  status: number;
  type: string;
  req: { socket: { destroy(): void } };
  respond?: boolean;
  oidc?: { params?: { grant_type?: unknown } };
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

/**
 * The auth service environment for signing in with `provider` through the Azure preset, at the
 * public origin `publicBaseUrl` (plain http: tests only), plus `extra`.
 */
export function azureGatewayEnv(provider: TestOidcProvider, client: { id: string; secret: string }, publicBaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AZURE_TENANT_ID: provider.tenant,
    AZURE_CLIENT_ID: client.id,
    AZURE_CLIENT_SECRET: client.secret,
    OIDC_ISSUER: provider.issuer,
    PUBLIC_BASE_URL: publicBaseUrl,
    ALLOW_INSECURE_HTTP_IDP: 'true',
    ...extra,
  };
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

  let currentOid = opts.accounts[0]?.oid ?? '';
  let overage = false;
  let tamper: IdTokenTamper = 'none';
  let jwksDownloads = 0;
  const accounts = new Map(opts.accounts.map((a) => [a.oid, a]));
  const disabled = new Set<string>();
  const scopesRequested: string[] = [];
  let refreshGrants = 0;
  const cookieKeys = [crypto.randomBytes(32).toString('base64url')];
  const foreignKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const hanging = new Set<() => void>();

  function build(shape: ProviderShape): { provider: ProviderInstance; kid: string; authorizationPath: string; handler: express.RequestHandler } {
    const kid = shape.kid ?? 'test-key-1';
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
    const instance = new Provider(issuer, {
      clients: [
        {
          client_id: opts.clientId,
          client_secret: opts.clientSecret,
          redirect_uris: opts.redirectUris,
          post_logout_redirect_uris: opts.postLogoutRedirectUris ?? [],
          grant_types: opts.refreshTokens ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_post',
          // Makes oidc-provider put `sid` in ID tokens (its only switch for that); the sink ignores the POSTs.
          backchannel_logout_uri: `http://127.0.0.1:${port}/backchannel-sink`,
          backchannel_logout_session_required: true,
        },
      ],
      jwks: { keys: [jwk] },
      cookies: { keys: cookieKeys },
      // Azure puts groups in the ID token; oidc-provider only does that when told not to conform.
      conformIdTokenClaims: false,
      claims: {
        openid: ['sub', 'tid', 'oid', 'groups', 'xms_edov'],
        profile: ['name', 'preferred_username'],
        email: ['email', 'email_verified'],
      },
      features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true }, backchannelLogout: { enabled: true } },
      routes: { authorization: shape.authorizationPath ?? '/auth' },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `${basePath}/interaction/${interaction.uid}` },
      // Entra issues a refresh token for offline_access without prompt=consent; the scope itself
      // does not survive oidc-provider's OIDC Core check, so the request is looked up here.
      issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) =>
        client.grantTypeAllowed('refresh_token') && (scopesRequested.at(-1) ?? '').split(' ').includes('offline_access'),
      rotateRefreshToken: true,
      findAccount: (_ctx: unknown, sub: string) => {
        const account = accounts.get(sub);
        if (!account || disabled.has(sub)) return undefined;
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
              email_verified: account.emailVerified,
              xms_edov: account.xmsEdov,
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

    instance.use(async (ctx, next) => {
      const isToken = ctx.method === 'POST' && ctx.path.endsWith('/token');
      if (isToken && tamper === 'hang') {
        await new Promise<void>((resolve) => hanging.add(resolve));
        return;
      }
      if (isToken && tamper === 'drop-connection') {
        ctx.respond = false;
        ctx.req.socket.destroy();
        return;
      }
      if (isToken && tamper === 'server-error') {
        ctx.status = 500;
        ctx.type = 'text/html';
        ctx.body = '<html><body>Internal Server Error</body></html>';
        return;
      }
      await next();
      if (isToken && ctx.oidc?.params?.grant_type === 'refresh_token') refreshGrants++;
      if (tamper === 'none' || !isToken) return;
      const body = ctx.body as { id_token?: string } | undefined;
      if (body?.id_token === undefined) return;
      const [headerPart, payloadPart, signature] = body.id_token.split('.') as [string, string, string];
      const payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8')) as Record<string, unknown>;
      const now = Math.floor(Date.now() / 1000);
      if (tamper === 'expired') Object.assign(payload, { iat: now - 7200, exp: now - 3600 });
      if (tamper === 'wrong-issuer') payload.iss = `https://login.microsoftonline.com/${tenant}/v2.0`;
      if (tamper === 'wrong-audience') payload.aud = 'another-application';
      if (tamper === 'alg-none') {
        body.id_token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
        return;
      }
      if (tamper === 'payload-altered') {
        // What a relay would do to become someone else: every check but the signature still passes.
        payload.groups = ['Domain Admins'];
        body.id_token = `${headerPart}.${b64(payload)}.${signature}`;
        return;
      }
      if (tamper === 'foreign-key') {
        const signingInput = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'foreign-key' })}.${b64(payload)}`;
        body.id_token = `${signingInput}.${crypto.sign('sha256', Buffer.from(signingInput), foreignKey).toString('base64url')}`;
        return;
      }
      const signingInput = `${headerPart}.${b64(payload)}`;
      body.id_token = `${signingInput}.${crypto.sign('sha256', Buffer.from(signingInput), privateKey).toString('base64url')}`;
    });
    return { provider: instance, kid, authorizationPath: shape.authorizationPath ?? '/auth', handler: instance.callback() as express.RequestHandler };
  }

  // Handlers below read `built` on every request, so a rebuild takes effect at once.
  let built = build({});
  const releaseHanging = () => {
    for (const release of hanging) release();
    hanging.clear();
  };
  app.post('/backchannel-sink', (_req, res) => {
    res.status(200).end();
  });
  app.use((req, _res, next) => {
    if (req.method === 'GET' && req.path === `${basePath}/jwks`) jwksDownloads++;
    if (req.method === 'GET' && req.path === `${basePath}${built.authorizationPath}`) scopesRequested.push(String(req.query.scope ?? ''));
    next();
  });

  // Automatic login and consent: no form, the chosen account signs in at once.
  app.get(`${basePath}/interaction/:uid`, async (req, res, next) => {
    try {
      const provider = built.provider;
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
  app.use(basePath, (req, res) => (built.handler)(req, res, () => undefined));

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
      if (mode !== 'hang') releaseHanging();
    },
    rebuild: (shape) => {
      built = build(shape);
    },
    jwksRequests: () => jwksDownloads,
    kid: () => built.kid,
    isAccessToken: async (token) => (await built.provider.AccessToken.find(token)) !== undefined,
    disableAccount: (oid, off = true) => {
      if (off) disabled.add(oid);
      else disabled.delete(oid);
    },
    authorizationScopes: () => [...scopesRequested],
    refreshRequests: () => refreshGrants,
    close: () =>
      new Promise<void>((resolve) => {
        releaseHanging();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
