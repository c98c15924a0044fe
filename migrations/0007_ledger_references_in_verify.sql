-- The foreign keys among ledger rows each ran a lookup that also locked the referenced row
-- (FOR KEY SHARE: a tuple lock and its WAL record) on every insert, about a tenth of the
-- many-account throughput. Every such row is written only from the account's book under its
-- row lock, and `creditgate verify` now checks the same references (and that both ends belong
-- to the same account, which the keys never did). Keys on a bare id could not be kept anyway
-- were the tables distributed by account.
ALTER TABLE grants DROP CONSTRAINT grants_account_id_fkey;
ALTER TABLE holds DROP CONSTRAINT holds_account_id_fkey;
ALTER TABLE hold_allocations DROP CONSTRAINT hold_allocations_hold_id_fkey;
ALTER TABLE hold_allocations DROP CONSTRAINT hold_allocations_grant_id_fkey;
ALTER TABLE settlements DROP CONSTRAINT settlements_hold_id_fkey;
ALTER TABLE settlement_parts DROP CONSTRAINT settlement_parts_settlement_id_fkey;
ALTER TABLE refunds DROP CONSTRAINT refunds_settlement_id_fkey;
