//! Tenant and key management, used by the CLI and the demo bootstrap.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::ServiceError;
use crate::auth::{NewApiKey, ScopeSet};
use crate::ids::TenantId;
use crate::ledger::Reason;
use crate::store::StoreError;
use crate::store::tenants::{self, TenantRow};

/// Longest tenant name.
const MAX_TENANT_NAME_LENGTH: usize = 63;

/// A key just created: the secret is shown once and never stored.
#[derive(Debug)]
pub struct CreatedKey {
    /// The key's id.
    pub key_id: Uuid,
    /// The secret, for the caller to keep.
    pub secret: String,
}

fn validate_name(name: &str) -> Result<(), ServiceError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_TENANT_NAME_LENGTH
        && name.starts_with(|first: char| first.is_ascii_lowercase() || first.is_ascii_digit())
        && name.chars().all(|character| {
            character.is_ascii_lowercase()
                || character.is_ascii_digit()
                || character == '-'
                || character == '_'
        });
    if valid {
        Ok(())
    } else {
        Err(ServiceError::InvalidArgument {
            field: "name",
            message: format!(
                "{name:?} is not a valid tenant name: expected 1-{MAX_TENANT_NAME_LENGTH} lowercase letters, digits, '-' or '_', starting with a letter or digit"
            ),
        })
    }
}

/// Creates a tenant, starting with the default catalog as its version 1.
pub async fn create_tenant(
    client: &impl GenericClient,
    name: &str,
) -> Result<TenantRow, ServiceError> {
    validate_name(name)?;
    let tenant = match tenants::insert_tenant(client, TenantId::now_v7(), name).await {
        Err(StoreError::UniqueViolation { .. }) => {
            return Err(ServiceError::AlreadyExists {
                what: format!("tenant {name:?}"),
            });
        }
        other => other?,
    };
    let default = super::catalog::default_catalog()?;
    crate::store::catalog::insert_default(client, tenant.tenant_id, &default, chrono::Utc::now())
        .await?;
    Ok(tenant)
}

/// The tenant named `name`.
pub async fn find_tenant(
    client: &impl GenericClient,
    name: &str,
) -> Result<TenantRow, ServiceError> {
    tenants::find_tenant_by_name(client, name)
        .await?
        .ok_or_else(|| ServiceError::NotFound {
            reason: Reason::TenantNotFound,
            what: format!("tenant {name:?}"),
        })
}

/// Creates a key for `tenant_id` with `scopes`.
pub async fn create_key(
    client: &impl GenericClient,
    tenant_id: TenantId,
    scopes: ScopeSet,
) -> Result<CreatedKey, ServiceError> {
    if scopes.is_empty() {
        return Err(ServiceError::InvalidArgument {
            field: "scopes",
            message: "at least one scope is required: worker, billing, reader or admin".to_owned(),
        });
    }
    let key = NewApiKey::generate();
    let key_id = Uuid::now_v7();
    tenants::insert_key(
        client,
        key_id,
        tenant_id,
        &key.hash,
        &key.display_prefix,
        scopes,
    )
    .await?;
    Ok(CreatedKey {
        key_id,
        secret: key.secret,
    })
}
