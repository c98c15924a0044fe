//! Who is calling: API key → tenant and scopes. Valid keys are remembered for the configured
//! TTL (a revoked key stops working within it) and unknown keys for a few seconds; concurrent
//! checks of one key share one query, and only a few queries run at once, so a flood of bad
//! keys costs memory lookups instead of the money path's database connections.

mod expiring;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{OnceCell, Semaphore};
use uuid::Uuid;

use self::expiring::{Digest, ExpiringMap, Found};
use super::ServiceError;
use crate::auth::{ScopeSet, hash_key};
use crate::ids::TenantId;
use crate::store::{StoreError, tenants};

/// Most valid keys remembered (about 100 bytes each).
const MAX_CACHED_KEYS: usize = 10_000;

/// Most unknown keys remembered; a flood of distinct bad keys evicts its own oldest entries.
const MAX_CACHED_UNKNOWN_KEYS: usize = 10_000;

/// How long an unknown key stays rejected without a query. Short, because a key can be
/// presented a moment before the transaction creating it commits (a provisioning script racing
/// its own workers); longer would lock such a key out for as long. A few seconds already turns
/// a flood of one bad key into one query per this period.
const UNKNOWN_KEY_TTL: Duration = Duration::from_secs(3);

/// Concurrent lookups of keys not known to be valid, and, separately, of valid keys whose
/// cache entry expired. Each lookup holds a pooled connection for one indexed query, so two
/// keep up with thousands of new keys a second while the rest of the pool (32 by default)
/// stays with the money path. The second lane exists so that the periodic re-check of
/// workers' keys never queues behind a flood of distinct bad keys.
pub const MAX_KEY_LOOKUPS_PER_LANE: usize = 2;

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The tenant every query of this call is scoped to.
    pub tenant_id: TenantId,
    /// The key used, for audit.
    pub key_id: Uuid,
    /// What the key may do.
    pub scopes: ScopeSet,
}

/// What one lookup found; shared by every caller that waited for it.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Valid(Caller),
    Unknown,
    /// The database failed; the cause is logged once, by the lookup.
    Failed,
}

/// One lookup in progress, awaited by every concurrent check of the same key.
type Flight = Arc<OnceCell<Outcome>>;

/// What a check needs to do after looking at the caches.
enum Next {
    Done(Outcome),
    Await(Flight, Lane),
}

/// Which bound a lookup counts against.
#[derive(Debug, Clone, Copy)]
enum Lane {
    /// The key was valid when last checked.
    Known,
    /// Any other key, including every bad one.
    New,
}

#[derive(Debug)]
struct Memory {
    valid: ExpiringMap<Caller>,
    unknown: ExpiringMap<()>,
    in_flight: HashMap<Digest, Flight>,
}

impl Memory {
    /// The answer from the caches, or the lookup to wait for (joined or started).
    fn next(&mut self, digest: &Digest, now: Instant) -> Next {
        let lane = match self.valid.get(digest, now) {
            Found::Fresh(caller) => return Next::Done(Outcome::Valid(caller)),
            Found::Expired => Lane::Known,
            Found::Absent => Lane::New,
        };
        if let Found::Fresh(()) = self.unknown.get(digest, now) {
            return Next::Done(Outcome::Unknown);
        }
        let flight = self.in_flight.entry(*digest).or_default();
        Next::Await(Arc::clone(flight), lane)
    }

    /// Records a finished lookup once: the first waiter to get here removes the flight, so
    /// later checks read the caches instead.
    fn finish(&mut self, digest: &Digest, flight: &Flight, outcome: Outcome, now: Instant) {
        let current = self
            .in_flight
            .get(digest)
            .is_some_and(|entry| Arc::ptr_eq(entry, flight));
        if !current {
            return;
        }
        self.in_flight.remove(digest);
        match outcome {
            Outcome::Valid(caller) => self.valid.insert(*digest, caller, now),
            Outcome::Unknown => self.unknown.insert(*digest, (), now),
            Outcome::Failed => {}
        }
    }

    /// One check stops waiting for `flight`, done or cancelled. The last one to leave a flight
    /// nobody finished removes it, so checks cancelled while queued (a client gone, the request
    /// timeout) leave nothing behind. Flights are cloned and dropped only under the lock, so
    /// the count is exact.
    fn leave(&mut self, digest: &Digest, flight: Flight) {
        drop(flight);
        if self
            .in_flight
            .get(digest)
            .is_some_and(|entry| Arc::strong_count(entry) == 1)
        {
            self.in_flight.remove(digest);
        }
    }
}

/// A check waiting for a lookup; leaves the flight when dropped, also mid-await.
struct Waiting<'a> {
    authenticator: &'a Authenticator,
    digest: Digest,
    /// Always `Some` until dropped.
    flight: Option<Flight>,
}

impl Waiting<'_> {
    async fn outcome(&self, lane: Lane) -> Outcome {
        let Some(flight) = &self.flight else {
            return Outcome::Failed;
        };
        let authenticator = self.authenticator;
        let outcome = *flight
            .get_or_init(|| authenticator.query(&self.digest, lane))
            .await;
        authenticator
            .memory()
            .finish(&self.digest, flight, outcome, Instant::now());
        outcome
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(flight) = self.flight.take() {
            self.authenticator.memory().leave(&self.digest, flight);
        }
    }
}

/// Checks API keys against the store.
#[derive(Debug)]
pub struct Authenticator {
    pool: Pool,
    memory: Mutex<Memory>,
    known_lookups: Semaphore,
    new_lookups: Semaphore,
}

impl Authenticator {
    /// A checker that remembers valid keys for `ttl` and unknown ones for a few seconds (never
    /// longer than `ttl`, so a zero TTL caches nothing).
    pub fn new(pool: Pool, ttl: Duration) -> Self {
        Authenticator {
            pool,
            memory: Mutex::new(Memory {
                valid: ExpiringMap::new(MAX_CACHED_KEYS, ttl),
                unknown: ExpiringMap::new(MAX_CACHED_UNKNOWN_KEYS, ttl.min(UNKNOWN_KEY_TTL)),
                in_flight: HashMap::new(),
            }),
            known_lookups: Semaphore::new(MAX_KEY_LOOKUPS_PER_LANE),
            new_lookups: Semaphore::new(MAX_KEY_LOOKUPS_PER_LANE),
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
        let digest = hash_key(key);
        // A statement of its own, so the guard is dropped before any await.
        let next = self.memory().next(&digest, Instant::now());
        let outcome = match next {
            Next::Done(outcome) => outcome,
            Next::Await(flight, lane) => {
                Waiting {
                    authenticator: self,
                    digest,
                    flight: Some(flight),
                }
                .outcome(lane)
                .await
            }
        };
        match outcome {
            Outcome::Valid(caller) => Ok(caller),
            Outcome::Unknown => Err(ServiceError::UnknownKey),
            Outcome::Failed => Err(ServiceError::Unavailable(StoreError::Unavailable(
                "api key lookup failed".to_owned(),
            ))),
        }
    }

    /// Runs the one query for `digest`, once a permit of its lane is free: waiting holds no
    /// connection.
    async fn query(&self, digest: &Digest, lane: Lane) -> Outcome {
        let lane = match lane {
            Lane::Known => &self.known_lookups,
            Lane::New => &self.new_lookups,
        };
        // The semaphores are never closed.
        let Ok(_permit) = lane.acquire().await else {
            return Outcome::Failed;
        };
        let found = async {
            let client = self.pool.get().await.map_err(StoreError::from)?;
            tenants::find_key_by_hash(&client, digest).await
        }
        .await;
        match found {
            Ok(Some(grant)) => Outcome::Valid(Caller {
                tenant_id: grant.tenant_id,
                key_id: grant.key_id,
                scopes: grant.scopes,
            }),
            Ok(None) => Outcome::Unknown,
            Err(error) => {
                tracing::warn!(%error, "api key lookup failed");
                Outcome::Failed
            }
        }
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        // Every critical section is a few map operations that cannot leave the maps torn.
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            tenant_id: TenantId::from_uuid(Uuid::nil()),
            key_id: Uuid::nil(),
            scopes: ScopeSet::all(),
        }
    }

    fn memory(ttl: Duration) -> Memory {
        Memory {
            valid: ExpiringMap::new(4, ttl),
            unknown: ExpiringMap::new(4, ttl.min(UNKNOWN_KEY_TTL)),
            in_flight: HashMap::new(),
        }
    }

    fn flight_of(next: Next) -> (Flight, Lane) {
        match next {
            Next::Await(flight, lane) => (flight, lane),
            Next::Done(outcome) => panic!("expected a lookup, the caches answered {outcome:?}"),
        }
    }

    #[test]
    fn concurrent_checks_of_one_key_join_one_lookup() {
        let now = Instant::now();
        let mut memory = memory(Duration::from_secs(30));
        let (first, _) = flight_of(memory.next(&[1; 32], now));
        let (second, _) = flight_of(memory.next(&[1; 32], now));
        let (other, _) = flight_of(memory.next(&[2; 32], now));
        assert!(Arc::ptr_eq(&first, &second));
        assert!(!Arc::ptr_eq(&first, &other));
        memory.finish(&[1; 32], &first, Outcome::Unknown, now);
        // A waiter finishing later must not record again or drop a newer flight.
        memory.finish(&[1; 32], &second, Outcome::Unknown, now);
        assert_eq!(memory.in_flight.len(), 1);
    }

    #[test]
    fn an_unknown_key_is_refused_from_memory_for_a_few_seconds_only() {
        let now = Instant::now();
        let mut memory = memory(Duration::from_secs(30));
        let (flight, _) = flight_of(memory.next(&[1; 32], now));
        memory.finish(&[1; 32], &flight, Outcome::Unknown, now);
        let soon = now + UNKNOWN_KEY_TTL - Duration::from_millis(1);
        assert!(matches!(
            memory.next(&[1; 32], soon),
            Next::Done(Outcome::Unknown)
        ));
        // Then it is looked up again, so a key created meanwhile starts working.
        let later = now + UNKNOWN_KEY_TTL;
        assert!(matches!(
            memory.next(&[1; 32], later),
            Next::Await(_, Lane::New)
        ));
    }

    #[test]
    fn a_valid_key_is_remembered_for_the_ttl_then_checked_in_its_own_lane() {
        let now = Instant::now();
        let ttl = Duration::from_secs(30);
        let mut memory = memory(ttl);
        let (flight, lane) = flight_of(memory.next(&[1; 32], now));
        assert!(matches!(lane, Lane::New));
        memory.finish(&[1; 32], &flight, Outcome::Valid(caller()), now);
        assert!(matches!(
            memory.next(&[1; 32], now + ttl - Duration::from_millis(1)),
            Next::Done(Outcome::Valid(_))
        ));
        assert!(matches!(
            memory.next(&[1; 32], now + ttl),
            Next::Await(_, Lane::Known)
        ));
    }

    #[test]
    fn the_last_check_to_leave_an_unfinished_lookup_removes_it() {
        let now = Instant::now();
        let mut memory = memory(Duration::from_secs(30));
        let (first, _) = flight_of(memory.next(&[1; 32], now));
        let (second, _) = flight_of(memory.next(&[1; 32], now));
        memory.leave(&[1; 32], first);
        assert_eq!(memory.in_flight.len(), 1, "one check still waits");
        memory.leave(&[1; 32], second);
        assert!(memory.in_flight.is_empty());
    }

    #[test]
    fn a_failed_lookup_is_not_remembered() {
        let now = Instant::now();
        let mut memory = memory(Duration::from_secs(30));
        let (flight, _) = flight_of(memory.next(&[1; 32], now));
        memory.finish(&[1; 32], &flight, Outcome::Failed, now);
        let (retry, _) = flight_of(memory.next(&[1; 32], now));
        assert!(!Arc::ptr_eq(&flight, &retry));
    }

    #[test]
    fn a_zero_ttl_caches_no_answer() {
        let now = Instant::now();
        let mut memory = memory(Duration::ZERO);
        let (flight, _) = flight_of(memory.next(&[1; 32], now));
        memory.finish(&[1; 32], &flight, Outcome::Unknown, now);
        assert!(matches!(memory.next(&[1; 32], now), Next::Await(..)));
    }
}
