import { describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import { createPasswordHasher, DEFAULT_PASSWORD_POLICY, type PasswordPolicy } from './password-hasher.js';
import { parseStoredHash } from './hash-formats.js';

// Small costs keep most tests fast; the "default policy" tests below use the real OWASP costs.
const FAST_ARGON2 = { memoryCost: 1024, timeCost: 1, parallelism: 1 };
const fastPbkdf2: PasswordPolicy = { algorithm: 'pbkdf2-sha512', pbkdf2Iterations: 1000, argon2: FAST_ARGON2 };
const fastArgon2: PasswordPolicy = { algorithm: 'argon2id', pbkdf2Iterations: 1000, argon2: FAST_ARGON2 };

/**
 * passlib-format vectors. Derived without passlib: PBKDF2-HMAC-SHA512 via Node's crypto with a fixed
 * salt (hex fbef7e0a1b2c3d4e5f60718293a4b5c6, chosen so its base64 contains '+', i.e. '.' in ab64),
 * encoded per passlib's documented `$pbkdf2-sha512$<rounds>$<ab64 salt>$<ab64 checksum>`.
 */
const PASSLIB_VECTORS = [
  {
    name: 'a 1000-round hash with a dotted salt',
    password: 'correct horse battery staple',
    stored: '$pbkdf2-sha512$1000$..9.ChssPU5fYHGCk6S1xg$I1ckC/ijlPJhVRjf32RXlLm7VxduFriWIR0sHIrgTi.u6S0YO5fWgk/tWaVr5DJ9jPqgaXcvhgnHQGt/22ulDg',
  },
  {
    name: 'a non-ASCII password (UTF-8 encoded, as passlib does)',
    password: 'Zuar-Ünïcødé',
    stored: '$pbkdf2-sha512$25000$..9.ChssPU5fYHGCk6S1xg$XcCH8i0e9naEExDGSyI6H40/8BxsIHLRzqy68jqkcchcXg0AJG6AUW2XV/KAXqVMk/E1zfYeLfEBJRvjSDvT8Q',
  },
  {
    // Published in Authelia's docs as "the digest of 'insecure_secret'"; Authelia writes passlib's format.
    // Independent of our derivation, and its checksum contains a '.'.
    name: 'a third-party published hash (Authelia docs, 310000 rounds)',
    password: 'insecure_secret',
    stored: '$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng',
  },
];

describe('createPasswordHasher (pbkdf2-sha512)', () => {
  const hasher = createPasswordHasher(fastPbkdf2);

  it('writes the self-describing format with a 16-byte salt and a 64-byte key', async () => {
    const stored = await hasher.hash('s3cret');
    expect(stored).toMatch(/^\$pbkdf2-sha512\$i=1000,l=64\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{86}$/);
  });

  it('salts every hash differently', async () => {
    expect(await hasher.hash('same')).not.toBe(await hasher.hash('same'));
  });

  it('verifies the right password and rejects a wrong one', async () => {
    const stored = await hasher.hash('s3cret');
    expect(await hasher.verify('s3cret', stored)).toBe(true);
    expect(await hasher.verify('s3cret ', stored)).toBe(false);
    expect(await hasher.verify('S3cret', stored)).toBe(false);
    expect(await hasher.verify('', stored)).toBe(false);
  });

  it('verifies a hash written with another iteration count (the count travels in the string)', async () => {
    const older = await createPasswordHasher({ ...fastPbkdf2, pbkdf2Iterations: 2000 }).hash('pw');
    expect(await hasher.verify('pw', older)).toBe(true);
  });
});

describe('passlib pbkdf2_sha512 hashes (Zuar WAF)', () => {
  const hasher = createPasswordHasher(fastPbkdf2);

  it.each(PASSLIB_VECTORS)('verifies $name', async ({ password, stored }) => {
    expect(await hasher.verify(password, stored)).toBe(true);
    expect(await hasher.verify(`${password}x`, stored)).toBe(false);
  });

  it('reads the salt as ab64 bytes, not as the salt text', () => {
    const parsed = parseStoredHash(PASSLIB_VECTORS[0]!.stored);
    expect(parsed).toMatchObject({ kind: 'passlib-pbkdf2-sha512', iterations: 1000 });
    expect(parsed?.kind === 'passlib-pbkdf2-sha512' && parsed.salt.toString('hex')).toBe('fbef7e0a1b2c3d4e5f60718293a4b5c6');
  });
});

describe('createPasswordHasher (argon2id)', () => {
  it('round-trips with small costs and records them in the PHC string', async () => {
    const hasher = createPasswordHasher(fastArgon2);
    const stored = await hasher.hash('s3cret');
    expect(parseStoredHash(stored)).toEqual({ kind: 'argon2id', version: 19, memoryCost: 1024, timeCost: 1, parallelism: 1 });
    expect(await hasher.verify('s3cret', stored)).toBe(true);
    expect(await hasher.verify('wrong', stored)).toBe(false);
  });

  it('verifies pbkdf2 hashes too, so switching the algorithm does not lock users out', async () => {
    const stored = await createPasswordHasher(fastPbkdf2).hash('pw');
    expect(await createPasswordHasher(fastArgon2).verify('pw', stored)).toBe(true);
  });
});

describe('the default policy', () => {
  it('is the OWASP recommendation', () => {
    expect(DEFAULT_PASSWORD_POLICY).toEqual({
      algorithm: 'pbkdf2-sha512',
      pbkdf2Iterations: 210000,
      argon2: { memoryCost: 19456, timeCost: 2, parallelism: 1 },
    });
  });

  it('hashes and verifies with 210000 pbkdf2 iterations', async () => {
    const hasher = createPasswordHasher(DEFAULT_PASSWORD_POLICY);
    const stored = await hasher.hash('correct horse');
    expect(stored.startsWith('$pbkdf2-sha512$i=210000,l=64$')).toBe(true);
    expect(await hasher.verify('correct horse', stored)).toBe(true);
    expect(hasher.needsRehash(stored)).toBe(false);
  });

  it('hashes and verifies with argon2id m=19456 t=2 p=1', async () => {
    const hasher = createPasswordHasher({ ...DEFAULT_PASSWORD_POLICY, algorithm: 'argon2id' });
    const stored = await hasher.hash('correct horse');
    expect(parseStoredHash(stored)).toEqual({ kind: 'argon2id', version: 19, memoryCost: 19456, timeCost: 2, parallelism: 1 });
    expect(await hasher.verify('correct horse', stored)).toBe(true);
    expect(hasher.needsRehash(stored)).toBe(false);
  });
});

describe('verify on malformed or unknown hashes', () => {
  const hasher = createPasswordHasher(fastPbkdf2);
  const good = '$pbkdf2-sha512$i=1000,l=64$AAAAAAAAAAAAAAAAAAAAAA$' + 'A'.repeat(86);
  const goodPasslib = PASSLIB_VECTORS[0]!.stored;

  it.each([
    ['an empty string', ''],
    ['plain text stored by mistake', 'password'],
    ['an unknown scheme', '$2b$12$abcdefghijklmnopqrstuuJ9tGG6nBhNwWGBp4cP9xG9VwY8YJp3a'],
    ['passlib pbkdf2-sha256 (unsupported digest)', '$pbkdf2-sha256$6400$0ZrzXitFSGltTQnBWOsdAw$Y11AchqV4b0sUisdZd0Xr97KWoymNE0LNNrnEgY4H9M'],
    ['argon2i (only argon2id is accepted)', '$argon2i$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaA'],
    ['a missing field', '$pbkdf2-sha512$i=1000,l=64$AAAAAAAAAAAAAAAAAAAAAA'],
    ['an extra field', `${good}$extra`],
    ['no leading dollar', good.slice(1)],
    ['iterations that are not a number', good.replace('i=1000', 'i=abc')],
    ['zero iterations', good.replace('i=1000', 'i=0')],
    ['iterations with a leading zero', good.replace('i=1000', 'i=01000')],
    ['absurd iterations (a planted row must not pin the CPU)', good.replace('i=1000', 'i=999999999')],
    ['a duplicated parameter', good.replace('i=1000,l=64', 'i=1000,i=1000')],
    ['a key length that does not match the key', good.replace('l=64', 'l=32')],
    ['junk characters in the base64', good.replace('AAAA$', 'A*AA$')],
    ['padding in the base64', good.replace('AAAA$', 'AA==$')],
    ['ab64 dots in our own format', good.replace('AAAA$', 'AA.A$')],
    ['a passlib checksum that is not 64 bytes', goodPasslib.slice(0, -4)],
    ['passlib rounds with a sign', goodPasslib.replace('$1000$', '$+1000$')],
    ['an argon2id hash with absurd memory', '$argon2id$v=19$m=99999999,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaA'],
    ['an argon2id hash without a version', '$argon2id$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaA'],
    ['an over-long string', '$pbkdf2-sha512$' + 'A'.repeat(5000)],
  ])('returns false for %s', async (_name, stored) => {
    await expect(hasher.verify('password', stored)).resolves.toBe(false);
  });

  it.each([
    ['null', null],
    ['a number', 42],
    ['undefined', undefined],
  ])('returns false (does not throw) when the stored value is %s', async (_name, stored) => {
    await expect(hasher.verify('password', stored as unknown as string)).resolves.toBe(false);
  });

  it('returns false for a well-formed argon2id string whose hash does not match', async () => {
    const other = await createPasswordHasher(fastArgon2).hash('other');
    await expect(hasher.verify('password', other)).resolves.toBe(false);
  });
});

describe('needsRehash', () => {
  const cases: Array<{ name: string; policy: PasswordPolicy; writtenWith: PasswordPolicy | 'passlib' | 'garbage'; expected: boolean }> = [
    { name: 'same pbkdf2 iterations', policy: fastPbkdf2, writtenWith: fastPbkdf2, expected: false },
    { name: 'pbkdf2 iterations raised', policy: { ...fastPbkdf2, pbkdf2Iterations: 2000 }, writtenWith: fastPbkdf2, expected: true },
    { name: 'pbkdf2 iterations lowered', policy: fastPbkdf2, writtenWith: { ...fastPbkdf2, pbkdf2Iterations: 2000 }, expected: true },
    { name: 'policy switched to argon2id', policy: fastArgon2, writtenWith: fastPbkdf2, expected: true },
    { name: 'policy switched to pbkdf2', policy: fastPbkdf2, writtenWith: fastArgon2, expected: true },
    { name: 'same argon2id costs', policy: fastArgon2, writtenWith: fastArgon2, expected: false },
    { name: 'argon2 memory changed', policy: { ...fastArgon2, argon2: { ...FAST_ARGON2, memoryCost: 2048 } }, writtenWith: fastArgon2, expected: true },
    { name: 'argon2 time changed', policy: { ...fastArgon2, argon2: { ...FAST_ARGON2, timeCost: 2 } }, writtenWith: fastArgon2, expected: true },
    { name: 'argon2 parallelism changed', policy: { ...fastArgon2, argon2: { ...FAST_ARGON2, parallelism: 2 } }, writtenWith: fastArgon2, expected: true },
    { name: 'pbkdf2 cost in policy changed, but hash is argon2id matching its costs', policy: { ...fastArgon2, pbkdf2Iterations: 5000 }, writtenWith: fastArgon2, expected: false },
    { name: 'a passlib hash, even with matching rounds', policy: fastPbkdf2, writtenWith: 'passlib', expected: true },
    { name: 'an unparseable hash', policy: fastPbkdf2, writtenWith: 'garbage', expected: true },
  ];

  it.each(cases)('is $expected for $name', async ({ policy, writtenWith, expected }) => {
    const stored =
      writtenWith === 'passlib' ? PASSLIB_VECTORS[0]!.stored
      : writtenWith === 'garbage' ? 'not-a-hash'
      : await createPasswordHasher(writtenWith).hash('pw');
    expect(createPasswordHasher(policy).needsRehash(stored)).toBe(expected);
  });
});

describe('verifyDummy', () => {
  it('resolves for any input and costs about as much as a real verification', async () => {
    const policy: PasswordPolicy = { ...fastPbkdf2, pbkdf2Iterations: 100_000 };
    const hasher = createPasswordHasher(policy);
    const stored = await hasher.hash('real');
    await hasher.verifyDummy('warm-up');

    const time = async (fn: () => Promise<unknown>): Promise<number> => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < 3; i += 1) await fn();
      return Number(process.hrtime.bigint() - start);
    };
    const dummy = await time(() => hasher.verifyDummy('guess'));
    const wrong = await time(() => hasher.verify('guess', stored));
    expect(dummy / wrong).toBeGreaterThan(0.33);
    expect(dummy / wrong).toBeLessThan(3);
  });

  it('never throws, whatever the input', async () => {
    const hasher = createPasswordHasher(fastArgon2);
    await expect(hasher.verifyDummy('')).resolves.toBeUndefined();
    await expect(hasher.verifyDummy(undefined as unknown as string)).resolves.toBeUndefined();
  });
});

describe('verifyAtDummyCost (issue 8: a cheaper stored hash must not answer faster than an unknown user)', () => {
  function counting(policy: PasswordPolicy) {
    const iterations: number[] = [];
    const hasher = createPasswordHasher(policy, {
      pbkdf2: (pw, salt, n, len, digest) => {
        iterations.push(n);
        return new Promise((resolve, reject) => crypto.pbkdf2(pw, salt, n, len, digest, (err, key) => (err ? reject(err) : resolve(key))));
      },
    });
    return { hasher, iterations };
  }
  const policy: PasswordPolicy = { ...fastPbkdf2, pbkdf2Iterations: 5000 };

  it.each([
    ['a passlib hash at 1,000 rounds is topped up to the policy', PASSLIB_VECTORS[0]!.stored, 'correct horse battery staple', [1000, 4000]],
    ['our hash at 2,000 iterations is topped up', 'ours-2000', 'pw', [2000, 3000]],
    ['our hash at the policy cost gets nothing extra', 'ours-5000', 'pw', [5000]],
    ['a hash above the policy cost gets nothing extra', 'ours-8000', 'pw', [8000]],
    ['an unparseable hash pays for a whole dummy verification', 'not-a-hash', 'pw', [5000]],
  ])('%s', async (_name, storedSpec, password, expected) => {
    const { hasher, iterations } = counting(policy);
    const stored = storedSpec.startsWith('ours-')
      ? await createPasswordHasher({ ...fastPbkdf2, pbkdf2Iterations: Number(storedSpec.slice(5)) }).hash(password)
      : storedSpec;
    await hasher.verifyDummy('warm-up');
    for (const guess of [password, `${password}x`]) {
      iterations.length = 0;
      const matches = await hasher.verifyAtDummyCost(guess, stored);
      expect(matches).toBe(guess === password && storedSpec !== 'not-a-hash');
      expect(iterations).toEqual(expected);
    }
  });
});
