/**
 * Writes the files nginx loads: the branded pages it serves itself (pages/, see views/nginx-pages.ts), GATE_CONFIG_FILE (keys, cookie name, IP binding, ...) and,
 * next to it, the compiled access policy (policy.json). The auth service calls this at start-up;
 * `npm run gate-files` (cli/gate-files.ts) calls it alone, which is how a Kubernetes nginx pod gets
 * them (deploy/kubernetes: an init container of the auth image, same Secret and settings).
 */
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AuthConfig } from '../config.js';
import type { PageTheme } from '../views/html.js';
import { gatePolicyFor, policyRuntimeFile } from '../policy/policy-runtime.js';
import { renderNginxPages } from '../views/nginx-pages.js';
import { assertionJwks } from './assertion.js';
import { buildGateConfig, deriveKeyId, endedPreviousKeys, writeGateConfig, writeTextAtomically } from './gate-config.js';

/** The JWKS of the identity assertion, next to the gate config (nginx: conf/runtime/jwks.json). */
export function assertionJwksFile(gateConfigFile: string): string {
  return path.join(path.dirname(gateConfigFile), 'jwks.json');
}

/** The folder of nginx's own pages, next to the gate config (nginx: conf/runtime/pages/). */
export function nginxPagesDir(gateConfigFile: string): string {
  return path.join(path.dirname(gateConfigFile), 'pages');
}

/**
 * Writes nginx's pages (400, 403, 429, 50x for the app, 50x-auth for the sign-in service) with
 * BRAND_NAME and the theme into `dir` (created; its parent must exist). World-readable: nginx's
 * workers serve them, and they hold no secret. Returns the file names.
 */
export async function writeNginxPages(dir: string, brandName: string, theme: PageTheme): Promise<string[]> {
  // Not recursive: a missing GATE_CONFIG_FILE folder is an error (a typo), as for the gate config.
  await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  await chmod(dir, 0o755);
  const pages = renderNginxPages(brandName, theme);
  for (const [name, html] of Object.entries(pages)) await writeTextAtomically(path.join(dir, name), html, 0o644);
  return Object.keys(pages);
}

/**
 * Writes nginx's pages (pages/), then GATE_CONFIG_FILE and, next to it, the compiled access policy
 * (runtime/policy.json). Pages first: a launcher that waits for the gate config finds them too.
 */
export async function writeGateFiles(config: AuthConfig, logger: Logger, nowMs: number): Promise<void> {
  if (config.gateConfigFile === null) return;
  const pagesDir = nginxPagesDir(config.gateConfigFile);
  const pages = await writeNginxPages(pagesDir, config.brandName, config.pageTheme);
  logger.info({ event: 'pages_written', dir: pagesDir, pages: pages.length }, "nginx's pages written");
  const now = Math.floor(nowMs / 1000);
  for (const ended of endedPreviousKeys(config, now)) {
    // Never the secret: its key id (a one-way hash) and when it retired.
    logger.info(
      { event: 'previous_key_ended', kid: deriveKeyId(ended.secret), retired_at: new Date(ended.retiredAt * 1000).toISOString() },
      'a JWT_PREVIOUS_SECRETS key is past its retirement time: left out of the gate config (its sessions are refused); remove it from JWT_PREVIOUS_SECRETS',
    );
  }
  await writeGateConfig(config.gateConfigFile, buildGateConfig(config, now));
  logger.info({ event: 'gate_config_written', file: config.gateConfigFile }, 'gate config written');
  // The assertion's public keys, served by nginx at /.well-known/gateway/jwks.json (no secret:
  // world-readable); `{"keys":[]}` with assertions off, so the URL never 404s.
  const jwksFile = assertionJwksFile(config.gateConfigFile);
  await writeTextAtomically(jwksFile, `${JSON.stringify(assertionJwks(config.assertion))}\n`, 0o644);
  logger.info(
    { event: 'jwks_written', file: jwksFile, kids: config.assertion === null ? [] : [config.assertion.key.kid, ...config.assertion.previousKeys.map((k) => k.kid)] },
    config.assertion === null ? 'no ASSERTION_KEY_FILE: no identity assertion' : 'identity assertion keys published',
  );
  const policyFile = policyRuntimeFile(config.gateConfigFile);
  const ap = config.accessPolicy;
  await writeGateConfig(policyFile, gatePolicyFor(ap === null ? null : ap.compiled));
  if (ap === null) {
    logger.info({ event: 'policy_written', file: policyFile, policy: 'off' }, 'no POLICY_FILE: every valid session is allowed');
  } else {
    for (const w of ap.warnings) logger.warn({ event: 'policy_warning', source: ap.file }, w);
    logger.info({ event: 'policy_written', file: policyFile, source: ap.file, rules: ap.compiled.rules.length, default: ap.compiled.default }, 'access policy compiled');
  }
}
