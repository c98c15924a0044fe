//! Accounts and read-only queries (no lock): account rows and a consistent snapshot of an
//! account's book for balance reads.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use rust_decimal::Decimal;

use super::StoreError;
use super::idempotency::{INSERT_RECORD, NewRecord, RecordParams};
use super::read_sql::{ALLOWANCES_OF, SPEND_LIMITS};
use super::rows::{self, GRANT_COLUMNS, HOLD_COLUMNS, SPEND_LIMIT_COLUMNS};
use crate::ids::{AccountId, AccountKey, HoldId, TenantId};
use crate::ledger::{
    Account, AccountBook, AccountUpdate, AllowanceState, SpendLimitState, SpendScope,
};
use crate::money::Credits;

const ACCOUNT_COLUMNS: &str = "account_id, external_id, kind, status, settle_policy, entitlements, \
     low_balance_threshold, debt, created_at, updated_at";

fn account_row(row: &tokio_postgres::Row) -> Result<Account, StoreError> {
    let state = rows::account_state(row)?;
    Ok(Account {
        account_id: state.account_id,
        external_id: row.get("external_id"),
        kind: row.get("kind"),
        status: state.status,
        settle_policy: state.settle_policy,
        entitlements: row.get("entitlements"),
        low_balance_threshold: row
            .get::<_, Option<Decimal>>("low_balance_threshold")
            .map(Credits::from_decimal),
        debt: state.debt,
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

/// Inserts an account, the claim of its external id and its idempotency record in one
/// transaction. A taken external id is a [`StoreError::UniqueViolation`] on
/// `account_external_ids_pkey` (or, while migration 0021 waits, on the older key of
/// `accounts`).
pub async fn insert_account(
    pool: &Pool,
    tenant_id: TenantId,
    account: &Account,
    record: &NewRecord,
) -> Result<(), StoreError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let threshold = account.low_balance_threshold.map(Credits::decimal);
    transaction
        .execute(
            "INSERT INTO account_external_ids (tenant_id, external_id, account_id) VALUES ($1, $2, $3)",
            &[&tenant_id, &account.external_id, &account.account_id],
        )
        .await?;
    transaction
        .execute(
            "INSERT INTO accounts (account_id, tenant_id, external_id, kind, status, settle_policy, entitlements, \
             low_balance_threshold, debt, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9)",
            &[
                &account.account_id,
                &tenant_id,
                &account.external_id,
                &account.kind,
                &account.status.as_str(),
                &account.settle_policy.as_str(),
                &account.entitlements,
                &threshold,
                &account.created_at,
            ],
        )
        .await?;
    let params = RecordParams::new(record);
    transaction
        .execute(INSERT_RECORD, &params.as_params())
        .await?;
    transaction.commit().await?;
    Ok(())
}

/// The account by id or, when none is given, by external id (through its claim), scoped by
/// tenant.
pub async fn find_account(
    client: &impl GenericClient,
    tenant_id: TenantId,
    account_id: Option<AccountId>,
    external_id: Option<&str>,
) -> Result<Option<Account>, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE tenant_id = $1 AND account_id = coalesce($2, \
                 (SELECT account_id FROM account_external_ids WHERE tenant_id = $1 AND external_id = $3))"
            ),
            &[&tenant_id, &account_id, &external_id],
        )
        .await?;
    row.as_ref().map(account_row).transpose()
}

/// Applies `update` under the account lock with its idempotency record; `None` if the
/// account does not exist for the tenant.
pub async fn update_account(
    pool: &Pool,
    tenant_id: TenantId,
    account_id: AccountId,
    update: &AccountUpdate,
    record: impl FnOnce(&Account) -> NewRecord,
) -> Result<Option<Account>, StoreError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let Some(row) = transaction
        .query_opt(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1 AND tenant_id = $2 FOR UPDATE"),
            &[&account_id, &tenant_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let mut account = account_row(&row)?;
    if let Some(status) = update.status {
        account.status = status;
    }
    if let Some(policy) = update.settle_policy {
        account.settle_policy = policy;
    }
    if let Some(entitlements) = &update.entitlements {
        account.entitlements.clone_from(entitlements);
    }
    if let Some(threshold) = update.low_balance_threshold {
        account.low_balance_threshold = threshold;
    }
    let updated_at: DateTime<Utc> = transaction.query_one("SELECT now()", &[]).await?.get(0);
    account.updated_at = updated_at;
    transaction
        .execute(
            "UPDATE accounts SET status = $2, settle_policy = $3, entitlements = $4, low_balance_threshold = $5, \
             updated_at = $6 WHERE account_id = $1",
            &[
                &account_id,
                &account.status.as_str(),
                &account.settle_policy.as_str(),
                &account.entitlements,
                &account.low_balance_threshold.map(Credits::decimal),
                &account.updated_at,
            ],
        )
        .await?;
    let params = RecordParams::new(&record(&account));
    transaction
        .execute(INSERT_RECORD, &params.as_params())
        .await?;
    transaction.commit().await?;
    Ok(Some(account))
}

/// Most spend limits a snapshot of every limit reads (GetAccount lists them).
pub const MAX_LISTED_LIMITS: i64 = 1_000;

/// The spend limits a snapshot reads, besides those of the holds it expires.
#[derive(Debug, Clone, Copy)]
pub enum SnapshotLimits<'a> {
    /// Those of one scope, or none.
    Scope(Option<&'a SpendScope>),
    /// All of them (up to one more than [`MAX_LISTED_LIMITS`], in scope order).
    All,
}

/// A consistent snapshot of an account's book (no lock) at `now`: live grants, due holds,
/// allowances and `limits`, read in one repeatable-read transaction.
pub async fn snapshot_book(
    pool: &Pool,
    tenant_id: TenantId,
    account_id: AccountId,
    now: DateTime<Utc>,
    limits: SnapshotLimits<'_>,
) -> Result<Option<AccountBook>, StoreError> {
    let mut client = pool.get().await?;
    let transaction = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    // As under the lock: index lookups only, however stale the statistics.
    transaction
        .batch_execute("SET LOCAL enable_seqscan = off")
        .await?;
    let Some(account) = transaction
        .query_opt(
            "SELECT account_id, status, settle_policy, debt, entitlements, low_balance_threshold FROM accounts WHERE account_id = $1 AND tenant_id = $2",
            &[&account_id, &tenant_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let account = rows::account_state(&account)?;
    let grants = transaction
        .query(
            &format!("SELECT {GRANT_COLUMNS} FROM grants WHERE account_id = $1 AND live"),
            &[&account_id],
        )
        .await?
        .iter()
        .map(rows::grant)
        .collect::<Result<Vec<_>, _>>()?;
    let filter = "account_id = $1 AND status = 'ACTIVE' AND expires_at <= $2";
    let mut holds = transaction
        .query(
            &format!("SELECT {HOLD_COLUMNS} FROM holds WHERE {filter}"),
            &[&account_id, &now],
        )
        .await?
        .iter()
        .map(rows::hold)
        .collect::<Result<Vec<_>, _>>()?;
    let allocations = transaction
        .query(
            &format!("SELECT hold_id, grant_id, reserved, captured FROM hold_allocations WHERE hold_id IN (SELECT hold_id FROM holds WHERE {filter}) ORDER BY hold_id, position"),
            &[&account_id, &now],
        )
        .await?;
    rows::attach_allocations(&mut holds, &allocations);
    let (allowances, spend_limits) = plans(&transaction, account_id, now, limits).await?;
    transaction.commit().await?;
    Ok(Some(
        AccountBook::new(account, grants, holds, now)
            .with_allowances(allowances)
            .with_spend_limits(spend_limits, Vec::new()),
    ))
}

/// The account's allowances and the spend limits asked for (and those of its due holds).
async fn plans(
    client: &impl GenericClient,
    account_id: AccountId,
    now: DateTime<Utc>,
    limits: SnapshotLimits<'_>,
) -> Result<(Vec<AllowanceState>, Vec<SpendLimitState>), StoreError> {
    let accounts = [account_id];
    let allowances = client
        .query(ALLOWANCES_OF.as_str(), &[&accounts.as_slice()])
        .await?
        .iter()
        .map(rows::allowance)
        .collect::<Result<Vec<_>, _>>()?;
    let limit_rows = match limits {
        SnapshotLimits::All => {
            client
                .query(
                    &format!(
                        "SELECT {SPEND_LIMIT_COLUMNS} FROM spend_limits WHERE account_id = $1 \
                         ORDER BY scope_kind, scope_id, period LIMIT $2"
                    ),
                    // One more than listed, to tell whether there are more.
                    &[&account_id, &(MAX_LISTED_LIMITS + 1)],
                )
                .await?
        }
        SnapshotLimits::Scope(scope) => {
            let (kinds, ids): (Vec<&str>, Vec<&str>) = scope
                .map(|scope| (scope.kind.as_str(), scope.id.as_str()))
                .into_iter()
                .unzip();
            let scope_accounts: Vec<AccountId> = kinds.iter().map(|_| account_id).collect();
            let no_holds: Vec<HoldId> = Vec::new();
            client
                .query(
                    SPEND_LIMITS.as_str(),
                    &[
                        &accounts.as_slice(),
                        &now,
                        &no_holds,
                        &scope_accounts,
                        &kinds,
                        &ids,
                    ],
                )
                .await?
        }
    };
    let spend_limits = limit_rows
        .iter()
        .map(rows::spend_limit)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((allowances, spend_limits))
}

/// Accounts with work for the sweeper at `now`: due holds or expired grants with credits
/// left, at most `limit`.
pub async fn accounts_to_sweep(
    client: &impl GenericClient,
    now: DateTime<Utc>,
    warn_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<AccountKey>, StoreError> {
    let rows = client
        .query(
            "SELECT DISTINCT a.tenant_id, a.account_id FROM accounts a WHERE a.account_id IN (
                (SELECT account_id FROM holds WHERE status = 'ACTIVE' AND expires_at <= $1 ORDER BY expires_at LIMIT $2)
                UNION
                (SELECT account_id FROM grants WHERE live AND remaining > 0 AND expires_at <= $1 ORDER BY expires_at LIMIT $2)
                UNION
                (SELECT account_id FROM grants WHERE live AND NOT expiry_warned AND expires_at IS NOT NULL
                   AND expires_at > $1 AND expires_at <= $3 ORDER BY expires_at LIMIT $2))",
            &[&now, &limit, &warn_until],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| AccountKey {
            tenant: row.get(0),
            account: row.get(1),
        })
        .collect())
}
