/**
 * The peers of `make bench` (bench/run.ts): what a user would pick instead of our njs gate, each set
 * up the way its best users do.
 *   (c0) auth_request -> node:http + jsonwebtoken, as first measured: the whole client request's
 *        headers go to the verifier, which runs jsonwebtoken.verify.
 *   (c)  the same pattern tuned: keepalive to the verifier, no body, only the Cookie and the address
 *        sent, one precomputed-key HMAC in the verifier, no Date header.
 *   (f)  (c) plus nginx proxy_cache on the verifier's answer, valid 3 s, as oauth2-proxy's
 *        maintainers' recipe does with a few seconds' validity. That recipe keys on the session
 *        cookie alone ($cookie_NAME); here the key is the whole Cookie header and the client address:
 *        with $cookie_NAME a doubled session cookie, which the verifier refuses, rode on the cached
 *        answer of the first one (the bench's refusal check caught it), and the address keeps the IP
 *        binding.
 *   (g)  an OpenResty-style gate: Debian's libnginx-mod-http-lua, access_by_lua with an FFI HMAC
 *        (bench/lua/bench_jwt_gate.lua), in its own nginx (the modules load nowhere else).
 *   (a8), (b8) plain proxy and our gate on Debian 13's nginx 1.26 + njs 0.8.9, from the root that
 *        scripts/trixie-root.sh builds, run through chroot(8) (same network namespace, so loopback).
 *   (i8) a prototype on njs 0.8.9: the gate with a verified-token cache in js_shared_dict_zone
 *        (bench/njs/gate-verified-cache.ts), in a third nginx (gate.js is http-wide).
 * A peer whose packages are missing is skipped with the reason (startLuaPeer, startNjs08Peer);
 * `make deps-test` installs them and `make bench` builds the Debian 13 root.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepareNginxPrefix, REPO_ROOT, startNginx, type RunningNginx } from '../scripts/lib/nginx-runtime.js';

export const BENCH_COOKIE = 'gw_session';
/** Validity of a cached verifier answer in peer (f). */
export const AUTH_CACHE_SECONDS = 3;

/** The same token checks everywhere: the auth_request verifier and the Lua gate get these. */
export interface PeerTokenConfig {
  secret: string;
  /** The JWT header segment of the key. */
  header: string;
  cookie: string;
  leeway: number;
  maxAge: number;
}

/** A peer that could not run on this machine, and why. */
export interface Skipped {
  skipped: string;
}

/** One auth_request server: `verifyPath` on the verifier, `verifyLocation` the rest of its /_verify. */
function authRequestServer(comment: string, port: number, verifyPath: string, verifyLocation: string): string {
  return `
# ${comment}
server {
    listen 127.0.0.1:${port};
    access_log off;
    location = /_verify {
        internal;
        proxy_pass http://bench_verifier${verifyPath};
        proxy_pass_request_body off;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
${verifyLocation}
    }
    location / {
        auth_request /_verify;
        auth_request_set $auth_user $upstream_http_x_auth_user;
        auth_request_set $auth_username $upstream_http_x_auth_username;
        auth_request_set $auth_email $upstream_http_x_auth_email;
        auth_request_set $auth_groups $upstream_http_x_auth_groups;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-Payload-user $auth_user;
        proxy_set_header X-Payload-username $auth_username;
        proxy_set_header X-Payload-email $auth_email;
        proxy_set_header X-Payload-groups $auth_groups;
        proxy_pass http://bench_upstream;
    }
}
`;
}

/** Only what the verifier reads: the session cookie's header and the client address. */
const TUNED_VERIFY = `        proxy_pass_request_headers off;
        proxy_set_header Cookie $http_cookie;
        proxy_set_header X-Real-IP $remote_addr;`;

/** The servers of peers (c0), (c) and (f) and their verifier upstream, for the bench's main nginx. */
export function authRequestSites(ports: { verifier: number; authreqOriginal: number; authreq: number; authreqCached: number }): string {
  return `
upstream bench_verifier { server 127.0.0.1:${ports.verifier}; keepalive 64; }
proxy_cache_path temp/bench-auth levels=1 keys_zone=bench_auth:10m inactive=${AUTH_CACHE_SECONDS}s use_temp_path=off;
${authRequestServer('(c0) auth_request as first measured: every client header to the verifier, jsonwebtoken', ports.authreqOriginal, '/verify-jsonwebtoken', `        proxy_set_header Content-Length "";
        proxy_set_header X-Real-IP $remote_addr;`)}${authRequestServer('(c) auth_request tuned', ports.authreq, '/verify', TUNED_VERIFY)}${authRequestServer(`(f) (c) + proxy_cache of the verifier's answer, ${AUTH_CACHE_SECONDS} s, keyed on the Cookie header and the client address`, ports.authreqCached, '/verify', `${TUNED_VERIFY}
        proxy_cache bench_auth;
        proxy_cache_key "$http_cookie $remote_addr";
        proxy_cache_valid 200 401 ${AUTH_CACHE_SECONDS}s;`)}`;
}

const LUA_FILES = {
  'nginx module ndk (libnginx-mod-http-ndk)': '/usr/lib/nginx/modules/ndk_http_module.so',
  'nginx module lua (libnginx-mod-http-lua)': '/usr/lib/nginx/modules/ngx_http_lua_module.so',
  'nginx module headers-more (libnginx-mod-http-headers-more-filter)': '/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so',
  'resty.core (lua-resty-core)': '/usr/share/lua/5.1/resty/core.lua',
  'cjson (lua-cjson)': '/usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so',
};

/** The http-level more_clear_input_headers of the repo's gate.conf, so (g) strips the same client headers. */
function gateHeaderClearing(): string {
  const m = /^more_clear_input_headers[^;]*;/m.exec(readFileSync(join(REPO_ROOT, 'nginx', 'gate.conf'), 'utf8'));
  if (!m) throw new Error('nginx/gate.conf has no more_clear_input_headers directive');
  return m[0];
}

/** Lua string literal (JSON's escapes are valid in Lua for the ASCII values used here). */
const luaString = (s: string) => JSON.stringify(s);

/** Why peer (g) cannot run here (the packages missing), or null. */
export function luaPeerMissing(): string | null {
  const missing = Object.entries(LUA_FILES).filter(([, file]) => !existsSync(file)).map(([what]) => what);
  return missing.length === 0 ? null : `missing ${missing.join(', ')}: run \`make deps-test\``;
}

export interface LuaPeerOptions {
  port: number;
  /** The upstream's port; `serveUpstream` also serves it from this nginx (bench/instructions.ts). */
  upstreamPort: number;
  serveUpstream?: boolean;
  /** One process in the foreground (callgrind), else worker_processes auto like the gateway. */
  singleProcess?: boolean;
  token: PeerTokenConfig;
}

/** Writes peer (g)'s nginx.conf into `prefix`/conf (and creates logs/ and temp/). */
export function writeLuaPeerPrefix(prefix: string, o: LuaPeerOptions): void {
  for (const d of ['conf', 'logs', 'temp']) mkdirSync(join(prefix, d), { recursive: true });
  const upstreamServer = o.serveUpstream ? `    server { listen 127.0.0.1:${o.upstreamPort}; access_log off; location / { return 200 "hello from upstream\\n"; } }\n` : '';
  const conf = `
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
load_module /usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so;
${o.singleProcess ? 'worker_processes 1; daemon off; master_process off;' : 'worker_processes auto;'}
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path temp/client_body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    server_tokens off;
    ${gateHeaderClearing()}
    lua_package_path "${join(REPO_ROOT, 'bench', 'lua')}/?.lua;;";
    init_by_lua_block {
        require("bench_jwt_gate").configure({
            secret = ${luaString(o.token.secret)}, header = ${luaString(o.token.header)}, cookie = ${luaString(o.token.cookie)},
            leeway = ${o.token.leeway}, max_age = ${o.token.maxAge},
        })
    }
    upstream bench_upstream { server 127.0.0.1:${o.upstreamPort}; keepalive 64; }
${upstreamServer}    # (g) OpenResty-style gate
    server {
        listen 127.0.0.1:${o.port};
        access_log off;
        set $lua_gate_reason "";
        location / {
            access_by_lua_block { require("bench_jwt_gate").check() }
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://bench_upstream;
        }
    }
}
`;
  writeFileSync(join(prefix, 'conf', 'nginx.conf'), conf, { mode: 0o600 });
}

/** Starts peer (g), the Lua gate, in its own nginx under `dir`; or says which package is missing. */
export async function startLuaPeer(dir: string, o: LuaPeerOptions): Promise<RunningNginx | Skipped> {
  const missing = luaPeerMissing();
  if (missing !== null) return { skipped: missing };
  const prefix = join(dir, 'nginx-lua');
  writeLuaPeerPrefix(prefix, o);
  return startNginx(prefix, o.port);
}

/** The Debian 13 root of scripts/trixie-root.sh, if it is complete. */
export function trixieRoot(): string | Skipped {
  const root = process.env.GATEWAY_TRIXIE_ROOT || '/var/cache/gateway-trixie';
  return existsSync(join(root, '.gateway-trixie-ready')) ? root : { skipped: `no Debian 13 root at ${root}: run scripts/trixie-root.sh (as root; make bench does)` };
}

/** Scenario (i8)'s gate, built by scripts/build-njs.mjs from bench/njs/gate-verified-cache.ts (`make build`). */
export const VERIFIED_CACHE_GATE = join(REPO_ROOT, 'njs', 'dist', 'bench-gate-verified-cache.js');

/** The shared dict of scenario (i8): one MAC (43 characters) per session, evicted when full. */
export const VERIFIED_CACHE_ZONE = 'js_shared_dict_zone zone=gate_verified:8m timeout=3600s evict;';

/**
 * Starts the repo's config on the root's nginx 1.26 + njs 0.8.9 in a prefix inside the root:
 * (a8) and (b8), or with `gateBundle` (a built gate, installed as njs/gate.js) (i8). `gateSite` renders the
 * bench's servers for it; `writeRuntime` writes the gate's runtime files into the prefix's conf/
 * (the same ones as the main nginx).
 */
export async function startNjs08Peer(
  root: string,
  gateSite: string,
  firstPort: number,
  writeRuntime: (confDir: string, gateConfigFile: string) => Promise<void>,
  gateBundle?: string,
): Promise<RunningNginx> {
  const tmp = mkdtempSync(join(root, 'tmp', 'gw-bench-'));
  try {
    const { prefix, gateConfigFile } = prepareNginxPrefix({
      prefix: join(tmp, 'nginx'),
      vars: { PROXY_LISTEN: '127.0.0.1:9', APP_UPSTREAM: '127.0.0.1:9', AUTH_UPSTREAM: '127.0.0.1:9' },
      extraFiles: { 'sites/bench.conf': gateSite },
      revocations: false,
    });
    // The bench's servers only (the rendered gateway.conf would listen on PROXY_LISTEN).
    rmSync(join(prefix, 'conf', 'sites', 'gateway.conf'));
    await writeRuntime(join(prefix, 'conf'), gateConfigFile);
    if (gateBundle !== undefined) copyFileSync(gateBundle, join(prefix, 'conf', 'njs', 'gate.js'));
    const nginx = await startNginx(prefix, firstPort, 15_000, undefined, root);
    const stop = nginx.stop;
    nginx.stop = async () => {
      await stop();
      rmSync(tmp, { recursive: true, force: true });
    };
    return nginx;
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
