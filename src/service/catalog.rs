//! Catalogs: the default one, versions cached in memory (they are immutable), the active
//! version per tenant (re-read at most once a second), and publishing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::access::Caller;
use super::idempotency::Fingerprint;
use super::{Context, ServiceError};
use crate::ids::TenantId;
use crate::ledger::Reason;
use crate::pricing::{Catalog, CatalogError, PricingError};
use crate::store::idempotency::StoredAnswer;
use crate::store::{StoreError, catalog as store, idempotency};

/// The catalog a tenant starts with.
const DEFAULT_CATALOG: &str = include_str!("../../catalog/default.toml");
/// How long the active version of a tenant is trusted before it is read again.
const ACTIVE_TTL: Duration = Duration::from_secs(1);
/// Most catalog versions kept in memory.
const MAX_CACHED_VERSIONS: usize = 256;

/// The default catalog shipped with creditgate.
pub fn default_catalog() -> Result<Catalog, ServiceError> {
    Catalog::from_toml(DEFAULT_CATALOG).map_err(|error| {
        ServiceError::Internal(StoreError::Other(format!("default catalog: {error}")))
    })
}

/// Catalog versions in memory.
#[derive(Debug, Default)]
pub struct CatalogCache {
    versions: Mutex<HashMap<(TenantId, i64), Arc<Catalog>>>,
    active: Mutex<HashMap<TenantId, (i64, Instant)>>,
}

impl CatalogCache {
    fn cached_version(&self, tenant_id: TenantId, version: i64) -> Option<Arc<Catalog>> {
        self.versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(tenant_id, version))
            .cloned()
    }

    fn remember(&self, tenant_id: TenantId, catalog: Arc<Catalog>) {
        let mut versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        if versions.len() >= MAX_CACHED_VERSIONS {
            versions.clear();
        }
        versions.insert((tenant_id, catalog.version), catalog);
    }

    fn cached_active(&self, tenant_id: TenantId) -> Option<i64> {
        let active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        active
            .get(&tenant_id)
            .filter(|(_, read_at)| read_at.elapsed() < ACTIVE_TTL)
            .map(|(version, _)| *version)
    }

    fn remember_active(&self, tenant_id: TenantId, version: i64) {
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        if active.len() >= MAX_CACHED_VERSIONS {
            active.clear();
        }
        active.insert(tenant_id, (version, Instant::now()));
    }

    fn forget_active(&self, tenant_id: TenantId) {
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&tenant_id);
    }
}

fn version_not_found(version: i64) -> ServiceError {
    ServiceError::NotFound {
        reason: Reason::CatalogVersionNotFound,
        what: format!("catalog version {version}"),
    }
}

/// Version `version` of the tenant's catalog.
pub async fn version(
    context: &Context,
    tenant_id: TenantId,
    version: i64,
) -> Result<Arc<Catalog>, ServiceError> {
    if let Some(catalog) = context.catalogs.cached_version(tenant_id, version) {
        return Ok(catalog);
    }
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let catalog = Arc::new(
        store::load_version(&client, tenant_id, version)
            .await?
            .ok_or_else(|| version_not_found(version))?,
    );
    context.catalogs.remember(tenant_id, Arc::clone(&catalog));
    Ok(catalog)
}

/// The tenant's active catalog; a tenant without one starts with the default catalog.
pub async fn active(context: &Context, tenant_id: TenantId) -> Result<Arc<Catalog>, ServiceError> {
    if let Some(active) = context.catalogs.cached_active(tenant_id) {
        return version(context, tenant_id, active).await;
    }
    let now = context.clock.now();
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let found = match store::active_version(&client, tenant_id, now).await? {
        Some(found) => found,
        None => {
            store::insert_default(&client, tenant_id, &default_catalog()?, now).await?;
            store::active_version(&client, tenant_id, now)
                .await?
                .flatten()
        }
    };
    drop(client);
    let active = found.ok_or_else(|| ServiceError::Declined {
        reason: Reason::NoActiveCatalog,
        message: "no catalog version is in effect yet".to_owned(),
        metadata: Vec::new(),
    })?;
    context.catalogs.remember_active(tenant_id, active);
    version(context, tenant_id, active).await
}

/// Publishes a new version, in effect from `effective_at` (now when `None`).
pub async fn publish(
    context: &Context,
    caller: Caller,
    catalog: Catalog,
    effective_at: Option<DateTime<Utc>>,
    fingerprint: Fingerprint,
    encode: impl FnOnce(&Catalog) -> Vec<u8>,
) -> Result<Vec<u8>, ServiceError> {
    catalog.validate().map_err(|error| match error {
        CatalogError::BadRate { .. } => ServiceError::InvalidAmount {
            field: "catalog",
            message: error.to_string(),
        },
        CatalogError::UnknownModel { model, .. } => PricingError::UnknownModel(model).into(),
        CatalogError::Invalid(message) => ServiceError::InvalidArgument {
            field: "catalog",
            message,
        },
    })?;
    let client = context.pool.get().await.map_err(StoreError::from)?;
    if let Some(stored) = idempotency::find(&client, caller.tenant_id, &fingerprint.key).await? {
        return fingerprint.replay(&stored);
    }
    drop(client);
    let now = context.clock.now();
    let effective_at = effective_at.unwrap_or(now).max(now);
    let mut bytes = Vec::new();
    let document = catalog.clone();
    let mut published = catalog;
    let record = |version: i64| {
        published.version = version;
        published.effective_at = Some(effective_at);
        published.created_at = Some(now);
        bytes = encode(&published);
        fingerprint.record(
            caller.tenant_id,
            None,
            StoredAnswer::Response(bytes.clone()),
        )
    };
    match store::publish(
        &context.pool,
        caller.tenant_id,
        &document,
        effective_at,
        now,
        record,
    )
    .await
    {
        Ok(_) => {
            context.catalogs.forget_active(caller.tenant_id);
            Ok(bytes)
        }
        Err(StoreError::UniqueViolation { .. }) => {
            super::locked::replay_after_conflict(context, caller.tenant_id, &fingerprint).await
        }
        Err(error) => Err(error.into()),
    }
}
