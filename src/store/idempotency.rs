//! Idempotency records: one row per mutating call, committed with its effect.

mod by_reference;
mod compressed;

use std::collections::HashMap;

use deadpool_postgres::GenericClient;

pub use self::by_reference::dictionary as hold_dictionary;
use super::StoreError;
use crate::ids::{AccountId, HoldId, TenantId};

/// What a mutating call answered, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredAnswer {
    /// The encoded response message.
    Response(Vec<u8>),
    /// A decline: reason, message and metadata pairs.
    Declined {
        /// ErrorInfo reason.
        reason: String,
        /// Message.
        message: String,
        /// Metadata pairs.
        metadata: Vec<(String, String)>,
    },
}

/// A stored record.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// RPC it answered.
    pub rpc: String,
    /// SHA-256 of the request; `None` in a lean record (its field digests tell).
    pub request_hash: Option<Vec<u8>>,
    /// Digests of the request's fields (records written before they were kept: `None`).
    pub request_fields: Option<Vec<u8>>,
    /// The encoded request, kept by records written before field digests were.
    pub request: Option<Vec<u8>>,
    /// The account the request named or resolved to, if any.
    pub account_id: Option<AccountId>,
    /// The answer.
    pub answer: StoredAnswer,
}

/// A record to store.
#[derive(Debug, Clone)]
pub struct NewRecord {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Key.
    pub key: String,
    /// RPC.
    pub rpc: &'static str,
    /// SHA-256 of the request; `None` in a lean record, whose field digests tell whether a
    /// retry is the same request.
    pub request_hash: Option<[u8; 32]>,
    /// Digests of the request's fields, to name those a reused key changed.
    pub request_fields: Vec<u8>,
    /// The account it touched.
    pub account_id: Option<AccountId>,
    /// The answer.
    pub answer: StoredAnswer,
    /// The hold of `account_id` the answer shows, to store it by reference to: the hold and
    /// its text ([`hold_dictionary`]).
    pub answer_hold: Option<(HoldId, Vec<u8>)>,
}

impl NewRecord {
    /// The record as a later read finds it (its answer as given, before compression).
    pub fn as_stored(&self) -> StoredRecord {
        StoredRecord {
            rpc: self.rpc.to_owned(),
            request_hash: self.request_hash.map(|hash| hash.to_vec()),
            request_fields: Some(self.request_fields.clone()),
            request: None,
            account_id: self.account_id,
            answer: self.answer.clone(),
        }
    }
}

/// Reads the record of `key`.
pub static SELECT_RECORD: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT r.rpc, r.request_hash, r.request_fields, r.request, r.response, r.error_reason, r.error_message, \
         r.error_metadata, {} FROM idempotency_records r {} \
         WHERE r.tenant_id = $1 AND r.idempotency_key = $2",
        by_reference::HOLD_TEXT_COLUMNS,
        by_reference::HOLD_TEXT_JOIN,
    )
});

/// Reads the records of several keys (`$2` is a text array).
pub static SELECT_RECORDS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT r.tenant_id, r.idempotency_key, r.rpc, r.request_hash, r.request_fields, r.request, r.response, \
         r.error_reason, r.error_message, r.error_metadata, {} FROM idempotency_records r \
         JOIN unnest($1::uuid[], $2::text[]) AS k(tenant_id, idempotency_key) \
         ON r.tenant_id = k.tenant_id AND r.idempotency_key = k.idempotency_key {}",
        by_reference::HOLD_TEXT_COLUMNS,
        by_reference::HOLD_TEXT_JOIN,
    )
});

/// Inserts a record; parameters as in [`record_params`].
pub const INSERT_RECORD: &str = "INSERT INTO idempotency_records (tenant_id, idempotency_key, rpc, request_hash, \
     request_fields, account_id, response, error_reason, error_message, error_metadata, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())";

/// A record row.
pub fn stored_record(row: &tokio_postgres::Row) -> StoredRecord {
    let response: Option<Vec<u8>> = row.get("response");
    let answer = match response {
        // A response that does not expand is kept as stored: it then fails to decode where it
        // is answered (an internal error, logged), never as another answer.
        Some(bytes) => {
            StoredAnswer::Response(by_reference::load(row, bytes.clone()).unwrap_or(bytes))
        }
        None => {
            let flat: Vec<String> = row
                .get::<_, Option<Vec<String>>>("error_metadata")
                .unwrap_or_default();
            StoredAnswer::Declined {
                reason: row
                    .get::<_, Option<String>>("error_reason")
                    .unwrap_or_default(),
                message: row
                    .get::<_, Option<String>>("error_message")
                    .unwrap_or_default(),
                metadata: flat
                    .chunks(2)
                    .filter_map(|pair| Some((pair.first()?.clone(), pair.get(1)?.clone())))
                    .collect(),
            }
        }
    };
    StoredRecord {
        rpc: row.get("rpc"),
        request_hash: row.get("request_hash"),
        request_fields: row.get("request_fields"),
        request: row.get("request"),
        account_id: row.get("answer_account"),
        answer,
    }
}

/// Owned parameters of [`INSERT_RECORD`].
pub struct RecordParams {
    tenant_id: TenantId,
    key: String,
    rpc: String,
    hash: Option<Vec<u8>>,
    request_fields: Vec<u8>,
    account_id: Option<AccountId>,
    response: Option<Vec<u8>>,
    reason: Option<String>,
    message: Option<String>,
    metadata: Option<Vec<String>>,
}

impl std::fmt::Debug for RecordParams {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RecordParams")
            .field("rpc", &self.rpc)
            .finish_non_exhaustive()
    }
}

impl RecordParams {
    /// Parameters of a record.
    pub fn new(record: &NewRecord) -> Self {
        let (response, reason, message, metadata) = match &record.answer {
            StoredAnswer::Response(bytes) => (Some(compressed::store(bytes)), None, None, None),
            StoredAnswer::Declined {
                reason,
                message,
                metadata,
            } => (
                None,
                Some(reason.clone()),
                Some(message.clone()),
                Some(
                    metadata
                        .iter()
                        .flat_map(|(key, value)| [key.clone(), value.clone()])
                        .collect(),
                ),
            ),
        };
        RecordParams {
            tenant_id: record.tenant_id,
            key: record.key.clone(),
            rpc: record.rpc.to_owned(),
            hash: record.request_hash.map(|hash| hash.to_vec()),
            request_fields: record.request_fields.clone(),
            account_id: record.account_id,
            response,
            reason,
            message,
            metadata,
        }
    }

    /// As statement parameters.
    pub fn as_params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 10] {
        [
            &self.tenant_id,
            &self.key,
            &self.rpc,
            &self.hash,
            &self.request_fields,
            &self.account_id,
            &self.response,
            &self.reason,
            &self.message,
            &self.metadata,
        ]
    }
}

/// The record of `key`, if any.
pub async fn find(
    client: &impl GenericClient,
    tenant_id: TenantId,
    key: &str,
) -> Result<Option<StoredRecord>, StoreError> {
    let row = client
        .query_opt(SELECT_RECORD.as_str(), &[&tenant_id, &key])
        .await?;
    Ok(row.as_ref().map(stored_record))
}

/// The records of `keys` (by tenant), in one query.
pub async fn find_many(
    client: &impl GenericClient,
    keys: &[(TenantId, String)],
) -> Result<HashMap<(TenantId, String), StoredRecord>, StoreError> {
    let (tenants, keys): (Vec<TenantId>, Vec<String>) = keys.iter().cloned().unzip();
    let rows = client
        .query(SELECT_RECORDS.as_str(), &[&tenants, &keys])
        .await?;
    Ok(records_by_key(&rows))
}

/// Rows of [`SELECT_RECORDS`], by tenant and key.
pub fn records_by_key(rows: &[tokio_postgres::Row]) -> HashMap<(TenantId, String), StoredRecord> {
    rows.iter()
        .map(|row| {
            let key = (
                row.get::<_, TenantId>("tenant_id"),
                row.get::<_, String>("idempotency_key"),
            );
            (key, stored_record(row))
        })
        .collect()
}

/// Stores a record.
pub async fn insert(client: &impl GenericClient, record: &NewRecord) -> Result<(), StoreError> {
    let params = RecordParams::new(record);
    client.execute(INSERT_RECORD, &params.as_params()).await?;
    Ok(())
}

/// Deletes up to `batch` records older than `retention`; returns how many.
pub async fn prune(
    client: &impl GenericClient,
    retention: std::time::Duration,
    batch: i64,
) -> Result<u64, StoreError> {
    let seconds = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    let deleted = client
        .execute(
            // By tuple id: a plain IN over the key made the planner scan the whole table.
            "DELETE FROM idempotency_records WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM idempotency_records
                WHERE created_at < now() - make_interval(secs => $1::bigint) LIMIT $2
                FOR UPDATE SKIP LOCKED))",
            &[&seconds, &batch],
        )
        .await?;
    Ok(deleted)
}

/// Inserts many records in one statement (one array per column; decline metadata travels as a
/// JSON array of alternating keys and values).
pub const INSERT_RECORDS: &str = "INSERT INTO idempotency_records (tenant_id, idempotency_key, rpc, request_hash, \
     request_fields, account_id, response, error_reason, error_message, error_metadata, answer_hold, created_at) \
     SELECT r.tenant_id, r.key, r.rpc, r.hash, r.request_fields, r.account_id, r.response, r.reason, r.message, \
     CASE WHEN r.metadata IS NULL THEN NULL ELSE \
     ARRAY(SELECT item FROM jsonb_array_elements_text(r.metadata) WITH ORDINALITY AS e(item, n) ORDER BY n) END, \
     r.answer_hold, now() \
     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::uuid[], $7::bytea[], $8::text[], \
     $9::text[], $10::jsonb[], $11::uuid[]) AS r(tenant_id, key, rpc, hash, request_fields, account_id, response, reason, \
     message, metadata, answer_hold)";

/// Owned parameters of [`INSERT_RECORDS`].
#[derive(Debug, Default)]
pub struct RecordColumns {
    tenants: Vec<TenantId>,
    keys: Vec<String>,
    rpcs: Vec<String>,
    hashes: Vec<Option<Vec<u8>>>,
    request_fields: Vec<Vec<u8>>,
    accounts: Vec<Option<AccountId>>,
    responses: Vec<Option<Vec<u8>>>,
    reasons: Vec<Option<String>>,
    messages: Vec<Option<String>>,
    metadata: Vec<Option<serde_json::Value>>,
    answer_holds: Vec<Option<HoldId>>,
}

impl RecordColumns {
    /// The columns of `records`.
    pub fn new(records: &[NewRecord]) -> Self {
        let mut columns = RecordColumns::default();
        for record in records {
            columns.tenants.push(record.tenant_id);
            columns.keys.push(record.key.clone());
            columns.rpcs.push(record.rpc.to_owned());
            columns
                .hashes
                .push(record.request_hash.map(|hash| hash.to_vec()));
            columns.request_fields.push(record.request_fields.clone());
            columns.accounts.push(record.account_id);
            let mut answer_hold = None;
            match &record.answer {
                StoredAnswer::Response(bytes) => {
                    let stored = match &record.answer_hold {
                        Some((hold_id, dictionary)) => {
                            let (stored, used) = compressed::store_with(bytes, dictionary);
                            answer_hold = used.then_some(*hold_id);
                            stored
                        }
                        None => compressed::store(bytes),
                    };
                    columns.responses.push(Some(stored));
                    columns.reasons.push(None);
                    columns.messages.push(None);
                    columns.metadata.push(None);
                }
                StoredAnswer::Declined {
                    reason,
                    message,
                    metadata,
                } => {
                    columns.responses.push(None);
                    columns.reasons.push(Some(reason.clone()));
                    columns.messages.push(Some(message.clone()));
                    let flat: Vec<&String> = metadata
                        .iter()
                        .flat_map(|(key, value)| [key, value])
                        .collect();
                    columns.metadata.push(Some(serde_json::json!(flat)));
                }
            }
            columns.answer_holds.push(answer_hold);
        }
        columns
    }

    /// Whether there is nothing to insert.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// As statement parameters.
    pub fn as_params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 11] {
        [
            &self.tenants,
            &self.keys,
            &self.rpcs,
            &self.hashes,
            &self.request_fields,
            &self.accounts,
            &self.responses,
            &self.reasons,
            &self.messages,
            &self.metadata,
            &self.answer_holds,
        ]
    }
}
