import { describe, expect, it } from '@jest/globals';
import { nginxSettingsFromEnv, renderTemplate, revocationsFromEnv } from './nginx-runtime.js';

describe('nginxSettingsFromEnv', () => {
  it('gives the documented defaults for unset and empty variables', () => {
    expect(nginxSettingsFromEnv({ TABLEAU_API_MAX_BODY_MB: '' })).toEqual({
      settings: { TABLEAU_API_TIMEOUT_SECONDS: '300', TABLEAU_API_MAX_BODY_MB: '64' },
      problems: [],
    });
  });
  it('takes whole numbers within the bounds', () => {
    expect(nginxSettingsFromEnv({ TABLEAU_API_TIMEOUT_SECONDS: '3600', TABLEAU_API_MAX_BODY_MB: '1' }).problems).toEqual([]);
  });
  it.each([
    ['a directive injection', '60s; proxy_pass http://evil'],
    ['a unit suffix', '60s'],
    ['zero', '0'],
    ['above the bounds', '5000'],
    ['a negative number', '-1'],
    ['a fraction', '1.5'],
  ])('refuses %s, reporting every bad variable at once', (_name, value) => {
    const { problems } = nginxSettingsFromEnv({ TABLEAU_API_TIMEOUT_SECONDS: value, TABLEAU_API_MAX_BODY_MB: value });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toBe(`TABLEAU_API_TIMEOUT_SECONDS: must be a whole number from 1 to 3600 (received ${JSON.stringify(value)})`);
  });
});

describe('renderTemplate', () => {
  const base = { PROXY_LISTEN: '8080', APP_UPSTREAM: 'app:5000', AUTH_UPSTREAM: 'auth:3001' };
  it('fills the Tableau limits with their defaults when a caller (e.g. an old template-vars.json) has none', () => {
    expect(renderTemplate('${TABLEAU_API_TIMEOUT_SECONDS}s ${TABLEAU_API_MAX_BODY_MB}m $uri', base)).toBe('300s 64m $uri');
  });
});

describe('revocationsFromEnv', () => {
  it('is off unless NJS_REVOCATIONS is exactly on', () => {
    expect(revocationsFromEnv({})).toEqual({ revocations: false, problems: [] });
    expect(revocationsFromEnv({ NJS_REVOCATIONS: '' })).toEqual({ revocations: false, problems: [] });
    expect(revocationsFromEnv({ NJS_REVOCATIONS: 'off' })).toEqual({ revocations: false, problems: [] });
    expect(revocationsFromEnv({ NJS_REVOCATIONS: 'on' })).toEqual({ revocations: true, problems: [] });
  });

  it.each(['true', 'ON', '1', 'auto'])('refuses NJS_REVOCATIONS=%s, naming the variable and the value', (value) => {
    expect(revocationsFromEnv({ NJS_REVOCATIONS: value })).toEqual({
      revocations: false,
      problems: [`NJS_REVOCATIONS: must be on (njs >= 0.8 only) or off (received ${JSON.stringify(value)})`],
    });
  });
});
