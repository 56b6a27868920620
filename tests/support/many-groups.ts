/**
 * The issue-9 world of users with many groups, shared by the integration and browser tests: Tableau
 * users in 250 and 1,000 groups (Get Groups for a User served in pages of 100, so 3 and 10 pages),
 * Entra users in 3 groups (ID token) and 250 or 1,000 (Graph overage, pages of 100), and one policy,
 * written once, that serves them all: Tableau groups by name, Entra groups through `group_aliases`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGraphFake, type GraphFake, type GraphGroup } from './graph-fake.js';
import { azureGatewayEnv, startOidcProvider, type OidcTestAccount, type TestOidcProvider } from './oidc-provider.js';
import { startStack, type Stack } from './stack.js';
import { startTableauFake, type TableauFake, type TableauFakeUser } from './tableau-fake.js';

export const PUBLIC = 'http://gw.test';
export const CALLBACK = '/login/oauth2/code/azure';
const CLIENT = { id: 'many-groups-gateway', secret: 'client secret for many-groups tests 1234567890' };
const SITE = { contentUrl: 'analytics', id: '0b1c2d3e-0000-4000-8000-0000000000bb' };

/** The Entra object ids the policy names through its aliases. */
export const FINANCE_ID = 'f1a00000-0000-4000-8000-00000000f1a0';
export const CONTRACTORS_ID = 'c0c00000-0000-4000-8000-00000000c0c0';

/** `n` long, non-ASCII Tableau group names, with `extra` inserted at their positions. */
export function tableauGroups(n: number, extra: Record<number, string> = {}): string[] {
  const names = Array.from({ length: n }, (_, i) => `Überregionale Fachgruppe Zürich–東京 Nr. ${String(i).padStart(4, '0')}`);
  for (const [at, name] of Object.entries(extra)) names.splice(Number(at), 0, name);
  return names.slice(0, n);
}

/** `n` Entra group object ids, with `extra` ids placed at their positions. */
export function entraGroups(n: number, extra: Record<number, string> = {}): string[] {
  const ids = Array.from({ length: n }, (_, i) => `6f1c${String(i).padStart(4, '0')}-0000-4000-8000-000000000000`);
  for (const [at, id] of Object.entries(extra)) ids.splice(Number(at), 0, id);
  return ids.slice(0, n);
}

export const asGraph = (ids: string[]): GraphGroup[] => ids.map((id) => ({ id, displayName: `Display name of ${id}` }));

/** The policy: /finance for Finance (Tableau name or Entra alias), never for Contractors. */
export function manyGroupsPolicy(extraRules = ''): string {
  return `default: allow
group_aliases:
  Finance: "${FINANCE_ID}"
  Contractors: "${CONTRACTORS_ID}"
rules:
  - id: finance-no-contractors
    path: { prefix: /finance }
    priority: 5
    decision: deny
    conditions: { groups: [Contractors, "alias:Contractors"] }
  - id: finance-members
    path: { prefix: /finance }
    priority: 10
    decision: allow
    conditions: { groups: [Finance, "alias:Finance"] }
  - id: finance-others
    path: { prefix: /finance }
    priority: 20
    decision: deny
${extraRules}`;
}

export const TABLEAU_USERS: TableauFakeUser[] = [
  { name: 'tab250', password: 'many groups password 250', siteRole: 'Viewer', groups: tableauGroups(250, { 10: 'App-Reports', 240: 'Finance' }) },
  { name: 'tab250-other', password: 'many groups password 251', siteRole: 'Viewer', groups: tableauGroups(250, { 10: 'App-Reports' }) },
  { name: 'tab1000', password: 'many groups password 1000', siteRole: 'Viewer', groups: tableauGroups(1000, { 5: 'App-Reports', 999: 'Finance' }) },
  { name: 'tab1000-contractor', password: 'many groups password 1001', siteRole: 'Viewer', groups: tableauGroups(1000, { 400: 'Contractors', 999: 'Finance' }) },
];

export const ENTRA_ACCOUNTS: Array<OidcTestAccount & { graph?: string[] }> = [
  { oid: '00000000-0000-4000-8000-000000000003', preferredUsername: 'three@contoso.example', groups: ['6f1c9990-0000-4000-8000-000000000000', FINANCE_ID, '6f1c9991-0000-4000-8000-000000000000'] },
  { oid: '00000000-0000-4000-8000-000000000250', preferredUsername: 'e250@contoso.example', groups: [], graph: entraGroups(250, { 249: FINANCE_ID }) },
  { oid: '00000000-0000-4000-8000-000000001000', preferredUsername: 'e1000@contoso.example', groups: [], graph: entraGroups(1000, { 998: FINANCE_ID }) },
  { oid: '00000000-0000-4000-8000-000000001001', preferredUsername: 'e1000c@contoso.example', groups: [], graph: entraGroups(1000, { 3: CONTRACTORS_ID, 998: FINANCE_ID }) },
];

export interface ManyGroupsWorld {
  stack: Stack;
  tableau: TableauFake;
  provider: TestOidcProvider;
  graph: GraphFake;
  /** The POLICY_FILE the stack started with (rewrite it and run `make reload` to change the policy). */
  policyFile: string;
  /** Makes the provider sign in `oid` next, with a Graph overage when the account has a Graph list. */
  useEntraAccount(oid: string): void;
  stop(): Promise<void>;
}

/** Starts the fakes and the real stack (nginx, auth service, PostgreSQL) with PAYLOAD_GROUPS=App-*. */
export async function startManyGroupsWorld(): Promise<ManyGroupsWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-many-groups-'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, manyGroupsPolicy());
  const tableau = await startTableauFake({ site: SITE, users: TABLEAU_USERS, maxGroupPageSize: 100 });
  let provider: TestOidcProvider | undefined;
  const graph = await startGraphFake({ groups: [], pageSize: 100, isValidToken: (token) => provider!.isAccessToken(token) });
  provider = await startOidcProvider({ clientId: CLIENT.id, clientSecret: CLIENT.secret, redirectUris: [PUBLIC + CALLBACK], accounts: ENTRA_ACCOUNTS, graphBaseUrl: graph.url });
  const stack = await startStack({
    env: {
      ...azureGatewayEnv(provider, CLIENT, PUBLIC, { GRAPH_BASE_URL: graph.url, OIDC_TIMEOUT_MS: '3000' }),
      TABLEAU_URL: tableau.url,
      TABLEAU_SITE: SITE.contentUrl,
      TABLEAU_TIMEOUT_MS: '3000',
      POLICY_FILE: policyFile,
      PAYLOAD_GROUPS: 'App-*',
    },
  });
  const p = provider;
  return {
    stack,
    tableau,
    provider: p,
    graph,
    policyFile,
    useEntraAccount(oid) {
      const account = ENTRA_ACCOUNTS.find((a) => a.oid === oid)!;
      p.setAccount(oid);
      p.setOverage(account.graph !== undefined);
      graph.setGroups(asGraph(account.graph ?? []));
    },
    async stop() {
      await stack.stop();
      await p.close();
      await graph.close();
      await tableau.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Bytes of every X-Payload-* header the upstream received. */
export function payloadHeaderBytes(headers: Record<string, string | string[] | undefined>): number {
  let total = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith('x-payload-')) total += name.length + 2 + Buffer.byteLength(String(value));
  }
  return total;
}
