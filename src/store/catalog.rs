//! Catalog versions and quotes.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};

use super::StoreError;
use super::idempotency::{INSERT_RECORD, NewRecord, RecordParams};
use crate::ids::TenantId;
use crate::pricing::Catalog;

/// Serializes publishing per tenant, so versions are gap-free.
const PUBLISH_LOCK_SQL: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('catalog:' || $1::uuid::text, 0))";

fn catalog_from_row(row: &tokio_postgres::Row) -> Result<Catalog, StoreError> {
    let mut catalog: Catalog = serde_json::from_value(row.get("document"))
        .map_err(|error| StoreError::Other(format!("stored catalog does not parse: {error}")))?;
    catalog.version = row.get("version");
    catalog.effective_at = Some(row.get("effective_at"));
    catalog.created_at = Some(row.get("created_at"));
    Ok(catalog)
}

fn document(catalog: &Catalog) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(catalog)
        .map_err(|error| StoreError::Other(format!("catalog does not serialize: {error}")))
}

/// Publishes `catalog` as the tenant's next version, with its idempotency record; returns the
/// version.
pub async fn publish(
    pool: &Pool,
    tenant_id: TenantId,
    catalog: &Catalog,
    effective_at: DateTime<Utc>,
    now: DateTime<Utc>,
    record: impl FnOnce(i64) -> NewRecord,
) -> Result<i64, StoreError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    transaction.execute(PUBLISH_LOCK_SQL, &[&tenant_id]).await?;
    let version: i64 = transaction
        .query_one(
            "SELECT coalesce(max(version), 0) + 1 FROM catalog_versions WHERE tenant_id = $1",
            &[&tenant_id],
        )
        .await?
        .get(0);
    transaction
        .execute(
            "INSERT INTO catalog_versions (tenant_id, version, effective_at, created_at, description, document) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&tenant_id, &version, &effective_at, &now, &catalog.description, &document(catalog)?],
        )
        .await?;
    let params = RecordParams::new(&record(version));
    transaction
        .execute(INSERT_RECORD, &params.as_params())
        .await?;
    transaction.commit().await?;
    Ok(version)
}

/// Stores `catalog` as version 1 when the tenant has no catalog yet (idempotent).
pub async fn insert_default(
    client: &impl GenericClient,
    tenant_id: TenantId,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO catalog_versions (tenant_id, version, effective_at, created_at, description, document) \
             SELECT $1, 1, $2, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM catalog_versions WHERE tenant_id = $1) \
             ON CONFLICT DO NOTHING",
            &[&tenant_id, &now, &catalog.description, &document(catalog)?],
        )
        .await?;
    Ok(())
}

/// The version active at `now`: the highest one already in effect; `None` if the tenant has no
/// catalog (`Some(None)` when it has versions but none in effect yet).
pub async fn active_version(
    client: &impl GenericClient,
    tenant_id: TenantId,
    now: DateTime<Utc>,
) -> Result<Option<Option<i64>>, StoreError> {
    let row = client
        .query_one(
            "SELECT max(version) FILTER (WHERE effective_at <= $2), count(*) FROM catalog_versions WHERE tenant_id = $1",
            &[&tenant_id, &now],
        )
        .await?;
    let count: i64 = row.get(1);
    Ok((count > 0).then(|| row.get(0)))
}

/// A version of the tenant's catalog.
pub async fn load_version(
    client: &impl GenericClient,
    tenant_id: TenantId,
    version: i64,
) -> Result<Option<Catalog>, StoreError> {
    let row = client
        .query_opt(
            "SELECT version, effective_at, created_at, document FROM catalog_versions WHERE tenant_id = $1 AND version = $2",
            &[&tenant_id, &version],
        )
        .await?;
    row.as_ref().map(catalog_from_row).transpose()
}
