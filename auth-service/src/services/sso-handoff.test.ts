import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import type { AuthEventInput } from '../storage/audit-repo.js';
import type { HandoffRecord, HandoffsRepo, IssueHandoffInput } from '../storage/handoffs-repo.js';
import type { SessionRecord } from '../storage/sessions-repo.js';
import { verifySignedClaims } from './session-token.js';
import { createSsoHandoff, HANDOFF_PATH, LOGOUT_HOP_PATH, type SsoHandoff } from './sso-handoff.js';

const SECRET = randomBytes(48).toString('base64url');
const A = 'https://auth.alpha.example';
const B = 'https://app.beta.example';
const C = 'https://app.gamma.example';
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
const claims = { sub: 'u1', username: 'kirk', groups: ['Federation'], src: 'local', ip: '10.0.0.1', sid: 'sid-0123456789abcdef', iat: T0 / 1000 - 60, exp: T0 / 1000 + 240 };

/** The repository's contract in memory (take is single-use as the SQL is). */
function memoryRepo(): HandoffsRepo & { rows: Map<string, HandoffRecord & { usedAt: Date | null; redeemedAt: Date | null }>; events: AuthEventInput[] } {
  const rows = new Map<string, HandoffRecord & { usedAt: Date | null; redeemedAt: Date | null }>();
  const events: AuthEventInput[] = [];
  return {
    rows,
    events,
    async issue(i: IssueHandoffInput) {
      rows.set(i.codeHash, { codeHash: i.codeHash, sid: i.sid, targetOrigin: i.targetOrigin, clientIp: i.clientIp, claims: i.claims, createdAt: new Date(i.nowMs), expiresAt: new Date(i.nowMs + i.ttlSeconds * 1000), usedAt: null, redeemedAt: null });
      events.push(i.event);
    },
    async take(hash, nowMs) {
      const row = rows.get(hash);
      if (row === undefined) return null;
      if (row.usedAt !== null) return 'used';
      row.usedAt = new Date(nowMs);
      return row;
    },
    async confirm(hash, nowMs, event) {
      rows.get(hash)!.redeemedAt = new Date(nowMs);
      events.push(event);
    },
    async redeemedOrigins(sid) {
      return [...rows.values()].filter((r) => r.sid === sid && r.redeemedAt !== null).map((r) => r.targetOrigin);
    },
  };
}

let clock = T0;
let repo: ReturnType<typeof memoryRepo>;
let refusals: AuthEventInput[];
let session: Partial<SessionRecord> | null;
let handoff: SsoHandoff;

function build(cookieDomain: string | null = null): SsoHandoff {
  return createSsoHandoff({
    config: {
      publicBaseUrl: A,
      sso: { cookieDomain, appOrigins: [B, C], handoffTtlSeconds: 30 },
      jwt: { secret: SECRET, previousSecrets: [], previousKeys: [] },
      session: { ttlSeconds: 300, leewaySeconds: 30, cookieName: 'gw_session', cookieSecure: true, ipBinding: 'exact' },
    },
    handoffs: repo,
    sessions: { find: async () => (session === null ? null : (session as SessionRecord)) },
    recordEvent: async (e) => {
      refusals.push(e);
    },
    logger: pino({ level: 'silent' }),
    now: () => clock,
  });
}

beforeEach(() => {
  clock = T0;
  repo = memoryRepo();
  refusals = [];
  session = { sid: claims.sid, revokedAt: null, expiresAt: new Date(T0 + 3_600_000), idleExpiresAt: new Date(T0 + 1_800_000) };
  handoff = build();
});

const ctx = { hereOrigin: A, host: 'auth.alpha.example', clientIp: '10.0.0.1', requestId: 'r1' };

async function issue(target = `${B}/reports?x=1`): Promise<{ code: string; url: URL }> {
  const url = new URL(await handoff.locationFor(target, claims, ctx));
  return { code: url.searchParams.get('code')!, url };
}

describe('locationFor', () => {
  it('keeps a path a path, and a target on its own origin a path (no code)', async () => {
    expect(await handoff.locationFor('/x', claims, ctx)).toBe('/x');
    expect(await handoff.locationFor(`${A}/x`, claims, ctx)).toBe('/x');
    expect(repo.rows.size).toBe(0);
  });
  it('sends another origin to its hand-off URL with a 32-byte code, storing only its hash', async () => {
    const { code, url } = await issue();
    expect(url.origin + url.pathname).toBe(B + HANDOFF_PATH);
    expect(url.searchParams.get('rd')).toBe('/reports?x=1');
    expect(Buffer.from(code, 'base64url')).toHaveLength(32);
    const [row] = [...repo.rows.values()];
    expect(row!.codeHash).not.toBe(code);
    expect(JSON.stringify(row)).not.toContain(code);
    expect(row!.expiresAt.getTime() - T0).toBe(30_000);
    expect(repo.events).toEqual([expect.objectContaining({ event: 'handoff_issued', username: 'kirk', sid: claims.sid, reason: B })]);
  });
  it('needs no code when both hosts are under SESSION_COOKIE_DOMAIN (the cookie already reaches it)', async () => {
    const shared = build('beta.example');
    const here = { ...ctx, hereOrigin: 'https://auth.beta.example', host: 'auth.beta.example' };
    expect(await shared.locationFor(`${B}/x`, claims, here)).toBe(`${B}/x`);
    expect(repo.rows.size).toBe(0);
  });
});

describe('redeem', () => {
  const at = (code: unknown, over: Partial<{ hereOrigin: string | undefined; clientIp: string }> = {}) =>
    handoff.redeem({ code, hereOrigin: B, clientIp: '10.0.0.1', requestId: 'r2', ...over });

  it('signs the same session (sid, iat) with a fresh exp, once', async () => {
    const { code } = await issue();
    clock = T0 + 5_000;
    const result = await at(code);
    expect(result).toMatchObject({ ok: true, username: 'kirk', maxAgeSeconds: 3595 });
    const signed = verifySignedClaims((result as { token: string }).token, [SECRET], { clockTimestamp: clock / 1000 })!;
    expect(signed).toMatchObject({ sid: claims.sid, iat: claims.iat, exp: (T0 + 5_000) / 1000 + 300, username: 'kirk', ip: '10.0.0.1' });
    expect(await handoff.logoutHops(claims.sid, A, 'r3')).toEqual([B]);
    expect(repo.events.map((e) => e.event)).toEqual(['handoff_issued', 'handoff_redeemed']);
  });
  it.each([
    ['refuses a replay (the second use of a code)', 'handoff-replayed', async (code: string) => (await at(code), at(code))],
    ['refuses an expired code (after SSO_HANDOFF_TTL_SECONDS)', 'handoff-expired', async (code: string) => ((clock = T0 + 30_000), at(code))],
    ['refuses a code presented on another listed origin', 'handoff-origin-mismatch', async (code: string) => at(code, { hereOrigin: C })],
    ['refuses a code presented on an unlisted origin', 'handoff-origin-unlisted', async (code: string) => at(code, { hereOrigin: 'https://evil.example' })],
    ['refuses a code from another client address', 'handoff-ip-mismatch', async (code: string) => at(code, { clientIp: '10.0.0.2' })],
    ['refuses an unknown code', 'handoff-unknown', async () => at(randomBytes(32).toString('base64url'))],
    ['refuses a malformed code without asking the store', 'handoff-malformed', async () => at('x'.repeat(44))],
    ['refuses a code whose session was revoked meanwhile', 'session-ended', async (code: string) => ((session = { ...session, revokedAt: new Date(T0) }), at(code))],
  ])('%s', async (_name, reason, attempt) => {
    const { code } = await issue();
    expect(await attempt(code)).toEqual({ ok: false, reason });
    expect(refusals).toEqual([expect.objectContaining({ event: 'handoff_refused', reason })]);
  });
  it('spends a code presented wrongly: the right address cannot use it afterwards', async () => {
    const { code } = await issue();
    await at(code, { clientIp: '10.0.0.2' });
    expect(await at(code)).toEqual({ ok: false, reason: 'handoff-replayed' });
  });
});

describe('logout chain', () => {
  it('visits every host that redeemed a code, then the sign-in host, then ends where logout would', async () => {
    // Signed out on B: C holds a cookie too, and A (the sign-in host) always does.
    for (const target of [B, C]) {
      const { code } = await issue(`${target}/`);
      await handoff.redeem({ code, hereOrigin: target, clientIp: '10.0.0.1', requestId: 'r' });
    }
    const hops = await handoff.logoutHops(claims.sid, B, 'r');
    expect(hops).toEqual([C, A]);
    let url = new URL(handoff.startLogoutChain(hops, `${A}/login?signed_out=1`));
    expect(url.origin + url.pathname).toBe(C + LOGOUT_HOP_PATH);
    url = new URL(handoff.followLogoutChain(url.searchParams.get('chain'), C)!);
    expect(url.origin + url.pathname).toBe(A + LOGOUT_HOP_PATH);
    expect(handoff.followLogoutChain(url.searchParams.get('chain'), A)).toBe(`${A}/login?signed_out=1`);
  });
  it('refuses a link followed on another host, after two minutes, or altered', () => {
    const link = new URL(handoff.startLogoutChain([B], `${A}/login?signed_out=1`)).searchParams.get('chain')!;
    expect(handoff.followLogoutChain(link, C)).toBeNull();
    const [payload, mac] = link.split('.');
    const forged = Buffer.from(JSON.stringify({ h: [B], d: 'https://evil.example/', e: T0 / 1000 + 100 })).toString('base64url');
    expect(handoff.followLogoutChain(`${forged}.${mac}`, B)).toBeNull();
    expect(handoff.followLogoutChain(payload, B)).toBeNull();
    clock = T0 + 121_000;
    expect(handoff.followLogoutChain(link, B)).toBeNull();
  });
});
