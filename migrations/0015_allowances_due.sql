-- When a rule may next owe a period: a period is owed once it has started, and only one that
-- starts at or after both when the rule takes effect and the end of the last period granted
-- under its name (src/ledger/allowance.rs, `due_from`); NULL while paused. A locked transaction
-- reads only the rules due by its time (src/store/read_sql.rs, ALLOWANCES), through the index:
-- an account whose period is granted costs one index probe that finds nothing. It is a lower
-- bound: a rule replaced by one of another calendar may be read until its first period starts.
ALTER TABLE allowances ADD COLUMN due_from timestamptz
    GENERATED ALWAYS AS (CASE WHEN enabled THEN greatest(effective_from, granted_until) END) STORED;

CREATE INDEX allowances_due_idx ON allowances (account_id, due_from);
