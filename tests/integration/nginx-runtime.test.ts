/**
 * How the repo's nginx is started (make up, the tests, the bench): it is ready only when it really
 * serves, says plainly why not, cannot outlive the process that started it, and writes its logs
 * 0640.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from '@jest/globals';
import { buildGateConfig } from '../../auth-service/src/services/gate-config.js';
import { gatePolicyFor } from '../../auth-service/src/policy/policy-runtime.js';
import { strongSecret } from '../support/stack.js';
import {
  freePort,
  isAlive,
  prepareNginxPrefix,
  readTemplateVars,
  REPO_ROOT,
  startNginx,
  stopLeftoverNginx,
  testNginxConfig,
  type RunningNginx,
} from '../../scripts/lib/nginx-runtime.js';
import { waitUntil } from '../support/wait.js';

describe('starting nginx', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });

  async function prefixOn(port: number, revocations?: boolean): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'gw-rt-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const unused = await freePort();
    return prepareNginxPrefix({
      prefix: join(dir, 'nginx'),
      revocations,
      vars: { PROXY_LISTEN: `127.0.0.1:${port}`, APP_UPSTREAM: `127.0.0.1:${unused}`, AUTH_UPSTREAM: `127.0.0.1:${unused}` },
      // What the auth service would write at start-up (nginx preloads both).
      extraFiles: {
        'runtime/gate-config.json': JSON.stringify(
          buildGateConfig({ jwt: { secret: strongSecret(), previousSecrets: [], previousKeys: [] }, session: { ttlSeconds: 3600, leewaySeconds: 30, cookieName: 'gw_session', cookieSecure: false, ipBinding: 'exact' }, sessionLifetimes: { maxSeconds: 3600, idleSeconds: 3600 } }),
        ),
        'runtime/policy.json': JSON.stringify(gatePolicyFor(null)),
      },
    }).prefix;
  }

  test('the njs >= 0.8 snippets are rendered in only with revocations on, and the host njs 0.7.9 refuses them loudly', async () => {
    const port = await freePort();
    const off = await prefixOn(port);
    expect(readdirSync(join(off, 'conf', 'snippets')).filter((n) => n.includes('njs08'))).toEqual([]);
    expect(existsSync(join(off, 'conf', 'njs08'))).toBe(false);
    expect(testNginxConfig(off)).toEqual({ ok: true, output: '' });
    const on = await prefixOn(port, true);
    expect(readdirSync(join(on, 'conf', 'snippets', 'njs08.d')).sort()).toEqual(['gate-revocations-http.conf', 'gate-revocations-server.conf']);
    expect(readFileSync(join(on, 'conf', 'njs', 'revocations.js'), 'utf8')).toContain('export default');
    // The revocation-aware gate; the default one never reads ngx.shared.
    expect(readFileSync(join(on, 'conf', 'njs', 'gate.js'), 'utf8')).toContain('gate_revoked');
    expect(readFileSync(join(off, 'conf', 'njs', 'gate.js'), 'utf8')).not.toContain('gate_revoked');
    const refused = testNginxConfig(on);
    expect(refused.ok).toBe(false);
    expect(refused.output).toMatch(/unknown directive "js_shared_dict_zone"/);
    // A re-render without the option keeps what the prefix was rendered with (make reload).
    prepareNginxPrefix({ prefix: on, vars: readTemplateVars(on) });
    expect(existsSync(join(on, 'conf', 'snippets', 'njs08.d', 'gate-revocations-http.conf'))).toBe(true);
  });

  test('a port held by another program fails the start with "port N is in use", never as ready', async () => {
    const port = await freePort();
    const squatter: Server = createServer((s) => s.end());
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => squatter.close(() => r())));
    const prefix = await prefixOn(port);
    await expect(startNginx(prefix, port)).rejects.toThrow(`port ${port} is in use`);
  }, 20_000);

  test('its access and error logs are 0640, also when an older run left them 0644', async () => {
    const port = await freePort();
    const prefix = await prefixOn(port);
    writeFileSync(join(prefix, 'logs', 'access.log'), '', { mode: 0o644 });
    chmodSync(join(prefix, 'logs', 'access.log'), 0o644);
    const nginx: RunningNginx = await startNginx(prefix, port);
    cleanups.push(() => nginx.stop());
    await fetch(`http://127.0.0.1:${port}/_gate/errors/none`).catch(() => undefined);
    for (const name of ['access.log', 'error.log']) {
      expect({ name, mode: (statSync(join(prefix, 'logs', name)).mode & 0o777).toString(8) }).toEqual({ name, mode: '640' });
    }
  }, 20_000);

  test('dies with the process that started it, even on kill -9', async () => {
    const port = await freePort();
    const prefix = await prefixOn(port);
    const script = `import { startNginx } from ${JSON.stringify(join(REPO_ROOT, 'scripts/lib/nginx-runtime.ts'))};
      const n = await startNginx(${JSON.stringify(prefix)}, ${port}); console.log('master ' + n.process.pid); setInterval(() => {}, 1000);`;
    const launcher = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    launcher.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    cleanups.push(() => void launcher.kill('SIGKILL'));
    expect(await waitUntil(() => /master \d+/.test(out), 15_000)).toBe(true);
    const master = Number(/master (\d+)/.exec(out)![1]);
    expect(readFileSync(join(prefix, 'logs', 'nginx.pid'), 'utf8').trim()).toBe(String(master));
    launcher.kill('SIGKILL');
    expect(await waitUntil(() => !isAlive(master), 5000)).toBe(true);
    expect(await fetch(`http://127.0.0.1:${port}/`).then(() => 'answered', () => 'refused')).toBe('refused');
  }, 30_000);

  test('a leftover master from an earlier run (daemonised, launcher gone) is stopped by stopLeftoverNginx', async () => {
    // The leftover must really be serving before it is stopped. Another process can take the free
    // port between freePort() and nginx's bind (seen on a busy CI machine): then nginx exits, and
    // the test starts over on a new port rather than testing nothing.
    let port = 0;
    let prefix = '';
    let leftover = 0;
    for (let attempt = 1; leftover === 0; attempt++) {
      port = await freePort();
      prefix = await prefixOn(port);
      // nginx's default: it daemonises and outlives whoever started it.
      spawn('/usr/sbin/nginx', ['-p', prefix + '/', '-c', 'conf/nginx.conf', '-e', join(prefix, 'logs', 'error.log')], { stdio: 'ignore' });
      const pidFile = join(prefix, 'logs', 'nginx.pid');
      const readPid = () => { try { return Number(readFileSync(pidFile, 'utf8').trim()) || 0; } catch { return 0; } };
      const errorLog = () => { try { return readFileSync(join(prefix, 'logs', 'error.log'), 'utf8'); } catch { return ''; } };
      const serving = () => fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false);
      const bindFailed = () => /Address already in use/.test(errorLog());
      await waitUntil(async () => bindFailed() || (readPid() !== 0 && (await serving())), 5000);
      const pid = readPid();
      if (pid !== 0) cleanups.push(() => { if (isAlive(pid)) process.kill(pid, 'SIGKILL'); });
      if (!bindFailed() && pid !== 0 && (await serving())) leftover = pid;
      else if (attempt === 3) throw new Error(`the leftover nginx never served after 3 ports:\n${errorLog()}`);
    }
    expect(await stopLeftoverNginx(prefix)).toBe(leftover);
    expect(isAlive(leftover)).toBe(false);
    const nginx = await startNginx(prefix, port);
    cleanups.push(() => nginx.stop());
    expect(nginx.process.pid).not.toBe(leftover);
  }, 30_000);
});
