/**
 * Tableau Connected Apps with direct trust: the short-lived JWT that Tableau's Embedding API v3
 * (`<tableau-viz token="...">`) and the REST API sign-in accept for a user, signed with a secret the
 * Tableau admin generated in the connected app. Tableau's format
 * (help.tableau.com/current/server/en-us/connected_apps_direct.htm, "Step 3: Configure the JWT"):
 *
 *   header  { alg: HS256, typ: JWT, kid: <secret id>, iss: <client id> }
 *   claims  { iss: <client id>, aud: "tableau", sub: <Tableau username>, jti: <unique>,
 *             exp: <at most 10 minutes ahead>, scp: [<scopes>], ...user attributes }
 *
 * The secret value is the HMAC key as text (its UTF-8 bytes), as Tableau's own examples use it.
 * config.ts calls `loadTableauConnectedAppConfig` with its error list, so these problems are reported
 * with every other one.
 */
import { createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Env } from '../env.js';
import { readSecretSetting } from '../security/secret-setting.js';

export interface TableauConnectedAppConfig {
  /** The connected app's client ID (JWT `iss`, in the header and the claims). */
  clientId: string;
  /** The secret's ID (JWT header `kid`). */
  secretId: string;
  /** The secret's value: the HS256 key. Never logged. */
  secretValue: string;
  /** JWT `scp`, e.g. ['tableau:views:embed']. */
  scopes: string[];
  /** JWT lifetime in seconds (1-600; Tableau refuses more than 10 minutes). */
  ttlSeconds: number;
  /** Which session claim is the Tableau username (`sub`): the gateway's username, or the email. */
  usernameClaim: 'username' | 'email';
  /** Session claims copied into the JWT as Tableau user attributes (USERATTRIBUTE() in calculations). */
  userAttributes: UserAttributeClaim[];
}

/** Session claims that may become user attributes: what the gateway knows about the user, nothing internal. */
export const USER_ATTRIBUTE_CLAIMS = ['username', 'email', 'name', 'groups', 'src'] as const;
export type UserAttributeClaim = (typeof USER_ATTRIBUTE_CLAIMS)[number];

export const DEFAULT_TABLEAU_CONNECTED_APP_SCOPES = 'tableau:views:embed';
export const DEFAULT_TABLEAU_CONNECTED_APP_TTL_SECONDS = 300;
/** Tableau's maximum validity period for a connected-app JWT (Tableau Cloud; Server's default). */
export const MAX_TABLEAU_CONNECTED_APP_TTL_SECONDS = 600;

/** Never shown in messages. */
export const TABLEAU_CONNECTED_APP_SECRET_VARIABLES: ReadonlySet<string> = new Set(['TABLEAU_CONNECTED_APP_SECRET_VALUE']);

/** Every variable this module reads (config.ts's "only applies with" checks and the docs test). */
export const TABLEAU_CONNECTED_APP_VARIABLES = [
  'TABLEAU_CONNECTED_APP_CLIENT_ID',
  'TABLEAU_CONNECTED_APP_SECRET_ID',
  'TABLEAU_CONNECTED_APP_SECRET_VALUE',
  'TABLEAU_CONNECTED_APP_SECRET_VALUE_FILE',
  'TABLEAU_CONNECTED_APP_SCOPES',
  'TABLEAU_CONNECTED_APP_TOKEN_TTL_SECONDS',
  'TABLEAU_CONNECTED_APP_USERNAME_CLAIM',
  'TABLEAU_CONNECTED_APP_USER_ATTRIBUTES',
] as const;

/** Tableau shows client and secret ids as GUIDs; any visible ASCII without quotes is accepted. */
const ID = /^[\x21\x23-\x26\x28-\x7e]{1,200}$/;
/** `tableau:views:embed`, `tableau:content:read`, `tableau:users:*`, ... */
const SCOPE = /^tableau:[a-z0-9_]+(?::[a-z0-9_*]+)+$/;

/** Replaces the generic "openssl rand" hint: Tableau generates connected-app secrets itself. */
const TABLEAU_ADVICE = 'generate a new secret in the connected app (Tableau: Settings > Connected Apps) and paste its value';

function read(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  return TABLEAU_CONNECTED_APP_SECRET_VARIABLES.has(name) ? raw : raw.trim();
}

/**
 * Reads the TABLEAU_CONNECTED_APP_* variables. Returns null when the feature is off (none set) or
 * when something is wrong, having pushed every problem to `errors` (variable, rule, value received;
 * the secret masked).
 *
 * Guaranteed: the client id, secret id and secret are set together; exactly one of
 * TABLEAU_CONNECTED_APP_SECRET_VALUE and _SECRET_VALUE_FILE; the secret passes describeWeakSecret
 * (at least 32 bytes, not a placeholder, ...); scopes are `tableau:...` words; the TTL is 1-600 s.
 * Not checked: that Tableau knows the app, the secret or the scopes (only a sign-in can tell).
 */
export function loadTableauConnectedAppConfig(env: Env, errors: string[]): TableauConnectedAppConfig | null {
  const given = TABLEAU_CONNECTED_APP_VARIABLES.filter((name) => read(env, name) !== undefined);
  if (given.length === 0) return null;
  const before = errors.length;
  const clientId = read(env, 'TABLEAU_CONNECTED_APP_CLIENT_ID');
  const secretId = read(env, 'TABLEAU_CONNECTED_APP_SECRET_ID');
  const inline = read(env, 'TABLEAU_CONNECTED_APP_SECRET_VALUE');
  const file = read(env, 'TABLEAU_CONNECTED_APP_SECRET_VALUE_FILE');
  const need = 'the connected app needs TABLEAU_CONNECTED_APP_CLIENT_ID, TABLEAU_CONNECTED_APP_SECRET_ID and TABLEAU_CONNECTED_APP_SECRET_VALUE (or _FILE) together';

  for (const [name, value] of [
    ['TABLEAU_CONNECTED_APP_CLIENT_ID', clientId],
    ['TABLEAU_CONNECTED_APP_SECRET_ID', secretId],
  ] as const) {
    if (value === undefined) errors.push(`${name}: is required: ${need} (received nothing)`);
    else if (!ID.test(value)) errors.push(`${name}: must be the id Tableau shows for the connected app, 1-200 visible characters without quotes (received ${JSON.stringify(value)})`);
  }

  const secretValue = readSecretSetting('TABLEAU_CONNECTED_APP_SECRET_VALUE', inline, file, errors, { required: need, advice: TABLEAU_ADVICE });

  const scopesRaw = read(env, 'TABLEAU_CONNECTED_APP_SCOPES') ?? DEFAULT_TABLEAU_CONNECTED_APP_SCOPES;
  const scopes = scopesRaw.split(/[\s,]+/).filter((s) => s !== '');
  const badScope = scopes.find((s) => !SCOPE.test(s));
  if (badScope !== undefined) {
    errors.push(`TABLEAU_CONNECTED_APP_SCOPES: must be Tableau scopes such as tableau:views:embed, separated by spaces or commas ("${badScope}" is not one) (received ${JSON.stringify(scopesRaw)})`);
  } else if (new Set(scopes).size !== scopes.length) {
    errors.push(`TABLEAU_CONNECTED_APP_SCOPES: lists a scope twice (received ${JSON.stringify(scopesRaw)})`);
  }

  const ttlRaw = read(env, 'TABLEAU_CONNECTED_APP_TOKEN_TTL_SECONDS');
  const ttlSeconds = ttlRaw === undefined ? DEFAULT_TABLEAU_CONNECTED_APP_TTL_SECONDS : Number(ttlRaw);
  if (ttlRaw !== undefined && (!/^[0-9]{1,4}$/.test(ttlRaw) || ttlSeconds < 1 || ttlSeconds > MAX_TABLEAU_CONNECTED_APP_TTL_SECONDS)) {
    errors.push(
      `TABLEAU_CONNECTED_APP_TOKEN_TTL_SECONDS: must be an integer from 1 to ${MAX_TABLEAU_CONNECTED_APP_TTL_SECONDS} (Tableau refuses a JWT valid for more than 10 minutes) (received ${JSON.stringify(ttlRaw)})`,
    );
  }

  const claimRaw = read(env, 'TABLEAU_CONNECTED_APP_USERNAME_CLAIM') ?? 'username';
  if (claimRaw !== 'username' && claimRaw !== 'email') {
    errors.push(`TABLEAU_CONNECTED_APP_USERNAME_CLAIM: must be one of username, email (received ${JSON.stringify(claimRaw)})`);
  }

  const attributesRaw = read(env, 'TABLEAU_CONNECTED_APP_USER_ATTRIBUTES');
  const userAttributes = attributesRaw === undefined ? [] : attributesRaw.split(/[\s,]+/).filter((a) => a !== '');
  const badAttribute = userAttributes.find((a) => !(USER_ATTRIBUTE_CLAIMS as readonly string[]).includes(a));
  if (badAttribute !== undefined) {
    errors.push(`TABLEAU_CONNECTED_APP_USER_ATTRIBUTES: must be session claims among ${USER_ATTRIBUTE_CLAIMS.join(', ')}, separated by spaces or commas ("${badAttribute}" is not one) (received ${JSON.stringify(attributesRaw)})`);
  } else if (new Set(userAttributes).size !== userAttributes.length) {
    errors.push(`TABLEAU_CONNECTED_APP_USER_ATTRIBUTES: lists a claim twice (received ${JSON.stringify(attributesRaw)})`);
  }

  if (errors.length > before || clientId === undefined || secretId === undefined || secretValue === undefined) return null;
  return { clientId, secretId, secretValue, scopes, ttlSeconds, usernameClaim: claimRaw as 'username' | 'email', userAttributes: userAttributes as UserAttributeClaim[] };
}


/** What a token is minted for: the claims of the signed-in session it is minted from. */
export type EmbedTokenSubject = { [claim in UserAttributeClaim]?: unknown };

export type EmbedTokenResult =
  | { ok: true; token: string; jti: string; sub: string; expiresAt: number }
  | { ok: false; reason: 'tableau-username-missing' };

/** A KeyObject per secret: jsonwebtoken with a string HMAC key tries createPublicKey first (njs-notes). */
const keys = new WeakMap<TableauConnectedAppConfig, KeyObject>();
function keyOf(config: TableauConnectedAppConfig): KeyObject {
  let key = keys.get(config);
  if (key === undefined) {
    key = createSecretKey(Buffer.from(config.secretValue, 'utf8'));
    keys.set(config, key);
  }
  return key;
}

/**
 * Mints the connected-app JWT for `subject` at `nowSeconds`: HS256 with the secret value, header
 * `kid` (secret id) and `iss` (client id), claims iss, aud "tableau", sub (the session's username or
 * email, as configured), a fresh random jti, iat, exp = now + ttl, scp, and each configured user
 * attribute the session has (strings, or a list of strings for `groups`; absent ones are left out).
 *
 * Refuses (`tableau-username-missing`) when the session has no such claim (e.g. email for a local
 * user without one): a token for the wrong or an empty `sub` is never made.
 * Not checked: that the user exists in Tableau (Tableau refuses the token with error 5 if not).
 */
export function mintTableauEmbedToken(config: TableauConnectedAppConfig, subject: EmbedTokenSubject, nowSeconds: number, jti: string = randomUUID()): EmbedTokenResult {
  const sub = subject[config.usernameClaim];
  if (typeof sub !== 'string' || sub === '') return { ok: false, reason: 'tableau-username-missing' };
  const expiresAt = nowSeconds + config.ttlSeconds;
  const attributes: Record<string, string | string[]> = {};
  for (const name of config.userAttributes) {
    const value = subject[name];
    if (typeof value === 'string') attributes[name] = value;
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) attributes[name] = value as string[];
  }
  // The registered claims come last: no attribute can replace them (the names are a closed list anyway).
  const claims = { ...attributes, iss: config.clientId, aud: 'tableau', sub, jti, iat: nowSeconds, exp: expiresAt, scp: config.scopes };
  const token = jwt.sign(claims, keyOf(config), {
    algorithm: 'HS256',
    // Tableau reads `iss` from the header too; jsonwebtoken's JwtHeader type does not list it.
    header: { alg: 'HS256', typ: 'JWT', kid: config.secretId, iss: config.clientId } as jwt.JwtHeader,
  });
  return { ok: true, token, jti, sub, expiresAt };
}
