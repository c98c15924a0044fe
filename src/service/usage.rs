//! Usage history: runs, the journal, the usage summary and the CSV export. Reads only; the
//! rows come from [`crate::store::usage`], pages continue through signed tokens
//! ([`super::page_token`]).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use super::access::Caller;
use super::page_token::{Binding, Listing, PageKey};
use super::{Context, ServiceError};
use crate::ids::{AccountId, TenantId};
use crate::store::StoreError;
use crate::store::usage::{self, Position, months};
pub use crate::store::usage::{JournalRow, UsageFilter, UsageRow, UsageTotals};

mod export;
pub use export::{
    CSV_HEADER, CsvChunks, EXPORT_STALL_TIMEOUT, ExportEnd, ExportStream, MAX_CHUNK_BYTES,
    MAX_CONCURRENT_EXPORTS, MAX_EXPORT_DURATION, csv_record, export,
};

/// Page size when the request names none.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page size.
pub const MAX_PAGE_SIZE: i64 = 500;
/// A page of rows and the token of the next one ("" when there is none).
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows.
    pub rows: Vec<T>,
    /// Token of the next page.
    pub next_page_token: String,
}

/// The summary of an account's runs over a range, per task type and model.
#[derive(Debug, Clone)]
pub struct UsageSummary {
    /// Totals per (task type, model).
    pub totals: Vec<UsageTotals>,
}

impl Context {
    /// The key page tokens are signed with, shared by every replica through the database.
    pub async fn page_key(&self) -> Result<&PageKey, ServiceError> {
        self.page_key
            .get_or_try_init(|| async {
                let client = self.pool.get().await.map_err(StoreError::from)?;
                let secret =
                    crate::store::secrets::shared_secret(&client, "page", rand::random()).await?;
                Ok(PageKey::new(secret))
            })
            .await
    }
}

fn usage_binding(account_id: AccountId, filter: &UsageFilter) -> Binding {
    Binding::default()
        .bytes(account_id.uuid().as_bytes())
        .time(filter.start)
        .time(filter.end)
        .bytes(filter.task_type.as_bytes())
        .bytes(filter.model.as_bytes())
        .bytes(filter.status.as_bytes())
        .bytes(filter.project.as_bytes())
}

fn ledger_binding(
    account_id: AccountId,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Binding {
    Binding::default()
        .bytes(account_id.uuid().as_bytes())
        .time(start)
        .time(end)
}

fn bad_token() -> ServiceError {
    ServiceError::InvalidArgument {
        field: "page_token",
        message: "not a next_page_token of this listing: the account, the filters and the \
                  API key's tenant must be those of the request that returned it"
            .to_owned(),
    }
}

/// Checks the account is the tenant's, on the connection the read uses.
async fn account_exists(
    client: &impl GenericClient,
    tenant_id: TenantId,
    account_id: AccountId,
) -> Result<(), ServiceError> {
    if usage::account_exists(client, tenant_id, account_id).await? {
        Ok(())
    } else {
        Err(ServiceError::account_not_found(account_id))
    }
}

/// A page of the account's runs, newest first.
pub async fn list_usage(
    context: &Context,
    caller: Caller,
    account_id: AccountId,
    filter: &UsageFilter,
    page_token: &str,
    page_size: i64,
) -> Result<Page<UsageRow>, ServiceError> {
    let key = context.page_key().await?;
    let binding = usage_binding(account_id, filter);
    let after = key
        .resume(caller.tenant_id, Listing::Usage, &binding, page_token)
        .map_err(|_| bad_token())?;
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let (_, rows) = tokio::try_join!(
        account_exists(&client, caller.tenant_id, account_id),
        async {
            Ok(usage::list_usage(
                &client,
                caller.tenant_id,
                account_id,
                filter,
                context.clock.now(),
                after,
                page_size,
            )
            .await?)
        },
    )?;
    let next_page_token = key.next_page(
        caller.tenant_id,
        Listing::Usage,
        &binding,
        &rows,
        page_size,
        |row: &UsageRow| Position {
            created_at: row.created_at,
            id: row.hold_id.uuid(),
        },
    );
    Ok(Page {
        rows,
        next_page_token,
    })
}

/// A page of the account's journal, oldest first.
pub async fn list_ledger(
    context: &Context,
    caller: Caller,
    account_id: AccountId,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    page_token: &str,
    page_size: i64,
) -> Result<Page<JournalRow>, ServiceError> {
    let key = context.page_key().await?;
    let binding = ledger_binding(account_id, start, end);
    let after = key
        .resume(caller.tenant_id, Listing::Ledger, &binding, page_token)
        .map_err(|_| bad_token())?;
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let (_, rows) = tokio::try_join!(
        account_exists(&client, caller.tenant_id, account_id),
        async {
            Ok(usage::list_ledger(
                &client,
                caller.tenant_id,
                account_id,
                start,
                end,
                after,
                page_size,
            )
            .await?)
        },
    )?;
    let next_page_token = key.next_page(
        caller.tenant_id,
        Listing::Ledger,
        &binding,
        &rows,
        page_size,
        |row: &JournalRow| Position {
            created_at: row.created_at,
            id: row.entry_id,
        },
    );
    Ok(Page {
        rows,
        next_page_token,
    })
}

/// The account's runs created in `[start, end)`, per task type and model.
pub async fn summary(
    context: &Context,
    caller: Caller,
    account_id: AccountId,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<UsageSummary, ServiceError> {
    let mut client = context.pool.get().await.map_err(StoreError::from)?;
    let (_, mut folded_before) = tokio::try_join!(
        account_exists(&client, caller.tenant_id, account_id),
        async { Ok(months::folded_before(&client, account_id).await?) },
    )?;
    let split = usage::split_range(start, end);
    // Whole months of the range that have ended but are not folded yet are folded first (once
    // per account and month), so that a long range reads months rather than days. Folding
    // never changes an answer: a folded month's totals are the sum of its days.
    let target =
        months::month_floor(split.days.1).min(months::foldable_before(context.clock.now()));
    if target > folded_before && target > months::month_ceil(split.days.0) {
        folded_before = months::fold(&mut client, account_id, target).await?;
    }
    let folded = months::folded_months(split.days, folded_before);
    let totals = usage::usage_summary(&client, account_id, &split, folded).await?;
    Ok(UsageSummary { totals })
}
