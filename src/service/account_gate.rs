//! One locked transaction per account at a time from this server: the others wait here, in
//! memory, instead of each holding a pooled connection while queueing on the same Postgres row
//! lock. The row lock still serializes replicas; this only keeps one server's waiters cheap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use uuid::Uuid;

/// Accounts with waiters or a running transaction, at most, before idle entries are dropped.
const PRUNE_AT: usize = 4_096;

/// Per-account turn-taking.
#[derive(Debug, Default)]
pub struct AccountGate {
    turns: Mutex<HashMap<Uuid, Arc<AsyncMutex<()>>>>,
}

impl AccountGate {
    /// Waits for this server's turn on `account_id`; the turn ends when the guard drops.
    pub async fn enter(&self, account_id: Uuid) -> OwnedMutexGuard<()> {
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
            if turns.len() >= PRUNE_AT {
                // Only entries nobody holds or waits for (the map's own reference) go.
                turns.retain(|_, turn| Arc::strong_count(turn) > 1);
            }
            Arc::clone(turns.entry(account_id).or_default())
        };
        turn.lock_owned().await
    }
}
