import { runGateFilesCli } from './gate-files-cli.js';

// `npm run gate-files` (in a container: node --import tsx auth-service/src/cli/gate-files.ts); all
// logic lives in gate-files-cli.ts so tests can run it in-process.
process.exitCode = await runGateFilesCli(process.argv.slice(2), { stderr: process.stderr, env: process.env });
