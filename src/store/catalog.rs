//! Catalog versions and quotes.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::StoreError;
use super::idempotency::{INSERT_RECORD, NewRecord, RecordParams};
use crate::ledger::Credits;
use crate::pricing::{Catalog, LineItem};

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
    tenant_id: Uuid,
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
    tenant_id: Uuid,
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
    tenant_id: Uuid,
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
    tenant_id: Uuid,
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

/// A stored quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteRow {
    /// Id.
    pub quote_id: Uuid,
    /// Account it was made for, if any.
    pub account_id: Option<Uuid>,
    /// Catalog version that priced it.
    pub catalog_version: i64,
    /// Tool.
    pub tool: String,
    /// Model.
    pub model: String,
    /// Entitlement the model requires.
    pub required_entitlement: Option<String>,
    /// Total.
    pub total: Credits,
    /// Line items.
    pub line_items: Vec<LineItem>,
    /// Valid until.
    pub expires_at: DateTime<Utc>,
    /// Made at.
    pub created_at: DateTime<Utc>,
}

/// Stores quotes in one statement. Quotes are not money: losing the last ones in a crash only
/// makes a worker quote again, so the insert does not wait for the WAL flush.
pub async fn insert_quotes(pool: &Pool, quotes: &[(Uuid, QuoteRow)]) -> Result<(), StoreError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(
            "WITH settings AS (SELECT set_config('synchronous_commit', 'off', true)) \
             INSERT INTO quotes (quote_id, tenant_id, account_id, catalog_version, tool, model, required_entitlement, \
             total, line_items, expires_at, created_at) \
             SELECT q.* FROM settings, unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int8[], $5::text[], $6::text[], \
             $7::text[], $8::numeric[], $9::jsonb[], $10::timestamptz[], $11::timestamptz[]) AS q",
        )
        .await?;
    let mut line_items = Vec::with_capacity(quotes.len());
    for (_, quote) in quotes {
        line_items.push(
            serde_json::to_value(&quote.line_items)
                .map_err(|error| StoreError::Other(error.to_string()))?,
        );
    }
    let column = |field: fn(&QuoteRow) -> Uuid| {
        quotes
            .iter()
            .map(|(_, quote)| field(quote))
            .collect::<Vec<_>>()
    };
    let tenants: Vec<Uuid> = quotes.iter().map(|(tenant_id, _)| *tenant_id).collect();
    let accounts: Vec<Option<Uuid>> = quotes.iter().map(|(_, quote)| quote.account_id).collect();
    let versions: Vec<i64> = quotes
        .iter()
        .map(|(_, quote)| quote.catalog_version)
        .collect();
    let tools: Vec<&str> = quotes
        .iter()
        .map(|(_, quote)| quote.tool.as_str())
        .collect();
    let models: Vec<&str> = quotes
        .iter()
        .map(|(_, quote)| quote.model.as_str())
        .collect();
    let entitlements: Vec<Option<&str>> = quotes
        .iter()
        .map(|(_, quote)| quote.required_entitlement.as_deref())
        .collect();
    let totals: Vec<Decimal> = quotes
        .iter()
        .map(|(_, quote)| quote.total.decimal())
        .collect();
    let expires: Vec<DateTime<Utc>> = quotes.iter().map(|(_, quote)| quote.expires_at).collect();
    let created: Vec<DateTime<Utc>> = quotes.iter().map(|(_, quote)| quote.created_at).collect();
    client
        .execute(
            &statement,
            &[
                &column(|quote| quote.quote_id),
                &tenants,
                &accounts,
                &versions,
                &tools,
                &models,
                &entitlements,
                &totals,
                &line_items,
                &expires,
                &created,
            ],
        )
        .await?;
    Ok(())
}

/// A quote of the tenant.
pub async fn find_quote(
    client: &impl GenericClient,
    tenant_id: Uuid,
    quote_id: Uuid,
) -> Result<Option<QuoteRow>, StoreError> {
    let row = client
        .query_opt(
            "SELECT quote_id, account_id, catalog_version, tool, model, required_entitlement, total, line_items, \
             expires_at, created_at FROM quotes WHERE quote_id = $1 AND tenant_id = $2",
            &[&quote_id, &tenant_id],
        )
        .await?;
    Ok(row.map(|row| QuoteRow {
        quote_id: row.get("quote_id"),
        account_id: row.get("account_id"),
        catalog_version: row.get("catalog_version"),
        tool: row.get("tool"),
        model: row.get("model"),
        required_entitlement: row.get("required_entitlement"),
        total: Credits::from_decimal(row.get::<_, Decimal>("total")),
        line_items: serde_json::from_value(row.get("line_items")).unwrap_or_default(),
        expires_at: row.get("expires_at"),
        created_at: row.get("created_at"),
    }))
}

/// Deletes up to `batch` quotes that expired before `before`.
pub async fn prune_quotes(
    client: &impl GenericClient,
    before: DateTime<Utc>,
    batch: i64,
) -> Result<u64, StoreError> {
    Ok(client
        .execute(
            "DELETE FROM quotes WHERE quote_id IN (SELECT quote_id FROM quotes WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            &[&before, &batch],
        )
        .await?)
}
