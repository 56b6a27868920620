-- Server-side sessions and the append-only audit trail (issue 9).
--
-- One row per sign-in, written in the same transaction as its login_success event, before the
-- session cookie is sent: a sign-in that got a success answer always has both rows.
CREATE TABLE sessions (
  -- The token's `sid` claim: 16 random bytes, base64url (22 characters).
  sid             text        PRIMARY KEY CHECK (length(sid) BETWEEN 16 AND 128),
  -- As the source spelled it (for display).
  username        text        NOT NULL CHECK (length(username) BETWEEN 1 AND 256),
  -- What `--user` matches: "<src>:<username key>" (NFKC + case fold) for sources whose usernames
  -- are account keys, "<src>:<sub>" for OIDC/Entra, whose usernames can change (session-contract.ts).
  user_key        text        NOT NULL,
  -- The kind of source, and the exact `src` claim (a custom module names itself).
  source          text        NOT NULL CHECK (source IN ('local', 'tableau', 'oidc', 'custom')),
  src             text        NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  last_seen_at    timestamptz NOT NULL DEFAULT now(),
  idle_expires_at timestamptz NOT NULL,
  -- Absolute end (SESSION_MAX_SECONDS after sign-in); never moved.
  expires_at      timestamptz NOT NULL,
  revoked_at      timestamptz,
  revoke_reason   text,
  client_ip       text        NOT NULL,
  user_agent      text        CHECK (length(user_agent) <= 256),
  -- Every group the source returned at sign-in (the token may later carry only some of them).
  groups          text[]      NOT NULL DEFAULT '{}',
  -- OIDC: the provider's session id (the ID token's `sid`), which front-channel logout names.
  idp_sid         text,
  CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL)),
  CHECK (idle_expires_at <= expires_at)
);
CREATE INDEX sessions_user_key ON sessions (user_key, created_at);
CREATE INDEX sessions_idp_sid ON sessions (idp_sid) WHERE idp_sid IS NOT NULL;
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- What happened, never a secret: no password, token, cookie or provider code is ever written here.
CREATE TABLE auth_events (
  id          bigserial   PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  event       text        NOT NULL CHECK (event IN (
                'login_success', 'login_failure', 'rate_limited', 'logout', 'revoke', 'disable',
                'renewal', 'renewal_refused')),
  -- The user, or the name someone tried (truncated; it may be anything a client typed).
  username    text        CHECK (length(username) <= 256),
  -- The account the event is about ("<src>:<key>", as sessions.user_key), when one is known.
  user_key    text,
  -- The username key (NFKC + case fold) of `username`: finds the failed attempts on a name, which
  -- belong to no known account.
  name_key    text,
  source      text        CHECK (length(source) <= 64),
  client_ip   text        CHECK (length(client_ip) <= 64),
  request_id  text        CHECK (length(request_id) <= 128),
  sid         text        CHECK (length(sid) <= 128),
  reason      text        CHECK (length(reason) <= 200)
);
CREATE INDEX auth_events_at ON auth_events (at);
CREATE INDEX auth_events_user_key ON auth_events (user_key, at);
CREATE INDEX auth_events_name_key ON auth_events (name_key, at) WHERE user_key IS NULL;

-- Append-only. UPDATE and TRUNCATE are always refused. DELETE is refused unless the retention job
-- set `gateway.audit_purge_days` for its own transaction (SET LOCAL), and then only for rows older
-- than that many days (at least 1). This stops mistakes and application bugs from rewriting the
-- trail; a database superuser can still drop the trigger (keep the account the service uses an
-- ordinary one if that matters to you).
CREATE FUNCTION auth_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  days integer;
BEGIN
  IF TG_OP = 'DELETE' THEN
    days := NULLIF(current_setting('gateway.audit_purge_days', true), '')::integer;
    IF days IS NOT NULL AND days >= 1 AND OLD.at < now() - make_interval(days => days) THEN
      RETURN OLD;
    END IF;
  END IF;
  RAISE EXCEPTION 'auth_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER auth_events_no_update BEFORE UPDATE OR DELETE ON auth_events
  FOR EACH ROW EXECUTE FUNCTION auth_events_append_only();
CREATE TRIGGER auth_events_no_truncate BEFORE TRUNCATE ON auth_events
  FOR EACH STATEMENT EXECUTE FUNCTION auth_events_append_only();
