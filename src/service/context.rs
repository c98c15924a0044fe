//! What every money use case needs: the pool, the clock and the limits.

use std::sync::Arc;

use deadpool_postgres::Pool;

use super::catalog::CatalogCache;
use super::locked::Combiner;
use super::page_token::PageKey;
use super::recent::Recent;
use crate::clock::Clock;
use crate::config::MoneyLimits;
use crate::pricing::quote_token::QuoteKey;

/// Shared by the use cases of one server.
#[derive(Debug, Clone)]
pub struct Context {
    /// Database connections.
    pub pool: Pool,
    /// The server clock.
    pub clock: Arc<dyn Clock>,
    /// Limits of the money path.
    pub limits: MoneyLimits,
    /// Catalog versions in memory.
    pub catalogs: Arc<CatalogCache>,
    /// The key quotes are signed with (read from the database at first use).
    pub quote_key: Arc<tokio::sync::OnceCell<QuoteKey>>,
    /// Batches the operations of each account.
    pub combiner: Arc<Combiner>,
    /// Holds this server made.
    pub recent: Arc<Recent>,
    /// The key page tokens are signed with (read from the database at first use).
    pub page_key: Arc<tokio::sync::OnceCell<PageKey>>,
    /// Permits of the usage exports streaming at once.
    pub exports: Arc<tokio::sync::Semaphore>,
    /// The event reader and its streams.
    pub events: Arc<super::events::EventHub>,
    /// Where the event reader listens for notifications, and how to connect there; `None`: it
    /// polls only.
    pub listen: Option<(tokio_postgres::Config, crate::store::tls::PgConnector)>,
    /// Whether the database has every migration this server knows, so that no older server is
    /// connected (a contract migration waits for them, and they refuse a newer schema). Then
    /// Authorize, ExtendHold, Settle and Release answers are stored by reference to their hold
    /// (servers before 0022 could not read them), and a new hold's Authorize key is written in
    /// `authorize_keys` alone (servers before 0026 read it from the hold) and its quote token
    /// sealed (servers before 0027 read it whole), and the locked path's idempotency records
    /// are lean (servers before 0029 read the request's hash). Until then (and without
    /// `serve`) answers are stored whole, keys in the hold too, tokens whole and hashes kept.
    pub schema_complete: Arc<std::sync::atomic::AtomicBool>,
}

impl Context {
    /// A context with an empty catalog cache.
    pub fn new(pool: Pool, clock: Arc<dyn Clock>, limits: MoneyLimits) -> Self {
        Context {
            pool,
            clock,
            limits,
            catalogs: Arc::default(),
            quote_key: Arc::default(),
            combiner: Arc::default(),
            recent: Arc::default(),
            page_key: Arc::default(),
            exports: Arc::new(tokio::sync::Semaphore::new(
                super::usage::MAX_CONCURRENT_EXPORTS,
            )),
            events: Arc::default(),
            listen: None,
            schema_complete: Arc::default(),
        }
    }
}

impl Context {
    /// The key quotes are signed with, shared by every replica through the database.
    pub async fn quote_key(&self) -> Result<&QuoteKey, super::ServiceError> {
        self.quote_key
            .get_or_try_init(|| async {
                let client = self
                    .pool
                    .get()
                    .await
                    .map_err(crate::store::StoreError::from)?;
                let secret = crate::store::secrets::shared_secret(
                    &client,
                    crate::store::secrets::QUOTE_KEY,
                    rand::random(),
                )
                .await?;
                Ok(QuoteKey::new(secret))
            })
            .await
    }
}
