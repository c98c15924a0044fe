//! What every money use case needs: the pool, the clock and the limits.

use std::sync::Arc;

use deadpool_postgres::Pool;

use super::catalog::CatalogCache;
use super::locked::Combiner;
use super::quote_writer::QuoteWriter;
use super::recent::Recent;
use crate::clock::Clock;
use crate::config::MoneyLimits;

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
    /// Writes quotes in batches.
    pub quotes: Arc<QuoteWriter>,
    /// Batches the operations of each account.
    pub combiner: Arc<Combiner>,
    /// Holds and quotes this server made.
    pub recent: Arc<Recent>,
}

impl Context {
    /// A context with an empty catalog cache.
    pub fn new(pool: Pool, clock: Arc<dyn Clock>, limits: MoneyLimits) -> Self {
        Context {
            pool,
            clock,
            limits,
            catalogs: Arc::default(),
            quotes: Arc::default(),
            combiner: Arc::default(),
            recent: Arc::default(),
        }
    }
}
