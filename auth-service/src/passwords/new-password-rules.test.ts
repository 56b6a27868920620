import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { commonPasswordCount, newPasswordProblem, newPasswordRulesFromEnv } from './new-password-rules.js';

const rules = { minLength: 12 };

describe('newPasswordProblem', () => {
  it('checks against a real list of common passwords (at least 10,000 entries)', () => {
    expect(commonPasswordCount()).toBeGreaterThan(10_000);
  });

  it.each([
    ['a long unrelated phrase', 'orbit lantern 42 cactus'],
    ['twelve random characters', 'Zq8#vT2!mW4p'],
    ['a non-ASCII phrase of twelve characters', 'Κλίνγκον τώρα'],
  ])('accepts %s', (_name, password) => {
    expect(newPasswordProblem(password, 'kirk', rules)).toBeNull();
  });

  it.each([
    ['empty', '', /too short \(0 characters\)/],
    ['one character (issue 8)', 'x', /too short \(1 characters\): use at least 12/],
    ['eleven characters', 'orbitlanter', /too short \(11 characters\)/],
    ['four emoji (code points, not UTF-16 units)', '🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀', /too short \(11 characters\)/],
    ['a leaked keyboard walk', '1qaz2wsx3edc', /most commonly used/],
    ['a leaked one in upper case', 'QAZWSXEDCRFV', /most commonly used/],
    ['a leaked word', 'unbelievable', /most commonly used/],
    ['the username in another case', 'Kirk-Of-The-Enterprise', /must not be the username/],
  ])('refuses %s', (_name, password, message) => {
    const username = password.startsWith('Kirk') ? 'kirk-of-the-enterprise' : 'kirk';
    expect(newPasswordProblem(password, username, rules)).toMatch(message);
  });

  it('never refuses a random base64url password of 16 characters (what the demo seeding makes)', () => {
    for (let i = 0; i < 100; i++) expect(newPasswordProblem(randomBytes(12).toString('base64url'), 'kirk', rules)).toBeNull();
  });
});

describe('newPasswordRulesFromEnv', () => {
  it.each([
    [undefined, 12],
    ['', 12],
    [' 8 ', 8],
    ['64', 64],
  ])('PASSWORD_MIN_LENGTH=%s gives %s', (value, minLength) => {
    expect(newPasswordRulesFromEnv({ PASSWORD_MIN_LENGTH: value })).toEqual({ ok: true, rules: { minLength } });
  });

  it.each(['7', '0', '65', '1e1', 'twelve', '-12', '12.5'])('refuses PASSWORD_MIN_LENGTH=%s', (value) => {
    expect(newPasswordRulesFromEnv({ PASSWORD_MIN_LENGTH: value })).toEqual({
      ok: false,
      issues: [{ variable: 'PASSWORD_MIN_LENGTH', rule: 'must be an integer from 8 (the least any standard allows) to 64', received: value }],
    });
  });
});
