-- Nothing to change in the schema: this marks when idempotency records may be lean (0029),
-- without the request's hash. A server before 0029 reads the hash of every record it finds, so
-- servers write it until this has run, which waits until none of them is connected
-- (src/store/migrate/contract.rs).
SELECT 1;
