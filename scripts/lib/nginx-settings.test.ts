import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYSTEM_CA_FILE, httpsSettingsFromEnv, httpsTemplateValues, nginxSettingsFromEnv, parseUpstream, renderTemplate, revocationsFromEnv, statusSettingsFromEnv, tableauApiPathFromEnv, upstreamSettingsFromEnv, wafSessionCookiePattern, wafSettingsFromEnv } from './nginx-runtime.js';

describe('nginxSettingsFromEnv', () => {
  it('gives the documented defaults for unset and empty variables', () => {
    expect(nginxSettingsFromEnv({ TABLEAU_API_MAX_BODY_MB: '' })).toEqual({
      settings: { TABLEAU_API_TIMEOUT_SECONDS: '300', TABLEAU_API_MAX_BODY_MB: '64', TABLEAU_API_PATH: '/api/' },
      problems: [],
    });
  });
  it('takes whole numbers within the bounds', () => {
    expect(nginxSettingsFromEnv({ TABLEAU_API_TIMEOUT_SECONDS: '3600', TABLEAU_API_MAX_BODY_MB: '1' }).problems).toEqual([]);
  });
  it.each([
    ['a directive injection', '60s; proxy_pass http://evil'],
    ['a unit suffix', '60s'],
    ['zero', '0'],
    ['above the bounds', '5000'],
    ['a negative number', '-1'],
    ['a fraction', '1.5'],
  ])('refuses %s, reporting every bad variable at once', (_name, value) => {
    const { problems } = nginxSettingsFromEnv({ TABLEAU_API_TIMEOUT_SECONDS: value, TABLEAU_API_MAX_BODY_MB: value });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toBe(`TABLEAU_API_TIMEOUT_SECONDS: must be a whole number from 1 to 3600 (received ${JSON.stringify(value)})`);
  });
});

describe('tableauApiPathFromEnv', () => {
  it.each([
    ['unset: Tableau\'s own /api/', undefined, '/api/'],
    ['empty: the default', ' ', '/api/'],
    ['off: no pass-through location, the app keeps /api/', 'off', 'off'],
    ['another prefix', '/tableau-api/', '/tableau-api/'],
    ['a nested prefix', '/bi/tableau.v3/', '/bi/tableau.v3/'],
  ])('takes %s', (_name, value, path) => {
    expect(tableauApiPathFromEnv({ TABLEAU_API_PATH: value })).toEqual({ path, problem: null });
  });
  it.each([
    ['a directive injection', '/api/ { return 200; } location /x/'],
    ['an nginx variable', '/$host/'],
    ['a regex location', '~ ^/api/'],
    ['no trailing slash (would also match /apix)', '/tableau-api'],
    ['no leading slash', 'tableau-api/'],
    ['the whole site', '/'],
    ['a dot segment', '/a/../'],
    ['the gate\'s own paths', '/_gate/api/'],
    ['the sign-in paths', '/auth/tableau/'],
    ['OFF in capitals (a typo is not off)', 'OFF'],
  ])('refuses %s, naming the variable and the value', (_name, value) => {
    const { path, problem } = tableauApiPathFromEnv({ TABLEAU_API_PATH: value });
    expect(path).toBe('/api/');
    expect(problem).toMatch(/^TABLEAU_API_PATH: must be off, or a path prefix /);
    expect(problem!.endsWith(`(received ${JSON.stringify(value)})`)).toBe(true);
  });
  it('is reported with the other nginx settings, all at once', () => {
    expect(nginxSettingsFromEnv({ TABLEAU_API_PATH: '/x', TABLEAU_API_MAX_BODY_MB: '0' }).problems.map((p) => p.split(':')[0])).toEqual(['TABLEAU_API_MAX_BODY_MB', 'TABLEAU_API_PATH']);
  });
});

describe('renderTemplate', () => {
  const base = { PROXY_LISTEN: '8080', APP_UPSTREAM: 'app:5000', AUTH_UPSTREAM: 'auth:3001' };
  it('fills the Tableau limits with their defaults when a caller (e.g. an old template-vars.json) has none', () => {
    expect(renderTemplate('${TABLEAU_API_TIMEOUT_SECONDS}s ${TABLEAU_API_MAX_BODY_MB}m $uri', base)).toBe('300s 64m $uri');
  });
});

describe('parseUpstream (APP_UPSTREAM)', () => {
  it.each([
    ['host:port, the form before https upstreams (plain http)', 'demo-app:5000', { scheme: 'http', server: 'demo-app:5000', host: 'demo-app' }],
    ['http:// with its default port', 'http://app.internal', { scheme: 'http', server: 'app.internal:80', host: 'app.internal' }],
    ['https:// with its default port', 'https://tableau.corp.example', { scheme: 'https', server: 'tableau.corp.example:443', host: 'tableau.corp.example' }],
    ['https:// with a port and a trailing slash', 'HTTPS://app.internal:8443/', { scheme: 'https', server: 'app.internal:8443', host: 'app.internal' }],
    ['an IPv4 address', 'https://10.1.2.3:8443', { scheme: 'https', server: '10.1.2.3:8443', host: '10.1.2.3' }],
    ['a bracketed IPv6 address', 'https://[2001:db8::7]:8443', { scheme: 'https', server: '[2001:db8::7]:8443', host: '2001:db8::7' }],
    ['a unix socket', 'unix:/run/app.sock', { scheme: 'http', server: 'unix:/run/app.sock', host: '' }],
  ])('reads %s', (_name, value, parsed) => {
    expect(parseUpstream(value)).toEqual(parsed);
  });
  it.each([
    ['a path (nginx would send every request to it)', 'https://app.internal/base'],
    ['credentials', 'https://user:pw@app.internal'],
    ['another scheme', 'ftp://app.internal'],
    ['a directive injection', 'app:5000; proxy_pass http://evil'],
    ['a port out of range', 'https://app.internal:70000'],
    ['a query', 'https://app.internal/?x=1'],
    ['an empty host', 'https://:443'],
  ])('refuses %s', (_name, value) => {
    expect(parseUpstream(value)).toBeNull();
  });
});

describe('upstreamSettingsFromEnv (APP_UPSTREAM, UPSTREAM_CA_FILE, TABLEAU_CA_FILE)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-upstream-settings-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  const key = join(dir, 'key.pem');
  writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n');

  it('is empty by default (make up keeps its demo app; the CA files default to the system store)', () => {
    expect(upstreamSettingsFromEnv({ APP_UPSTREAM: '', UPSTREAM_CA_FILE: '' })).toEqual({ settings: {}, problems: [] });
  });
  it('takes an https upstream with its CA file, and a CA file for Tableau', () => {
    expect(upstreamSettingsFromEnv({ APP_UPSTREAM: 'https://app.internal:8443', UPSTREAM_CA_FILE: ca, TABLEAU_CA_FILE: ca })).toEqual({
      settings: { APP_UPSTREAM: 'https://app.internal:8443', UPSTREAM_CA_FILE: ca, TABLEAU_CA_FILE: ca },
      problems: [],
    });
  });
  it('reports every problem at once, with the variable and the value received', () => {
    expect(upstreamSettingsFromEnv({ APP_UPSTREAM: 'https://app.internal/x', UPSTREAM_CA_FILE: join(dir, 'missing.pem'), TABLEAU_CA_FILE: key }).problems).toEqual([
      `APP_UPSTREAM: must be host:port, http://host[:port] or https://host[:port] (no path), e.g. https://app.internal:8443 (received "https://app.internal/x")`,
      `UPSTREAM_CA_FILE: cannot read the file (ENOENT) (received ${JSON.stringify(join(dir, 'missing.pem'))})`,
      `TABLEAU_CA_FILE: must be a PEM file of CA certificates (-----BEGIN CERTIFICATE-----) (received ${JSON.stringify(key)})`,
    ]);
  });
  it('refuses a CA file for a plain http upstream (nothing would check it)', () => {
    expect(upstreamSettingsFromEnv({ APP_UPSTREAM: 'app:5000', UPSTREAM_CA_FILE: ca }).problems).toEqual([
      `UPSTREAM_CA_FILE: only applies with an https:// APP_UPSTREAM (received ${JSON.stringify(ca)})`,
    ]);
  });
  it('refuses a CA path that would end the nginx directive', () => {
    expect(upstreamSettingsFromEnv({ APP_UPSTREAM: 'https://app', UPSTREAM_CA_FILE: '/x.pem; include /etc/passwd' }).problems).toEqual([
      'UPSTREAM_CA_FILE: must be a file path without spaces, quotes or ; { } $ # \\ (received "/x.pem; include /etc/passwd")',
    ]);
  });
});

describe('renderTemplate with an https APP_UPSTREAM', () => {
  it('renders the upstream server as host:port and the scheme, and the Tableau trust store', () => {
    const vars = { PROXY_LISTEN: '8080', APP_UPSTREAM: 'https://app.internal', AUTH_UPSTREAM: 'auth:3001' };
    expect(renderTemplate('server ${APP_UPSTREAM}; ${APP_UPSTREAM_SCHEME}://protected_app/ ${TABLEAU_CA_FILE}', vars)).toBe(`server app.internal:443; https://protected_app/ ${SYSTEM_CA_FILE}`);
    expect(renderTemplate('${APP_UPSTREAM_SCHEME}', { ...vars, APP_UPSTREAM: '127.0.0.1:5000' })).toBe('http');
  });
});

describe('revocationsFromEnv', () => {
  it('is off unless NJS_REVOCATIONS is exactly on', () => {
    expect(revocationsFromEnv({})).toEqual({ revocations: false, problems: [] });
    expect(revocationsFromEnv({ NJS_REVOCATIONS: '' })).toEqual({ revocations: false, problems: [] });
    expect(revocationsFromEnv({ NJS_REVOCATIONS: 'off' })).toEqual({ revocations: false, problems: [] });
    expect(revocationsFromEnv({ NJS_REVOCATIONS: 'on' })).toEqual({ revocations: true, problems: [] });
  });

  it.each(['true', 'ON', '1', 'auto'])('refuses NJS_REVOCATIONS=%s, naming the variable and the value', (value) => {
    expect(revocationsFromEnv({ NJS_REVOCATIONS: value })).toEqual({
      revocations: false,
      problems: [`NJS_REVOCATIONS: must be on (njs >= 0.8 only) or off (received ${JSON.stringify(value)})`],
    });
  });
});

describe('httpsSettingsFromEnv', () => {
  it('is plain http by default: no certificate, no balancer, the documented defaults', () => {
    expect(httpsSettingsFromEnv({})).toEqual({ settings: { HTTPS_PORT: '8443', HSTS_MAX_AGE: '31536000', HSTS_INCLUDE_SUBDOMAINS: 'off' }, problems: [] });
  });
  it('takes both certificate files, made absolute, and the balancers', () => {
    const { settings, problems } = httpsSettingsFromEnv({ TLS_CERT_FILE: '/etc/gateway/certs/tls.crt', TLS_KEY_FILE: 'certs/tls.key', TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.7,2001:db8::/32' });
    expect(problems).toEqual([]);
    expect(settings.TLS_CERT_FILE).toBe('/etc/gateway/certs/tls.crt');
    expect(settings.TLS_KEY_FILE).toBe(`${process.cwd()}/certs/tls.key`);
    expect(settings.TRUSTED_PROXIES).toBe('10.0.0.0/8,192.0.2.7,2001:db8::/32');
  });
  it.each([
    ['a certificate without its key', { TLS_CERT_FILE: '/c.crt' }, 'TLS_KEY_FILE: set TLS_CERT_FILE and TLS_KEY_FILE together (received nothing for TLS_KEY_FILE)'],
    ['a path that would end the directive', { TLS_CERT_FILE: '/c.crt; include /etc/passwd', TLS_KEY_FILE: '/c.key' }, 'TLS_CERT_FILE: must be a file path without spaces, quotes or ; { } $ # \\ (received "/c.crt; include /etc/passwd")'],
    ['a port out of range', { HTTPS_PORT: '70000' }, 'HTTPS_PORT: must be a whole number from 1 to 65535 (received "70000")'],
    ['an HSTS max-age with a unit', { HSTS_MAX_AGE: '1y' }, 'HSTS_MAX_AGE: must be a whole number from 0 to 63072000 (received "1y")'],
    ['a yes for on', { HSTS_INCLUDE_SUBDOMAINS: 'yes' }, 'HSTS_INCLUDE_SUBDOMAINS: must be on or off (received "yes")'],
    ['a balancer by name (nginx would trust whatever it resolves to)', { TRUSTED_PROXIES: 'lb.internal' }, 'TRUSTED_PROXIES: must be comma-separated IP addresses or CIDR ranges, e.g. 10.0.0.0/8,192.0.2.7 (received "lb.internal")'],
    ['a range with too many bits', { TRUSTED_PROXIES: '10.0.0.0/33' }, 'TRUSTED_PROXIES: must be comma-separated IP addresses or CIDR ranges, e.g. 10.0.0.0/8,192.0.2.7 (received "10.0.0.0/33")'],
  ])('refuses %s', (_name, env, problem) => {
    expect(httpsSettingsFromEnv(env).problems).toEqual([problem]);
  });
});

describe('httpsTemplateValues', () => {
  const base = { PROXY_LISTEN: '127.0.0.1:8080', APP_UPSTREAM: 'app:5000', AUTH_UPSTREAM: 'auth:3001' };
  it('renders nothing of nginx/https/ without a certificate or balancer', () => {
    expect(httpsTemplateValues(base).files).toEqual({ tls: false, hsts: false, balancer: false });
  });
  it('listens on PROXY_LISTEN\'s address, and redirects with the port unless it is 443', () => {
    const tls = { ...base, TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k' };
    expect(httpsTemplateValues(tls).values).toMatchObject({ HTTPS_LISTEN: '127.0.0.1:8443', HTTPS_REDIRECT_PORT: ':8443', HSTS_HEADER: 'max-age=31536000' });
    expect(httpsTemplateValues({ ...tls, PROXY_LISTEN: '80', HTTPS_PORT: '443' }).values).toMatchObject({ HTTPS_LISTEN: '443', HTTPS_REDIRECT_PORT: '' });
    expect(httpsTemplateValues({ ...tls, PROXY_LISTEN: '[::1]:8080' }).values.HTTPS_LISTEN).toBe('[::1]:8443');
  });
  it('HSTS: includeSubDomains only when asked, none at max-age 0', () => {
    const tls = { ...base, TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k' };
    expect(httpsTemplateValues({ ...tls, HSTS_INCLUDE_SUBDOMAINS: 'on' }).values.HSTS_HEADER).toBe('max-age=31536000; includeSubDomains');
    expect(httpsTemplateValues({ ...tls, HSTS_MAX_AGE: '0' }).files).toEqual({ tls: true, hsts: false, balancer: false });
  });
  it('one set_real_ip_from and one geo entry per balancer', () => {
    const { files, values } = httpsTemplateValues({ ...base, TRUSTED_PROXIES: '10.0.0.0/8,192.0.2.7' });
    expect(files.balancer).toBe(true);
    expect(values.TRUSTED_PROXIES_REAL_IP).toBe('set_real_ip_from 10.0.0.0/8;\nset_real_ip_from 192.0.2.7;');
    expect(values.TRUSTED_PROXIES_GEO).toBe('    10.0.0.0/8 1;\n    192.0.2.7 1;');
  });
});

describe('statusSettingsFromEnv', () => {
  it('is off when NGINX_STATUS_PORT is unset or empty, and takes a TCP port', () => {
    expect(statusSettingsFromEnv({})).toEqual({ settings: {}, problems: [] });
    expect(statusSettingsFromEnv({ NGINX_STATUS_PORT: '' })).toEqual({ settings: {}, problems: [] });
    expect(statusSettingsFromEnv({ NGINX_STATUS_PORT: '8081' })).toEqual({ settings: { NGINX_STATUS_PORT: '8081' }, problems: [] });
  });

  it.each(['0', '65536', '80;', '127.0.0.1:8081', 'on'])('refuses %j, naming the variable and the value', (value) => {
    expect(statusSettingsFromEnv({ NGINX_STATUS_PORT: value })).toEqual({
      settings: {},
      problems: [`NGINX_STATUS_PORT: must be a TCP port 1-65535, or unset for no status listener (received ${JSON.stringify(value)})`],
    });
  });
});

describe('wafSettingsFromEnv', () => {
  it("uses the launcher's default mode and paranoia level 1 when unset or empty", () => {
    expect(wafSettingsFromEnv({}, 'DetectionOnly')).toEqual({ settings: { WAF_MODE: 'DetectionOnly', WAF_PARANOIA_LEVEL: '1' }, problems: [] });
    expect(wafSettingsFromEnv({ WAF_MODE: '', WAF_PARANOIA_LEVEL: ' ' }, 'On')).toEqual({ settings: { WAF_MODE: 'On', WAF_PARANOIA_LEVEL: '1' }, problems: [] });
  });
  it.each([
    ['On', '4'],
    ['DetectionOnly', '2'],
    ['Off', '1'],
  ])('takes WAF_MODE=%s with paranoia level %s', (mode, level) => {
    expect(wafSettingsFromEnv({ WAF_MODE: mode, WAF_PARANOIA_LEVEL: level }, 'On')).toEqual({ settings: { WAF_MODE: mode, WAF_PARANOIA_LEVEL: level }, problems: [] });
  });
  it.each([
    ['a lower-case mode (ModSecurity spells them so)', 'on', '1'],
    ['a directive injection in the mode', 'On; load_module x', '1'],
    ['paranoia level 0', 'On', '0'],
    ['paranoia level 5', 'On', '5'],
    ['a directive injection in the level', 'On', '1"; SecRuleEngine Off'],
  ])('refuses %s', (_name, mode, level) => {
    const { problems } = wafSettingsFromEnv({ WAF_MODE: mode, WAF_PARANOIA_LEVEL: level }, 'On');
    expect(problems).toHaveLength(1);
  });
  it('reports both bad variables at once, with the value received', () => {
    expect(wafSettingsFromEnv({ WAF_MODE: 'Block', WAF_PARANOIA_LEVEL: 'high' }, 'On').problems).toEqual([
      'WAF_MODE: must be On, DetectionOnly or Off (received "Block")',
      'WAF_PARANOIA_LEVEL: must be 1, 2, 3 or 4 (received "high")',
    ]);
  });
});

describe('wafSessionCookiePattern', () => {
  it.each([
    ['the default name and its __Host- form when SESSION_COOKIE_NAME is unset', undefined, '^(?:__Host-)?(?:__Secure-)?gw_session$'],
    ['a plain SESSION_COOKIE_NAME, dots escaped', 'corp.session', '^corp[.]session$'],
    ['the default for a name with characters a pattern would misread', "a'b|c", '^(?:__Host-)?(?:__Secure-)?gw_session$'],
  ])('gives %s', (_name, cookie, pattern) => {
    expect(wafSessionCookiePattern(cookie)).toBe(pattern);
  });
  it('is passed on by wafSettingsFromEnv only when SESSION_COOKIE_NAME is set', () => {
    expect(wafSettingsFromEnv({ SESSION_COOKIE_NAME: 'corp.session' }, 'On').settings.WAF_SESSION_COOKIE).toBe('corp.session');
    expect(wafSettingsFromEnv({}, 'On').settings).not.toHaveProperty('WAF_SESSION_COOKIE');
  });
});
