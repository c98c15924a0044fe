//! Tenants and API keys.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::StoreError;
use super::redacted::Redacted;
use crate::auth::{Scope, ScopeSet};
use crate::ids::TenantId;

/// A stored tenant.
#[derive(Debug, Clone)]
pub struct TenantRow {
    /// The tenant's id.
    pub tenant_id: TenantId,
    /// Its unique name.
    pub name: String,
}

/// What an API key grants, as stored.
#[derive(Debug, Clone, Copy)]
pub struct KeyGrant {
    /// The key's id.
    pub key_id: Uuid,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// Its scopes.
    pub scopes: ScopeSet,
}

/// Inserts a tenant; a taken name is a [`StoreError::UniqueViolation`].
pub async fn insert_tenant(
    client: &impl GenericClient,
    tenant_id: TenantId,
    name: &str,
) -> Result<TenantRow, StoreError> {
    client
        .execute(
            "INSERT INTO tenants (tenant_id, name) VALUES ($1, $2)",
            &[&tenant_id, &name],
        )
        .await?;
    Ok(TenantRow {
        tenant_id,
        name: name.to_owned(),
    })
}

/// The tenant with this name, if any.
pub async fn find_tenant_by_name(
    client: &impl GenericClient,
    name: &str,
) -> Result<Option<TenantRow>, StoreError> {
    let row = client
        .query_opt(
            "SELECT tenant_id, name FROM tenants WHERE name = $1",
            &[&name],
        )
        .await?;
    Ok(row.map(|row| TenantRow {
        tenant_id: row.get(0),
        name: row.get(1),
    }))
}

/// Stores a key's digest and scopes.
pub async fn insert_key(
    client: &impl GenericClient,
    key_id: Uuid,
    tenant_id: TenantId,
    hash: &[u8; 32],
    display_prefix: &str,
    scopes: ScopeSet,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO api_keys (key_id, tenant_id, key_hash, key_prefix, scopes)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &key_id,
                &tenant_id,
                &Redacted(hash.as_slice()),
                &display_prefix,
                &scopes.names(),
            ],
        )
        .await?;
    Ok(())
}

/// The live (not revoked) key with this digest, if any, marked as used now (servers look a
/// key up once per cache period, so this writes rarely).
pub async fn find_key_by_hash(
    client: &impl GenericClient,
    hash: &[u8; 32],
) -> Result<Option<KeyGrant>, StoreError> {
    let row = client
        .query_opt(
            "UPDATE api_keys SET last_used_at = now()
             WHERE key_hash = $1 AND revoked_at IS NULL
             RETURNING key_id, tenant_id, scopes",
            &[&Redacted(hash.as_slice())],
        )
        .await?;
    Ok(row.map(|row| {
        let names: Vec<String> = row.get(2);
        KeyGrant {
            key_id: row.get(0),
            tenant_id: row.get(1),
            // A name this binary does not know grants nothing rather than failing the call.
            scopes: names
                .iter()
                .filter_map(|name| name.parse::<Scope>().ok())
                .collect(),
        }
    }))
}

/// One key as listed: never its secret or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// The key's id.
    pub key_id: Uuid,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// Its scopes' names.
    pub scopes: Vec<String>,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When a server last looked it up.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A tenant's keys, oldest first.
pub async fn list_keys(
    client: &impl GenericClient,
    tenant_id: TenantId,
) -> Result<Vec<KeyRow>, StoreError> {
    let rows = client
        .query(
            "SELECT key_id, key_prefix, scopes, created_at, last_used_at, revoked_at
             FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, key_id",
            &[&tenant_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| KeyRow {
            key_id: row.get(0),
            prefix: row.get(1),
            scopes: row.get(2),
            created_at: row.get(3),
            last_used_at: row.get(4),
            revoked_at: row.get(5),
        })
        .collect())
}

/// Revokes a live key; the tenant it belonged to, or `None` when no live key has this id.
pub async fn revoke_key(
    client: &impl GenericClient,
    key_id: Uuid,
) -> Result<Option<TenantId>, StoreError> {
    let row = client
        .query_opt(
            "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL
             RETURNING tenant_id",
            &[&key_id],
        )
        .await?;
    Ok(row.map(|row| row.get(0)))
}
