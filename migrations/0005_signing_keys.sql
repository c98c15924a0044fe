-- Keys shared by every replica: quotes are signed tokens (nothing is written per Quote), so
-- each replica must verify what another signed. Created once, by whichever replica starts
-- first; never sent to clients.
CREATE TABLE signing_keys (
    name text PRIMARY KEY,
    secret bytea NOT NULL CHECK (length(secret) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A hold names the quote it was authorized from: `quote_id` keeps the quote's own id (servers
-- of the version before read it as a uuid, so it stays one) and `quote_token` the quote id
-- Authorize was given. Nullable without a default: added without rewriting the table. The
-- `quotes` table is no longer written; a later release drops it, once no server of the
-- version before runs.
ALTER TABLE holds ADD COLUMN quote_token text;
