import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parseGroupsHeader, startDemoApp, type DemoApp } from './server.js';

let app: DemoApp;
let base: string;

beforeAll(async () => {
  app = await startDemoApp({ port: 0 });
  base = `http://127.0.0.1:${app.port}`;
});

afterAll(async () => {
  await app.close();
});

/** Header values are ByteStrings: send UTF-8 text as its raw bytes, the way nginx forwards it. */
interface HeaderCase {
  behaviour: string;
  headers: Record<string, string>;
}

function utf8Bytes(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

describe('demo app pages', () => {
  it.each<HeaderCase & { heading: string }>([
    {
      behaviour: 'greets the user by display name',
      headers: { 'X-Payload-name': 'James T. Kirk', 'X-Payload-username': 'kirk' },
      heading: '<h1>Welcome, James T. Kirk</h1>',
    },
    {
      behaviour: 'falls back to the username when no name is forwarded',
      headers: { 'X-Payload-name': '', 'X-Payload-username': 'kirk' },
      heading: '<h1>Welcome, kirk</h1>',
    },
    { behaviour: 'greets a guest when the gateway forwarded nothing', headers: {}, heading: '<h1>Welcome, guest</h1>' },
    {
      behaviour: 'escapes markup in the name (stored XSS through a display name)',
      headers: { 'X-Payload-name': '<script>alert(1)</script>' },
      heading: '<h1>Welcome, &lt;script&gt;alert(1)&lt;/script&gt;</h1>',
    },
    {
      behaviour: 'decodes UTF-8 names forwarded as raw bytes',
      headers: { 'X-Payload-name': utf8Bytes('José Ñúñez') },
      heading: '<h1>Welcome, José Ñúñez</h1>',
    },
  ])('home $behaviour', async ({ headers, heading }) => {
    const res = await fetch(`${base}/`, { headers });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await res.text()).toContain(heading);
  });

  it.each([
    { path: '/', title: '<title>Home · Demo app</title>', heading: '<h1>Welcome, kirk</h1>' },
    { path: '/federation', title: '<title>Federation · Demo app</title>', heading: '<h1>Federation members area</h1>' },
  ])('$path is an accessible page with a payload table and a sign-out button', async ({ path, title, heading }) => {
    const res = await fetch(`${base}${path}`, { headers: { 'X-Payload-username': 'kirk', 'X-Payload-groups': 'crew,officers' } });
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(html).toContain('<html lang="en">');
    expect(html).toContain(title);
    expect(html).toContain(heading);
    expect(html).toContain('<a href="/federation">');
    expect(html).toContain('<th scope="row">X-Payload-username</th><td>kirk</td>');
    expect(html).toContain('<th scope="row">X-Payload-groups</th><td>crew,officers</td>');
    expect(html).toContain('<ul><li>crew</li><li>officers</li></ul>');
    expect(html).toContain('<form method="post" action="/logout"><button type="submit">Sign out</button></form>');
    expect(html).toContain('<p>Cookies this app received (names only): none</p>');
  });

  it('lists the names of the cookies it received, never their values, and its DEMO_APP_NAME in the title', async () => {
    const named = await startDemoApp({ port: 0, name: 'Second app' });
    try {
      const res = await fetch(`http://127.0.0.1:${named.port}/`, { headers: { cookie: 'theme=dark; lang=<en>' } });
      const html = await res.text();
      expect(html).toContain('<title>Home · Second app</title>');
      expect(html).toContain('<p>Cookies this app received (names only): <code>theme</code>, <code>lang</code></p>');
      expect(html).not.toContain('dark');
    } finally {
      await named.close();
    }
  });

  it.each<HeaderCase & { contains: string }>([
    {
      behaviour: 'labels headers in canonical X-Payload-<claim> form whatever their case',
      headers: { 'X-PAYLOAD-USERNAME': 'kirk' },
      contains: '<th scope="row">X-Payload-username</th><td>kirk</td>',
    },
    {
      behaviour: 'escapes markup in header values',
      headers: { 'X-Payload-email': '"><img src=x onerror=alert(1)>' },
      contains: '<td>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</td>',
    },
    {
      behaviour: 'says so when no payload headers arrived',
      headers: {},
      contains: 'No <code>X-Payload-*</code> headers were received',
    },
  ])('federation $behaviour', async ({ headers, contains }) => {
    const html = await (await fetch(`${base}/federation`, { headers })).text();
    expect(html).toContain(contains);
  });

  it('shows no header outside the X-Payload- prefix (cookies, authorization)', async () => {
    const html = await (
      await fetch(`${base}/federation`, {
        headers: { Cookie: 'gw_session=secret-token', Authorization: 'Bearer secret', 'X-Payload-sub': 'u1' },
      })
    ).text();
    expect(html).not.toContain('secret');
    expect(html).toContain('<th scope="row">X-Payload-sub</th><td>u1</td>');
  });
});

describe('parseGroupsHeader', () => {
  it.each([
    ['no header', undefined, []],
    ['plain names', 'crew,officers', ['crew', 'officers']],
    ['a name with a comma stays one group', 'Sales%2CFederation,Crew', ['Sales,Federation', 'Crew']],
    ['percent and non-ASCII names', '100%25,Zo%C3%AB,%F0%9F%9A%80 Team', ['100%', 'Zoë', '🚀 Team']],
    ['an item that is not valid encoding is kept', 'a%zz', ['a%zz']],
  ])('%s', (_name, value, expected) => {
    expect(parseGroupsHeader(value)).toEqual(expected);
  });
});

describe('demo app routing', () => {
  it.each([
    { behaviour: 'answers the health check', method: 'GET', path: '/healthz', status: 200, body: 'ok' },
    { behaviour: 'answers 404 for unknown paths', method: 'GET', path: '/admin', status: 404, body: 'not found\n' },
    { behaviour: 'answers 404 for POST /logout (nginx routes it to the auth service)', method: 'POST', path: '/logout', status: 404, body: 'not found\n' },
    { behaviour: 'refuses other methods on pages', method: 'POST', path: '/', status: 405, body: 'method not allowed\n' },
    { behaviour: 'sends headers but no body for HEAD', method: 'HEAD', path: '/', status: 200, body: '' },
    { behaviour: 'ignores the query string when routing', method: 'GET', path: '/healthz?probe=1', status: 200, body: 'ok' },
  ])('$behaviour', async ({ method, path, status, body }) => {
    const res = await fetch(`${base}${path}`, { method });
    expect(res.status).toBe(status);
    expect(await res.text()).toBe(body);
    if (status === 405) expect(res.headers.get('allow')).toBe('GET, HEAD');
  });
});
