-- A tenant's webhook endpoints and their deliveries are distributed by tenant: their keys name
-- it, and a delivery refers to its endpoint by both. No server names these keys in a
-- statement (each looks rows up by id), so the indexes 0016 built become the keys at once.
-- Each swap changes only the catalog; the new foreign key is checked by one scan of the
-- deliveries (a week of attempts), which the delivery worker waits for.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_endpoint_id_fkey;
ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_pkey,
    ADD CONSTRAINT webhook_endpoints_pkey PRIMARY KEY USING INDEX webhook_endpoints_tenant_key;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_endpoint_id_fkey
    FOREIGN KEY (endpoint_id, tenant_id) REFERENCES webhook_endpoints (endpoint_id, tenant_id)
    ON DELETE CASCADE;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_pkey,
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY USING INDEX webhook_deliveries_tenant_key;

-- An account's external id is unique per tenant: on accounts distributed by account, that key
-- cannot stay on `accounts`. The claim moves to a table of the tenant group
-- (docs/SCALING.md §3.3), looked up by (tenant, external id); `accounts.external_id` stays for
-- reading. Servers of this version write the claim with the account. Servers before it do
-- not: until 0021 (which waits for them to go) this trigger claims for them, and the old
-- unique key stays, so an id is never claimed twice whichever server creates the account.
CREATE TABLE account_external_ids (
    tenant_id    uuid NOT NULL,
    external_id  text NOT NULL,
    account_id   uuid NOT NULL,
    PRIMARY KEY (tenant_id, external_id)
);
CREATE FUNCTION claim_account_external_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_external_ids (tenant_id, external_id, account_id)
        VALUES (NEW.tenant_id, NEW.external_id, NEW.account_id)
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
-- The trigger first: from here no account is inserted unclaimed, and the backfill, a
-- statement later, sees every account inserted before (writes to `accounts` wait for this
-- transaction, a scan of the accounts long).
CREATE TRIGGER accounts_claim_external_id AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION claim_account_external_id();
INSERT INTO account_external_ids (tenant_id, external_id, account_id)
    SELECT tenant_id, external_id, account_id FROM accounts
    ON CONFLICT DO NOTHING;
