-- Local users of the auth service.
-- Usernames are stored as typed and matched case-insensitively through the unique index on lower(username).
-- (No citext: the embedded store only has the extensions passed when it is created.)
CREATE TABLE users (
  id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  username      text        NOT NULL CHECK (length(username) BETWEEN 1 AND 64),
  password_hash text        NOT NULL,
  email         text,
  full_name     text,
  groups        text[]      NOT NULL DEFAULT '{}',
  disabled      boolean     NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
