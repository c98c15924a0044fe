-- Reserving and capturing change a grant's remaining and reserved twice per run. Indexes whose
-- predicates named those columns made every such update write a new entry in every index of
-- grants; predicates on a stored `live` flag (which changes only when a grant empties or fills
-- again) let the update stay on its page with no index writes (a HOT update).
-- Room on each page for those updates (set first, so the rewrite below already leaves it).
ALTER TABLE grants SET (fillfactor = 80);
ALTER TABLE grants ADD COLUMN live boolean GENERATED ALWAYS AS (remaining > 0 OR reserved > 0) STORED;
DROP INDEX grants_live_idx;
CREATE INDEX grants_live_idx ON grants (account_id) WHERE live;
DROP INDEX grants_expiring_idx;
CREATE INDEX grants_expiring_idx ON grants (expires_at) WHERE live AND expires_at IS NOT NULL;

-- Nothing reads journal lines by transaction but `creditgate verify`, which scans them all.
DROP INDEX journal_transaction_idx;

-- Due holds are found through holds_active_idx. An index on (account_id, created_at) let the
-- planner, with statistics taken while an account was small, walk every hold of an account
-- that had since become hot, on every transaction. Nothing else used it.
DROP INDEX holds_account_created_idx;
