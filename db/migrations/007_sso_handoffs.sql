-- Single sign-on hand-off codes (issue 12): the sign-in host hands a session to an application
-- host that shares no parent domain with it, through a one-time code in a redirect.
--
-- Only the SHA-256 of the code is kept: the code itself (32 random bytes) lives in one redirect and
-- is never written anywhere. A code is redeemed at most once (used_at, set by one atomic UPDATE),
-- only before expires_at (SSO_HANDOFF_TTL_SECONDS after issue), only on target_origin and only from
-- client_ip. Redeemed rows (redeemed_at) also record which hosts hold a cookie of the session, so that logout can
-- clear the cookie on each of them (docs/operations.md "Single sign-on").
CREATE TABLE sso_handoffs (
  -- base64url(sha256(code)), 43 characters.
  code_hash      text        PRIMARY KEY CHECK (length(code_hash) = 43),
  sid            text        NOT NULL REFERENCES sessions (sid) ON DELETE CASCADE,
  -- The APP_ORIGINS entry the code was issued for, e.g. https://app.example.com.
  target_origin  text        NOT NULL CHECK (length(target_origin) BETWEEN 8 AND 300),
  client_ip      text        NOT NULL CHECK (length(client_ip) <= 64),
  -- The session's token claims at issue (identity only: no token, secret or signature), which the
  -- target host signs again into its own cookie.
  claims         jsonb       NOT NULL,
  created_at     timestamptz NOT NULL,
  expires_at     timestamptz NOT NULL,
  -- Set by the one redemption attempt a code gets, successful or not (a code presented from the
  -- wrong origin or address is spent all the same).
  used_at        timestamptz,
  -- Set when that attempt succeeded: the target host then holds a cookie of the session.
  redeemed_at    timestamptz,
  CHECK (expires_at > created_at),
  CHECK (redeemed_at IS NULL OR used_at IS NOT NULL)
);
CREATE INDEX sso_handoffs_sid ON sso_handoffs (sid);
CREATE INDEX sso_handoffs_expires_at ON sso_handoffs (expires_at);

-- The hand-off's audit events.
ALTER TABLE auth_events DROP CONSTRAINT auth_events_event_check;
ALTER TABLE auth_events ADD CONSTRAINT auth_events_event_check CHECK (event IN (
  'login_success', 'login_failure', 'rate_limited', 'logout', 'revoke', 'disable',
  'renewal', 'renewal_refused', 'handoff_issued', 'handoff_redeemed', 'handoff_refused'));
