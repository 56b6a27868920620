/**
 * Peer (c) of the benchmark: the common auth_request pattern of oauth2-proxy/Authelia-style setups,
 * reduced to its minimum: a node:http service that verifies the same session JWT with jsonwebtoken
 * (KeyObject secret, HS256 only, IP claim checked) and answers 200/401 with identity headers.
 * Run: tsx bench/auth-request-verifier.ts PORT (secret on stdin).
 */
import { createSecretKey } from 'node:crypto';
import { createServer } from 'node:http';
import jwt from 'jsonwebtoken';

const port = Number(process.argv[2]);
const chunks: Buffer[] = [];
process.stdin.on('data', (c: Buffer) => chunks.push(c));
process.stdin.on('end', () => {
  const key = createSecretKey(Buffer.from(Buffer.concat(chunks).toString('utf8').trim(), 'utf8'));
  const server = createServer((req, res) => {
    const m = /(?:^|;\s*)gw_session=([^;]+)/.exec(req.headers.cookie ?? '');
    try {
      if (!m) throw new Error('missing');
      const claims = jwt.verify(m[1], key, { algorithms: ['HS256'] }) as jwt.JwtPayload;
      if (claims.ip !== req.headers['x-real-ip']) throw new Error('ip');
      res.writeHead(200, { 'x-auth-user': String(claims.username), 'x-auth-groups': (claims.groups as string[]).join(',') });
    } catch {
      res.writeHead(401);
    }
    res.end();
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, '127.0.0.1', () => console.log('verifier ready'));
});
