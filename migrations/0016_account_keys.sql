-- Every unique key of a table distributed by account names the account, and of one
-- distributed by tenant the tenant (docs/SCALING.md §3). Each new key is built here, online,
-- beside the old one (an *online* migration: each statement runs alone, outside a
-- transaction, and can run again; an index left invalid by an interrupted build is dropped and
-- built again). Writes go on while they are built.
--   * The nine ledger keys that only gain `account_id`: servers of this version name them in
--     their upserts' conflict targets; older ones still name the old keys, which stay until
--     0021 (a contract migration, run once no older server is connected) swaps them in.
--   * The webhook tables' keys gain `tenant_id`; 0017 swaps them in at once, as no server
--     names those keys.
-- This file holds only such statements, separated by semicolons.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS grants_account_key ON grants (grant_id, account_id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS holds_account_key ON holds (hold_id, account_id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS settlements_account_key ON settlements (settlement_id, account_id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS refunds_account_key ON refunds (refund_id, account_id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS hold_allocations_account_key
    ON hold_allocations (hold_id, grant_id, account_id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS settlement_parts_account_key
    ON settlement_parts (settlement_id, grant_id, account_id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS allowances_account_key ON allowances (allowance_id, account_id);
-- Still one grant per rule and period: a rule belongs to one account.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS allowance_grants_account_key
    ON allowance_grants (allowance_id, period_start, account_id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS spend_limits_account_key ON spend_limits (spend_limit_id, account_id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS webhook_endpoints_tenant_key
    ON webhook_endpoints (endpoint_id, tenant_id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS webhook_deliveries_tenant_key
    ON webhook_deliveries (delivery_id, tenant_id);
