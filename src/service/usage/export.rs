//! The CSV export: runs as RFC 4180 rows cut into bounded chunks, streamed from one snapshot
//! with back-pressure, a bound on exports at once, on stalls and on duration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::mpsc;

use super::{UsageFilter, UsageRow, account_exists};
use crate::ids::AccountId;
use crate::ledger::Reason;
use crate::service::access::Caller;
use crate::service::{Context, ServiceError};
use crate::store::StoreError;
use crate::store::usage;

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
