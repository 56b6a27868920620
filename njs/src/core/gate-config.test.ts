import { describe, expect, it } from '@jest/globals';
import { makeConfig } from '../../test/cases/fixtures.js';
import { gateConfigProblem } from './gate-config.js';

describe('gateConfigProblem', () => {
  const cases: Array<[string, unknown, string | null]> = [
    ['accepts a complete config', makeConfig(), null],
    ['accepts ipBinding off', makeConfig({ ipBinding: 'off' }), null],
    ['accepts ipBinding subnet', makeConfig({ ipBinding: 'subnet' }), null],
    ['accepts no previous keys (empty keyRetiredAt)', makeConfig({ keyRetiredAt: {} }), null],
    ['refuses ipBinding as the old boolean true', { ...makeConfig(), ipBinding: true }, 'ipBinding must be exact, subnet or off'],
    ['refuses an unknown ipBinding mode', { ...makeConfig(), ipBinding: 'prefix' }, 'ipBinding must be exact, subnet or off'],
    ['refuses a config without maxSessionSeconds (written by an older auth service)', { ...makeConfig(), maxSessionSeconds: undefined }, 'maxSessionSeconds must be a number from 1 to 1e9'],
    ['refuses maxSessionSeconds 0', makeConfig({ maxSessionSeconds: 0 }), 'maxSessionSeconds must be a number from 1 to 1e9'],
    ['refuses maxSessionSeconds as a string', { ...makeConfig(), maxSessionSeconds: '3600' }, 'maxSessionSeconds must be a number from 1 to 1e9'],
    ['refuses a missing keyRetiredAt', { ...makeConfig(), keyRetiredAt: undefined }, 'keyRetiredAt must be an object'],
    ['refuses keyRetiredAt null', { ...makeConfig(), keyRetiredAt: null }, 'keyRetiredAt must be an object'],
    ['refuses an infinite maxSessionSeconds (1e400 in the JSON)', makeConfig({ maxSessionSeconds: Infinity }), 'maxSessionSeconds must be a number from 1 to 1e9'],
    ['refuses a NaN maxSessionSeconds', makeConfig({ maxSessionSeconds: NaN }), 'maxSessionSeconds must be a number from 1 to 1e9'],
    ['refuses a missing config (js_preload_object not loaded)', undefined, 'gate_config is not an object'],
    ['refuses null', null, 'gate_config is not an object'],
    ['refuses an empty cookie name', makeConfig({ cookieName: '' }), 'cookieName must be a non-empty string'],
    ['refuses ipBinding as the string "false"', { ...makeConfig(), ipBinding: 'false' }, 'ipBinding must be exact, subnet or off'],
    ['refuses a negative leeway', makeConfig({ leewaySeconds: -1 }), 'leewaySeconds must be a number >= 0'],
    ['refuses an infinite leeway (would accept every expired token)', makeConfig({ leewaySeconds: Infinity }), 'leewaySeconds must be a number >= 0'],
    ['refuses a NaN leeway', makeConfig({ leewaySeconds: NaN }), 'leewaySeconds must be a number >= 0'],
    ['refuses an empty login path', makeConfig({ loginPath: '' }), "loginPath must start with '/'"],
    ['refuses a leeway given as a string', { ...makeConfig(), leewaySeconds: '30' }, 'leewaySeconds must be a number >= 0'],
    ['refuses an absolute login URL', makeConfig({ loginPath: 'https://evil.test/login' }), "loginPath must start with '/'"],
    ['refuses keys as an array', { ...makeConfig(), keys: ['secret'] }, 'keys must be an object'],
  ];
  it.each(cases)('%s', (_name, value, expected) => {
    expect(gateConfigProblem(value)).toBe(expected);
  });
});
