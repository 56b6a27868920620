import { runSessionsCli } from './sessions-cli.js';

// `npm run sessions -- <command>`; all logic lives in sessions-cli.ts so tests can run it in-process.
process.exitCode = await runSessionsCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
