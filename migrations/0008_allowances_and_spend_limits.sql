-- Allowances (recurring grant rules) and spend limits (caps per member, API key or project).
-- Both are written only from the account's book under its row lock, like every ledger row, so
-- they carry no foreign keys (see 0007); `creditgate verify` checks their references.

-- A rule: `amount` credits every `period` (DAY or MONTH) from `anchor_date` in `time_zone`.
-- `effective_from`: periods starting before it belong to the rule it replaced (or to none).
-- `granted_period`: the start of the last period it granted; `granted_until`: the end of the
-- last period granted under its name (no later period may start before it).
CREATE TABLE allowances (
    allowance_id    uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    account_id      uuid NOT NULL,
    name            text NOT NULL,
    source          text NOT NULL,
    amount          numeric(30, 9) NOT NULL CHECK (amount > 0),
    period          text NOT NULL,
    anchor_date     date NOT NULL,
    time_zone       text NOT NULL,
    enabled         boolean NOT NULL,
    effective_from  timestamptz NOT NULL,
    granted_period  timestamptz,
    granted_until   timestamptz,
    created_at      timestamptz NOT NULL,
    UNIQUE (account_id, name)
);

-- One row per period granted: the backstop that makes a period granted once, whatever the
-- number of replicas (the account lock already serializes them; this refuses a second grant).
CREATE TABLE allowance_grants (
    allowance_id  uuid NOT NULL,
    period_start  timestamptz NOT NULL,
    account_id    uuid NOT NULL,
    grant_id      uuid NOT NULL,
    PRIMARY KEY (allowance_id, period_start)
);

-- A limit and its counters for the period starting at `period_start`: `spent` is what the
-- scope's settlements charged in it since `counted_from` (when the limit was set), less
-- refunds; `reserved` what its active holds reserve.
CREATE TABLE spend_limits (
    spend_limit_id  uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    account_id      uuid NOT NULL,
    scope_kind      text NOT NULL,
    scope_id        text NOT NULL,
    period          text NOT NULL,
    limit_amount    numeric(30, 9) NOT NULL CHECK (limit_amount >= 0),
    spent           numeric(30, 9) NOT NULL CHECK (spent >= 0),
    reserved        numeric(30, 9) NOT NULL CHECK (reserved >= 0),
    period_start    timestamptz NOT NULL,
    counted_from    timestamptz NOT NULL,
    UNIQUE (account_id, scope_kind, scope_id, period)
);
-- Every operation of a scoped hold updates its limits' counters (no indexed column): room on
-- each page keeps those updates on their page, with no index writes (as for grants, 0006).
ALTER TABLE spend_limits SET (fillfactor = 50);

-- The scope a hold counts against (both set or both null). Existing holds have neither, so
-- the check need not walk them (NOT VALID still checks every row written from now on).
ALTER TABLE holds ADD COLUMN spend_scope_kind text, ADD COLUMN spend_scope_id text;
ALTER TABLE holds ADD CONSTRAINT holds_spend_scope_check
    CHECK ((spend_scope_kind IS NULL) = (spend_scope_id IS NULL)) NOT VALID;
-- No index on the scope: a limit set on a scope finds its active holds among the account's
-- (holds_active_idx), and an index of its own cost an entry on every scoped Authorize.
