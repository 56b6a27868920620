/**
 * The gate on Debian 13's nginx 1.26 + njs 0.8.9 (issue 9), run from the chroot that
 * scripts/trixie-root.sh builds (`make test-njs08`), against the real auth service and PostgreSQL:
 * with NJS_REVOCATIONS=on, a revoked session is refused within seconds while its token is still
 * valid, not only when the token expires (the bound on njs 0.7.9, which the integration project
 * proves on the host's nginx). Also runs the njs CLI suite under the root's own njs.
 */
import { afterAll, beforeAll, describe, expect, test as plainTest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runSessionsCli } from '../../auth-service/src/cli/sessions-cli.js';
import { pathInside, REPO_ROOT } from '../../scripts/lib/nginx-runtime.js';
import { accessLogEntry, stackTest, startStack, type Stack } from '../support/stack.js';

const ROOT = process.env.GATEWAY_TRIXIE_ROOT || '/var/cache/gateway-trixie';
const PASSWORD = 'revocation test password 42';
/** Long enough that the token's own expiry can never be what refuses a revoked session here. */
const TOKEN_TTL_SECONDS = 300;

function assertRoot(): void {
  if (!existsSync(join(ROOT, '.gateway-trixie-ready'))) {
    throw new Error(`no Debian 13 test root at ${ROOT}: run scripts/trixie-root.sh (make test-njs08 does)`);
  }
}

function claimsOf(session: string): { sid: string; exp: number } {
  const payload = session.split('=')[1]!.split('.')[1]!;
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sid: string; exp: number };
}

async function revokeWithCli(sid: string, databaseUrl: string): Promise<void> {
  let stdout = '';
  let stderr = '';
  const io = { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env: { DATABASE_URL: databaseUrl } };
  const code = await runSessionsCli(['revoke', sid], io);
  if (code !== 0) throw new Error(`sessions revoke ${sid} failed (${code}): ${stdout}${stderr}`);
}

describe('njs 0.8 in the Debian 13 root: revoked sessions refused within seconds', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    assertRoot();
    stack = await startStack({ njs08Root: ROOT, env: { SESSION_TOKEN_TTL_SECONDS: String(TOKEN_TTL_SECONDS) } });
    for (const name of ['kirk', 'spock']) await stack.createUser(name, PASSWORD, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  const api = (session: string) => stack.request('GET', '/reports', { accept: 'application/json', cookie: session });

  /** Milliseconds from `revoke()` returning to the gate's first refusal of `session` (polled every 20 ms). */
  async function refusalLatency(session: string, revoke: () => Promise<void>): Promise<number> {
    await revoke();
    const revokedAt = Date.now();
    for (;;) {
      const res = await api(session);
      if (res.status !== 200) {
        expect(res.status).toBe(401);
        expect(JSON.parse(res.body)).toEqual({ error: 'unauthenticated', reason: 'session-revoked', login: '/login' });
        return Date.now() - revokedAt;
      }
      if (Date.now() - revokedAt > 10_000) throw new Error('the revoked session still passes the gate after 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  test('runs the root nginx 1.26 with njs 0.8.9 and the njs08 snippets rendered in', async () => {
    const version = spawnSync('/usr/sbin/chroot', [ROOT, '/usr/sbin/nginx', '-V'], { encoding: 'utf8' });
    expect(version.stderr).toMatch(/nginx\/1\.26\./);
    expect(readFileSync(join(ROOT, 'var/lib/dpkg/status'), 'utf8')).toMatch(/Package: libnginx-mod-http-js\n(?:.+\n)*?Version: 0\.8\.9/);
    expect(readdirSync(join(stack.nginx.prefix, 'conf', 'snippets', 'njs08.d')).sort()).toEqual(['gate-revocations-http.conf', 'gate-revocations-server.conf']);
    expect(readFileSync(join(stack.nginx.prefix, 'conf', 'snippets', 'njs08.d', 'gate-revocations-server.conf'), 'utf8')).toContain(`http://127.0.0.1:${stack.authPort}/auth/revocations`);
  });

  test('a session revoked with the sessions CLI is refused within a few seconds while its token is valid; others pass', async () => {
    const other = (await stack.login('spock', PASSWORD, '/')).session!;
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      const session = (await stack.login('kirk', PASSWORD, '/')).session!;
      const claims = claimsOf(session);
      stack.upstream.reset();
      expect((await api(session)).status).toBe(200);
      expect(stack.upstream.seen).toHaveLength(1);
      samples.push(await refusalLatency(session, () => revokeWithCli(claims.sid, stack.databaseUrl)));
      // The token itself is far from expiring: the revocation, not the TTL, refused it.
      expect(claims.exp - Date.now() / 1000).toBeGreaterThan(TOKEN_TTL_SECONDS - 60);
      stack.upstream.reset();
      // A browser goes to the login page (no renewal: the service would refuse it anyway)...
      const page = await stack.request('GET', '/reports?q=1', { accept: 'text/html', cookie: session });
      expect(page.status).toBe(302);
      expect(page.headers.location).toBe('/login?rd=%2Freports%3Fq%3D1');
      expect(stack.upstream.seen).toHaveLength(0);
      // ...and another session of the same user base is untouched.
      expect((await api(other)).status).toBe(200);
    }
    const entry = await accessLogEntry(stack.nginx, (e) => e.reason === 'session-revoked' && e.path === '/reports');
    expect(entry).toMatchObject({ status: 302, user: '' });
    console.log(`njs 0.8.9 revocation latency (revoke -> first refusal), ms: ${samples.join(', ')}`);
    for (const ms of samples) expect(ms).toBeLessThan(3000);
  }, 90_000);

  test('sign-out through nginx (POST /logout) ends a copied cookie at the gate within seconds', async () => {
    const session = (await stack.login('kirk', PASSWORD, '/')).session!;
    const ms = await refusalLatency(session, async () => {
      const out = await stack.request('POST', '/logout', { cookie: session, origin: stack.baseUrl, 'sec-fetch-site': 'same-origin' });
      expect(out.status).toBe(303);
    });
    expect(ms).toBeLessThan(3000);
  }, 30_000);

  test('with the auth service down, revoked sessions stay refused and valid ones keep working (no per-request call)', async () => {
    const revoked = (await stack.login('kirk', PASSWORD, '/')).session!;
    const valid = (await stack.login('spock', PASSWORD, '/')).session!;
    await refusalLatency(revoked, () => revokeWithCli(claimsOf(revoked).sid, stack.databaseUrl));
    await stack.stopAuthService();
    try {
      // Several polls fail meanwhile.
      await new Promise((r) => setTimeout(r, 3000));
      expect((await api(revoked)).status).toBe(401);
      expect((await api(valid)).status).toBe(200);
      expect(stack.nginx.errorLog()).toMatch(/gate: revocations: cannot poll http:\/\/127\.0\.0\.1:\d+\/auth\/revocations/);
    } finally {
      await stack.restartAuthService({});
    }
    // Back up: a new revocation arrives again.
    const later = (await stack.login('spock', PASSWORD, '/')).session!;
    expect(await refusalLatency(later, () => revokeWithCli(claimsOf(later).sid, stack.databaseUrl))).toBeLessThan(5000);
    expect(stack.nginx.errorLog()).toMatch(/gate: revocations: http:\/\/127\.0\.0\.1:\d+\/auth\/revocations answers again/);
  }, 60_000);
});

describe('the njs CLI suite under the root njs 0.8.9', () => {
  plainTest('passes every case of njs/dist/gate-tests.js', () => {
    assertRoot();
    const dir = mkdtempSync(join(ROOT, 'tmp', 'gw-njs-'));
    try {
      cpSync(join(REPO_ROOT, 'njs', 'dist'), dir, { recursive: true });
      const res = spawnSync('/usr/sbin/chroot', [ROOT, '/usr/bin/njs', join(pathInside(ROOT, dir), 'gate-tests.js')], { encoding: 'utf8' });
      expect(`${res.stdout}${res.stderr}`).toMatch(/^[1-9][0-9]* passed, 0 failed$/m);
      expect(res.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
