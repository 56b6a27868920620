import type { DestinationStream } from 'pino';
import { loadConfig } from '../config.js';
import { createLogger, errorSummary } from '../logger.js';
import { writeGateFiles } from '../services/gate-files.js';

/**
 * The logic of `npm run gate-files` (the bin is gate-files.ts): load the auth service's whole
 * environment exactly as the service does (same validation, same errors), write GATE_CONFIG_FILE and
 * the compiled access policy next to it, and exit. It connects to nothing: DATABASE_URL is validated
 * but not used.
 *
 * Why: in Kubernetes the nginx pods share no volume with the auth service, so each nginx pod runs
 * this as an init container of the auth image, with the auth service's Secret and settings, into a
 * volume its nginx container reads (deploy/kubernetes/nginx-deployment.yaml). The two pods then
 * derive the gate config from one source and can never disagree about keys or cookie name.
 *
 * Exit codes: 0 written; 1 invalid configuration, GATE_CONFIG_FILE unset, or a file not writable;
 * 2 usage error.
 */

export interface GateFilesCliIo {
  stderr: { write(text: string): unknown };
  env: Record<string, string | undefined>;
  /** Where the JSON log lines go (default: stdout). */
  logStream?: DestinationStream;
  /** Clock in milliseconds since the epoch; Date.now when omitted. */
  now?: () => number;
}

const USAGE = `Usage: npm run gate-files

Writes GATE_CONFIG_FILE, the compiled access policy (policy.json, next to it; from POLICY_FILE) and
nginx's own pages (pages/, next to it; BRAND_NAME and the theme) from the same environment variables
as the auth service, then exits. Connects to nothing.
`;

export async function runGateFilesCli(argv: string[], io: GateFilesCliIo): Promise<number> {
  if (argv.length === 1 && (argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h')) {
    io.stderr.write(USAGE);
    return 0;
  }
  if (argv.length > 0) {
    io.stderr.write(`gate-files: takes no arguments (received ${JSON.stringify(argv.join(' '))})\n\n${USAGE}`);
    return 2;
  }
  const loaded = loadConfig(io.env);
  if (!loaded.ok) {
    io.stderr.write(`Invalid configuration:\n${loaded.errors.map((e) => `  - ${e}`).join('\n')}\n`);
    return 1;
  }
  const config = loaded.config;
  if (config.gateConfigFile === null) {
    io.stderr.write('GATE_CONFIG_FILE: is required by gate-files, the path of the gate config to write (received nothing)\n');
    return 1;
  }
  const logger = createLogger({ level: config.logLevel, destination: io.logStream });
  for (const warning of config.warnings) logger.warn({ event: 'config_warning' }, warning);
  try {
    await writeGateFiles(config, logger, (io.now ?? Date.now)());
  } catch (err) {
    io.stderr.write(`gate-files: cannot write ${config.gateConfigFile}, or the pages or policy next to it: ${errorSummary(err).message ?? 'unknown error'}\n`);
    return 1;
  }
  return 0;
}
