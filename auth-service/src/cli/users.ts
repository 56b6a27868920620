import { runUsersCli } from './users-cli.js';

// `npm run users -- <command>`; all logic lives in users-cli.ts so tests can run it in-process.
process.exitCode = await runUsersCli(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
