-- The identity provider's refresh token of an OIDC / Entra session (issue 9), so that renewal can
-- ask the provider whether the user may still sign in. Never the token itself: it is sealed with
-- AES-256-GCM under a key derived from JWT_SECRET (services/idp-refresh.ts), bound to the row's sid,
-- and sealed again under the active secret at every renewal. NULL for other sources, for providers
-- that issue no refresh token, and once the session has ended.
ALTER TABLE sessions ADD COLUMN idp_refresh text CHECK (length(idp_refresh) <= 16384);

-- While one renewal redeems the refresh token, until when the others wait (any auth-service
-- instance): a provider that rotates refresh tokens refuses a second use of one, and may revoke
-- the whole grant. Taken and checked in one statement, on the database's clock; cleared by the
-- renewal that took it, or it runs out.
ALTER TABLE sessions ADD COLUMN idp_refresh_lease timestamptz;
