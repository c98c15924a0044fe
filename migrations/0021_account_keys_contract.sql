-- The contract step of 0016: each index built there becomes its table's primary key (keeping
-- the key's name), and the old key, which names no account, goes. Servers before 0016 name the
-- old keys in their upserts and fail once this has run, so it waits until none is connected.
-- Each swap changes only the catalog: the index exists and its columns are NOT NULL.
--
-- It runs while servers serve, so it takes every lock it needs up front, `accounts` first:
-- every locked transaction locks its accounts before any other table, so none is halfway
-- through when the rest are taken, and the migration never waits holding a ledger table a
-- request needs. It gives up on any lock after 200 ms and tries again (src/store/migrate.rs).
LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE;
LOCK TABLE grants, holds, settlements, refunds, hold_allocations, settlement_parts, allowances,
    allowance_grants, spend_limits IN ACCESS EXCLUSIVE MODE;
ALTER TABLE grants DROP CONSTRAINT grants_pkey,
    ADD CONSTRAINT grants_pkey PRIMARY KEY USING INDEX grants_account_key;
ALTER TABLE holds DROP CONSTRAINT holds_pkey,
    ADD CONSTRAINT holds_pkey PRIMARY KEY USING INDEX holds_account_key;
ALTER TABLE settlements DROP CONSTRAINT settlements_pkey,
    ADD CONSTRAINT settlements_pkey PRIMARY KEY USING INDEX settlements_account_key;
ALTER TABLE refunds DROP CONSTRAINT refunds_pkey,
    ADD CONSTRAINT refunds_pkey PRIMARY KEY USING INDEX refunds_account_key;
ALTER TABLE hold_allocations DROP CONSTRAINT hold_allocations_pkey,
    ADD CONSTRAINT hold_allocations_pkey PRIMARY KEY USING INDEX hold_allocations_account_key;
ALTER TABLE settlement_parts DROP CONSTRAINT settlement_parts_pkey,
    ADD CONSTRAINT settlement_parts_pkey PRIMARY KEY USING INDEX settlement_parts_account_key;
ALTER TABLE allowances DROP CONSTRAINT allowances_pkey,
    ADD CONSTRAINT allowances_pkey PRIMARY KEY USING INDEX allowances_account_key;
ALTER TABLE allowance_grants DROP CONSTRAINT allowance_grants_pkey,
    ADD CONSTRAINT allowance_grants_pkey PRIMARY KEY USING INDEX allowance_grants_account_key;
ALTER TABLE spend_limits DROP CONSTRAINT spend_limits_pkey,
    ADD CONSTRAINT spend_limits_pkey PRIMARY KEY USING INDEX spend_limits_account_key;

-- External ids: every server writes its claims now, so the trigger that claimed for older ones
-- and the key on `accounts` that spanned its tenant's accounts go.
DROP TRIGGER accounts_claim_external_id ON accounts;
DROP FUNCTION claim_account_external_id();
ALTER TABLE accounts DROP CONSTRAINT accounts_tenant_id_external_id_key;
