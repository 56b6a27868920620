-- The revocation feed (GET /auth/revocations, issue 9): nginx on njs >= 0.8 asks every second for
-- the sessions revoked in the last token lifetime. This index keeps that a range scan over those few
-- rows, whatever the size of the table.
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
