import { runAuditCli } from './audit-cli.js';

// `npm run audit -- tail …`; all logic lives in audit-cli.ts so tests can run it in-process.
process.exitCode = await runAuditCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
