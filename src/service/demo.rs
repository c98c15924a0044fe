//! The demo tenant of private-database mode: on first start, tenant `demo` and an all-scopes
//! key, written to `<data dir>/demo-api-key` so later starts can show it again.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use deadpool_postgres::Pool;

use super::{ServiceError, tenants};
use crate::auth::{ScopeSet, hash_key};
use crate::store::{StoreError, tenants as tenant_rows};

/// The demo tenant's name.
pub const DEMO_TENANT: &str = "demo";
/// File in the data folder holding the demo key.
pub const DEMO_KEY_FILE: &str = "demo-api-key";

/// The demo key and where it is kept.
#[derive(Debug)]
pub struct DemoKey {
    /// The secret.
    pub secret: String,
    /// The file holding it.
    pub path: PathBuf,
    /// Whether it was created by this start.
    pub created: bool,
}

/// Returns the demo key, creating the tenant and key when the file holds no working key.
pub async fn ensure_demo_key(pool: &Pool, data_dir: &Path) -> Result<DemoKey, ServiceError> {
    let path = data_dir.join(DEMO_KEY_FILE);
    let client = pool.get().await.map_err(StoreError::from)?;
    if let Ok(secret) = std::fs::read_to_string(&path) {
        let secret = secret.trim().to_owned();
        if tenant_rows::find_key_by_hash(&client, &hash_key(&secret))
            .await?
            .is_some()
        {
            return Ok(DemoKey {
                secret,
                path,
                created: false,
            });
        }
    }
    let tenant = match tenant_rows::find_tenant_by_name(&client, DEMO_TENANT).await? {
        Some(tenant) => tenant,
        None => tenants::create_tenant(&client, DEMO_TENANT).await?,
    };
    let key = tenants::create_key(&client, tenant.tenant_id, ScopeSet::all()).await?;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| writeln!(file, "{}", key.secret));
    if let Err(error) = written {
        tracing::warn!(path = %path.display(), %error, "could not save the demo key");
    }
    Ok(DemoKey {
        secret: key.secret,
        path,
        created: true,
    })
}
