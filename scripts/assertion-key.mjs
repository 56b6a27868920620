#!/usr/bin/env node
// `make assertion-key`: writes a new private key for the signed identity assertion (ASSERTION_KEY_FILE)
// as PEM (PKCS#8), mode 0600, and prints its public JWK's kid. Never overwrites a file.
//   node scripts/assertion-key.mjs [FILE] [es256|ed25519]   (default data/assertion-key.pem, es256)
import { createPublicKey, createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const file = process.argv[2] || 'data/assertion-key.pem';
const alg = (process.argv[3] || 'es256').toLowerCase();
if (alg !== 'es256' && alg !== 'ed25519') {
  console.error(`assertion-key: ASSERTION_KEY_ALG must be es256 or ed25519 (received ${JSON.stringify(alg)})`);
  process.exit(2);
}
const { privateKey } = alg === 'es256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
mkdirSync(dirname(file), { recursive: true });
try {
  writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
} catch (err) {
  console.error(`assertion-key: ${file}: ${err.code === 'EEXIST' ? 'exists; not overwritten (pick another file for a rotation)' : err.message}`);
  process.exit(1);
}
// The kid the auth service derives (RFC 7638 thumbprint), so the operator can match it in the JWKS.
const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
const kid = createHash('sha256').update(JSON.stringify(members)).digest('base64url').slice(0, 8);
console.log(`assertion-key: wrote ${file} (${alg === 'es256' ? 'ES256, P-256' : 'EdDSA, Ed25519'}, kid ${kid}); set ASSERTION_KEY_FILE=${file}`);
