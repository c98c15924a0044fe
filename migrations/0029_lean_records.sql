-- An idempotency record keeps the request's SHA-256 (33 bytes) and a digest of each of its
-- top-level fields (9 bytes each), the idempotency key's among them. The digests alone tell
-- whether a retry is the same request, and the key's is the record's own key: a lean record
-- keeps neither (42 bytes fewer; src/service/idempotency.rs, `Fingerprint::lean`). Servers
-- before this read the hash, so until 0030 has run (it waits until none is connected) servers
-- of this version keep writing it. A catalog change only: no row is read or rewritten.
ALTER TABLE idempotency_records ALTER COLUMN request_hash DROP NOT NULL;
