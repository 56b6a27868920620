import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Readable } from 'node:stream';
import type pg from 'pg';
import { createFreshDatabase, type FreshDatabase } from '../../../tests/support/fresh-database.js';
import { createPasswordHasher, DEFAULT_PASSWORD_POLICY } from '../passwords/index.js';
import { createPool } from '../storage/db.js';
import { createSessionsRepo } from '../storage/sessions-repo.js';
import { createUsersRepo, type UsersRepo } from '../storage/users-repo.js';
import { runUsersCli } from './users-cli.js';

let database: FreshDatabase;
let pool: pg.Pool;
let repo: UsersRepo;
// The lowest accepted cost keeps the tests quick; verification reads the cost from the hash.
const env = (): Record<string, string> => ({ DATABASE_URL: database.url, PASSWORD_PBKDF2_ITERATIONS: '100000' });
const hasher = createPasswordHasher(DEFAULT_PASSWORD_POLICY);

async function cli(argv: string[], opts: { stdin?: string | Buffer; env?: Record<string, string> } = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runUsersCli(argv, {
    stdin: Readable.from(opts.stdin === undefined ? [] : [Buffer.from(opts.stdin)]),
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: opts.env ?? env(),
  });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  database = await createFreshDatabase();
  pool = createPool(database.url, { max: 2 });
  repo = createUsersRepo(pool);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

/** Opens a live session row for `userKey`, as a sign-in would. */
function open(sid: string, userKey: string): Promise<void> {
  return createSessionsRepo(pool).open({ sid, username: 'x', userKey, source: 'local', src: 'local', clientIp: '192.0.2.1', userAgent: null, groups: [], idpSid: null, nowMs: Date.now(), idleSeconds: 60, maxSeconds: 600, requestId: 'r' });
}

describe('users CLI', () => {
  it('adds a user with groups, email and name; the password comes from stdin minus one newline', async () => {
    const result = await cli(
      ['add', 'Kirk', '--password-stdin', '--group', 'Federation', '--group', 'Starfleet', '--email', 'kirk@enterprise.example', '--name', 'James T. Kirk'],
      { stdin: 'Ncc-1701 Enterprise\n' },
    );
    expect(result).toEqual({ code: 0, stdout: 'Created user Kirk.\n', stderr: '' });
    const user = await repo.findByUsername('kirk');
    expect(user).toMatchObject({
      username: 'Kirk',
      email: 'kirk@enterprise.example',
      fullName: 'James T. Kirk',
      groups: ['Federation', 'Starfleet'],
      disabled: false,
    });
    expect(user!.passwordHash.startsWith('$pbkdf2-sha512$i=100000,')).toBe(true);
    expect(await hasher.verify('Ncc-1701 Enterprise', user!.passwordHash)).toBe(true);
  });

  it('runs the migrations itself on an empty database', async () => {
    const fresh = await createFreshDatabase();
    try {
      expect(await cli(['list'], { env: { DATABASE_URL: fresh.url } })).toEqual({ code: 0, stdout: 'No users.\n', stderr: '' });
    } finally {
      await fresh.drop();
    }
  });

  it.each([
    ['exact case', 'Kirk'],
    ['lower case', 'kirk'],
    ['upper case', 'KIRK'],
  ])('refuses a duplicate in %s and names the existing user', async (_name, username) => {
    const result = await cli(['add', username, '--password-stdin'], { stdin: 'a long enough password' });
    expect(result).toEqual({ code: 1, stdout: '', stderr: 'error: user "Kirk" already exists (usernames are case-insensitive)\n' });
  });

  it.each([
    ['a CRLF line ending', 'Enterprise-D 1701\r\n', 'Enterprise-D 1701'],
    ['no line ending', 'Enterprise-E 1701', 'Enterprise-E 1701'],
    ['two newlines (only one is stripped)', 'Voyager 74656\n\n', 'Voyager 74656\n'],
    ['surrounding spaces (kept)', ' warp 9 engage \n', ' warp 9 engage '],
    ['non-ASCII', 'Κλίνγκον Qo’noS\n', 'Κλίνγκον Qo’noS'],
  ])('passwd reads %s exactly', async (_name, stdin, expected) => {
    expect(await cli(['passwd', 'KIRK', '--password-stdin'], { stdin })).toEqual({ code: 0, stdout: 'Password changed for KIRK (0 sessions ended).\n', stderr: '' });
    const hash = (await repo.findByUsername('kirk'))!.passwordHash;
    expect(await hasher.verify(expected, hash)).toBe(true);
  });

  it.each([
    ['nothing', ''],
    ['only a newline', '\n'],
    ['only CRLF', '\r\n'],
  ])('rejects an empty password (%s) and changes nothing', async (_name, stdin) => {
    const before = (await repo.findByUsername('kirk'))!.passwordHash;
    expect(await cli(['passwd', 'kirk', '--password-stdin'], { stdin })).toEqual({ code: 1, stdout: '', stderr: 'error: empty password on stdin\n' });
    expect(await cli(['add', 'chapel', '--password-stdin'], { stdin })).toMatchObject({ code: 1, stderr: 'error: empty password on stdin\n' });
    expect((await repo.findByUsername('kirk'))!.passwordHash).toBe(before);
    expect(await repo.findByUsername('chapel')).toBeNull();
  });

  it('rejects a password that is not UTF-8 or is too long', async () => {
    expect(await cli(['passwd', 'kirk', '--password-stdin'], { stdin: Buffer.from([0xff, 0xfe]) })).toMatchObject({
      code: 1,
      stderr: 'error: password on stdin is not valid UTF-8\n',
    });
    expect(await cli(['passwd', 'kirk', '--password-stdin'], { stdin: 'x'.repeat(5000) })).toMatchObject({
      code: 1,
      stderr: 'error: password is longer than 1024 bytes\n',
    });
  });

  it('disables and enables a user, in any case', async () => {
    expect(await cli(['disable', 'kIrK'])).toEqual({ code: 0, stdout: 'Disabled kIrK (0 sessions ended).\n', stderr: '' });
    expect((await repo.findByUsername('kirk'))!.disabled).toBe(true);
    expect(await cli(['enable', 'kirk'])).toEqual({ code: 0, stdout: 'Enabled kirk.\n', stderr: '' });
    expect((await repo.findByUsername('kirk'))!.disabled).toBe(false);
  });

  it('passwd ends every live session of the user (another source\'s kirk keeps his)', async () => {
    const sessions = createSessionsRepo(pool);
    await open('kirk-passwd-0000000001', 'local:kirk');
    await open('tableau-kirk-passwd-001', 'tableau:kirk');
    expect(await cli(['passwd', 'kirk', '--password-stdin'], { stdin: 'a brand new passphrase 2' })).toEqual({ code: 0, stdout: 'Password changed for kirk (1 session ended).\n', stderr: '' });
    expect((await sessions.find('kirk-passwd-0000000001'))!.revokeReason).toBe('password-changed');
    expect((await sessions.find('tableau-kirk-passwd-001'))!.revokedAt).toBeNull();
    await sessions.revokeUser('tableau:kirk', { event: 'revoke', reason: 'test-cleanup' });
  });

  it('disable ends every live session of the user, with a disable event and one revoke event each', async () => {
    const sessions = createSessionsRepo(pool);
    await open('kirk-session-000000001', 'local:kirk');
    await open('kirk-session-000000002', 'local:kirk');
    await open('tableau-kirk-000000001', 'tableau:kirk');
    const before = (await pool.query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM auth_events')).rows[0]!.id;
    expect(await cli(['disable', 'KIRK'])).toEqual({ code: 0, stdout: 'Disabled KIRK (2 sessions ended).\n', stderr: '' });
    expect((await sessions.find('kirk-session-000000001'))!.revokeReason).toBe('user-disabled');
    expect((await sessions.find('kirk-session-000000002'))!.revokeReason).toBe('user-disabled');
    expect((await sessions.find('tableau-kirk-000000001'))!.revokedAt).toBeNull();
    const events = (await pool.query<{ event: string; sid: string | null; reason: string }>("SELECT event, sid, reason FROM auth_events WHERE user_key = 'local:kirk' AND id > $1 ORDER BY id", [before])).rows;
    expect(events).toEqual([
      { event: 'disable', sid: null, reason: 'users-cli' },
      expect.objectContaining({ event: 'revoke', reason: 'user-disabled' }),
      expect.objectContaining({ event: 'revoke', reason: 'user-disabled' }),
    ]);
    await cli(['enable', 'kirk']);
  });

  it('revoke signs a user out everywhere: a local name, or <source>:<name> for another source', async () => {
    const sessions = createSessionsRepo(pool);
    await open('kirk-session-000000003', 'local:kirk');
    expect(await cli(['revoke', 'Kirk'])).toEqual({ code: 0, stdout: 'Signed Kirk out everywhere (1 session ended).\n', stderr: '' });
    expect((await sessions.find('kirk-session-000000003'))!.revokeReason).toBe('sign-out-everywhere');
    expect((await repo.findByUsername('kirk'))!.disabled).toBe(false);
    expect(await cli(['revoke', 'tableau:KIRK'])).toEqual({ code: 0, stdout: 'Signed tableau:KIRK out everywhere (1 session ended).\n', stderr: '' });
    expect((await sessions.find('tableau-kirk-000000001'))!.revokedAt).toBeInstanceOf(Date);
    expect(await cli(['revoke', 'kirk'])).toEqual({ code: 0, stdout: 'Signed kirk out everywhere (0 sessions ended).\n', stderr: '' });
  });

  it('revoke of an unknown local user fails with exit 1; a malformed source-qualified user too', async () => {
    expect(await cli(['revoke', 'spock'])).toEqual({ code: 1, stdout: '', stderr: 'error: no user named "spock"\n' });
    expect(await cli(['revoke', 'tableau:'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/^error: invalid user "tableau:"/) });
  });

  it('replaces the groups, drops duplicates, and allows none', async () => {
    expect(await cli(['groups', 'kirk', 'Admirals', 'Federation', 'Admirals'])).toEqual({
      code: 0,
      stdout: 'Groups of kirk: Admirals, Federation\n',
      stderr: '',
    });
    expect((await repo.findByUsername('kirk'))!.groups).toEqual(['Admirals', 'Federation']);
    expect(await cli(['groups', 'kirk'])).toEqual({ code: 0, stdout: 'Groups of kirk: (none)\n', stderr: '' });
    expect((await repo.findByUsername('kirk'))!.groups).toEqual([]);
  });

  it('lists users as a table', async () => {
    await cli(['add', 'mccoy', '--password-stdin', '--name', 'Leonard McCoy'], { stdin: 'bones-of-the-enterprise' });
    await cli(['groups', 'kirk', 'Federation', 'Starfleet']);
    await cli(['disable', 'mccoy']);
    expect(await cli(['list'])).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        'USERNAME  NAME           EMAIL                    GROUPS                 DISABLED',
        'Kirk      James T. Kirk  kirk@enterprise.example  Federation, Starfleet  no',
        'mccoy     Leonard McCoy  -                        -                      yes',
        '',
      ].join('\n'),
    });
  });

  it.each([
    ['passwd', ['passwd', 'spock', '--password-stdin'], 'a long enough password'],
    ['disable', ['disable', 'spock'], undefined],
    ['enable', ['enable', 'spock'], undefined],
    ['groups', ['groups', 'spock', 'Vulcan'], undefined],
  ])('%s of an unknown user fails with exit 1', async (_name, argv, stdin) => {
    expect(await cli(argv, { stdin })).toEqual({ code: 1, stdout: '', stderr: 'error: no user named "spock"\n' });
  });

  it.each([
    ['a space', 'james kirk'],
    ['a quote', "o'brien"],
    ['65 characters', 'a'.repeat(65)],
    ['a non-ASCII letter', 'kírk'],
    ['a slash', 'a/b'],
  ])('refuses a username with %s (exit 1)', async (_name, username) => {
    const result = await cli(['add', username, '--password-stdin'], { stdin: 'pw' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: invalid username .*\n$/);
  });

  it.each([
    ['a comma (groups are comma-joined upstream)', 'Bridge,Crew'],
    ['a control character', 'Bridge\u0007'],
    ['surrounding spaces', ' Bridge'],
    ['an empty name', ''],
  ])('refuses a group with %s (exit 1)', async (_name, group) => {
    const result = await cli(['groups', 'kirk', group]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: invalid group /);
  });

  it.each([
    ['no command', [], /^error: no command given/],
    ['an unknown command', ['frobnicate'], /^error: unknown command "frobnicate"/],
    ['an unknown option', ['add', 'x', '--password-stdin', '--admin'], /^error: unknown option --admin for "add"/],
    ['a missing username', ['disable'], /^error: "disable" needs <username>/],
    ['an extra argument', ['disable', 'kirk', 'mccoy'], /^error: unexpected argument "mccoy" for "disable"/],
    ['an option without its value', ['add', 'x', '--password-stdin', '--email'], /^error: option --email needs a value/],
    ['add without --password-stdin', ['add', 'x'], /^error: "add" needs --password-stdin/],
    ['a password on the command line', ['passwd', 'kirk', '--password', 'hunter2'], /^error: unknown option --password for "passwd"/],
    ['list with arguments', ['list', 'all'], /^error: unexpected argument "all" for "list"/],
  ])('usage error for %s: exit 2, one line, no stack', async (_name, argv, message) => {
    const result = await cli(argv as string[], { stdin: 'pw' });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message as RegExp);
    expect(result.stderr.split('\n')).toHaveLength(2);
  });

  it('prints help on stdout', async () => {
    const result = await cli(['help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('add <username> --password-stdin');
    expect(result.stderr).toBe('');
  });

  it('rejects bad hashing settings before touching the store', async () => {
    const result = await cli(['list'], { env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x', PASSWORD_HASH_ALGORITHM: 'md5' } });
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: PASSWORD_HASH_ALGORITHM must be one of pbkdf2-sha512, argon2id (received "md5")\n',
    });
  });

  // Issue 8: a 1-character password was accepted.
  it.each([
    ['one character', 'x', 'error: password is too short (1 characters): use at least 12 (PASSWORD_MIN_LENGTH)'],
    ['eleven characters', 'abcdefghijk', 'error: password is too short (11 characters): use at least 12 (PASSWORD_MIN_LENGTH)'],
    ['eleven non-ASCII characters (counted as characters, not bytes)', 'ÄÖÜäöüßÄÖÜä', 'error: password is too short (11 characters)'],
    ['a common password', 'qwerty123456', 'error: password is one of the most commonly used passwords, which attackers try first: choose another'],
    ['a common password in other case', 'QWERTY123456', 'error: password is one of the most commonly used passwords'],
    ['the username', 'Chapel-Christine', 'error: password must not be the username'],
  ])('refuses %s as a new password, for add and passwd, and changes nothing', async (_name, stdin, message) => {
    const before = (await repo.findByUsername('kirk'))!.passwordHash;
    const added = await cli(['add', 'chapel-christine', '--password-stdin'], { stdin });
    expect(added.code).toBe(1);
    expect(added.stderr.startsWith(message)).toBe(true);
    expect(added.stderr).not.toContain(stdin);
    const changed = await cli(['passwd', 'kirk', '--password-stdin'], { stdin: stdin === 'Chapel-Christine' ? 'kirk' : stdin });
    expect(changed.code).toBe(1);
    expect(await repo.findByUsername('chapel-christine')).toBeNull();
    expect((await repo.findByUsername('kirk'))!.passwordHash).toBe(before);
  });

  it('takes the minimum length from PASSWORD_MIN_LENGTH, never below 8', async () => {
    expect((await cli(['add', 'rand', '--password-stdin'], { stdin: 'Yeoman-1', env: { ...env(), PASSWORD_MIN_LENGTH: '8' } })).code).toBe(0);
    const longer = await cli(['passwd', 'rand', '--password-stdin'], { stdin: 'twenty characters 20', env: { ...env(), PASSWORD_MIN_LENGTH: '21' } });
    expect(longer).toMatchObject({ code: 1, stderr: expect.stringContaining('use at least 21 (PASSWORD_MIN_LENGTH)') });
    for (const bad of ['7', '65', 'twelve', '-8']) {
      expect(await cli(['passwd', 'rand', '--password-stdin'], { stdin: 'a long enough password', env: { ...env(), PASSWORD_MIN_LENGTH: bad } })).toEqual({
        code: 1,
        stdout: '',
        stderr: `error: PASSWORD_MIN_LENGTH must be an integer from 8 (the least any standard allows) to 64 (received ${JSON.stringify(bad)})\n`,
      });
    }
  });

  it('reports PASSWORD_MIN_LENGTH together with the hashing settings', async () => {
    const result = await cli(['list'], { env: { ...env(), PASSWORD_HASH_ALGORITHM: 'md5', PASSWORD_MIN_LENGTH: '4' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('PASSWORD_HASH_ALGORITHM must be one of');
    expect(result.stderr).toContain('PASSWORD_MIN_LENGTH must be an integer from 8');
  });

  it('hashes with argon2id when configured', async () => {
    const result = await cli(['add', 'scotty', '--password-stdin'], { stdin: 'engineering deck 12', env: { ...env(), PASSWORD_HASH_ALGORITHM: 'argon2id' } });
    expect(result.code).toBe(0);
    const hash = (await repo.findByUsername('scotty'))!.passwordHash;
    expect(hash.startsWith('$argon2id$')).toBe(true);
    expect(await hasher.verify('engineering deck 12', hash)).toBe(true);
  });

  it('says the store is unavailable, with the reason, in one line', async () => {
    const result = await cli(['list'], { env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x' } });
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: The user store is unavailable. Try again shortly. (connect ECONNREFUSED 127.0.0.1:1)\n',
    });
  });
});
