import { runStatusCli } from './status-cli.js';

// `npm run status [-- --json]`; all logic lives in status-cli.ts so tests can run it in-process.
process.exitCode = await runStatusCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
