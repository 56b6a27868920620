import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from '@jest/globals';
import { loadConfig } from '../config.js';
import { buildGateConfig } from '../services/gate-config.js';
import { runGateFilesCli } from './gate-files-cli.js';

const SHIPPED_POLICY = fileURLToPath(new URL('../../../nginx/policy.yaml', import.meta.url));
const NOW = Date.UTC(2026, 11, 1); // frozen clock
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gate-files-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const secret = crypto.randomBytes(48).toString('base64url');
const previous = crypto.randomBytes(48).toString('base64url');

async function cli(argv: string[], env: Record<string, string>) {
  let stderr = '';
  let log = '';
  const logStream = new Writable({
    write(chunk, _enc, done) {
      log += String(chunk);
      done();
    },
  });
  const code = await runGateFilesCli(argv, { stderr: { write: (t: string) => (stderr += t) }, env, logStream, now: () => NOW });
  return { code, stderr, log };
}

function envFor(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: 'postgres://gateway@postgres.invalid:5432/gateway',
    JWT_SECRET: secret,
    GATE_CONFIG_FILE: path.join(dir, 'gate-config.json'),
    ...extra,
  };
}

describe('gate-files', () => {
  it('writes the gate config the auth service would write, and the compiled policy next to it, connecting to nothing', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'ok-'));
    const env = envFor(dir, { JWT_PREVIOUS_SECRETS: `${previous}@2026-12-31T00:00:00Z`, POLICY_FILE: SHIPPED_POLICY, SESSION_COOKIE_NAME: 'gw_k8s' });
    const { code, stderr, log } = await cli([], env);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const written = JSON.parse(fs.readFileSync(env.GATE_CONFIG_FILE!, 'utf8'));
    const loaded = loadConfig(env);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    expect(written).toEqual(buildGateConfig(loaded.config, NOW / 1000));
    expect(written.cookieName).toBe('gw_k8s');
    const policy = JSON.parse(fs.readFileSync(path.join(dir, 'policy.json'), 'utf8'));
    expect(policy.rules.some((r: { id: string }) => r.id === 'healthz')).toBe(true);
    // 0600: the file holds the keys.
    expect(fs.statSync(env.GATE_CONFIG_FILE!).mode & 0o777).toBe(0o600);
    expect(log).toContain('gate_config_written');
    expect(log).not.toContain(secret);
    expect(log).not.toContain(previous);
  });

  it('writes the "policy off" file without POLICY_FILE', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'off-'));
    expect((await cli([], envFor(dir))).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'policy.json'), 'utf8'))).toMatchObject({ off: true });
  });

  it('refuses a placeholder key with the service\'s own message, masked, and writes nothing', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'weak-'));
    const placeholder = 'REPLACE-with-the-output-of-openssl-rand-base64-48';
    const { code, stderr } = await cli([], envFor(dir, { JWT_SECRET: placeholder }));
    expect(code).toBe(1);
    expect(stderr).toMatch(/^Invalid configuration:\n {2}- JWT_SECRET: /);
    expect(stderr).not.toContain(placeholder);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('requires GATE_CONFIG_FILE (there is nothing else to do)', async () => {
    const env = envFor(tmp);
    delete env.GATE_CONFIG_FILE;
    const { code, stderr } = await cli([], env);
    expect(code).toBe(1);
    expect(stderr).toContain('GATE_CONFIG_FILE: is required');
  });

  it('fails, naming the file, when the directory does not exist', async () => {
    const { code, stderr } = await cli([], envFor(path.join(tmp, 'missing')));
    expect(code).toBe(1);
    expect(stderr).toContain(path.join(tmp, 'missing', 'gate-config.json'));
    expect(stderr).not.toContain(secret);
  });

  it('takes no arguments', async () => {
    expect((await cli(['--out', 'x'], envFor(tmp))).code).toBe(2);
    expect((await cli(['help'], envFor(tmp))).code).toBe(0);
  });
});
