-- Fewer bytes per run (docs/PERFORMANCE.md, "Where a run's bytes go").

-- The journal keyed by what ListLedger reads: (account, time, entry). One index where there
-- were two (no query looks an entry up by its id alone), and a key that names the account.
CREATE UNIQUE INDEX journal_entries_account_key ON journal_entries (account_id, created_at, entry_id);
ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_pkey;
ALTER TABLE journal_entries ADD CONSTRAINT journal_entries_pkey PRIMARY KEY USING INDEX journal_entries_account_key;
DROP INDEX journal_account_idx;

-- A record keeps a digest of each field of its request (field number and 8 bytes of SHA-256,
-- for naming the fields a reused key changed) instead of the whole request. Records written
-- before keep their request until retention removes them.
ALTER TABLE idempotency_records ALTER COLUMN request DROP NOT NULL;
ALTER TABLE idempotency_records ADD COLUMN request_fields bytea;
