//! The statements of the read round trip, which takes the account locks: index lookups only,
//! so a hot account's millions of rows are never walked under its lock.

use std::sync::LazyLock;

use super::book::MAX_SPEND_LIMITS;
use super::rows::{
    ALLOWANCE_COLUMNS, GRANT_COLUMNS, HOLD_COLUMNS, SETTLEMENT_COLUMNS, SPEND_LIMIT_COLUMNS,
};

/// Starts a locked transaction. Its statements must use their indexes whatever the statistics
/// say: planned with statistics taken while the tables were small, they scanned whole tables
/// that had since grown (every hold, under the lock) until autovacuum analyzed them again.
/// Every statement of the transaction has an index path, so this only removes the bad choice.
pub(super) const BEGIN: &str = "BEGIN; SET LOCAL enable_seqscan = off";

/// Sent in the read round trip before the reads whose every plan is a lookup of keys (each
/// key one index probe, by their shape alone): they run with generic plans, planned once per
/// connection. With custom plans (Postgres's choice for them, as the arrays' lengths make a
/// custom plan look cheaper) they were planned again on nearly every call, and planning cost
/// several times their execution: 0.35–0.45 ms each, about 0.6 ms a transaction of the spread
/// load. The reads before it, and the writes, keep custom plans: their shapes (joins with
/// `unnest`) let a plan made while a table was small walk it once it had grown.
pub(super) const GENERIC_PLANS: &str = "SET LOCAL plan_cache_mode = force_generic_plan";

/// Ends [`GENERIC_PLANS`] after the reads, for the writes.
pub(super) const CUSTOM_PLANS: &str = "SET LOCAL plan_cache_mode = auto";

/// Holds already made on their accounts by Authorize keys (`authorize_keys`, migration 0024): a
/// key whose record was pruned must not make a second hold (its key would refuse it at commit,
/// failing the whole transaction).
pub(super) const HOLDS_BY_KEY: &str = "SELECT k.account_id, k.authorize_key FROM authorize_keys k \
     JOIN unnest($1::uuid[], $2::text[]) AS x(account_id, authorize_key) \
     ON k.authorize_key = x.authorize_key COLLATE \"C\" AND k.account_id = x.account_id";

/// Refunds that already exist with ids derived from Refund keys: a key whose record was pruned
/// must not refund twice.
pub(super) const REFUNDS_BY_ID: &str = "SELECT refund_id FROM refunds WHERE refund_id = ANY($1)";

/// The database's clock when the statement runs (in the read round trip, after the locks).
pub(super) const CLOCK: &str = "SELECT clock_timestamp()";

/// Locks the accounts asked for (`$1` tenants, `$2` accounts), in account id order.
pub(super) const LOCK_ACCOUNTS: &str = "SELECT a.tenant_id, a.account_id, a.status, a.settle_policy, a.debt, a.entitlements, a.low_balance_threshold \
     FROM accounts a JOIN unnest($1::uuid[], $2::uuid[]) AS t(tenant_id, account_id) \
     ON a.account_id = t.account_id AND a.tenant_id = t.tenant_id ORDER BY a.account_id FOR UPDATE OF a";

/// [`LOCK_ACCOUNTS`] skipping the accounts another transaction holds.
pub(super) static LOCK_ACCOUNTS_SKIP_LOCKED: LazyLock<String> =
    LazyLock::new(|| format!("{LOCK_ACCOUNTS} SKIP LOCKED"));

// Each read is a union of index lookups, never a walk of all of an account's rows: a hot
// account has millions of holds, and one OR of the conditions let the planner scan them.
// GRANTS_NAMED: the grants of settlements' parts (`$2`) and with external references (`$3`).
const GRANTS_NAMED: &str = "SELECT grant_id FROM settlement_parts WHERE settlement_id = ANY($2) \
     UNION SELECT grant_id FROM grants WHERE account_id = ANY($1) AND external_ref = ANY($3)";
const HOLDS_WANTED: &str = "SELECT hold_id FROM holds WHERE account_id = ANY($1) AND status = 'ACTIVE' \
     AND expires_at <= $2 UNION SELECT hold_id FROM holds WHERE hold_id = ANY($3)";

/// The locked accounts' live grants, those settlements' parts came from, and those with the
/// external references asked for: `$1` accounts, `$2` settlements, `$3` references. The live
/// grants are read through their partial index, a few rows an account whatever its history;
/// the others not live, each one lookup of its key (the lateral subquery kept apart by
/// `OFFSET 0`), whatever the statistics said when the plan was made: this read runs with a
/// generic plan (see [`GENERIC_PLANS`]).
pub(super) static GRANTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT account_id, {GRANT_COLUMNS} FROM grants WHERE account_id = ANY($1) AND live \
         UNION ALL SELECT g.* FROM ({GRANTS_NAMED}) w CROSS JOIN LATERAL (SELECT account_id, {GRANT_COLUMNS} \
         FROM grants g WHERE g.grant_id = w.grant_id AND g.account_id = ANY($1) AND NOT g.live OFFSET 0) g"
    )
});

/// The holds asked for (`$3`) of the locked accounts (`$1`), and their other holds due by
/// `$2`: each part one lookup per hold in an index that bounds it (the key, the due holds),
/// whatever the statistics, as this read runs with a generic plan (see [`GENERIC_PLANS`]); the
/// second part leaves out the holds of the first, so no wide row is compared to drop a duplicate.
pub(super) static HOLDS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {HOLD_COLUMNS} FROM holds WHERE hold_id = ANY($3) AND account_id = ANY($1) \
         UNION ALL SELECT {HOLD_COLUMNS} FROM holds WHERE account_id = ANY($1) \
         AND status = 'ACTIVE' AND expires_at <= $2 AND hold_id <> ALL($3)"
    )
});

/// The allocations of [`HOLDS`]' holds, in position order, looked up hold by hold (each
/// allocation carries its hold's account, as `creditgate verify` checks).
pub(super) static ALLOCATIONS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT a.* FROM ({HOLDS_WANTED}) w CROSS JOIN LATERAL ( \
         SELECT a.hold_id, a.grant_id, a.reserved, a.captured, a.position FROM hold_allocations a \
         WHERE a.hold_id = w.hold_id AND a.account_id = ANY($1) OFFSET 0) a \
         ORDER BY a.hold_id, a.position"
    )
});

/// The settlements asked for (`$1`) of the locked accounts (`$2`).
pub(super) static SETTLEMENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT account_id, {SETTLEMENT_COLUMNS} FROM settlements \
         WHERE settlement_id = ANY($1) AND account_id = ANY($2)"
    )
});

/// The parts of the settlements asked for, in position order.
pub(super) const PARTS: &str = "SELECT settlement_id, grant_id, amount, refunded FROM settlement_parts \
     WHERE settlement_id = ANY($1) ORDER BY settlement_id, position";

/// The allowances of the locked accounts (`$1`) that may owe a period by `$2` (their `due_from`,
/// migration 0015), and all those of the accounts whose rules are asked for (`$3`, some of
/// `$1`): one probe of `allowances_due_idx` an account, which finds nothing once its period
/// is granted; the rest only for the few transactions that set a rule.
pub(super) static ALLOWANCES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT account_id, {ALLOWANCE_COLUMNS} FROM allowances WHERE account_id = ANY($1) AND due_from <= $2 \
         UNION ALL SELECT account_id, {ALLOWANCE_COLUMNS} FROM allowances WHERE account_id = ANY($3) \
         AND (due_from IS NULL OR due_from > $2)"
    )
});

/// All the allowances of the accounts `$1`: for snapshots, and for a locked transaction that
/// decides past the time [`ALLOWANCES`] read them for.
pub(super) static ALLOWANCES_OF: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT account_id, {ALLOWANCE_COLUMNS} FROM allowances WHERE account_id = ANY($1)")
});

/// The spend limits of the scopes of [`HOLDS`]' holds (`$1` to `$3` as there), and of the
/// scopes asked for (`$4` accounts, `$5` kinds, `$6` ids): every limit an operation may move.
/// A hold's scope is read with the lookup that finds the hold (one probe, not a probe for its
/// id and another for its row, as [`HOLDS_WANTED`] would). Each scope is one lookup of the
/// limits' key, never a walk of all of an account's limits: the lateral subquery (kept apart
/// by `OFFSET 0`) is a lookup per scope whatever plan a prepared statement settles on (a join
/// planned while the table was small merged it with a walk of the whole key index).
pub(super) static SPEND_LIMITS: LazyLock<String> = LazyLock::new(|| {
    let columns = SPEND_LIMIT_COLUMNS
        .split(", ")
        .map(|column| format!("l.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT l.account_id, {columns} FROM ( \
         SELECT account_id, spend_scope_kind, spend_scope_id FROM holds WHERE account_id = ANY($1) \
         AND status = 'ACTIVE' AND expires_at <= $2 AND spend_scope_id IS NOT NULL \
         UNION SELECT account_id, spend_scope_kind, spend_scope_id FROM holds WHERE hold_id = ANY($3) \
         AND account_id = ANY($1) AND spend_scope_id IS NOT NULL \
         UNION SELECT * FROM unnest($4::uuid[], $5::text[], $6::text[])) AS s(account_id, scope_kind, scope_id) \
         CROSS JOIN LATERAL (SELECT * FROM spend_limits l WHERE l.account_id = s.account_id \
         AND l.scope_kind = s.scope_kind AND l.scope_id = s.scope_id OFFSET 0) l"
    )
});

/// What the active holds of each scope asked for (`$1` accounts, `$2` kinds, `$3` ids) reserve;
/// a scope without any has no row. Read among the account's active holds (`holds_active_idx`):
/// only when a limit is set, so no index of the scope's own taxes every Authorize.
pub(super) const SCOPE_RESERVED: &str = "SELECT t.account_id, t.scope_kind, t.scope_id, sum(a.reserved) AS amount \
     FROM (SELECT DISTINCT * FROM unnest($1::uuid[], $2::text[], $3::text[])) AS t(account_id, scope_kind, scope_id) \
     JOIN holds h ON h.account_id = t.account_id AND h.spend_scope_kind = t.scope_kind \
     AND h.spend_scope_id = t.scope_id AND h.status = 'ACTIVE' \
     JOIN hold_allocations a ON a.hold_id = h.hold_id GROUP BY 1, 2, 3";

/// How many spend limits each account (`$1`) has, counted up to [`MAX_SPEND_LIMITS`].
pub(super) static LIMIT_COUNTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT t.account_id, (SELECT count(*) FROM (SELECT 1 FROM spend_limits l \
         WHERE l.account_id = t.account_id LIMIT {MAX_SPEND_LIMITS}) c) \
         FROM (SELECT DISTINCT * FROM unnest($1::uuid[])) AS t(account_id)"
    )
});
