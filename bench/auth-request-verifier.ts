/**
 * The verifier behind the auth_request peers of the benchmark (bench/peers.ts), the pattern of
 * oauth2-proxy/Authelia-style setups reduced to its minimum: a node:http service that checks the
 * session JWT and answers 200 with identity headers, or 401. Two routes, one process:
 *   /verify-jsonwebtoken  peer (c0), as such a verifier is usually written: jsonwebtoken.verify
 *                         (KeyObject secret, HS256 only), then the IP claim;
 *   /verify               peer (c) and (f), as a tuned one is: one HMAC-SHA256 with a KeyObject made
 *                         once, a constant-time compare, then the same claim checks as the Lua peer
 *                         (bench/lua/bench_jwt_gate.lua) and our gate: exp, nbf, iat and the maximum
 *                         session age with leeway, sub/username/groups types, the IP claim. Answers
 *                         with `Content-Length: 0` (so nginx keeps the connection) and no Date header.
 * Run: tsx bench/auth-request-verifier.ts PORT (stdin: JSON {secret, header, cookie, leeway, maxAge}).
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import jwt from 'jsonwebtoken';

interface VerifierConfig {
  secret: string;
  /** The JWT header segment of the key (compared as a string, never decoded). */
  header: string;
  cookie: string;
  leeway: number;
  maxAge: number;
}

type Claims = Record<string, unknown>;

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** The single `name=` pair of the Cookie header; undefined when absent or present twice. */
function sessionCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  let value: string | undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
    if (value !== undefined) return undefined;
    value = pair.slice(eq + 1).trim();
  }
  return value;
}

/** Claims of a token that passes every check, else undefined. */
function verifyTuned(token: string, cfg: VerifierConfig, key: KeyObject, remoteAddr: string | undefined): Claims | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== cfg.header || parts[2].length !== 43 || !BASE64URL.test(parts[1]) || !BASE64URL.test(parts[2])) return undefined;
  const expected = createHmac('sha256', key).update(`${parts[0]}.${parts[1]}`).digest('base64url');
  if (!timingSafeEqual(Buffer.from(expected), Buffer.from(parts[2]))) return undefined;
  let c: Claims;
  try {
    c = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Claims;
  } catch {
    return undefined;
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return undefined;
  const now = Math.floor(Date.now() / 1000);
  const { exp, nbf, iat } = c;
  if (typeof exp !== 'number' || now > exp + cfg.leeway) return undefined;
  if (nbf !== undefined && (typeof nbf !== 'number' || now + cfg.leeway < nbf)) return undefined;
  if (typeof iat !== 'number' || !Number.isInteger(iat) || now - iat < -cfg.leeway || now - iat > cfg.maxAge + cfg.leeway) return undefined;
  if (!nonEmpty(c.sub) || !nonEmpty(c.username)) return undefined;
  if (c.groups !== undefined && !(Array.isArray(c.groups) && c.groups.every((g) => typeof g === 'string'))) return undefined;
  return c.ip === remoteAddr ? c : undefined;
}

function verifyJsonwebtoken(token: string, key: KeyObject, remoteAddr: string | undefined): Claims | undefined {
  try {
    const claims = jwt.verify(token, key, { algorithms: ['HS256'] }) as jwt.JwtPayload;
    return claims.ip === remoteAddr ? claims : undefined;
  } catch {
    return undefined;
  }
}

function identityHeaders(c: Claims): Record<string, string> {
  return {
    'x-auth-user': `${String(c.src)}:${String(c.username)}`,
    'x-auth-username': String(c.username),
    'x-auth-email': String(c.email ?? ''),
    'x-auth-groups': Array.isArray(c.groups) ? c.groups.join(',') : '',
  };
}

const port = Number(process.argv[2]);
const chunks: Buffer[] = [];
process.stdin.on('data', (c: Buffer) => chunks.push(c));
process.stdin.on('end', () => {
  const cfg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as VerifierConfig;
  const key = createSecretKey(Buffer.from(cfg.secret, 'utf8'));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const token = sessionCookie(req.headers.cookie, cfg.cookie);
    const remoteAddr = req.headers['x-real-ip'] as string | undefined;
    const untuned = req.url === '/verify-jsonwebtoken';
    const claims = token === undefined ? undefined : untuned ? verifyJsonwebtoken(token, key, remoteAddr) : verifyTuned(token, cfg, key, remoteAddr);
    const headers: Record<string, string> = claims === undefined ? {} : identityHeaders(claims);
    if (!untuned) {
      res.sendDate = false;
      // Without it node answers `Transfer-Encoding: chunked` (an empty chunked body). nginx never
      // reads the body of an auth_request answer, so it cannot reuse that connection and closes it:
      // `keepalive` in the upstream then does nothing, and every request opens a new TCP connection.
      headers['content-length'] = '0';
    }
    res.writeHead(claims === undefined ? 401 : 200, headers);
    res.end();
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, '127.0.0.1', () => console.log('verifier ready'));
});
