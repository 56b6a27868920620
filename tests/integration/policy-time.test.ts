/**
 * A time-window rule through the real nginx, with the gate's clock injected: nginx runs under
 * libfaketime (fakeTimeEnv), restarted at each instant below, and the session token is minted for
 * that instant with the stack's key. Policy (tests/fixtures/policy/office-hours.yaml): /payroll on
 * weekdays 08:00-18:00 Europe/Berlin, refused otherwise (rule payroll-closed).
 *
 * Europe/Berlin is UTC+1 in winter (CET) and UTC+2 in summer (CEST, from 2027-03-28 01:00 UTC), so the
 * same UTC time of day falls inside the window on one date and outside it on another: only the
 * compiled zone table can get both right.
 */
import { afterAll, beforeAll, beforeEach, describe, expect } from '@jest/globals';
import { stackTest, startStack, type Stack } from '../support/stack.js';
import { fakeTimeEnv, policyFixture, requestLogged, restartNginx, sessionCookieAt } from '../support/policy.js';
import { claimsFor, nowSeconds, signWith } from '../support/tokens.js';
import { headerSegmentFor } from '../../auth-service/src/services/gate-config.js';

const FIRST = '2027-01-04T08:30:00Z'; // Monday 09:30 CET
const secondsAt = (instant: string): number => Math.floor(Date.parse(instant) / 1000);

const instants: Array<{ instant: string; local: string; allowed: boolean }> = [
  { instant: FIRST, local: 'Monday 2027-01-04 09:30 CET', allowed: true },
  { instant: '2027-01-04T06:59:00Z', local: 'Monday 2027-01-04 07:59 CET (before the window)', allowed: false },
  { instant: '2027-01-04T16:59:00Z', local: 'Monday 2027-01-04 17:59 CET (last minute of the window)', allowed: true },
  { instant: '2027-01-04T17:00:30Z', local: 'Monday 2027-01-04 18:00:30 CET (the end is exclusive)', allowed: false },
  { instant: '2027-01-04T18:30:00Z', local: 'Monday 2027-01-04 19:30 CET (evening)', allowed: false },
  { instant: '2027-01-09T09:00:00Z', local: 'Saturday 2027-01-09 10:00 CET (weekend)', allowed: false },
  // Daylight saving: the same UTC times, winter against summer.
  { instant: '2027-01-04T06:30:00Z', local: 'Monday 2027-01-04 07:30 CET (06:30 UTC in winter)', allowed: false },
  { instant: '2027-07-05T06:30:00Z', local: 'Monday 2027-07-05 08:30 CEST (06:30 UTC in summer)', allowed: true },
  { instant: '2027-01-04T16:30:00Z', local: 'Monday 2027-01-04 17:30 CET (16:30 UTC in winter)', allowed: true },
  { instant: '2027-07-05T16:30:00Z', local: 'Monday 2027-07-05 18:30 CEST (16:30 UTC in summer)', allowed: false },
  // Around the switch to summer time on Sunday 2027-03-28.
  { instant: '2027-03-26T06:30:00Z', local: 'Friday 2027-03-26 07:30 CET (last weekday before the switch)', allowed: false },
  { instant: '2027-03-29T06:30:00Z', local: 'Monday 2027-03-29 08:30 CEST (first weekday after the switch)', allowed: true },
];

describe('a time-window rule (weekdays 08:00-18:00 Europe/Berlin) on the gate\'s clock', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  let clock = FIRST;

  /** Restarts nginx with its clock at `instant` (unless it already started there). */
  async function clockAt(instant: string): Promise<void> {
    if (clock === instant) return;
    await restartNginx(stack, fakeTimeEnv(instant));
    clock = instant;
  }

  beforeAll(async () => {
    stack = await startStack({ env: { POLICY_FILE: policyFixture('office-hours.yaml') }, nginxEnv: fakeTimeEnv(FIRST) });
  }, 60_000);
  afterAll(async () => {
    await stack?.nginx.stop(); // the latest restart; stack.stop() stops only the first nginx
    await stack?.stop();
  });
  beforeEach(() => stack.upstream.reset());

  test('nginx and the gate run on the faked clock, not the real one', async () => {
    await clockAt(FIRST);
    // A token minted on the real clock (2026) has long expired at the faked time, and is past the
    // session's maximum age there (so the gate does not even try to renew it)...
    const real = nowSeconds();
    const realToken = signWith(headerSegmentFor(stack.secret), claimsFor('127.0.0.1', real), stack.secret);
    const stale = await requestLogged(stack, 'GET', '/payroll', { accept: 'application/json', cookie: `${stack.cookieName}=${realToken}` });
    expect(stale.res.status).toBe(401);
    expect(JSON.parse(stale.res.body)).toMatchObject({ reason: 'session-max-age' });
    // ...and one minted for the faked time carries nbf, so a gate on the real clock would say
    // token-not-yet-valid instead of letting it in.
    const { res, log } = await requestLogged(stack, 'GET', '/payroll', { accept: 'application/json', cookie: sessionCookieAt(stack, secondsAt(FIRST)) });
    expect(res.status).toBe(200);
    expect(String(log.time)).toMatch(/^2027-01-04T08:30:\d\d\+00:00$/);
  });

  for (const c of instants) {
    test(`${c.local}: ${c.allowed ? 'allowed (payroll-office-hours)' : 'refused 403 (payroll-closed)'}`, async () => {
      await clockAt(c.instant);
      const { res, log } = await requestLogged(stack, 'GET', '/payroll/slips', { accept: 'application/json', cookie: sessionCookieAt(stack, secondsAt(c.instant)) });
      // The decision was taken at the faked instant (nginx's own clock, to the minute).
      expect(String(log.time).slice(0, 16)).toBe(c.instant.slice(0, 16));
      if (c.allowed) {
        expect(res.status).toBe(200);
        expect(stack.upstream.seen.map((s) => s.url)).toEqual(['/payroll/slips']);
        expect(stack.upstream.seen[0].headers['x-payload-username']).toBe('kirk');
        expect(log).toMatchObject({ status: 200, user: 'kirk', reason: 'session-valid', rule: 'payroll-office-hours' });
      } else {
        expect(res.status).toBe(403);
        expect(JSON.parse(res.body)).toEqual({ error: 'forbidden', reason: 'policy-denied' });
        expect(stack.upstream.seen).toHaveLength(0);
        expect(log).toMatchObject({ status: 403, user: 'kirk', reason: 'policy-denied', rule: 'payroll-closed' });
      }
    });
  }

  test('outside the window only /payroll is refused: other paths follow the default (deny) rule', async () => {
    await clockAt('2027-01-09T09:00:00Z');
    const { res, log } = await requestLogged(stack, 'GET', '/canteen', { accept: 'application/json', cookie: sessionCookieAt(stack, secondsAt('2027-01-09T09:00:00Z')) });
    expect(res.status).toBe(403);
    expect(log).toMatchObject({ status: 403, rule: 'default' });
  });
});
