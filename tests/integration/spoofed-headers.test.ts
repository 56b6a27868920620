/**
 * Client-sent identity headers never reach the upstream, whatever their spelling; only the gate's
 * values do. Neither do client headers that claim a path, a method, a host or an address, on any
 * location of the server: protected, unprotected (an operator's /static/), or one with its own
 * headers-more directives. The upstream always gets a Host, and the group list cannot be split.
 */
import { afterAll, beforeAll, beforeEach, describe, expect } from '@jest/globals';
import { connect } from 'node:net';
import { headerSegmentFor } from '../../auth-service/src/services/gate-config.js';
import { freePort } from '../../scripts/lib/nginx-runtime.js';
import { rawRequest, stackTest, startStack, type Stack } from '../support/stack.js';
import { claimsFor, nowSeconds, signWith } from '../support/tokens.js';

describe('spoofed X-Payload-* headers', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  let session: string;

  let bareServerPort: number;

  beforeAll(async () => {
    bareServerPort = await freePort();
    stack = await startStack({
      // What an operator adds: an unprotected location (the README's /static/ example), and one with
      // its own headers-more and proxy_set_header lines. Big header buffers for the 1,000-group test.
      editSite: (site) =>
        site.replace(
          '    include snippets/gate-server.conf;',
          `    include snippets/gate-server.conf;
    large_client_header_buffers 4 512k;
    location /static/ {
        proxy_pass http://protected_app;
    }
    location /own-headers/ {
        more_clear_input_headers 'X-Debug';
        proxy_set_header X-App-Extra yes;
        proxy_pass http://protected_app;
    }`,
          ) +
          // A second server an operator adds without the gate's includes at all.
          `\nserver {\n    listen 127.0.0.1:${bareServerPort};\n    location / {\n        proxy_pass http://protected_app;\n    }\n}\n`,
    });
    session = `gw_session=${signWith(headerSegmentFor(stack.secret), claimsFor('127.0.0.1', nowSeconds(), { email: undefined }), stack.secret)}`;
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });
  beforeEach(() => stack.upstream.reset());

  const spoofs: Array<[string, string]> = [
    ['X-Payload-username', 'admin'],
    ['x-payload-groups', 'Admins'],
    ['X-PAYLOAD-EMAIL', 'admin@evil.example'],
    ['X-Payload-Role', 'superuser'],
    ['X-Payload-Tableau_Site_Role', 'ServerAdministrator'],
    ['X_Payload_Username', 'admin'],
    ['x_payload_groups', 'Admins'],
    // A complete-looking group list: an app must not be told "this is all of them" by the client.
    ['X-Payload-Groups_Count', '1'],
  ];

  test('a logged-in request: only the gate-set values arrive, no spoofed name survives', async () => {
    const res = await stack.request('GET', '/', [['accept', 'application/json'], ['cookie', session], ...spoofs]);
    expect(res.status).toBe(200);
    const seen = stack.upstream.seen[0];
    expect(seen.headers['x-payload-username']).toBe('kirk');
    expect(seen.headers['x-payload-groups']).toBe('Federation');
    // The token has no email: the client's value must not fill the gap.
    expect(seen.headers['x-payload-email']).toBeUndefined();
    expect(seen.headers['x-payload-role']).toBeUndefined();
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names.filter((n) => n === 'x-payload-username')).toHaveLength(1);
    expect(names.some((n) => n.replace(/_/g, '-').startsWith('x-payload-tableau'))).toBe(false);
    expect(names.some((n) => n.startsWith('x_payload'))).toBe(false);
    expect(seen.headers['x-payload-groups_count']).toBeUndefined();
  });

  test('an anonymous request with spoofed headers is still refused', async () => {
    const res = await stack.request('GET', '/', [['accept', 'application/json'], ...spoofs]);
    expect(res.status).toBe(401);
    expect(stack.upstream.seen).toHaveLength(0);
  });

  test('identity values cannot inject header lines', async () => {
    const evil = signWith(
      headerSegmentFor(stack.secret),
      claimsFor('127.0.0.1', nowSeconds(), { name: 'Kirk\r\nX-Payload-Admin: yes' }),
      stack.secret,
    );
    const res = await stack.request('GET', '/', { accept: 'application/json', cookie: `gw_session=${evil}` });
    expect(res.status).toBe(200);
    const seen = stack.upstream.seen[0];
    expect(seen.headers['x-payload-admin']).toBeUndefined();
    expect(seen.headers['x-payload-name']).toBe('KirkX-Payload-Admin: yes');
  });

  /** Headers an attacker adds to reach a path, a method or an identity the gate did not judge. */
  const claimsOfClient: Array<[string, string]> = [
    ['X-Original-URL', '/federation'],
    ['X-Rewrite-URL', '/federation'],
    ['X-HTTP-Method-Override', 'DELETE'],
    ['X-HTTP-Method', 'DELETE'],
    ['X-Method-Override', 'DELETE'],
    ['X-Forwarded-Host', 'evil.example'],
    ['X-Forwarded-Port', '8443'],
    ['X-Forwarded-Prefix', '/admin'],
    ['X-Forwarded-Proto', 'https'],
    ['X-Forwarded-For', '10.0.0.1'],
    ['X-Forwarded-Server', 'evil.example'],
    ['Forwarded', 'for=10.0.0.1;host=evil.example;proto=https'],
    ['X-Real-IP', '10.0.0.1'],
    ['X-Client-IP', '10.0.0.1'],
    ['True-Client-IP', '10.0.0.1'],
    ['X-Original-Host', 'evil.example'],
  ];
  const removed = [
    'x-original-url',
    'x-rewrite-url',
    'x-http-method-override',
    'x-http-method',
    'x-method-override',
    'x-forwarded-host',
    'x-forwarded-port',
    'x-forwarded-prefix',
    'x-forwarded-server',
    'forwarded',
    'x-client-ip',
    'true-client-ip',
    'x-original-host',
  ];

  for (const [where, path, identity] of [
    ['a protected location', '/reports', true],
    ['an unprotected location (/static/)', '/static/app.css', false],
    ['a location with its own more_clear_input_headers and proxy_set_header', '/own-headers/x', false],
    ['a server without the gate includes', 'bare:/anything', false],
  ] as const) {
    test(`${where}: no client claim of path, method, host or address reaches the upstream`, async () => {
      const bare = path.startsWith('bare:');
      const send = bare ? (m: string, p: string, h: [string, string][]) => rawRequest(bareServerPort, m, p, h) : stack.request;
      const res = await send('POST', bare ? path.slice(5) : path, [
        ['accept', 'application/json'],
        ['cookie', session],
        ['content-length', '0'],
        ['x-debug', '1'],
        ...claimsOfClient,
        ...spoofs,
      ]);
      expect(res.status).toBe(200);
      const seen = stack.upstream.seen[0]!;
      expect(seen.method).toBe('POST');
      for (const name of removed) expect([name, seen.headers[name]]).toEqual([name, undefined]);
      const payload = Object.keys(seen.headers).filter((n) => n.startsWith('x-payload') || n.startsWith('x_payload'));
      if (identity) {
        // Only the gate's own values, from nginx's own view of the connection.
        expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
        expect(seen.headers['x-real-ip']).toBe('127.0.0.1');
        expect(seen.headers['x-forwarded-proto']).toBe('http');
        expect(seen.headers['x-payload-username']).toBe('kirk');
        expect(seen.headers['x-payload-role']).toBeUndefined();
      } else {
        // These locations set nothing of their own: the client's values are simply gone.
        for (const name of ['x-forwarded-for', 'x-real-ip', 'x-forwarded-proto']) expect([name, seen.headers[name]]).toEqual([name, undefined]);
        expect(payload).toEqual([]);
      }
      if (path.startsWith('/own-headers/')) {
        expect(seen.headers['x-debug']).toBeUndefined();
        expect(seen.headers['x-app-extra']).toBe('yes');
      }
    });
  }

  /** A raw HTTP/1.0 request (no Host unless given); resolves when the server closes. */
  function http10(lines: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(stack.proxyPort, '127.0.0.1');
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
      socket.write(lines.join('\r\n') + '\r\n\r\n');
    });
  }

  test('HTTP/1.0 without a Host header: the upstream still gets one (the server_name)', async () => {
    const answer = await http10(['GET /reports HTTP/1.0', 'Accept: application/json', `Cookie: ${session}`]);
    expect(answer.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 200 /);
    expect(stack.upstream.seen[0]!.headers.host).toBe('_');
  });

  test("a client's Host is passed on as sent, with its port", async () => {
    const res = await stack.request('GET', '/reports', [
      ['host', 'gateway.example:8443'],
      ['accept', 'application/json'],
      ['cookie', session],
    ]);
    expect(res.status).toBe(200);
    expect(stack.upstream.seen[0]!.headers.host).toBe('gateway.example:8443');
  });

  test('X-Payload-user carries the source-qualified id: local:<username>, oidc:<sub>, azure:<sub>, tableau:<username>', async () => {
    const sub = 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ';
    const cookieFor = (src: string) => `gw_session=${signWith(headerSegmentFor(stack.secret), claimsFor('127.0.0.1', nowSeconds(), { src, sub, username: 'kirk' }), stack.secret)}`;
    for (const [cookie, expected] of [
      [session, 'local:kirk'],
      [cookieFor('oidc'), `oidc:${sub}`],
      [cookieFor('azure'), `azure:${sub}`],
      [cookieFor('tableau'), 'tableau:kirk'],
    ]) {
      stack.upstream.reset();
      const res = await stack.request('GET', '/', [['accept', 'application/json'], ['cookie', cookie!], ['x-payload-user', 'local:spock']]);
      expect(res.status).toBe(200);
      expect(stack.upstream.seen[0]!.headers['x-payload-user']).toBe(expected);
    }
  });

  test('a user in 1,000 groups with long, non-ASCII names and commas: every name arrives as one item', async () => {
    const groups: string[] = [];
    for (let i = 0; i < 1000; i++) groups.push(`Abteilung ${i} Ärzte, Köln – 100% Vertrieb/Außendienst Nordrhein-Westfalen`);
    groups.push('Sales,Federation', 'Zoë "Ops" <EU>', '日本 チーム', '🚀 Launch');
    const token = signWith(headerSegmentFor(stack.secret), claimsFor('127.0.0.1', nowSeconds(), { groups }), stack.secret);
    const res = await stack.request('GET', '/', { accept: 'application/json', cookie: `gw_session=${token}` });
    expect(res.status).toBe(200);
    const header = stack.upstream.seen[0]!.headers['x-payload-groups'] as string;
    // Node hands header bytes over as latin1: the value must be plain ASCII to arrive intact.
    expect(header).toMatch(/^[\x20-\x7e]+$/);
    const items = header.split(',');
    expect(items).toHaveLength(groups.length);
    expect(items.map((item) => decodeURIComponent(item))).toEqual(groups);
    expect(items.at(-4)).toBe('Sales%2CFederation');
  });
});
