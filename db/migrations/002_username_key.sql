-- Usernames are matched on one key computed in the auth service (NFKC, then case folded; see
-- auth-service/src/security/username-key.ts), the same key the login rate limiter counts under.
-- PostgreSQL's lower() folds some letters differently from JavaScript (lower('KİRK') = 'kirk'), so a
-- spelling could get a fresh rate-limit bucket and still sign in as kirk (issue 8).
ALTER TABLE users ADD COLUMN username_key text;
-- The users CLI has only ever accepted ASCII usernames, for which this is exactly the service's key.
UPDATE users SET username_key = lower(normalize(username, NFKC));
ALTER TABLE users ALTER COLUMN username_key SET NOT NULL;
ALTER TABLE users ADD CONSTRAINT users_username_key_not_empty CHECK (username_key <> '');
DROP INDEX users_username_lower_key;
CREATE UNIQUE INDEX users_username_key ON users (username_key);
