-- Accounts, grants (buckets), holds and allocations, settlements, refunds, the journal and
-- idempotency records. Every table carries account_id (or tenant_id) so the schema can be
-- distributed by account. Amounts are NUMERIC with 9 decimal places; never floats.

CREATE TABLE accounts (
    account_id             uuid PRIMARY KEY,
    tenant_id              uuid NOT NULL REFERENCES tenants (tenant_id),
    external_id            text NOT NULL,
    kind                   text NOT NULL,
    status                 text NOT NULL,
    settle_policy          text NOT NULL,
    entitlements           text[] NOT NULL DEFAULT '{}',
    low_balance_threshold  numeric(30, 9),
    debt                   numeric(30, 9) NOT NULL DEFAULT 0 CHECK (debt >= 0),
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    UNIQUE (tenant_id, external_id)
);

CREATE TABLE grants (
    grant_id      uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    account_id    uuid NOT NULL REFERENCES accounts (account_id),
    source        text NOT NULL,
    priority      integer NOT NULL,
    amount        numeric(30, 9) NOT NULL CHECK (amount > 0),
    remaining     numeric(30, 9) NOT NULL CHECK (remaining >= 0),
    reserved      numeric(30, 9) NOT NULL CHECK (reserved >= 0),
    effective_at  timestamptz NOT NULL,
    expires_at    timestamptz,
    external_ref  text,
    created_at    timestamptz NOT NULL
);
-- Grants still holding credits: what every balance change of the account reads.
CREATE INDEX grants_live_idx ON grants (account_id) WHERE remaining > 0 OR reserved > 0;
CREATE UNIQUE INDEX grants_external_ref_idx ON grants (account_id, external_ref) WHERE external_ref IS NOT NULL;
-- Expired grants whose breakage is not posted yet, for the sweeper.
CREATE INDEX grants_expiring_idx ON grants (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

CREATE TABLE holds (
    hold_id           uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL,
    account_id        uuid NOT NULL REFERENCES accounts (account_id),
    status            text NOT NULL,
    amount            numeric(30, 9) NOT NULL CHECK (amount > 0),
    captured          numeric(30, 9) NOT NULL CHECK (captured >= 0),
    expires_at        timestamptz NOT NULL,
    partial_captures  integer NOT NULL DEFAULT 0,
    late_settled      boolean NOT NULL DEFAULT false,
    authorize_key     text NOT NULL,
    catalog_version   bigint NOT NULL DEFAULT 0,
    quote_id          uuid,
    task_type         text NOT NULL DEFAULT '',
    tool              text NOT NULL DEFAULT '',
    model             text NOT NULL DEFAULT '',
    project           text NOT NULL DEFAULT '',
    run_id            text NOT NULL DEFAULT '',
    label_keys        text[] NOT NULL DEFAULT '{}',
    label_values      text[] NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL,
    resolved_at       timestamptz,
    UNIQUE (tenant_id, authorize_key)
);
-- Active holds by expiry: the sweeper and every locked transaction's "due holds" read.
CREATE INDEX holds_active_idx ON holds (account_id, expires_at) WHERE status = 'ACTIVE';
CREATE INDEX holds_due_idx ON holds (expires_at) WHERE status = 'ACTIVE';
CREATE INDEX holds_account_created_idx ON holds (account_id, created_at);

CREATE TABLE hold_allocations (
    hold_id     uuid NOT NULL REFERENCES holds (hold_id),
    grant_id    uuid NOT NULL REFERENCES grants (grant_id),
    account_id  uuid NOT NULL,
    position    integer NOT NULL,
    reserved    numeric(30, 9) NOT NULL CHECK (reserved >= 0),
    captured    numeric(30, 9) NOT NULL CHECK (captured >= 0),
    PRIMARY KEY (hold_id, grant_id)
);

CREATE TABLE settlements (
    settlement_id  uuid PRIMARY KEY,
    hold_id        uuid NOT NULL REFERENCES holds (hold_id),
    account_id     uuid NOT NULL,
    tenant_id      uuid NOT NULL,
    total          numeric(30, 9) NOT NULL CHECK (total >= 0),
    from_hold      numeric(30, 9) NOT NULL,
    from_balance   numeric(30, 9) NOT NULL,
    debt           numeric(30, 9) NOT NULL,
    written_off    numeric(30, 9) NOT NULL,
    released       numeric(30, 9) NOT NULL,
    late           boolean NOT NULL,
    partial        boolean NOT NULL,
    refunded       numeric(30, 9) NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL,
    CHECK (total = from_hold + from_balance + debt + written_off),
    CHECK (refunded <= from_hold + from_balance + debt)
);
CREATE INDEX settlements_hold_idx ON settlements (hold_id);

CREATE TABLE settlement_parts (
    settlement_id  uuid NOT NULL REFERENCES settlements (settlement_id),
    grant_id       uuid NOT NULL,
    account_id     uuid NOT NULL,
    position       integer NOT NULL,
    amount         numeric(30, 9) NOT NULL CHECK (amount > 0),
    refunded       numeric(30, 9) NOT NULL DEFAULT 0 CHECK (refunded <= amount),
    PRIMARY KEY (settlement_id, grant_id)
);

CREATE TABLE refunds (
    refund_id      uuid PRIMARY KEY,
    settlement_id  uuid NOT NULL REFERENCES settlements (settlement_id),
    hold_id        uuid NOT NULL,
    account_id     uuid NOT NULL,
    amount         numeric(30, 9) NOT NULL CHECK (amount > 0),
    debt_reduced   numeric(30, 9) NOT NULL,
    new_grant_id   uuid,
    reason         text NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX refunds_settlement_idx ON refunds (settlement_id);

-- Append-only double-entry journal; each transaction_id sums to zero. Never updated.
CREATE TABLE journal_entries (
    entry_id        uuid PRIMARY KEY,
    transaction_id  uuid NOT NULL,
    tenant_id       uuid NOT NULL,
    account_id      uuid NOT NULL,
    ledger_account  text NOT NULL,
    amount          numeric(30, 9) NOT NULL,
    kind            text NOT NULL,
    grant_id        uuid,
    hold_id         uuid,
    settlement_id   uuid,
    refund_id       uuid,
    created_at      timestamptz NOT NULL
);
CREATE INDEX journal_account_idx ON journal_entries (account_id, created_at);
CREATE INDEX journal_transaction_idx ON journal_entries (transaction_id);

CREATE RULE journal_entries_no_update AS ON UPDATE TO journal_entries DO INSTEAD NOTHING;
CREATE RULE journal_entries_no_delete AS ON DELETE TO journal_entries DO INSTEAD NOTHING;

-- One row per mutating call: the request's fingerprint and the answer (response or decline).
CREATE TABLE idempotency_records (
    tenant_id        uuid NOT NULL,
    idempotency_key  text NOT NULL,
    rpc              text NOT NULL,
    request_hash     bytea NOT NULL,
    request          bytea NOT NULL,
    account_id       uuid,
    response         bytea,
    error_reason     text,
    error_message    text,
    error_metadata   text[],
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, idempotency_key)
);
CREATE INDEX idempotency_created_idx ON idempotency_records (created_at);
