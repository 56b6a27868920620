-- Applications (issue 12): the app a sign-in, sign-out or renewal came through, as nginx names it
-- (`set $gate_app NAME;`, sent as X-Gateway-App and checked against the policy's apps). NULL for the
-- default, unnamed app, for events without a request (the users CLI) and for rows written before.
ALTER TABLE auth_events ADD COLUMN app text CHECK (app ~ '^[a-z0-9][a-z0-9_-]{0,31}$');
