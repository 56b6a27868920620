import type { ParseArgsConfig } from 'node:util';
import type pg from 'pg';
import { isAppError } from '../errors.js';
import {
  createPasswordHasher,
  formatEnvIssue,
  newPasswordProblem,
  newPasswordRulesFromEnv,
  passwordPolicyFromEnv,
  type PasswordPolicy,
} from '../passwords/index.js';
import { sessionUserKey, userKeyFromArgument } from '../services/session-identity.js';
import { insertAuthEvent } from '../storage/audit-repo.js';
import { inTransaction } from '../storage/db.js';
import { createSessionsRepo } from '../storage/sessions-repo.js';
import { createUsersRepo, type UserRecord } from '../storage/users-repo.js';
import { formatTable as formatColumns, reportCliError, withStore } from './cli-store.js';
import { CommandError, oneLine, parseCommandArgs, UsageError } from './cli-text.js';
import { readPassword, type PasswordInput } from './password-input.js';

/**
 * The logic of `npm run users -- <command>` (the bin is users.ts): manage local users in DATABASE_URL,
 * or in the embedded store under DATA_DIR (default ./data), going through the running gateway's
 * embedded server if there is one.
 *
 * Exit codes: 0 done; 1 the command could not be carried out (unknown or duplicate user, bad value,
 * empty password, store unavailable, bad configuration); 2 usage error (unknown command or option,
 * missing or extra arguments).
 */

export interface UsersCliIo extends PasswordInput {
  stdout: { write(text: string): unknown };
  env: Record<string, string | undefined>;
}

const USAGE = `Usage: npm run users -- <command> [arguments]

Commands:
  add <username> --password-stdin [--group G]... [--email E] [--name "Full Name"]
                                     create a user; the password is read from stdin
  passwd <username> --password-stdin set a new password, read from stdin; ends the user's sessions
  disable <username>                 block logins for the user and end all their sessions
  enable <username>                  allow logins again
  revoke <user>                      sign the user out everywhere (end all their sessions);
                                     <user> is a local username, or <source>:<name> for another
                                     source (tableau:kirk; oidc: or azure:<subject id>)
  groups <username> [G1 G2 ...]      replace the user's groups (none clears them)
  list                               show all users
  help                               show this text

Usernames: 1-64 characters from A-Z a-z 0-9 . _ @ -, matched case-insensitively.
Passwords: at least PASSWORD_MIN_LENGTH characters (default 12), not one of the most common
  passwords, not the username. On a terminal you are asked twice, and nothing you type is shown.
  Otherwise stdin is read to the end and one trailing newline is removed, e.g.
  printf '%s' "$PW" | npm run users -- add kirk --password-stdin --group Federation

Store: DATABASE_URL if set, else the embedded store in DATA_DIR (default ./data).
Hashing: PASSWORD_HASH_ALGORITHM (pbkdf2-sha512 | argon2id), PASSWORD_PBKDF2_ITERATIONS.
`;

export const USERNAME_PATTERN = /^[A-Za-z0-9._@-]{1,64}$/;
const MAX_GROUP_LENGTH = 64;
const MAX_EMAIL_LENGTH = 254;
const MAX_NAME_LENGTH = 200;
// C0/C1 controls and DEL: they would corrupt the table output and, in groups, the forwarded headers.
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;


type Options = ParseArgsConfig['options'];

const COMMANDS: Record<string, { options: Options; positionals: { min: number; max: number; names: string } }> = {
  add: {
    options: {
      'password-stdin': { type: 'boolean' },
      group: { type: 'string', multiple: true },
      email: { type: 'string' },
      name: { type: 'string' },
    },
    positionals: { min: 1, max: 1, names: '<username>' },
  },
  passwd: { options: { 'password-stdin': { type: 'boolean' } }, positionals: { min: 1, max: 1, names: '<username>' } },
  disable: { options: {}, positionals: { min: 1, max: 1, names: '<username>' } },
  enable: { options: {}, positionals: { min: 1, max: 1, names: '<username>' } },
  revoke: { options: {}, positionals: { min: 1, max: 1, names: '<user>' } },
  groups: { options: {}, positionals: { min: 1, max: Infinity, names: '<username> [groups...]' } },
  list: { options: {}, positionals: { min: 0, max: 0, names: '' } },
};

interface Parsed {
  command: string;
  positionals: string[];
  values: Record<string, string | boolean | string[] | undefined>;
}

function parseCommandLine(argv: string[]): Parsed | 'help' {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('no command given (try "help")');
  if (command === 'help' || command === '--help' || command === '-h') return 'help';
  const spec = COMMANDS[command];
  if (!spec) throw new UsageError(`unknown command ${JSON.stringify(command)} (try "help")`);
  const parsed = parseCommandArgs(command, rest, spec.options);
  const { positionals } = parsed;
  const values = parsed.values as Parsed['values'];
  if (positionals.length < spec.positionals.min) throw new UsageError(`"${command}" needs ${spec.positionals.names}`);
  if (positionals.length > spec.positionals.max) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[spec.positionals.max])} for "${command}"`);
  }
  if ('password-stdin' in spec.options! && values['password-stdin'] !== true) {
    throw new UsageError(`"${command}" needs --password-stdin (the password is never taken from the command line)`);
  }
  return { command, positionals, values };
}

function checkUsername(username: string): string {
  if (!USERNAME_PATTERN.test(username)) {
    throw new CommandError(`invalid username ${JSON.stringify(username)}: use 1-64 characters from A-Z a-z 0-9 . _ @ -`);
  }
  return username;
}

function checkGroups(groups: string[]): string[] {
  for (const group of groups) {
    if (group.length === 0 || group.length > MAX_GROUP_LENGTH || group.trim() !== group || CONTROL_CHARS.test(group) || group.includes(',')) {
      throw new CommandError(
        `invalid group ${JSON.stringify(group)}: 1-${MAX_GROUP_LENGTH} characters, no commas (groups are comma-joined upstream), ` +
          'no control characters, no leading or trailing spaces',
      );
    }
  }
  return [...new Set(groups)];
}

function checkOptionalText(value: unknown, what: string, max: number): string | null {
  if (value === undefined) return null;
  const text = String(value).trim();
  if (text === '') return null;
  if (text.length > max || CONTROL_CHARS.test(text)) throw new CommandError(`invalid ${what}: at most ${max} characters, no control characters`);
  return text;
}

function checkEmail(value: unknown): string | null {
  const email = checkOptionalText(value, 'email', MAX_EMAIL_LENGTH);
  if (email !== null && !/^[^\s@]+@[^\s@]+$/.test(email)) throw new CommandError(`invalid email ${JSON.stringify(email)}`);
  return email;
}

function formatTable(users: UserRecord[]): string {
  const header = ['USERNAME', 'NAME', 'EMAIL', 'GROUPS', 'DISABLED'];
  const rows = users.map((u) => [u.username, u.fullName ?? '-', u.email ?? '-', u.groups.length ? u.groups.join(', ') : '-', u.disabled ? 'yes' : 'no']);
  return formatColumns(header, rows);
}

function sessionsEnded(n: number): string {
  return `${n} ${n === 1 ? 'session' : 'sessions'} ended`;
}

/** `tableau:kirk`, `azure:<oid>`: a user of another source, who has no row in the users table. */
function checkQualifiedUser(arg: string): string {
  if (arg.length > 300 || CONTROL_CHARS.test(arg) || /\s/.test(arg) || arg.endsWith(':')) {
    throw new CommandError(`invalid user ${JSON.stringify(arg)}: a local username, or <source>:<name> such as tableau:kirk`);
  }
  return arg;
}

function noSuchUser(username: string): CommandError {
  return new CommandError(`no user named ${JSON.stringify(username)}`);
}

/** Everything a command needs, validated before stdin is read or the store is opened. */
interface Request {
  command: string;
  username: string;
  groups: string[];
  email: string | null;
  fullName: string | null;
}

function validateRequest(parsed: Parsed): Request {
  const [username = '', ...rest] = parsed.positionals;
  if (parsed.command === 'add') checkUsername(username);
  return {
    command: parsed.command,
    username,
    groups: checkGroups(parsed.command === 'groups' ? rest : ((parsed.values.group as string[] | undefined) ?? [])),
    email: checkEmail(parsed.values.email),
    fullName: checkOptionalText(parsed.values.name, 'name', MAX_NAME_LENGTH),
  };
}

function alreadyExists(username: string): CommandError {
  return new CommandError(`user ${JSON.stringify(username)} already exists (usernames are case-insensitive)`);
}

/**
 * Runs `change` on a local user and ends every session of theirs (one `revoke` event each, with
 * `reason`) in one transaction; returns how many ended. `change` answers false when the user is gone.
 */
async function changeUserEndingSessions(
  pool: pg.Pool,
  username: string,
  reason: string,
  change: (client: pg.PoolClient, user: UserRecord, userKey: string) => Promise<boolean>,
): Promise<number> {
  return inTransaction(pool, async (client) => {
    const user = await createUsersRepo(client).findByUsername(username);
    if (user === null) throw noSuchUser(username);
    const userKey = sessionUserKey('local', user.username, user.id);
    if (!(await change(client, user, userKey))) throw noSuchUser(username);
    return createSessionsRepo(pool).revokeUser(userKey, { event: 'revoke', reason }, client);
  });
}

/** Disables a local user, with a `disable` event: a disabled user never keeps a live session row. */
async function disableUser(pool: pg.Pool, username: string): Promise<number> {
  return changeUserEndingSessions(pool, username, 'user-disabled', async (client, user, userKey) => {
    if (!(await createUsersRepo(client).setDisabled(username, true))) return false;
    await insertAuthEvent(client, { event: 'disable', username: user.username, userKey, source: 'local', reason: 'users-cli' });
    return true;
  });
}

/**
 * Sets a local user's new password hash: a password is changed because the old one may be known,
 * and a session signed in with it must not outlive it (ASVS 3.3.3).
 */
async function changePassword(pool: pg.Pool, username: string, passwordHash: string): Promise<number> {
  return changeUserEndingSessions(pool, username, 'password-changed', (client) => createUsersRepo(client).setPasswordHash(username, passwordHash));
}

async function revokeUser(pool: pg.Pool, arg: string): Promise<number> {
  if (!arg.includes(':')) {
    // A bare name is a local account, which must exist: a typo must not look like "0 sessions ended".
    if ((await createUsersRepo(pool).findByUsername(arg)) === null) throw noSuchUser(arg);
  }
  return createSessionsRepo(pool).revokeUser(userKeyFromArgument(arg), { event: 'revoke', reason: 'sign-out-everywhere' });
}

async function execute(req: Request, pool: pg.Pool, policy: PasswordPolicy, password: string | null, io: UsersCliIo): Promise<void> {
  const repo = createUsersRepo(pool);
  const { username, groups } = req;
  const hasher = createPasswordHasher(policy);
  switch (req.command) {
    case 'add': {
      const existing = await repo.findByUsername(username);
      if (existing) throw alreadyExists(existing.username);
      try {
        await repo.create({ username, passwordHash: await hasher.hash(password!), email: req.email, fullName: req.fullName, groups });
      } catch (err) {
        if (isAppError(err) && err.code === 'ERR_USER_EXISTS') throw alreadyExists(username);
        throw err;
      }
      io.stdout.write(`Created user ${username}.\n`);
      return;
    }
    case 'passwd':
      io.stdout.write(`Password changed for ${username} (${sessionsEnded(await changePassword(pool, username, await hasher.hash(password!)))}).\n`);
      return;
    case 'disable':
      io.stdout.write(`Disabled ${username} (${sessionsEnded(await disableUser(pool, username))}).\n`);
      return;
    case 'enable':
      if (!(await repo.setDisabled(username, false))) throw noSuchUser(username);
      io.stdout.write(`Enabled ${username}.\n`);
      return;
    case 'revoke': {
      const ended = await revokeUser(pool, username.includes(':') ? checkQualifiedUser(username) : username);
      io.stdout.write(`Signed ${username} out everywhere (${sessionsEnded(ended)}).\n`);
      return;
    }
    case 'groups':
      if (!(await repo.setGroups(username, groups))) throw noSuchUser(username);
      io.stdout.write(`Groups of ${username}: ${groups.length ? groups.join(', ') : '(none)'}\n`);
      return;
    case 'list': {
      const users = await repo.list();
      io.stdout.write(users.length ? formatTable(users) : 'No users.\n');
      return;
    }
  }
}

/** Runs one CLI command and returns its exit code. Errors go to `stderr` as one line, never a stack. */
export async function runUsersCli(argv: string[], io: UsersCliIo): Promise<number> {
  let parsed: Parsed | 'help';
  try {
    parsed = parseCommandLine(argv);
  } catch (err) {
    io.stderr.write(`error: ${oneLine((err as Error).message)}\n`);
    return 2;
  }
  if (parsed === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }

  try {
    const policy = passwordPolicyFromEnv(io.env);
    const rules = newPasswordRulesFromEnv(io.env);
    const envIssues = [...(policy.ok ? [] : policy.issues), ...(rules.ok ? [] : rules.issues)];
    if (!policy.ok || !rules.ok) throw new CommandError(envIssues.map(formatEnvIssue).join('; '));
    const request = validateRequest(parsed);
    const password = parsed.values['password-stdin'] === true ? await readPassword(io) : null;
    const problem = password === null ? null : newPasswordProblem(password, request.username, rules.rules);
    if (problem !== null) throw new CommandError(problem);

    await withStore(io, 'identity-gateway-users-cli', (pool) => execute(request, pool, policy.policy, password, io));
    return 0;
  } catch (err) {
    return reportCliError(io, err);
  }
}
