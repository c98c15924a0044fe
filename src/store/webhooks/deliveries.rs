//! Delivery attempts: one row per POST of one event to one endpoint, newest read first, kept
//! for a retention period.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::ids::{TenantId, WebhookEndpointId};
use crate::store::StoreError;
use crate::store::events::Position;

/// One attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Its id (UUIDv7).
    pub delivery_id: Uuid,
    /// The endpoint.
    pub endpoint_id: WebhookEndpointId,
    /// The endpoint's tenant.
    pub tenant_id: TenantId,
    /// The event.
    pub event_id: Uuid,
    /// The event's position.
    pub position: Position,
    /// Attempt number of this event at this endpoint, from 1.
    pub attempt: i32,
    /// The HTTP status answered, if one came.
    pub http_status: Option<i32>,
    /// Why it failed (bounded); `None` when delivered.
    pub error: Option<String>,
    /// Whether the endpoint answered 2xx.
    pub succeeded: bool,
    /// How long it took.
    pub duration_ms: i32,
    /// When it was made.
    pub attempted_at: DateTime<Utc>,
}

fn attempt(row: &Row) -> Attempt {
    Attempt {
        delivery_id: row.get("delivery_id"),
        endpoint_id: row.get("endpoint_id"),
        tenant_id: row.get("tenant_id"),
        event_id: row.get("event_id"),
        position: Position {
            tx: row.get("event_tx"),
            seq: row.get("event_seq"),
        },
        attempt: row.get("attempt"),
        http_status: row.get("http_status"),
        error: row.get("error"),
        succeeded: row.get("succeeded"),
        duration_ms: row.get("duration_ms"),
        attempted_at: row.get("attempted_at"),
    }
}

/// Stores an attempt (nothing when the endpoint was deleted meanwhile).
pub async fn record(client: &impl GenericClient, attempt: &Attempt) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO webhook_deliveries (delivery_id, endpoint_id, tenant_id, event_id, \
               event_tx, event_seq, attempt, http_status, error, succeeded, duration_ms, attempted_at) \
             SELECT $1, $2, $3, $4, $5::int8::text::xid8, $6, $7, $8, $9, $10, $11, $12 \
             WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE endpoint_id = $2)",
            &[
                &attempt.delivery_id,
                &attempt.endpoint_id,
                &attempt.tenant_id,
                &attempt.event_id,
                &attempt.position.tx,
                &attempt.position.seq,
                &attempt.attempt,
                &attempt.http_status,
                &attempt.error,
                &attempt.succeeded,
                &attempt.duration_ms,
                &attempt.attempted_at,
            ],
        )
        .await?;
    Ok(())
}

/// Up to `limit` attempts at the tenant's endpoint before `before` (attempted_at, id), newest
/// first.
pub async fn list(
    client: &impl GenericClient,
    tenant_id: TenantId,
    endpoint_id: WebhookEndpointId,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Attempt>, StoreError> {
    let (before_time, before_id) = before.unzip();
    let rows = client
        .query(
            "SELECT delivery_id, endpoint_id, tenant_id, event_id, event_tx::text::int8 AS event_tx, \
               event_seq, attempt, http_status, error, succeeded, duration_ms, attempted_at \
             FROM webhook_deliveries WHERE endpoint_id = $2 AND tenant_id = $1 \
             AND ($3::timestamptz IS NULL OR (attempted_at, delivery_id) < ($3, $4)) \
             ORDER BY attempted_at DESC, delivery_id DESC LIMIT $5",
            &[&tenant_id, &endpoint_id, &before_time, &before_id, &limit],
        )
        .await?;
    Ok(rows.iter().map(attempt).collect())
}

/// Deletes up to `batch` attempts made before `cutoff`; returns how many.
pub async fn prune(
    client: &impl GenericClient,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<u64, StoreError> {
    let deleted = client
        .execute(
            "DELETE FROM webhook_deliveries WHERE delivery_id IN ( \
               SELECT delivery_id FROM webhook_deliveries WHERE attempted_at < $1 \
               ORDER BY attempted_at LIMIT $2)",
            &[&cutoff, &batch],
        )
        .await?;
    Ok(deleted)
}
