//! Who is calling: API key → tenant and scopes, with a short-lived cache so the hot path does
//! not pay a database round trip per request. A revoked key stops working within the TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use uuid::Uuid;

use super::ServiceError;
use crate::auth::{ScopeSet, hash_key};
use crate::store::tenants;

/// Most keys remembered; past this the cache starts over (bounded memory).
const MAX_CACHED_KEYS: usize = 10_000;

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The tenant every query of this call is scoped to.
    pub tenant_id: Uuid,
    /// The key used, for audit.
    pub key_id: Uuid,
    /// What the key may do.
    pub scopes: ScopeSet,
}

/// Checks API keys against the store.
#[derive(Debug)]
pub struct Authenticator {
    pool: Pool,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], (Caller, Instant)>>,
}

impl Authenticator {
    /// A checker that remembers valid keys for `ttl`.
    pub fn new(pool: Pool, ttl: Duration) -> Self {
        Authenticator {
            pool,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The caller holding `key`, if it may make a call accepting `accepted` scopes.
    pub async fn authenticate(
        &self,
        key: &str,
        accepted: ScopeSet,
    ) -> Result<Caller, ServiceError> {
        let caller = self.lookup(key).await?;
        if caller.scopes.permits(accepted) {
            Ok(caller)
        } else {
            Err(ServiceError::ScopeMissing { required: accepted })
        }
    }

    async fn lookup(&self, key: &str) -> Result<Caller, ServiceError> {
        let hash = hash_key(key);
        if let Some(caller) = self.cached(&hash) {
            return Ok(caller);
        }
        let client = self
            .pool
            .get()
            .await
            .map_err(crate::store::StoreError::from)?;
        let grant = tenants::find_key_by_hash(&client, &hash)
            .await?
            .ok_or(ServiceError::UnknownKey)?;
        let caller = Caller {
            tenant_id: grant.tenant_id,
            key_id: grant.key_id,
            scopes: grant.scopes,
        };
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= MAX_CACHED_KEYS {
            cache.clear();
        }
        cache.insert(hash, (caller, Instant::now()));
        Ok(caller)
    }

    fn cached(&self, hash: &[u8; 32]) -> Option<Caller> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(hash)
            .filter(|(_, cached_at)| cached_at.elapsed() < self.ttl)
            .map(|(caller, _)| *caller)
    }
}
