//! Usage history: runs, the journal, the usage summary and the CSV export. Reads only; the
//! rows come from [`crate::store::usage`], pages continue through signed tokens
//! ([`super::page_token`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use deadpool_postgres::GenericClient;
use tokio::sync::mpsc;

use super::access::Caller;
use super::page_token::{Binding, Listing, PageKey};
use super::{Context, ServiceError};
use crate::ids::{AccountId, TenantId};
use crate::ledger::Reason;
use crate::store::StoreError;
use crate::store::usage::{self, Position};
pub use crate::store::usage::{JournalRow, UsageFilter, UsageRow, UsageTotals};

/// Page size when the request names none.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page size.
pub const MAX_PAGE_SIZE: i64 = 500;
/// Most exports streaming at once on one server; each holds a database connection.
pub const MAX_CONCURRENT_EXPORTS: usize = 4;
/// Largest export chunk, unless one row is longer.
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;
/// Rows fetched from the database at a time by an export.
const EXPORT_BATCH: i32 = 1_000;
/// Longest an export waits for its client to take a chunk before ending the stream.
pub const EXPORT_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest an export may stream: it holds a connection and a snapshot, which keeps vacuum
/// from cleaning what changed since (a million runs take seconds at full speed).
pub const MAX_EXPORT_DURATION: Duration = Duration::from_secs(600);
/// Chunks buffered between the database reader and the client.
const EXPORT_BUFFERED_CHUNKS: usize = 2;

/// The columns of the CSV export, in order.
pub const CSV_HEADER: [&str; 13] = [
    "hold_id",
    "created_at",
    "resolved_at",
    "status",
    "task_type",
    "tool",
    "model",
    "project",
    "run_id",
    "credits",
    "refunded",
    "held",
    "labels",
];

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

/// The position a request's token continues from (`None` for the first page).
fn open_token(
    key: &PageKey,
    tenant_id: TenantId,
    listing: Listing,
    binding: &Binding,
    token: &str,
) -> Result<Option<Position>, ServiceError> {
    if token.is_empty() {
        return Ok(None);
    }
    key.open(tenant_id, listing, binding, token)
        .map(Some)
        .ok_or_else(bad_token)
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

fn next_token<T>(
    key: &PageKey,
    tenant_id: TenantId,
    listing: Listing,
    binding: &Binding,
    rows: &[T],
    limit: i64,
    position: impl Fn(&T) -> Position,
) -> String {
    match rows.last() {
        Some(last) if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit => {
            key.sign(tenant_id, listing, binding, position(last))
        }
        _ => String::new(),
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
    let after = open_token(key, caller.tenant_id, Listing::Usage, &binding, page_token)?;
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
    let next_page_token = next_token(
        key,
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
    let after = open_token(key, caller.tenant_id, Listing::Ledger, &binding, page_token)?;
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
    let next_page_token = next_token(
        key,
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
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let (_, totals) = tokio::try_join!(
        account_exists(&client, caller.tenant_id, account_id),
        async { Ok(usage::usage_summary(&client, account_id, start, end).await?) },
    )?;
    Ok(UsageSummary { totals })
}

/// Lower-case short name of a stored enum name: `TASK_TYPE_CHAT` → `chat`.
fn short_name(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
}

fn csv_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The CSV fields of one run.
pub fn csv_record(row: &UsageRow) -> [String; 13] {
    let labels = if row.labels.is_empty() {
        String::new()
    } else {
        let map: serde_json::Map<String, serde_json::Value> = row
            .labels
            .iter()
            .map(|(key, value)| (key.clone(), serde_json::Value::String(value.clone())))
            .collect();
        serde_json::Value::Object(map).to_string()
    };
    [
        row.hold_id.to_string(),
        csv_time(row.created_at),
        row.resolved_at.map(csv_time).unwrap_or_default(),
        row.status.as_str().to_ascii_lowercase(),
        short_name(&row.task_type, "TASK_TYPE_"),
        row.tool.clone(),
        row.model.clone(),
        row.project.clone(),
        row.run_id.clone(),
        row.credits.to_string(),
        row.refunded.to_string(),
        row.held.to_string(),
        labels,
    ]
}

/// Cuts CSV rows into chunks of at most [`MAX_CHUNK_BYTES`] (unless one row is longer),
/// each ending at a row boundary; the first starts with the header.
#[derive(Debug)]
pub struct CsvChunks {
    /// Writes into the chunk being filled.
    writer: csv::Writer<Vec<u8>>,
}

impl Default for CsvChunks {
    fn default() -> Self {
        Self::new()
    }
}

fn csv_writer(chunk: Vec<u8>) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(chunk)
}

impl CsvChunks {
    /// Chunks starting with the header row.
    pub fn new() -> Self {
        let mut chunks = CsvChunks {
            writer: csv_writer(Vec::with_capacity(MAX_CHUNK_BYTES)),
        };
        chunks.write(CSV_HEADER);
        chunks
    }

    /// Writes one record into the chunk; returns the chunk's length before it.
    fn write<I, T>(&mut self, fields: I) -> usize
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let before = self.writer.get_ref().len();
        // Writing into a Vec cannot fail; flush moves the record into it.
        let _ = self.writer.write_record(fields);
        let _ = self.writer.flush();
        before
    }

    /// Adds a run; returns the chunk it completed, if any.
    pub fn push(&mut self, row: &UsageRow) -> Option<String> {
        let before = self.write(csv_record(row));
        if before == 0 || self.writer.get_ref().len() <= MAX_CHUNK_BYTES {
            return None;
        }
        // The row overflowed a chunk that already had rows: it starts the next one.
        let mut full = self.take();
        let mut next = Vec::with_capacity(MAX_CHUNK_BYTES);
        next.extend_from_slice(&full[before..]);
        full.truncate(before);
        self.writer = csv_writer(next);
        Some(utf8(full))
    }

    fn take(&mut self) -> Vec<u8> {
        let writer = std::mem::replace(&mut self.writer, csv_writer(Vec::new()));
        writer.into_inner().unwrap_or_default()
    }

    /// The last chunk (the header alone when there were no rows).
    pub fn finish(mut self) -> String {
        utf8(self.take())
    }
}

/// Rows are written from Rust strings and cut at row boundaries, so a chunk is UTF-8.
fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

/// How an export ended, as its stream's last item needs to know.
#[derive(Debug, Default)]
pub enum ExportEnd {
    /// Still streaming, or stopped without saying why (a panic, a shutdown): the stream then
    /// ends with an error, never as if complete.
    #[default]
    Unfinished,
    /// Every row was sent.
    Complete,
    /// Ended early for this reason.
    Failed(ServiceError),
}

/// The stream of an export: CSV chunks, then how it ended.
#[derive(Debug)]
pub struct ExportStream {
    /// Chunks in order.
    pub chunks: mpsc::Receiver<String>,
    /// Set before the chunks' sender is dropped.
    pub end: Arc<Mutex<ExportEnd>>,
}

impl ExportStream {
    /// The error the stream must end with, if it did not end complete.
    pub fn failure(end: &Mutex<ExportEnd>) -> Option<ServiceError> {
        let mut end = end.lock().ok()?;
        match std::mem::take(&mut *end) {
            ExportEnd::Complete => None,
            ExportEnd::Failed(error) => Some(error),
            ExportEnd::Unfinished => Some(ServiceError::Exhausted {
                reason: Reason::StreamStalled,
                message: "the export stopped before its last row; run it again".to_owned(),
            }),
        }
    }
}

/// Starts streaming the account's runs of `filter` as CSV chunks, oldest first, from one
/// snapshot. At most [`MAX_CONCURRENT_EXPORTS`] run at once; a client that takes no chunk for
/// [`EXPORT_STALL_TIMEOUT`], or whose export is still running after [`MAX_EXPORT_DURATION`],
/// ends its export; dropping the stream stops the database read.
pub async fn export(
    context: &Context,
    caller: Caller,
    account_id: AccountId,
    filter: UsageFilter,
) -> Result<ExportStream, ServiceError> {
    let permit = Arc::clone(&context.exports)
        .try_acquire_owned()
        .map_err(|_| ServiceError::Exhausted {
            reason: Reason::TooManyStreams,
            message: format!(
                "{MAX_CONCURRENT_EXPORTS} exports are already streaming on this server; retry later"
            ),
        })?;
    let mut client = context.pool.get().await.map_err(StoreError::from)?;
    account_exists(&client, caller.tenant_id, account_id).await?;
    let now = context.clock.now();
    let (sender, chunks) = mpsc::channel(EXPORT_BUFFERED_CHUNKS);
    let end = Arc::new(Mutex::new(ExportEnd::Unfinished));
    let ended = Arc::clone(&end);
    tokio::spawn(async move {
        let _permit = permit;
        let deadline = tokio::time::Instant::now() + MAX_EXPORT_DURATION;
        let mut csv = CsvChunks::new();
        let sent = {
            let sender = &sender;
            let ended = &ended;
            usage::export_usage(
                &mut client,
                caller.tenant_id,
                account_id,
                &filter,
                now,
                EXPORT_BATCH,
                |rows| {
                    let ready: Vec<String> = rows.iter().filter_map(|row| csv.push(row)).collect();
                    send_all(sender, ended, deadline, ready)
                },
            )
            .await
        };
        let complete = match sent {
            Ok(true) => send_all(&sender, &ended, deadline, vec![csv.finish()]).await,
            Ok(false) => false,
            Err(error) => {
                tracing::warn!(%error, "usage export failed");
                record(&ended, ExportEnd::Failed(ServiceError::from(error)));
                false
            }
        };
        if complete {
            record(&ended, ExportEnd::Complete);
        }
        tracing::debug!(complete, "usage export ended");
    });
    Ok(ExportStream { chunks, end })
}

/// Records how the export ended, unless it already was.
fn record(end: &Mutex<ExportEnd>, how: ExportEnd) {
    if let Ok(mut slot) = end.lock()
        && matches!(*slot, ExportEnd::Unfinished)
    {
        *slot = how;
    }
}

/// Sends `chunks` in order; `false` when the client went away, stalled, or the export ran
/// past its deadline.
async fn send_all(
    sender: &mpsc::Sender<String>,
    end: &Mutex<ExportEnd>,
    deadline: tokio::time::Instant,
    chunks: Vec<String>,
) -> bool {
    for chunk in chunks {
        let stall = tokio::time::Instant::now() + EXPORT_STALL_TIMEOUT;
        match tokio::time::timeout_at(stall.min(deadline), sender.send(chunk)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return false,
            Err(_) => {
                let message = if tokio::time::Instant::now() >= deadline {
                    format!(
                        "the export was ended after {} s: read it faster or narrow the range",
                        MAX_EXPORT_DURATION.as_secs()
                    )
                } else {
                    format!(
                        "the export was ended: no chunk was taken for {} s",
                        EXPORT_STALL_TIMEOUT.as_secs()
                    )
                };
                record(
                    end,
                    ExportEnd::Failed(ServiceError::Exhausted {
                        reason: Reason::StreamStalled,
                        message,
                    }),
                );
                return false;
            }
        }
    }
    true
}
