// Verifies the gateway's X-Gateway-Assertion in your app (docs/protect-your-app.md), with jose.
// Usage as a check: GATEWAY_URL=https://gw.example APP_AUDIENCE=finance node verify-assertion.mjs <assertion>
import { createRemoteJWKSet, jwtVerify } from 'jose';

const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080';
// Fetched once, cached, and fetched again when a token names an unknown kid (key rotation).
const jwks = createRemoteJWKSet(new URL('/.well-known/gateway/jwks.json', gateway));

/** The verified identity, or an exception: wrong key, algorithm, issuer, audience, or expired. */
export async function verifyAssertion(assertion) {
  const { payload } = await jwtVerify(assertion, jwks, {
    algorithms: ['ES256', 'EdDSA'],
    issuer: process.env.GATEWAY_ISSUER ?? 'identity-gateway', // PUBLIC_BASE_URL's origin when set
    audience: process.env.APP_AUDIENCE ?? 'identity-gateway', // your app's $gate_app name
    clockTolerance: 30, // SESSION_LEEWAY_SECONDS: the gateway forwards it that long past exp
  });
  return payload; // { sub, user, username, name, email, groups, src, sid, iat, exp, ... }
}

// In Express: const id = await verifyAssertion(req.get('X-Gateway-Assertion'));
if (process.argv[2]) console.log(JSON.stringify(await verifyAssertion(process.argv[2])));
