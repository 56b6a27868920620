-- The identity provider's refresh token of an OIDC / Entra session (issue 9), so that renewal can
-- ask the provider whether the user may still sign in. Never the token itself: it is sealed with
-- AES-256-GCM under a key derived from JWT_SECRET (services/idp-refresh.ts), bound to the row's sid,
-- and sealed again under the active secret at every renewal. NULL for other sources, for providers
-- that issue no refresh token, and once the session has ended.
ALTER TABLE sessions ADD COLUMN idp_refresh text CHECK (length(idp_refresh) <= 16384);
