/**
 * `make reload` semantics on the real nginx: a valid change applies without a restart and serves as
 * soon as reload returns; an invalid config, or one the running master cannot apply (a listen
 * address in use), is refused with nginx's message naming the operator's file, while the old one
 * keeps serving.
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
    expect(result).toMatchObject({ ok: true, output: expect.stringMatching(/^reloaded: new workers/) });
    // No retry: "reloaded" means the new workers already serve.
    expect((await stack.request('GET', '/version')).body).toBe('v2\n');
    expect(stack.nginx.process.pid).toBe(pid);
    expect(stack.nginx.process.exitCode).toBeNull();
  });

  test('an invalid config is refused with a clear message and the old config keeps serving', async () => {
    writeFileSync(site(), readFileSync(site(), 'utf8').replace('    location / {', '    not_a_directive on;\n\n    location / {'));
    const result = stack.nginx.reload({ sourceDir: source });
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/unknown directive "not_a_directive"/);
    expect(result.output).toMatch(/running one keeps serving/);
    // The file the operator edited, with nginx's line number, not the staging copy nginx read.
    const line = readFileSync(site(), 'utf8').split('\n').indexOf('    not_a_directive on;') + 1;
    expect(result.output).toContain(`${site()}:${line}`);
    expect(result.output).not.toContain('conf.next');
    expect((await stack.request('GET', '/version')).body).toBe('v2\n');
    const denied = await stack.request('GET', '/private', { accept: 'application/json' });
    expect(denied.status).toBe(401);
  });

  test('a config nginx passes but cannot bind is refused, the old config keeps serving, and conf/ still shows it', async () => {
    writeFileSync(site(), readFileSync(site(), 'utf8').replace(/ *not_a_directive on;\n\n/, ''));
    // `listen PORT` means *:PORT, which the running 127.0.0.1:PORT listener blocks: `nginx -t` passes,
    // the master logs "bind() … failed" and keeps its old workers, and `nginx -s reload` exits 0.
    const extra = `\nserver {\n    listen ${stack.proxyPort};\n    location = /version { return 200 "v3\\n"; }\n}\n`;
    writeFileSync(site(), readFileSync(site(), 'utf8').replace('location = /version { return 200 "v2\\n"; }', 'location = /version { return 200 "v3\\n"; }') + extra);
    const result = stack.nginx.reload({ sourceDir: source });
    expect(result.ok).toBe(false);
    expect(result.output).toContain(`port ${stack.proxyPort} is in use`);
    expect(result.output).toMatch(/bind\(\) to 0\.0\.0\.0:\d+ failed/);
    expect(result.output).toMatch(/running one keeps serving/);
    expect((await stack.request('GET', '/version')).body).toBe('v2\n');
    expect(readFileSync(join(stack.nginx.prefix, 'conf', 'sites', 'gateway.conf'), 'utf8')).not.toContain('v3');
  });
});
