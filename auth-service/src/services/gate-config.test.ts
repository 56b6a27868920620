import crypto from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { testConfig } from '../app.testkit.js';
import { buildGateConfig, endedPreviousKeys, headerSegmentFor, writeGateConfig } from './gate-config.js';
import { deriveTableauKey } from './tableau-token.js';

const active = crypto.randomBytes(48).toString('base64url');
const previous1 = crypto.randomBytes(48).toString('base64url');
const previous2 = crypto.randomBytes(48).toString('base64url');
const dir = mkdtempSync(join(tmpdir(), 'gw-gate-'));
const NOW = Date.parse('2026-12-01T00:00:00Z') / 1000;
const LATER = '@2026-12-31T00:00:00Z';
const LATER_S = Date.parse('2026-12-31T00:00:00Z') / 1000;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('buildGateConfig', () => {
  test('indexes the active and every previous secret by the header segment it signs with, with the retirement times', () => {
    const config = testConfig({ JWT_SECRET: active, JWT_PREVIOUS_SECRETS: `${previous1}${LATER},${previous2}${LATER}` });
    expect(buildGateConfig(config, NOW)).toEqual({
      keys: { [headerSegmentFor(active)]: active, [headerSegmentFor(previous1)]: previous1, [headerSegmentFor(previous2)]: previous2 },
      keyRetiredAt: { [headerSegmentFor(previous1)]: LATER_S, [headerSegmentFor(previous2)]: LATER_S },
      cookieName: 'gw_session',
      ipBinding: 'exact',
      leewaySeconds: 30,
      maxSessionSeconds: 43200,
      loginPath: '/login',
    });
  });

  test('leaves out the secret of a previous key whose retirement time has come, but keeps it listed as retired', () => {
    const config = testConfig({ JWT_SECRET: active, JWT_PREVIOUS_SECRETS: `${previous1}@2026-01-01T00:00:00Z,${previous2}${LATER}`, TABLEAU_URL: 'https://tableau.example.com' });
    const gate = buildGateConfig(config, Date.parse('2026-01-01T00:00:00Z') / 1000);
    expect(gate.keys).toEqual({ [headerSegmentFor(active)]: active, [headerSegmentFor(previous2)]: previous2 });
    expect(gate.keyRetiredAt).toEqual({ [headerSegmentFor(previous1)]: Date.parse('2026-01-01T00:00:00Z') / 1000, [headerSegmentFor(previous2)]: LATER_S });
    expect(Object.keys(gate.tableau!.keys)).toEqual([headerSegmentFor(active), headerSegmentFor(previous2)]);
    expect(JSON.stringify(gate)).not.toContain(previous1);
    expect(endedPreviousKeys(config, Date.parse('2026-01-01T00:00:00Z') / 1000).map((k) => k.secret)).toEqual([previous1]);
    expect(endedPreviousKeys(config, Date.parse('2026-01-01T00:00:00Z') / 1000 - 1)).toEqual([]);
  });

  test('the gate bounds token age by SESSION_MAX_SECONDS, not by the (short) token lifetime', () => {
    const config = testConfig({ JWT_SECRET: active, SESSION_MAX_SECONDS: '7200', SESSION_TOKEN_TTL_SECONDS: '60' });
    expect(config.session.ttlSeconds).toBe(60);
    expect(buildGateConfig(config).maxSessionSeconds).toBe(7200);
  });

  test('with Tableau, carries its origin and host and one AES key per secret (not the HMAC secret), by the same header segments', () => {
    const config = testConfig({ JWT_SECRET: active, JWT_PREVIOUS_SECRETS: previous1 + LATER, TABLEAU_URL: 'https://tableau.example.com:8443/' });
    const gate = buildGateConfig(config, NOW);
    expect(gate.tableau).toEqual({
      origin: 'https://tableau.example.com:8443',
      host: 'tableau.example.com:8443',
      keys: { [headerSegmentFor(active)]: deriveTableauKey(active).toString('base64url'), [headerSegmentFor(previous1)]: deriveTableauKey(previous1).toString('base64url') },
    });
    expect(JSON.stringify(gate.tableau)).not.toContain(active);
  });

  test('without Tableau, has no tableau section (the /api/ handler then answers 404)', () => {
    expect(buildGateConfig(testConfig({ JWT_SECRET: active }))).not.toHaveProperty('tableau');
  });

  test('carries the cookie name, IP binding and leeway from the environment', () => {
    const config = testConfig({ JWT_SECRET: active, SESSION_COOKIE_NAME: 'corp_sso', PROXY_IP_BINDING: 'off', SESSION_LEEWAY_SECONDS: '5' });
    expect(buildGateConfig(config)).toMatchObject({ cookieName: 'corp_sso', ipBinding: 'off', leewaySeconds: 5, keys: { [headerSegmentFor(active)]: active } });
    expect(buildGateConfig(testConfig({ JWT_SECRET: active, SESSION_IP_BINDING: 'subnet' })).ipBinding).toBe('subnet');
  });
});

describe('writeGateConfig', () => {
  test('writes the JSON readable by its owner only and leaves no temporary file behind', async () => {
    const file = join(dir, 'gate.json');
    const gate = buildGateConfig(testConfig({ JWT_SECRET: active }));
    await writeGateConfig(file, gate);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(gate);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['gate.json']);
  });

  test('replaces an existing file atomically (rename), also one that had looser permissions', async () => {
    const file = join(dir, 'replace.json');
    writeFileSync(file, '{"old":true}', { mode: 0o644 });
    const gate = buildGateConfig(testConfig({ JWT_SECRET: previous1 }));
    await writeGateConfig(file, gate);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(gate);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  test('fails without leaving a partial file when the directory does not exist', async () => {
    await expect(writeGateConfig(join(dir, 'missing', 'gate.json'), buildGateConfig(testConfig({ JWT_SECRET: active })))).rejects.toThrow(/ENOENT/);
  });
});
