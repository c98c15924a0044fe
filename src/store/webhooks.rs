//! Webhook endpoints: registration, the delivery worker's leases and progress, and the record
//! of delivery attempts (`webhook_deliveries`, see [`deliveries`]).

pub mod deliveries;

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use tokio_postgres::Row;
use uuid::Uuid;

use super::StoreError;
use super::events::Position;
use super::idempotency::{INSERT_RECORD, NewRecord, RecordParams};
use crate::ids::{AccountId, TenantId, WebhookEndpointId};
use crate::ledger::EventType;

/// Serializes registrations per tenant, so the endpoint limit holds under concurrency.
const CREATE_LOCK_SQL: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('webhooks:' || $1::uuid::text, 0))";

const ENDPOINT_COLUMNS: &str = "endpoint_id, tenant_id, url, account_id, event_types, status, \
     pos_tx::text::int8 AS pos_tx, pos_seq, first_failed_at, attempts, next_attempt_at, \
     last_error, created_at, updated_at";

/// Whether an endpoint is delivered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    /// Events are delivered or retried.
    Active,
    /// Its head event failed for too long; nothing is sent until it is resumed.
    Paused,
}

impl EndpointStatus {
    fn from_name(name: &str) -> Result<Self, StoreError> {
        match name {
            "ACTIVE" => Ok(EndpointStatus::Active),
            "PAUSED" => Ok(EndpointStatus::Paused),
            other => Err(StoreError::Other(format!(
                "stored webhook status {other:?} is unknown"
            ))),
        }
    }
}

/// An endpoint as stored, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its id.
    pub endpoint_id: WebhookEndpointId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Where events are POSTed.
    pub url: String,
    /// Only this account's events, when set.
    pub account_id: Option<AccountId>,
    /// Only these types; empty: all.
    pub event_types: Vec<EventType>,
    /// Active or paused.
    pub status: EndpointStatus,
    /// The last event delivered or passed over: delivery goes on after it.
    pub position: Position,
    /// When the head event first failed; `None` while it is not failing.
    pub first_failed_at: Option<DateTime<Utc>>,
    /// Failed attempts of the head event.
    pub attempts: i32,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed (bounded, never the secret).
    pub last_error: Option<String>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

fn endpoint(row: &Row) -> Result<Endpoint, StoreError> {
    let names: Vec<String> = row.get("event_types");
    let event_types = names
        .iter()
        .map(|name| {
            EventType::from_name(name)
                .ok_or_else(|| StoreError::Other(format!("stored event type {name:?} is unknown")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Endpoint {
        endpoint_id: row.get("endpoint_id"),
        tenant_id: row.get("tenant_id"),
        url: row.get("url"),
        account_id: row.get("account_id"),
        event_types,
        status: EndpointStatus::from_name(row.get("status"))?,
        position: Position {
            tx: row.get("pos_tx"),
            seq: row.get("pos_seq"),
        },
        first_failed_at: row.get("first_failed_at"),
        attempts: row.get("attempts"),
        next_attempt_at: row.get("next_attempt_at"),
        last_error: row.get("last_error"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

/// An endpoint to register.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Its id.
    pub endpoint_id: WebhookEndpointId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Checked URL.
    pub url: String,
    /// The signing secret.
    pub secret: String,
    /// Account filter.
    pub account_id: Option<AccountId>,
    /// Type filter.
    pub event_types: Vec<EventType>,
    /// Registration time.
    pub now: DateTime<Utc>,
}

/// What registering did.
#[derive(Debug)]
pub enum Registered {
    /// The endpoint, starting at the events horizon.
    Created(Endpoint),
    /// The tenant already has `limit` endpoints.
    LimitReached,
}

/// Registers `new` (from the events horizon on) with its idempotency record, unless the
/// tenant has `limit` endpoints already. `record` gets the stored endpoint.
pub async fn create(
    pool: &Pool,
    new: &NewEndpoint,
    limit: i64,
    record: impl FnOnce(&Endpoint) -> NewRecord,
) -> Result<Registered, StoreError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    transaction
        .execute(CREATE_LOCK_SQL, &[&new.tenant_id])
        .await?;
    let count: i64 = transaction
        .query_one(
            "SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1",
            &[&new.tenant_id],
        )
        .await?
        .get(0);
    if count >= limit {
        return Ok(Registered::LimitReached);
    }
    let types: Vec<&str> = new.event_types.iter().map(|kind| kind.as_str()).collect();
    let sql = format!(
        "INSERT INTO webhook_endpoints (endpoint_id, tenant_id, url, secret, account_id, \
           event_types, pos_tx, pos_seq, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, pg_snapshot_xmin(pg_current_snapshot()), -1, $7, $7, $7) \
         RETURNING {ENDPOINT_COLUMNS}"
    );
    let row = transaction
        .query_one(
            &sql,
            &[
                &new.endpoint_id,
                &new.tenant_id,
                &new.url,
                &new.secret,
                &new.account_id,
                &types,
                &new.now,
            ],
        )
        .await?;
    let created = endpoint(&row)?;
    let params = RecordParams::new(&record(&created));
    transaction
        .execute(INSERT_RECORD, &params.as_params())
        .await?;
    transaction.commit().await?;
    Ok(Registered::Created(created))
}

/// Up to `limit` of the tenant's endpoints after `after` (created_at, id), oldest first.
pub async fn list(
    client: &impl GenericClient,
    tenant_id: TenantId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Endpoint>, StoreError> {
    let (after_time, after_id) = after.unzip();
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, endpoint_id) > ($2, $3)) \
         ORDER BY created_at, endpoint_id LIMIT $4"
    );
    let rows = client
        .query(&sql, &[&tenant_id, &after_time, &after_id, &limit])
        .await?;
    rows.iter().map(endpoint).collect()
}

/// The tenant's endpoint `endpoint_id`.
pub async fn get(
    client: &impl GenericClient,
    tenant_id: TenantId,
    endpoint_id: WebhookEndpointId,
) -> Result<Option<Endpoint>, StoreError> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND endpoint_id = $2"
    );
    let row = client.query_opt(&sql, &[&tenant_id, &endpoint_id]).await?;
    row.as_ref().map(endpoint).transpose()
}

/// Deletes the tenant's endpoint (its attempts go with it); returns it as it was.
pub async fn delete(
    client: &impl GenericClient,
    tenant_id: TenantId,
    endpoint_id: WebhookEndpointId,
) -> Result<Option<Endpoint>, StoreError> {
    let sql = format!(
        "DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND endpoint_id = $2 \
         RETURNING {ENDPOINT_COLUMNS}"
    );
    let row = client.query_opt(&sql, &[&tenant_id, &endpoint_id]).await?;
    row.as_ref().map(endpoint).transpose()
}

/// Makes the endpoint active with its head event due at `now` and no failures counted.
pub async fn resume(
    client: &impl GenericClient,
    tenant_id: TenantId,
    endpoint_id: WebhookEndpointId,
    now: DateTime<Utc>,
) -> Result<Option<Endpoint>, StoreError> {
    let sql = format!(
        "UPDATE webhook_endpoints SET status = 'ACTIVE', first_failed_at = NULL, attempts = 0, \
           next_attempt_at = $3, updated_at = $3 \
         WHERE tenant_id = $1 AND endpoint_id = $2 RETURNING {ENDPOINT_COLUMNS}"
    );
    let row = client
        .query_opt(&sql, &[&tenant_id, &endpoint_id, &now])
        .await?;
    row.as_ref().map(endpoint).transpose()
}

/// An endpoint the worker holds, with what it needs to sign.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its signing secret.
    pub secret: String,
}

/// Leases up to `batch` due active endpoints that have events to look at, until `lease_until`
/// under `token`. Rows another worker is claiming are skipped; an endpoint with nothing new is
/// not written, so idle endpoints cost one index probe per tick. The lease outlives this
/// statement's transaction.
pub async fn claim(
    client: &impl GenericClient,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    token: Uuid,
    batch: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let sql = format!(
        "WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) \
         UPDATE webhook_endpoints SET lease_until = $2, lease_token = $3 WHERE endpoint_id IN ( \
           SELECT w.endpoint_id FROM webhook_endpoints w, h WHERE w.status = 'ACTIVE' \
           AND w.next_attempt_at <= $1 AND (w.lease_until IS NULL OR w.lease_until <= $1) \
           AND EXISTS (SELECT 1 FROM events e WHERE e.tenant_id = w.tenant_id \
             AND (e.tx, e.seq) > (w.pos_tx, w.pos_seq) AND e.tx < h.xmin) \
           ORDER BY w.next_attempt_at LIMIT $4 FOR UPDATE OF w SKIP LOCKED) \
         RETURNING {ENDPOINT_COLUMNS}, secret"
    );
    let rows = client
        .query(&sql, &[&now, &lease_until, &token, &batch])
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Claimed {
                endpoint: endpoint(row)?,
                secret: row.get("secret"),
            })
        })
        .collect()
}

/// The head event at `position` was delivered: the endpoint goes on after it, no failure
/// counted. False when the lease was lost (the endpoint deleted or claimed again).
pub async fn delivered(
    client: &impl GenericClient,
    endpoint_id: WebhookEndpointId,
    token: Uuid,
    position: Position,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = client
        .execute(
            "UPDATE webhook_endpoints SET pos_tx = $3::int8::text::xid8, pos_seq = $4, \
               first_failed_at = NULL, attempts = 0, last_error = NULL, updated_at = $5 \
             WHERE endpoint_id = $1 AND lease_token = $2",
            &[&endpoint_id, &token, &position.tx, &position.seq, &now],
        )
        .await?;
    Ok(updated == 1)
}

/// A failed attempt of the head event, as the endpoint records it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// When the head event first failed.
    pub first_failed_at: DateTime<Utc>,
    /// Failed attempts so far.
    pub attempts: i32,
    /// When to try again.
    pub next_attempt_at: DateTime<Utc>,
    /// Why it failed.
    pub error: String,
    /// Whether it failed for too long: the endpoint is paused.
    pub pause: bool,
}

/// Records a failure of the head event and ends the lease.
pub async fn failed(
    client: &impl GenericClient,
    endpoint_id: WebhookEndpointId,
    token: Uuid,
    failure: &Failure,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let status = if failure.pause { "PAUSED" } else { "ACTIVE" };
    let updated = client
        .execute(
            "UPDATE webhook_endpoints SET first_failed_at = $3, attempts = $4, \
               next_attempt_at = $5, last_error = $6, status = $7, updated_at = $8, \
               lease_until = NULL, lease_token = NULL \
             WHERE endpoint_id = $1 AND lease_token = $2",
            &[
                &endpoint_id,
                &token,
                &failure.first_failed_at,
                &failure.attempts,
                &failure.next_attempt_at,
                &failure.error,
                &status,
                &now,
            ],
        )
        .await?;
    Ok(updated == 1)
}

/// Ends the lease with nothing failing: the endpoint is due again at `next_attempt_at`, and
/// goes on from `floor` when that is past its position (events its filter passed over).
pub async fn release(
    client: &impl GenericClient,
    endpoint_id: WebhookEndpointId,
    token: Uuid,
    floor: Position,
    next_attempt_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE webhook_endpoints SET \
               pos_tx = CASE WHEN (pos_tx, pos_seq) < ($3::int8::text::xid8, $4) \
                 THEN $3::int8::text::xid8 ELSE pos_tx END, \
               pos_seq = CASE WHEN (pos_tx, pos_seq) < ($3::int8::text::xid8, $4) \
                 THEN $4 ELSE pos_seq END, \
               next_attempt_at = $5, lease_until = NULL, lease_token = NULL \
             WHERE endpoint_id = $1 AND lease_token = $2",
            &[
                &endpoint_id,
                &token,
                &floor.tx,
                &floor.seq,
                &next_attempt_at,
            ],
        )
        .await?;
    Ok(())
}
