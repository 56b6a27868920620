/**
 * `make reload` semantics on the real nginx: a valid change applies without a restart; an invalid
 * config is refused with nginx's message while the old one keeps serving.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { REPO_ROOT } from '../../scripts/lib/nginx-runtime.js';
import { stackTest, startStack, type Stack } from '../support/stack.js';

describe('reload', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  let source: string;
  const site = () => join(source, 'sites', 'gateway.conf.template');

  beforeAll(async () => {
    stack = await startStack();
    source = mkdtempSync(join(tmpdir(), 'gw-src-'));
    cpSync(join(REPO_ROOT, 'nginx'), source, { recursive: true });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(source, { recursive: true, force: true });
  });

  test('a valid change applies on reload, and the nginx master keeps running', async () => {
    const pid = stack.nginx.process.pid;
    writeFileSync(site(), readFileSync(site(), 'utf8').replace('    location / {', '    location = /version { return 200 "v2\\n"; }\n\n    location / {'));
    const result = stack.nginx.reload({ sourceDir: source });
    expect(result).toMatchObject({ ok: true });
    let body = '';
    for (let i = 0; i < 50 && body !== 'v2\n'; i++) {
      body = (await stack.request('GET', '/version')).body;
      if (body !== 'v2\n') await new Promise((r) => setTimeout(r, 100));
    }
    expect(body).toBe('v2\n');
    expect(stack.nginx.process.pid).toBe(pid);
    expect(stack.nginx.process.exitCode).toBeNull();
  });

  test('an invalid config is refused with a clear message and the old config keeps serving', async () => {
    writeFileSync(site(), readFileSync(site(), 'utf8').replace('    location / {', '    not_a_directive on;\n\n    location / {'));
    const result = stack.nginx.reload({ sourceDir: source });
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/unknown directive "not_a_directive"/);
    expect(result.output).toMatch(/running one keeps serving/);
    expect((await stack.request('GET', '/version')).body).toBe('v2\n');
    const denied = await stack.request('GET', '/private', { accept: 'application/json' });
    expect(denied.status).toBe(401);
  });
});
