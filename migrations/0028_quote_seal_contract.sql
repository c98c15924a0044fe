-- Nothing to change in the schema: this marks when a hold may keep its quote sealed (0027),
-- leaving `quote_token` NULL. A server before 0027 reads the token alone and would show such a
-- hold without it, so servers write it whole until this has run, which waits until none of them
-- is connected (src/store/migrate/contract.rs).
SELECT 1;
