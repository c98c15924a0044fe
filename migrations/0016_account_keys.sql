-- Every unique key of a table distributed by account names the account (docs/SCALING.md §3).
-- The nine ledger keys that only gain `account_id` change in two steps, so that servers of
-- the version before keep working through an upgrade:
--   * here (expand): a unique index of each key's columns and `account_id`, beside the old
--     key. Servers of this version name it in their upserts' conflict target; older ones
--     still name the old key, which stays.
--   * 0017 (contract): each new index becomes the primary key, the old key goes. It runs only
--     once no older server is connected (src/store/migrate.rs).
-- Writes to each table wait while its index is built, for a time that grows with the table.
CREATE UNIQUE INDEX grants_account_key ON grants (grant_id, account_id);
CREATE UNIQUE INDEX holds_account_key ON holds (hold_id, account_id);
CREATE UNIQUE INDEX settlements_account_key ON settlements (settlement_id, account_id);
CREATE UNIQUE INDEX refunds_account_key ON refunds (refund_id, account_id);
CREATE UNIQUE INDEX hold_allocations_account_key ON hold_allocations (hold_id, grant_id, account_id);
CREATE UNIQUE INDEX settlement_parts_account_key ON settlement_parts (settlement_id, grant_id, account_id);
CREATE UNIQUE INDEX allowances_account_key ON allowances (allowance_id, account_id);
-- Still one grant per rule and period: a rule belongs to one account.
CREATE UNIQUE INDEX allowance_grants_account_key ON allowance_grants (allowance_id, period_start, account_id);
CREATE UNIQUE INDEX spend_limits_account_key ON spend_limits (spend_limit_id, account_id);

-- A tenant's webhook endpoints and their deliveries are distributed by tenant: their keys name
-- it, and a delivery refers to its endpoint by both. No server names these keys in a
-- statement (each looks rows up by id), so they change here at once.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_endpoint_id_fkey;
CREATE UNIQUE INDEX webhook_endpoints_tenant_key ON webhook_endpoints (endpoint_id, tenant_id);
ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_pkey,
    ADD CONSTRAINT webhook_endpoints_pkey PRIMARY KEY USING INDEX webhook_endpoints_tenant_key;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_endpoint_id_fkey
    FOREIGN KEY (endpoint_id, tenant_id) REFERENCES webhook_endpoints (endpoint_id, tenant_id)
    ON DELETE CASCADE;
CREATE UNIQUE INDEX webhook_deliveries_tenant_key ON webhook_deliveries (delivery_id, tenant_id);
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_pkey,
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY USING INDEX webhook_deliveries_tenant_key;
