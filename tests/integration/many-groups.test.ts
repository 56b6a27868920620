/**
 * Issue 9, "users with many groups cannot sign in": Tableau users in 250 and 1,000 groups (3 and 10
 * pages of Get Groups for a User) and Entra users in 3 groups (ID token) or 250 and 1,000 (Graph
 * overage, 3 and 10 pages) sign in through the real nginx, are allowed or refused by one group rule
 * written once (Entra ids through `group_aliases`), and get a bounded cookie and bounded X-Payload
 * headers. A policy that names more of a user's groups than a session can hold refuses sign-in with
 * a clear 403, never a 502; a policy reload changes which groups the next sessions carry.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { REPO_ROOT } from '../../scripts/lib/nginx-runtime.js';
import {
  CONTRACTORS_ID,
  ENTRA_ACCOUNTS,
  FINANCE_ID,
  manyGroupsPolicy,
  payloadHeaderBytes,
  PUBLIC,
  startManyGroupsWorld,
  TABLEAU_USERS,
  tableauGroups,
  type ManyGroupsWorld,
} from '../support/many-groups.js';
import { oidcWalk, type Jar } from '../support/oidc-walk.js';
import { stackTest } from '../support/stack.js';

/** Cookie and upstream-header bounds that hold whatever the group count (4 KiB is the browser's cookie cap). */
const MAX_COOKIE_CHARS = 2600;
const MAX_PAYLOAD_HEADER_BYTES = 1024;
const { follow, sessionOf } = oidcWalk(PUBLIC);
const claimsOf = (cookie: string) => JSON.parse(Buffer.from(cookie.split('=')[1]!.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

describe('users with many groups through nginx', () => {
  let world: ManyGroupsWorld;
  const test = stackTest(() => world.stack);
  const password = (name: string) => TABLEAU_USERS.find((u) => u.name === name)!.password;

  beforeAll(async () => {
    world = await startManyGroupsWorld();
  }, 90_000);
  afterAll(async () => {
    await world?.stop();
  });

  const groupPageRequests = () => world.tableau.requests.filter((r) => r.url.includes('/groups?')).length;

  /** Tableau form sign-in, then GET `path` with the session; returns what the upstream saw (if anything). */
  async function tableauVisit(name: string, path: string) {
    const pagesBefore = groupPageRequests();
    const { res, session } = await world.stack.login(name, password(name), path);
    if (res.status !== 302 || session === null) throw new Error(`sign-in of ${name} answered ${res.status}`);
    const pages = groupPageRequests() - pagesBefore;
    const seenBefore = world.stack.upstream.seen.length;
    const page = await world.stack.request('GET', path, { accept: 'application/json', cookie: session });
    const seen = world.stack.upstream.seen.slice(seenBefore);
    return { session, pages, page, seen };
  }

  describe('Tableau', () => {
    test('250 groups (3 pages): signs in, Finance reaches /finance; the upstream sees only Finance and App-*, and how many groups there are', async () => {
      const { session, pages, page, seen } = await tableauVisit('tab250', '/finance/q3');
      expect(pages).toBe(3);
      expect(page.status).toBe(200);
      expect(session.length).toBeLessThan(MAX_COOKIE_CHARS);
      const h = seen[0]!.headers;
      expect(h['x-payload-groups']).toBe('App-Reports,Finance');
      expect(h['x-payload-groups_count']).toBe('250');
      expect(h['x-payload-groups_digest']).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(payloadHeaderBytes(h)).toBeLessThan(MAX_PAYLOAD_HEADER_BYTES);
    });

    test('250 groups without Finance: signs in, /finance is refused and the upstream sees nothing, / is allowed', async () => {
      const { session, page, seen } = await tableauVisit('tab250-other', '/finance');
      expect(page.status).toBe(403);
      expect(seen).toHaveLength(0);
      const home = await world.stack.request('GET', '/', { accept: 'application/json', cookie: session });
      expect(home.status).toBe(200);
      expect(world.stack.upstream.seen.at(-1)!.headers['x-payload-groups']).toBe('App-Reports');
    });

    test('1,000 groups (10 pages): signs in with a bounded cookie, Finance (the last group) reaches /finance', async () => {
      const { session, pages, page, seen } = await tableauVisit('tab1000', '/finance');
      expect(pages).toBe(10);
      expect(page.status).toBe(200);
      expect(session.length).toBeLessThan(MAX_COOKIE_CHARS);
      expect(claimsOf(session).groups).toEqual(['App-Reports', 'Finance']);
      const h = seen[0]!.headers;
      expect(h['x-payload-groups_count']).toBe('1000');
      expect(payloadHeaderBytes(h)).toBeLessThan(MAX_PAYLOAD_HEADER_BYTES);
      expect(world.stack.authLogs()).toMatch(/"event":"auth_success","user":"tab1000","src":"tableau".*"groups":1000,"token_groups":2/);
    });

    test('1,000 groups with Contractors (page 5): the deny rule still sees it, so /finance is refused', async () => {
      const { session, page, seen } = await tableauVisit('tab1000-contractor', '/finance');
      expect(page.status).toBe(403);
      expect(seen).toHaveLength(0);
      expect(claimsOf(session).groups).toEqual(['Contractors', 'Finance']);
    });
  });

  describe('Entra ID: one policy for 3, 250 and 1,000 groups, all object ids', () => {
    async function entraVisit(oid: string, path: string): Promise<{ status: number; jar: Jar; graphPages: number }> {
      world.useEntraAccount(oid);
      const jar: Jar = new Map();
      const before = world.graph.requests().length;
      const { res } = await follow(world.stack, jar, `/login/oidc?rd=${encodeURIComponent(path)}`);
      return { status: res.status, jar, graphPages: world.graph.requests().length - before };
    }
    const account = (name: string) => ENTRA_ACCOUNTS.find((a) => a.preferredUsername.startsWith(name + '@'))!.oid;

    test('3 groups in the ID token (no Graph call): Finance by its alias reaches /finance', async () => {
      const seenBefore = world.stack.upstream.seen.length;
      const { status, graphPages } = await entraVisit(account('three'), '/finance');
      expect(graphPages).toBe(0);
      expect(status).toBe(200);
      const h = world.stack.upstream.seen[seenBefore]!.headers;
      expect(h['x-payload-groups']).toBe(FINANCE_ID);
      expect(h['x-payload-groups_count']).toBe('3');
    });

    for (const [label, name, pages] of [
      ['250', 'e250', 3],
      ['1,000', 'e1000', 10],
    ] as const) {
      test(`${label} groups through the Graph overage (${pages} pages of 100): the same rule lets Finance in, with a bounded cookie`, async () => {
      const seenBefore = world.stack.upstream.seen.length;
      const { status, jar, graphPages } = await entraVisit(account(name), '/finance/ledger');
      expect(graphPages).toBe(pages);
      expect(status).toBe(200);
      const cookie = sessionOf(jar, world.stack)!;
      expect(cookie.length).toBeLessThan(MAX_COOKIE_CHARS);
      const h = world.stack.upstream.seen[seenBefore]!.headers;
      expect(h['x-payload-groups']).toBe(FINANCE_ID);
      expect(h['x-payload-groups_count']).toBe(name === 'e250' ? '250' : '1000');
      expect(payloadHeaderBytes(h)).toBeLessThan(MAX_PAYLOAD_HEADER_BYTES);
      });
    }

    test('1,000 groups with Contractors among them: refused at /finance, and the upstream sees nothing', async () => {
      const seenBefore = world.stack.upstream.seen.length;
      const { status, jar } = await entraVisit(account('e1000c'), '/finance');
      expect(status).toBe(403);
      expect(world.stack.upstream.seen.length).toBe(seenBefore);
      const claims = JSON.parse(Buffer.from(sessionOf(jar, world.stack)!.split('.')[1]!, 'base64url').toString('utf8')) as { groups: string[] };
      expect(claims.groups).toEqual([CONTRACTORS_ID, FINANCE_ID]);
    });
  });

  describe('the policy decides what a session carries, read at each sign-in', () => {
    /** `make reload` against this stack, with POLICY_FILE rewritten to `policy`. */
    function reloadWith(policy: string): Promise<{ code: number | null; output: string }> {
      writeFileSync(world.policyFile, policy);
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts', 'reload.ts')], {
          cwd: REPO_ROOT,
          env: { ...process.env, DATA_DIR: dirname(world.stack.nginx.prefix), PROXY_PORT: String(world.stack.proxyPort), POLICY_FILE: world.policyFile },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (c: Buffer) => (output += c.toString()));
        child.stderr.on('data', (c: Buffer) => (output += c.toString()));
        child.once('error', reject);
        child.once('close', (code) => resolve({ code, output }));
      });
    }
    afterAll(async () => {
      await reloadWith(manyGroupsPolicy());
    });

    test('a rule naming one more group, after `make reload`: the next sign-in carries it and the rule applies', async () => {
      const team = tableauGroups(1000)[500]!;
      const reloaded = await reloadWith(
        manyGroupsPolicy(`  - id: team
    path: { prefix: /team }
    priority: 10
    decision: allow
    conditions: { groups: ["${team}"] }
  - id: team-others
    path: { prefix: /team }
    priority: 20
    decision: deny
`),
      );
      expect(reloaded).toMatchObject({ code: 0 });
      const { session, page } = await tableauVisit('tab1000', '/team');
      expect(page.status).toBe(200);
      expect(claimsOf(session).groups).toEqual(['App-Reports', team, 'Finance']);
    });

    test('a policy naming more of the user\'s groups than a session holds: a clear 403 and an auth_failure, never a 502; the Tableau token is signed out', async () => {
      const named = tableauGroups(1000).slice(500, 600);
      expect((await reloadWith(manyGroupsPolicy(`  - id: big-team
    path: { prefix: /team }
    priority: 10
    decision: allow
    conditions: { groups: ${JSON.stringify(named)} }
`))).code).toBe(0);
      const issuedBefore = world.tableau.issuedTokens().length;
      const { res, session } = await world.stack.login('tab1000', password('tab1000'), '/team');
      expect(res.status).toBe(403);
      expect(session).toBeNull();
      expect(res.body).toContain('access policy names, more than fit into a session');
      expect(world.stack.authLogs()).toMatch(/"event":"auth_failure","user":"tab1000","src":"tableau","reason":"session-too-large","groups":1000,"policy_groups":101,"group_bytes":\d+/);
      const token = world.tableau.issuedTokens()[issuedBefore]!;
      expect(world.tableau.signedOutTokens()).toContain(token);
      // The same policy still lets a user in few of those groups sign in.
      const small = await world.stack.login('tab250', password('tab250'), '/');
      expect(small.res.status).toBe(302);
    });
  });
});
