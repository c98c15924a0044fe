//! Recently made holds, remembered by the server that made them. A hold's account and pricing
//! are immutable once made, so a remembered copy is always right, and the Settle that usually
//! follows skips a database read.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use crate::ids::{HoldId, TenantId};
use crate::store::holds::HoldRef;

/// Entries per map; past it the map starts over (bounded memory).
const MAX_ENTRIES: usize = 65_536;

#[derive(Debug)]
struct Bounded<K, V>(Mutex<HashMap<K, V>>);

impl<K: Eq + Hash, V: Clone> Default for Bounded<K, V> {
    fn default() -> Self {
        Bounded(Mutex::new(HashMap::new()))
    }
}

impl<K: Eq + Hash, V: Clone> Bounded<K, V> {
    fn get(&self, key: &K) -> Option<V> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn insert(&self, key: K, value: V) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, value);
    }
}

/// Holds this server made, by tenant and id.
#[derive(Debug, Default)]
pub struct Recent {
    holds: Bounded<(TenantId, HoldId), HoldRef>,
}

impl Recent {
    /// A hold this server made.
    pub fn hold(&self, tenant_id: TenantId, hold_id: HoldId) -> Option<HoldRef> {
        self.holds.get(&(tenant_id, hold_id))
    }

    /// Remembers a hold.
    pub fn remember_hold(&self, tenant_id: TenantId, hold_id: HoldId, hold: HoldRef) {
        self.holds.insert((tenant_id, hold_id), hold);
    }
}
