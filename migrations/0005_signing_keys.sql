-- Keys shared by every replica: quotes are signed tokens (nothing is written per Quote), so
-- each replica must verify what another signed. Created once, by whichever replica starts
-- first; never sent to clients.
CREATE TABLE signing_keys (
    name text PRIMARY KEY,
    secret bytea NOT NULL CHECK (length(secret) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Quotes live in their tokens now; stored quotes were valid for minutes only, so a worker
-- holding one from before this version quotes again.
DROP TABLE quotes;

-- A hold names the quote it was authorized from by the quote id Authorize was given.
ALTER TABLE holds ALTER COLUMN quote_id TYPE text USING quote_id::text;
