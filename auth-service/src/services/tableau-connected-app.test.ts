import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import jwt from 'jsonwebtoken';
import type { Env } from '../env.js';
import { loadTableauConnectedAppConfig, mintTableauEmbedToken, type TableauConnectedAppConfig } from './tableau-connected-app.js';

const SECRET = randomBytes(32).toString('base64');
const CLIENT_ID = '7a1e0c51-1111-4b4b-9c9c-0123456789ab';
const SECRET_ID = 'c3d4e5f6-2222-4c4c-8d8d-0123456789cd';
const base: Env = { TABLEAU_CONNECTED_APP_CLIENT_ID: CLIENT_ID, TABLEAU_CONNECTED_APP_SECRET_ID: SECRET_ID, TABLEAU_CONNECTED_APP_SECRET_VALUE: SECRET };
const NOW = 1_750_000_000;

const dir = mkdtempSync(join(tmpdir(), 'gw-tca-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(env: Env): { config: TableauConnectedAppConfig | null; errors: string[] } {
  const errors: string[] = [];
  return { config: loadTableauConnectedAppConfig(env, errors), errors };
}

function configOf(env: Env): TableauConnectedAppConfig {
  const { config, errors } = load(env);
  if (config === null) throw new Error(errors.join('\n'));
  return config;
}

describe('loadTableauConnectedAppConfig', () => {
  test('is off when no variable is set', () => {
    expect(load({})).toEqual({ config: null, errors: [] });
  });

  test('fills the documented defaults: tableau:views:embed, 300 s, the username', () => {
    expect(configOf(base)).toEqual({ clientId: CLIENT_ID, secretId: SECRET_ID, secretValue: SECRET, scopes: ['tableau:views:embed'], ttlSeconds: 300, usernameClaim: 'username', userAttributes: [] });
  });

  test('reads the secret from a file without its final newline', () => {
    const file = join(dir, 'secret');
    writeFileSync(file, SECRET + '\n');
    const env: Env = { ...base, TABLEAU_CONNECTED_APP_SECRET_VALUE: undefined, TABLEAU_CONNECTED_APP_SECRET_VALUE_FILE: file };
    expect(configOf(env).secretValue).toBe(SECRET);
  });

  test('reads scopes separated by spaces or commas, the TTL and the email claim', () => {
    const c = configOf({ ...base, TABLEAU_CONNECTED_APP_SCOPES: 'tableau:views:embed, tableau:metrics:embed tableau:content:read', TABLEAU_CONNECTED_APP_TOKEN_TTL_SECONDS: '600', TABLEAU_CONNECTED_APP_USERNAME_CLAIM: 'email' });
    expect(c).toMatchObject({ scopes: ['tableau:views:embed', 'tableau:metrics:embed', 'tableau:content:read'], ttlSeconds: 600, usernameClaim: 'email' });
  });

  test('a secret alone (a half-configured app) names the missing ids', () => {
    const { config, errors } = load({ TABLEAU_CONNECTED_APP_SECRET_VALUE: SECRET });
    expect(config).toBeNull();
    expect(errors).toEqual([
      expect.stringMatching(/^TABLEAU_CONNECTED_APP_CLIENT_ID: is required/),
      expect.stringMatching(/^TABLEAU_CONNECTED_APP_SECRET_ID: is required/),
    ]);
  });

  test('reports every problem at once, each with its variable, and never the secret', () => {
    const weak = 'changeme-changeme-changeme-changeme-1';
    const { config, errors } = load({
      TABLEAU_CONNECTED_APP_CLIENT_ID: 'has space',
      TABLEAU_CONNECTED_APP_SECRET_ID: SECRET_ID,
      TABLEAU_CONNECTED_APP_SECRET_VALUE: weak,
      TABLEAU_CONNECTED_APP_SCOPES: 'views:embed',
      TABLEAU_CONNECTED_APP_TOKEN_TTL_SECONDS: '601',
      TABLEAU_CONNECTED_APP_USERNAME_CLAIM: 'upn',
    });
    expect(config).toBeNull();
    expect(errors.map((e) => e.split(':')[0])).toEqual([
      'TABLEAU_CONNECTED_APP_CLIENT_ID',
      'TABLEAU_CONNECTED_APP_SECRET_VALUE',
      'TABLEAU_CONNECTED_APP_SCOPES',
      'TABLEAU_CONNECTED_APP_TOKEN_TTL_SECONDS',
      'TABLEAU_CONNECTED_APP_USERNAME_CLAIM',
    ]);
    expect(errors.join('\n')).not.toContain(weak);
    expect(errors[1]).toMatch(/placeholder.*value masked.*Connected Apps/);
    expect(errors[3]).toMatch(/from 1 to 600.*10 minutes.*received "601"/);
  });

  test.each([
    ['a short secret (a guessable key lets anyone sign in to Tableau as anyone)', { TABLEAU_CONNECTED_APP_SECRET_VALUE: 'short' }, /at least 32 bytes/],
    ['both the secret and its file (which one is meant?)', { TABLEAU_CONNECTED_APP_SECRET_VALUE_FILE: '/etc/hostname' }, /set exactly one/],
    ['an unreadable secret file', { TABLEAU_CONNECTED_APP_SECRET_VALUE: undefined, TABLEAU_CONNECTED_APP_SECRET_VALUE_FILE: '/nonexistent/secret' }, /readable file.*ENOENT/],
    ['a TTL of 0', { TABLEAU_CONNECTED_APP_TOKEN_TTL_SECONDS: '0' }, /from 1 to 600/],
    ['a scope listed twice', { TABLEAU_CONNECTED_APP_SCOPES: 'tableau:views:embed tableau:views:embed' }, /twice/],
    ['a user attribute that would replace a registered claim', { TABLEAU_CONNECTED_APP_USER_ATTRIBUTES: 'groups sub' }, /"sub" is not one/],
    ['an internal session claim as user attribute (the bound address)', { TABLEAU_CONNECTED_APP_USER_ATTRIBUTES: 'ip' }, /"ip" is not one/],
  ])('refuses %s', (_name, overrides, message) => {
    const { config, errors } = load({ ...base, ...overrides } as Env);
    expect(config).toBeNull();
    expect(errors).toEqual([expect.stringMatching(message)]);
  });
});

describe('mintTableauEmbedToken', () => {
  const config = configOf({ ...base, TABLEAU_CONNECTED_APP_SCOPES: 'tableau:views:embed tableau:metrics:embed', TABLEAU_CONNECTED_APP_TOKEN_TTL_SECONDS: '120' });

  test("is the JWT Tableau documents: HS256, kid and iss in the header, aud tableau, sub, jti, exp, scp", () => {
    const minted = mintTableauEmbedToken(config, { username: 'tina', email: 'tina@example.com' }, NOW, 'jti-1');
    if (!minted.ok) throw new Error(minted.reason);
    const [h, p] = minted.token.split('.');
    expect(JSON.parse(Buffer.from(h!, 'base64url').toString())).toEqual({ alg: 'HS256', typ: 'JWT', kid: SECRET_ID, iss: CLIENT_ID });
    expect(JSON.parse(Buffer.from(p!, 'base64url').toString())).toEqual({
      iss: CLIENT_ID,
      aud: 'tableau',
      sub: 'tina',
      jti: 'jti-1',
      iat: NOW,
      exp: NOW + 120,
      scp: ['tableau:views:embed', 'tableau:metrics:embed'],
    });
    expect(minted).toMatchObject({ sub: 'tina', jti: 'jti-1', expiresAt: NOW + 120 });
    // Signed with the secret value's UTF-8 bytes, as Tableau checks it.
    expect(() => jwt.verify(minted.token, SECRET, { algorithms: ['HS256'], audience: 'tableau', issuer: CLIENT_ID, clockTimestamp: NOW })).not.toThrow();
    expect(() => jwt.verify(minted.token, randomBytes(32).toString('base64'), { algorithms: ['HS256'], clockTimestamp: NOW })).toThrow(/signature/);
  });

  test('every token has its own jti (Tableau refuses a replayed one)', () => {
    const jtis = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const m = mintTableauEmbedToken(config, { username: 'tina' }, NOW);
      if (m.ok) jtis.add(m.jti);
    }
    expect(jtis.size).toBe(50);
  });

  test('copies the configured session claims as user attributes, leaving out absent ones', () => {
    const withAttributes = configOf({ ...base, TABLEAU_CONNECTED_APP_USER_ATTRIBUTES: 'groups, email name' });
    expect(withAttributes.userAttributes).toEqual(['groups', 'email', 'name']);
    const minted = mintTableauEmbedToken(withAttributes, { username: 'tina', groups: ['Sales', 'EMEA'], email: 'tina@example.com', src: 'local' }, NOW);
    if (!minted.ok) throw new Error(minted.reason);
    const claims = jwt.decode(minted.token) as Record<string, unknown>;
    expect(claims).toMatchObject({ groups: ['Sales', 'EMEA'], email: 'tina@example.com', sub: 'tina' });
    expect(claims).not.toHaveProperty('name');
    expect(claims).not.toHaveProperty('src');
  });

  test('takes the email as sub when configured so', () => {
    const byEmail = configOf({ ...base, TABLEAU_CONNECTED_APP_USERNAME_CLAIM: 'email' });
    expect(mintTableauEmbedToken(byEmail, { username: 'tina', email: 'tina@example.com' }, NOW)).toMatchObject({ ok: true, sub: 'tina@example.com' });
  });

  test.each([
    ['a session without an email (a local user with none) when the email is the Tableau name', { username: 'larry' }],
    ['an empty email', { username: 'larry', email: '' }],
    ['a non-string email', { username: 'larry', email: ['a@b'] }],
  ])('refuses %s: no token for an empty or wrong sub', (_name, subject) => {
    const byEmail = configOf({ ...base, TABLEAU_CONNECTED_APP_USERNAME_CLAIM: 'email' });
    expect(mintTableauEmbedToken(byEmail, subject, NOW)).toEqual({ ok: false, reason: 'tableau-username-missing' });
  });
});
