import { runPolicyCli } from './policy-cli.js';

// `npm run policy -- <command>`; all logic lives in policy-cli.ts so tests can run it in-process.
process.exitCode = await runPolicyCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
