//! The generated statements against their text as written out before they were generated:
//! a column table change that changes a statement shows here.

use super::*;

const UPDATE_ACCOUNTS_TEXT: &str = "UPDATE accounts a SET debt = v.debt, updated_at = $3 \
     FROM unnest($1::uuid[], $2::numeric[]) AS v(account_id, debt) WHERE a.account_id = v.account_id";

const UPSERT_GRANTS_TEXT: &str = "INSERT INTO grants (grant_id, source, priority, amount, remaining, reserved, \
     effective_at, expires_at, external_ref, created_at, tenant_id, account_id, expiry_warned) \
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::int4[], $4::numeric[], \
     $5::numeric[], $6::numeric[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::timestamptz[], \
     $11::uuid[], $12::uuid[], $13::bool[]) \
     ON CONFLICT (grant_id, account_id) DO UPDATE SET remaining = EXCLUDED.remaining, reserved = EXCLUDED.reserved, \
     expiry_warned = EXCLUDED.expiry_warned";

const INSERT_GRANTS_TEXT: &str = "INSERT INTO grants (grant_id, source, priority, amount, remaining, reserved, \
     effective_at, expires_at, external_ref, created_at, tenant_id, account_id, expiry_warned) \
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::int4[], $4::numeric[], \
     $5::numeric[], $6::numeric[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::timestamptz[], \
     $11::uuid[], $12::uuid[], $13::bool[])";

const INSERT_HOLDS_TEXT: &str = "WITH claimed AS (INSERT INTO authorize_keys (authorize_key, account_id, hold_id) \
     SELECT * FROM unnest($28::text[], $20::uuid[], $1::uuid[])) \
     INSERT INTO holds (hold_id, status, amount, captured, expires_at, \
     partial_captures, late_settled, authorize_key, catalog_version, quote_id, task_type, tool, model, project, \
     run_id, label_keys, label_values, created_at, resolved_at, tenant_id, account_id, quote_token, quote_seal, \
     spend_scope_kind, spend_scope_id) \
     SELECT h.hold_id, h.status, h.amount, h.captured, h.expires_at, h.partial_captures, h.late_settled, \
     h.authorize_key, h.catalog_version, h.quote_id, h.task_type, h.tool, h.model, h.project, h.run_id, \
     ($21::text[])[h.label_first:h.label_last], ($22::text[])[h.label_first:h.label_last], \
     h.created_at, h.resolved_at, h.tenant_id, h.account_id, h.quote_token, h.quote_seal, h.spend_scope_kind, h.spend_scope_id \
     FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::numeric[], $5::timestamptz[], $6::int4[], $7::bool[], \
     $8::text[], $9::int8[], $10::uuid[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], \
     $16::int4[], $17::timestamptz[], $18::timestamptz[], $19::uuid[], $20::uuid[], $23::int4[], $24::text[], $25::bytea[], $26::text[], $27::text[], $28::text[]) AS h(hold_id, \
     status, amount, captured, expires_at, partial_captures, late_settled, authorize_key, catalog_version, quote_id, \
     task_type, tool, model, project, run_id, label_first, created_at, resolved_at, tenant_id, account_id, \
     label_last, quote_token, quote_seal, spend_scope_kind, spend_scope_id, claimed_key) \
     ORDER BY h.tenant_id, h.claimed_key COLLATE \"C\"";

const UPDATE_HOLDS_TEXT: &str = "UPDATE holds h SET status = v.status, amount = v.amount, captured = v.captured, \
     expires_at = v.expires_at, partial_captures = v.partial_captures, late_settled = v.late_settled, \
     resolved_at = v.resolved_at \
     FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::numeric[], $5::timestamptz[], $6::int4[], \
     $7::bool[], $8::timestamptz[]) AS v(hold_id, status, amount, captured, expires_at, partial_captures, \
     late_settled, resolved_at) WHERE h.hold_id = v.hold_id";

const UPSERT_ALLOCATIONS_TEXT: &str = "INSERT INTO hold_allocations (hold_id, grant_id, position, reserved, captured, account_id) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::numeric[], $5::numeric[], $6::uuid[]) \
     ON CONFLICT (hold_id, grant_id, account_id) DO UPDATE SET reserved = EXCLUDED.reserved, captured = EXCLUDED.captured";

const INSERT_ALLOCATIONS_TEXT: &str = "INSERT INTO hold_allocations (hold_id, grant_id, position, reserved, captured, account_id) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::numeric[], $5::numeric[], $6::uuid[])";

const UPSERT_SETTLEMENTS_TEXT: &str = "INSERT INTO settlements (settlement_id, hold_id, total, from_hold, from_balance, \
     debt, written_off, released, late, partial, refunded, created_at, line_items, account_id, tenant_id) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::numeric[], $4::numeric[], \
     $5::numeric[], $6::numeric[], $7::numeric[], $8::numeric[], $9::bool[], $10::bool[], $11::numeric[], \
     $12::timestamptz[], $13::jsonb[], $14::uuid[], $15::uuid[]) ON CONFLICT (settlement_id, account_id) DO UPDATE SET refunded = EXCLUDED.refunded";

const INSERT_SETTLEMENTS_TEXT: &str = "INSERT INTO settlements (settlement_id, hold_id, total, from_hold, from_balance, \
     debt, written_off, released, late, partial, refunded, created_at, line_items, account_id, tenant_id) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::numeric[], $4::numeric[], \
     $5::numeric[], $6::numeric[], $7::numeric[], $8::numeric[], $9::bool[], $10::bool[], $11::numeric[], \
     $12::timestamptz[], $13::jsonb[], $14::uuid[], $15::uuid[])";

const UPSERT_PARTS_TEXT: &str = "INSERT INTO settlement_parts (settlement_id, grant_id, position, amount, refunded, account_id) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::numeric[], $5::numeric[], $6::uuid[]) \
     ON CONFLICT (settlement_id, grant_id, account_id) DO UPDATE SET refunded = EXCLUDED.refunded";

const INSERT_PARTS_TEXT: &str = "INSERT INTO settlement_parts (settlement_id, grant_id, position, amount, refunded, account_id) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::numeric[], $5::numeric[], $6::uuid[])";

const INSERT_REFUNDS_TEXT: &str = "INSERT INTO refunds (refund_id, settlement_id, hold_id, amount, debt_reduced, \
     new_grant_id, reason, created_at, account_id) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::numeric[], $5::numeric[], \
     $6::uuid[], $7::text[], $8::timestamptz[], $9::uuid[])";

const INSERT_JOURNAL_TEXT: &str = "INSERT INTO journal_entries (entry_id, ledger_account, amount, kind, grant_id, hold_id, \
     settlement_id, refund_id, transaction_id, tenant_id, account_id, created_at) \
     SELECT j.*, $12::timestamptz FROM unnest($1::uuid[], $2::text[], \
     $3::numeric[], $4::text[], $5::uuid[], $6::uuid[], $7::uuid[], $8::uuid[], $9::uuid[], $10::uuid[], \
     $11::uuid[]) AS j";

const DELETE_SPEND_LIMITS_TEXT: &str = "DELETE FROM spend_limits l USING unnest($1::uuid[], $2::uuid[]) \
     AS v(spend_limit_id, account_id) WHERE l.spend_limit_id = v.spend_limit_id AND l.account_id = v.account_id";
const INSERT_ALLOWANCE_GRANTS_TEXT: &str = "INSERT INTO allowance_grants (allowance_id, period_start, grant_id, account_id) \
     SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::uuid[])";

const UPSERT_USAGE_TEXT: &str = "INSERT INTO usage_rollups (account_id, day, task_type, model, runs, captured, \
     refunded, last_run_at) SELECT * FROM unnest($1::uuid[], $2::date[], $3::text[], $4::text[], $5::int8[], \
     $6::numeric[], $7::numeric[], $8::timestamptz[]) ON CONFLICT (account_id, day, task_type, model) DO UPDATE SET \
     runs = usage_rollups.runs + EXCLUDED.runs, captured = usage_rollups.captured + EXCLUDED.captured, \
     refunded = usage_rollups.refunded + EXCLUDED.refunded, \
     last_run_at = greatest(usage_rollups.last_run_at, EXCLUDED.last_run_at)";

const INSERT_EVENTS_TEXT: &str = "INSERT INTO events (seq, event_id, tenant_id, account_id, event_type, attributes, \
     created_at) SELECT e.*, $7::timestamptz FROM unnest($1::int4[], $2::uuid[], $3::uuid[], $4::uuid[], \
     $5::text[], $6::jsonb[]) AS e";

#[test]
fn generated_statements_are_the_written_ones() {
    let pairs = [
        (&UPDATE_ACCOUNTS, UPDATE_ACCOUNTS_TEXT),
        (&INSERT_GRANTS, INSERT_GRANTS_TEXT),
        (&UPSERT_GRANTS, UPSERT_GRANTS_TEXT),
        (&INSERT_HOLDS, INSERT_HOLDS_TEXT),
        (&UPDATE_HOLDS, UPDATE_HOLDS_TEXT),
        (&INSERT_ALLOCATIONS, INSERT_ALLOCATIONS_TEXT),
        (&UPSERT_ALLOCATIONS, UPSERT_ALLOCATIONS_TEXT),
        (&INSERT_SETTLEMENTS, INSERT_SETTLEMENTS_TEXT),
        (&UPSERT_SETTLEMENTS, UPSERT_SETTLEMENTS_TEXT),
        (&INSERT_PARTS, INSERT_PARTS_TEXT),
        (&UPSERT_PARTS, UPSERT_PARTS_TEXT),
        (&INSERT_REFUNDS, INSERT_REFUNDS_TEXT),
        (&INSERT_JOURNAL, INSERT_JOURNAL_TEXT),
        (&DELETE_SPEND_LIMITS, DELETE_SPEND_LIMITS_TEXT),
        (&INSERT_ALLOWANCE_GRANTS, INSERT_ALLOWANCE_GRANTS_TEXT),
        (&UPSERT_USAGE, UPSERT_USAGE_TEXT),
        (&INSERT_EVENTS, INSERT_EVENTS_TEXT),
    ];
    for (generated, written) in pairs {
        assert_eq!(generated.as_str(), written);
    }
}

#[test]
fn every_statement_is_prepared() {
    let all = all_statements();
    assert_eq!(all[0], UPDATE_ACCOUNTS_TEXT);
    assert_eq!(all[17], UPSERT_USAGE_TEXT);
    assert_eq!(all[18], UPSERT_USAGE_MONTHS.as_str());
    assert_eq!(all[19], INSERT_JOURNAL_TEXT);
    assert_eq!(all[20], INSERT_EVENTS_TEXT);
    assert_eq!(all.len(), 21);
}
