/**
 * docker-compose.yml passes every setting the auth service reads (issue 10): a variable documented in
 * the README but dropped by compose cannot be used by compose users. "What the service reads" is
 * measured, not listed: loadConfig runs over an environment that records every name it asks for,
 * once bare and once per identity provider (some settings are read only when a provider is on).
 */
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../auth-service/src/config.js';
import { REPO_ROOT } from './lib/nginx-runtime.js';

/** Read by the service but deliberately not passed by compose, each with its reason. */
const NOT_FOR_COMPOSE: Record<string, string> = {
  ALLOW_INSECURE_HTTP_IDP: 'tests only: lets identity providers be reached over plain http',
  GRAPH_BASE_URL: "tests only: points Microsoft Graph calls at the tests' fake",
};
/** Passed by compose but read by something else than the config. */
const READ_ELSEWHERE: Record<string, string> = {
  PGPASSWORD: 'read by the pg driver, so the password needs no URL-encoding in DATABASE_URL',
};

function variablesRead(): Set<string> {
  const seen = new Set<string>();
  const strong = 'kQ7vXz2pL9mN4bR8tW1yE6uI3oP5aS0dF-hJ_gK';
  const common = { JWT_SECRET: strong + strong, DATABASE_URL: 'postgres://gw@db/gw', PUBLIC_BASE_URL: 'https://gw.example' };
  for (const env of [
    {},
    common,
    { ...common, AZURE_TENANT_ID: '9188040d-6c67-4c5b-b112-36a304b66dad', AZURE_CLIENT_ID: 'client', AZURE_CLIENT_SECRET: 'client secret' },
    { ...common, OIDC_ISSUER: 'https://idp.example', OIDC_CLIENT_ID: 'client', OIDC_CLIENT_SECRET: 'client secret' },
    { ...common, TABLEAU_URL: 'https://tableau.example', AUTH_CUSTOM_MODULE: '/nowhere/module.mjs' },
  ] as Record<string, string>[]) {
    const recording = new Proxy(env, {
      get: (target, name) => {
        if (typeof name === 'string') seen.add(name);
        return target[name as string];
      },
      has: (target, name) => {
        if (typeof name === 'string') seen.add(name);
        return name in target;
      },
    });
    loadConfig(recording);
  }
  return new Set([...seen].filter((n) => /^[A-Z][A-Z0-9_]+$/.test(n)));
}

const compose = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as { services: { auth: { environment: Record<string, string> } } };
const passed = new Set(Object.keys(compose.services.auth.environment));

describe('docker-compose.yml and the auth service settings', () => {
  const read = variablesRead();

  test('the measurement sees the settings read only with a provider on (it would miss them otherwise)', () => {
    for (const name of ['JWT_SECRET', 'JWT_SECRET_FILE', 'OIDC_SCOPES', 'OIDC_GROUPS_CLAIM', 'TABLEAU_SITE', 'LOGIN_RATE_LIMIT_USER']) expect(read).toContain(name);
  });

  test('every setting the service reads is passed to the auth container, or excluded with a reason', () => {
    const missing = [...read].filter((n) => !passed.has(n) && !(n in NOT_FOR_COMPOSE)).sort();
    expect(missing).toEqual([]);
  });

  test('compose passes nothing the service does not read (a typo would be silently ignored)', () => {
    const unknown = [...passed].filter((n) => !read.has(n) && !(n in READ_ELSEWHERE)).sort();
    expect(unknown).toEqual([]);
  });

  test('the exclusions are still read by the service (an outdated exclusion hides nothing)', () => {
    for (const name of Object.keys(NOT_FOR_COMPOSE)) expect(read).toContain(name);
  });
});
