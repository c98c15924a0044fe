//! Usage history reads: runs (holds) newest first, the journal oldest first, the usage summary
//! from the rollups, and the export's single-snapshot scan. None of them takes a lock.
//!
//! Every runs query states `created_at > '-infinity'`, the predicate of `holds_usage_idx`, word
//! for word: only these queries can use that index (migrations/0009_usage_history.sql says
//! why).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use futures::{StreamExt as _, pin_mut};
use rust_decimal::Decimal;
use tokio_postgres::Row;
use uuid::Uuid;

use super::StoreError;
use crate::ids::{AccountId, HoldId, TenantId};
use crate::ledger::{HoldStatus, LedgerAccount, MovementKind};
use crate::money::Credits;

pub mod months;
mod summary;
pub use summary::{SummarySplit, split_range, usage_summary};

/// Which runs to read: a created_at range and equality filters ("" = any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    /// Inclusive lower bound on created_at.
    pub start: Option<DateTime<Utc>>,
    /// Exclusive upper bound on created_at.
    pub end: Option<DateTime<Utc>>,
    /// Task type name, "" = any.
    pub task_type: String,
    /// Model id, "" = any.
    pub model: String,
    /// Hold status name, "" = any.
    pub status: String,
    /// Project, "" = any.
    pub project: String,
}

/// A position in a listing: the (created_at, id) of the last row returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// created_at of the last row.
    pub created_at: DateTime<Utc>,
    /// Its id (hold or journal entry).
    pub id: Uuid,
}

/// One run as usage history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// The hold.
    pub hold_id: HoldId,
    /// Its status.
    pub status: HoldStatus,
    /// Task type name ("" when unspecified).
    pub task_type: String,
    /// Tool id.
    pub tool: String,
    /// Model id.
    pub model: String,
    /// Project.
    pub project: String,
    /// Caller's run id.
    pub run_id: String,
    /// Labels, sorted by key.
    pub labels: Vec<(String, String)>,
    /// Credits charged.
    pub credits: Credits,
    /// Credits refunded of them.
    pub refunded: Credits,
    /// Credits still reserved (active holds).
    pub held: Credits,
    /// When it was authorized.
    pub created_at: DateTime<Utc>,
    /// When it left ACTIVE.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    /// The entry.
    pub entry_id: Uuid,
    /// Its journal transaction.
    pub transaction_id: Uuid,
    /// Ledger account posted to.
    pub ledger_account: LedgerAccount,
    /// Signed amount.
    pub amount: Credits,
    /// Movement kind.
    pub kind: MovementKind,
    /// Related grant.
    pub grant_id: Option<Uuid>,
    /// Related hold.
    pub hold_id: Option<Uuid>,
    /// Related settlement.
    pub settlement_id: Option<Uuid>,
    /// Related refund.
    pub refund_id: Option<Uuid>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// The runs of one (task type, model) in a summary's range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageTotals {
    /// Task type name.
    pub task_type: String,
    /// Model id.
    pub model: String,
    /// Runs created.
    pub runs: i64,
    /// Credits charged.
    pub captured: Decimal,
    /// Credits refunded.
    pub refunded: Decimal,
    /// Latest created_at.
    pub last_run_at: Option<DateTime<Utc>>,
}

/// The columns of a usage row: `refunded` and `held` look up the run's settlements and
/// allocations by index only when they can be non-zero (refunded settlements through
/// `settlements_refunded_idx`, which holds only those). A hold past its expiry (`$9` is now)
/// is shown expired, as every other read shows it, before the sweeper has written it so.
const USAGE_COLUMNS: &str = "h.hold_id, h.task_type, h.tool, h.model, h.project, h.run_id, \
     h.label_keys, h.label_values, h.captured, h.created_at, \
     CASE WHEN h.status = 'ACTIVE' AND h.expires_at <= $9 THEN 'EXPIRED' ELSE h.status END AS status, \
     CASE WHEN h.status = 'ACTIVE' AND h.expires_at <= $9 THEN h.expires_at ELSE h.resolved_at END AS resolved_at, \
     CASE WHEN h.captured > 0 THEN (SELECT coalesce(sum(s.refunded), 0) FROM settlements s WHERE s.hold_id = h.hold_id AND s.refunded > 0) \
     ELSE 0 END AS refunded, \
     CASE WHEN h.status = 'ACTIVE' AND h.expires_at > $9 \
     THEN (SELECT coalesce(sum(a.reserved), 0) FROM hold_allocations a WHERE a.hold_id = h.hold_id) \
     ELSE 0 END AS held";

/// The filters shared by listing and export: $1 account, $2 tenant, $3 start, $4 end,
/// $5 task type, $6 model, $7 status (as shown), $8 project, $9 now; the index predicate stated.
const USAGE_FILTER: &str = "h.account_id = $1 AND h.tenant_id = $2 AND h.created_at > '-infinity' \
     AND h.created_at >= coalesce($3::timestamptz, '-infinity') AND h.created_at < coalesce($4::timestamptz, 'infinity') \
     AND ($5::text = '' OR h.task_type = $5) AND ($6::text = '' OR h.model = $6) \
     AND ($7::text = '' OR (CASE WHEN h.status = 'ACTIVE' AND h.expires_at <= $9::timestamptz THEN 'EXPIRED' \
     ELSE h.status END) = $7) AND ($8::text = '' OR h.project = $8)";

/// A page of runs, newest first, before the position ($10, $11); no position = the range's end.
fn list_sql() -> String {
    format!(
        "SELECT {USAGE_COLUMNS} FROM holds h WHERE {USAGE_FILTER} \
         AND (h.created_at, h.hold_id) < (coalesce($10::timestamptz, 'infinity'), $11::uuid) \
         ORDER BY h.created_at DESC, h.hold_id DESC LIMIT $12"
    )
}

/// [`list_sql`] for the runs still active: read among the account's active holds
/// (`holds_active_idx`), which are few, instead of walking its history for them. The same
/// parameters; `$7` is `ACTIVE` here.
fn list_active_sql() -> String {
    format!(
        "SELECT {USAGE_COLUMNS} FROM holds h \
         WHERE h.account_id = $1 AND h.tenant_id = $2 AND h.status = 'ACTIVE' AND h.expires_at > $9 \
         AND $7::text = 'ACTIVE' \
         AND h.created_at >= coalesce($3::timestamptz, '-infinity') AND h.created_at < coalesce($4::timestamptz, 'infinity') \
         AND ($5::text = '' OR h.task_type = $5) AND ($6::text = '' OR h.model = $6) AND ($8::text = '' OR h.project = $8) \
         AND (h.created_at, h.hold_id) < (coalesce($10::timestamptz, 'infinity'), $11::uuid) \
         ORDER BY h.created_at DESC, h.hold_id DESC LIMIT $12"
    )
}

/// Every run of the range, oldest first.
fn export_sql() -> String {
    format!(
        "SELECT {USAGE_COLUMNS} FROM holds h WHERE {USAGE_FILTER} ORDER BY h.created_at, h.hold_id"
    )
}

/// ListLedger's page: an account's entries after a position, before an end, oldest first. The
/// position's time is also a bound of `created_at` alone (the row comparison is not one that
/// prunes), so the journal's monthly partitions outside the range are pruned when the
/// statement starts, even in a generic plan.
pub const LEDGER_SQL: &str = "SELECT entry_id, transaction_id, ledger_account, amount, kind, grant_id, hold_id, \
     settlement_id, refund_id, created_at FROM journal_entries \
     WHERE account_id = $1 AND tenant_id = $2 AND created_at < coalesce($3::timestamptz, 'infinity') \
     AND created_at >= coalesce($4::timestamptz, '-infinity') \
     AND (created_at, entry_id) > (coalesce($4::timestamptz, '-infinity'), $5::uuid) \
     ORDER BY created_at, entry_id LIMIT $6";

fn usage_row(row: &Row) -> Result<UsageRow, StoreError> {
    let status: &str = row.get("status");
    let keys: Vec<String> = row.get("label_keys");
    let values: Vec<String> = row.get("label_values");
    Ok(UsageRow {
        hold_id: row.get("hold_id"),
        status: HoldStatus::from_name(status)
            .ok_or_else(|| StoreError::Other(format!("unknown hold status {status:?}")))?,
        task_type: row.get("task_type"),
        tool: row.get("tool"),
        model: row.get("model"),
        project: row.get("project"),
        run_id: row.get("run_id"),
        labels: keys.into_iter().zip(values).collect(),
        credits: Credits::from_decimal(row.get("captured")),
        refunded: Credits::from_decimal(row.get("refunded")),
        held: Credits::from_decimal(row.get("held")),
        created_at: row.get("created_at"),
        resolved_at: row.get("resolved_at"),
    })
}

fn journal_row(row: &Row) -> Result<JournalRow, StoreError> {
    let account: &str = row.get("ledger_account");
    let kind: &str = row.get("kind");
    Ok(JournalRow {
        entry_id: row.get("entry_id"),
        transaction_id: row.get("transaction_id"),
        ledger_account: LedgerAccount::from_name(account)
            .ok_or_else(|| StoreError::Other(format!("unknown ledger account {account:?}")))?,
        amount: Credits::from_decimal(row.get("amount")),
        kind: MovementKind::from_name(kind)
            .ok_or_else(|| StoreError::Other(format!("unknown movement kind {kind:?}")))?,
        grant_id: row.get("grant_id"),
        hold_id: row.get("hold_id"),
        settlement_id: row.get("settlement_id"),
        refund_id: row.get("refund_id"),
        created_at: row.get("created_at"),
    })
}

/// Up to `limit` runs of the account, newest first, after `after` (or from the range's end).
pub async fn list_usage(
    client: &impl GenericClient,
    tenant_id: TenantId,
    account_id: AccountId,
    filter: &UsageFilter,
    now: DateTime<Utc>,
    after: Option<Position>,
    limit: i64,
) -> Result<Vec<UsageRow>, StoreError> {
    // The first page starts at the range's end: (end, nil id) excludes the end instant itself.
    let (before_time, before_id) = match after {
        Some(position) => (Some(position.created_at), position.id),
        None => (filter.end, Uuid::nil()),
    };
    let sql = if filter.status == HoldStatus::Active.as_str() {
        list_active_sql()
    } else {
        list_sql()
    };
    let statement = client.prepare_cached(&sql).await?;
    let rows = client
        .query(
            &statement,
            &[
                &account_id,
                &tenant_id,
                &filter.start,
                &filter.end,
                &filter.task_type,
                &filter.model,
                &filter.status,
                &filter.project,
                &now,
                &before_time,
                &before_id,
                &limit,
            ],
        )
        .await?;
    rows.iter().map(usage_row).collect()
}

/// Up to `limit` journal entries of the account, oldest first, after `after` (or from the
/// range's start).
pub async fn list_ledger(
    client: &impl GenericClient,
    tenant_id: TenantId,
    account_id: AccountId,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    after: Option<Position>,
    limit: i64,
) -> Result<Vec<JournalRow>, StoreError> {
    // The first page starts just before the range's start: (start, nil id) includes it.
    let (after_time, after_id) = match after {
        Some(position) => (Some(position.created_at), position.id),
        None => (start, Uuid::nil()),
    };
    let statement = client.prepare_cached(LEDGER_SQL).await?;
    let rows = client
        .query(
            &statement,
            &[
                &account_id,
                &tenant_id,
                &end,
                &after_time,
                &after_id,
                &limit,
            ],
        )
        .await?;
    rows.iter().map(journal_row).collect()
}

/// Reads every run of `filter` (shown as of `now`) in one read-only snapshot, oldest first, handing `batch` rows
/// at a time to `sink`; stops early (and returns `false`) when `sink` answers `false`. The
/// rows are fetched through a portal, so memory stays at one batch whatever the row count.
pub async fn export_usage<F, Fut>(
    client: &mut deadpool_postgres::Client,
    tenant_id: TenantId,
    account_id: AccountId,
    filter: &UsageFilter,
    now: DateTime<Utc>,
    batch: i32,
    mut sink: F,
) -> Result<bool, StoreError>
where
    F: FnMut(Vec<UsageRow>) -> Fut,
    Fut: Future<Output = bool>,
{
    let transaction = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    // The index gives the order: a plan that sorts would read every row before the first
    // chunk. A reader that stops fetching without ending (a stuck task) frees the snapshot.
    transaction
        .batch_execute(
            "SET LOCAL enable_sort = off; SET LOCAL idle_in_transaction_session_timeout = '60s'",
        )
        .await?;
    let statement = transaction.prepare_cached(&export_sql()).await?;
    let portal = transaction
        .bind(
            &statement,
            &[
                &account_id,
                &tenant_id,
                &filter.start,
                &filter.end,
                &filter.task_type,
                &filter.model,
                &filter.status,
                &filter.project,
                &now,
            ],
        )
        .await?;
    loop {
        let rows = transaction.query_portal_raw(&portal, batch).await?;
        pin_mut!(rows);
        let mut page = Vec::with_capacity(usize::try_from(batch).unwrap_or(0));
        while let Some(row) = rows.next().await {
            page.push(usage_row(&row?)?);
        }
        let last = page.len() < usize::try_from(batch).unwrap_or(usize::MAX);
        if !page.is_empty() && !sink(page).await {
            return Ok(false);
        }
        if last {
            break;
        }
    }
    transaction.commit().await?;
    Ok(true)
}

/// Whether the account exists for the tenant.
pub async fn account_exists(
    client: &impl GenericClient,
    tenant_id: TenantId,
    account_id: AccountId,
) -> Result<bool, StoreError> {
    let statement = client
        .prepare_cached("SELECT 1 FROM accounts WHERE account_id = $1 AND tenant_id = $2")
        .await?;
    Ok(client
        .query_opt(&statement, &[&account_id, &tenant_id])
        .await?
        .is_some())
}
