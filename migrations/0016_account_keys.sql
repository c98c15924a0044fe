-- Every unique key of a table distributed by account names the account (docs/SCALING.md §3).
-- The nine ledger keys that only gain `account_id` change in two steps, so that servers of
-- the version before keep working through an upgrade:
--   * here (expand): a unique index of each key's columns and `account_id`, beside the old
--     key. Servers of this version name it in their upserts' conflict target; older ones
--     still name the old key, which stays.
--   * 0018 (contract): each new index becomes the primary key, the old key goes. It runs only
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

-- An account's external id is unique per tenant: on accounts distributed by account, that key
-- cannot stay on `accounts`. The claim moves to a table of the tenant group
-- (docs/SCALING.md §3.3), looked up by (tenant, external id); `accounts.external_id` stays for
-- reading. Servers of this version write the claim with the account. Servers before it do
-- not: until 0018 (which waits for them to go) this trigger claims for them, and the old
-- unique key stays, so an id is never claimed twice whichever server creates the account.
CREATE TABLE account_external_ids (
    tenant_id    uuid NOT NULL,
    external_id  text NOT NULL,
    account_id   uuid NOT NULL,
    PRIMARY KEY (tenant_id, external_id)
);
INSERT INTO account_external_ids (tenant_id, external_id, account_id)
    SELECT tenant_id, external_id, account_id FROM accounts;
CREATE FUNCTION claim_account_external_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_external_ids (tenant_id, external_id, account_id)
        VALUES (NEW.tenant_id, NEW.external_id, NEW.account_id)
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER accounts_claim_external_id AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION claim_account_external_id();
