#!/usr/bin/env node
// Builds the njs gate: njs/src/index.ts -> njs/dist/gate.js (what nginx's js_import loads), the Tableau
// /api/ pass-through njs/src/tableau.ts -> njs/dist/tableau.js (imported in that location only), and the
// njs CLI test runner njs/test/run-in-njs.ts -> njs/dist/gate-tests.js, which imports the shipped
// ./gate.js rather than a copy. Then proves that njs 0.7.9 really loads the bundle: esbuild's
// output is ES2017, but njs accepts only a subset of it (see /work/shared/njs-notes.md).
//
// It also bundles njs/test/bench-in-njs.ts -> njs/dist/gate-bench.js (`njs njs/dist/gate-bench.js`).
//
// Usage: node scripts/build-njs.mjs   (prints one line per artifact with its size)
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'njs', 'dist');
const gateOut = join(dist, 'gate.js');
const tableauOut = join(dist, 'tableau.js');
const testsOut = join(dist, 'gate-tests.js');
const benchOut = join(dist, 'gate-bench.js');

const common = {
  bundle: true,
  format: 'esm',
  target: 'es2017',
  platform: 'neutral',
  // Whitespace only. Every byte is parsed again on every request (njs clones the VM per request),
  // so the bundle stays small; identifiers and syntax are left alone so that njs error messages and
  // line numbers stay readable and esbuild cannot introduce syntax njs rejects.
  minifyWhitespace: true,
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
};

/** Prints the reason and exits non-zero, deleting `badArtifact` so nothing can ship it. */
function fail(message, badArtifact) {
  if (badArtifact) rmSync(badArtifact, { force: true });
  console.error('build-njs: ' + message);
  process.exit(1);
}

/** njs rejects `export { x as default }` ("Non-default export is not supported"). */
function rewriteDefaultExport(file) {
  const source = readFileSync(file, 'utf8');
  const pattern = /export\s*\{\s*([A-Za-z_$][\w$]*)\s+as\s+default\s*\}\s*;?/g;
  const matches = source.match(pattern) || [];
  if (matches.length !== 1 || /\bexport\s*\{/.test(source.replace(pattern, ''))) {
    fail(relative(root, file) + ': expected exactly one `export { x as default }` and no other exports', file);
  }
  writeFileSync(file, source.replace(pattern, 'export default $1;'));
}

function runNjs(args, artifact) {
  try {
    return execFileSync('njs', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    if (e.code === 'ENOENT') fail('the njs CLI is not installed (Debian: apt-get install njs); cannot prove the bundle loads', artifact);
    fail('njs rejected ' + relative(root, artifact) + ':\n' + String(e.stdout || '') + String(e.stderr || e.message), artifact);
  }
}

/** Loads a bundle in the njs CLI the way nginx would and checks that it exports `fn`. */
function verifyLoads(artifact, fn) {
  const name = relative(dist, artifact);
  const dir = mkdtempSync(join(tmpdir(), 'njs-load-'));
  try {
    const probe = join(dir, 'probe.js');
    writeFileSync(
      probe,
      `import m from '${name}';\n` +
        `if (typeof m !== 'object' || typeof m.${fn} !== 'function') throw new Error('${name} must export default { ${fn} }');\n` +
        "console.log('njs-load-ok');\n",
    );
    const out = runNjs(['-p', dist, probe], artifact);
    if (out.indexOf('njs-load-ok') < 0) fail('njs did not load ' + relative(root, artifact) + ':\n' + out, artifact);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(file) {
  console.log(relative(root, file) + ' ' + statSync(file).size + ' bytes');
}

// Four modules (and the gate's njs >= 0.8 variant): the gate (every protected request), the Tableau /api/ pass-through, the renewal's
// second half and the revocation poller (njs >= 0.8), which nginx imports in their own locations only, so the gate's requests never build
// their functions.
for (const [entry, outfile, fn] of [
  ['index.ts', gateOut, 'check'],
  ['tableau.ts', tableauOut, 'api'],
  // The gate for njs >= 0.8 with the revocation dict (NJS_REVOCATIONS=on); installed as gate.js then.
  ['index-njs08.ts', join(dist, 'gate-njs08.js'), 'check'],
  ['renew.ts', join(dist, 'renew.js'), 'resume'],
  // njs >= 0.8 only (nginx/njs08/); it loads in 0.7.9 too, which the check below proves.
  ['revocations.ts', join(dist, 'revocations.js'), 'poll'],
  // make bench only, never shipped: scenario (i8), the gate with a verified-token cache (njs >= 0.8).
  // Absent where only njs/ is copied (the nginx image's build stage): then it is not built.
  [join('..', '..', 'bench', 'njs', 'gate-verified-cache.ts'), join(dist, 'bench-gate-verified-cache.js'), 'check'],
].filter(([entry]) => !entry.startsWith('..') || existsSync(join(root, 'njs', 'src', entry)))) {
  await build({
    ...common,
    entryPoints: [join(root, 'njs', 'src', entry)],
    outfile,
    external: ['crypto'],
  });
  rewriteDefaultExport(outfile);
  verifyLoads(outfile, fn);
  report(outfile);
}

// The runner and the benchmark must exercise the shipped bundle, not a second copy of the gate.
for (const [entry, outfile] of [
  ['run-in-njs.ts', testsOut],
  ['bench-in-njs.ts', benchOut],
]) {
  await build({
    ...common,
    entryPoints: [join(root, 'njs', 'test', entry)],
    outfile,
    external: ['crypto', './gate.js', './gate-njs08.js', './tableau.js'],
    loader: { '.txt': 'text' },
  });
  if (!/from\s*"\.\/gate\.js"/.test(readFileSync(outfile, 'utf8'))) fail(relative(root, outfile) + ' does not import ./gate.js');
  report(outfile);
}
