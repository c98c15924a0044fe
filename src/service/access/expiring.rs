//! A bounded map from key digests to values that expire a fixed time after insertion. Pure: the
//! caller passes the current instant, so expiry is tested without waiting.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// SHA-256 digest of an API key.
pub type Digest = [u8; 32];

/// What the map knows about a digest at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found<V> {
    /// Inserted less than the TTL ago.
    Fresh(V),
    /// Inserted, but the TTL has passed: the value must be checked again.
    Expired,
    /// Never inserted, or evicted.
    Absent,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    expires_at: Instant,
    /// Matches the entry's place in `ExpiringMap::order`; older places of the digest are stale.
    sequence: u64,
}

/// At most `capacity` entries; a full map evicts the oldest insertion first. With one TTL for
/// every entry the oldest insertion is also the first to expire, so eviction costs O(1)
/// instead of scanning for the least useful entry.
#[derive(Debug)]
pub struct ExpiringMap<V> {
    capacity: usize,
    ttl: Duration,
    entries: HashMap<Digest, Entry<V>>,
    /// Insertion order. A digest inserted again leaves its older place behind; such stale
    /// places count against the capacity, so `entries.len() <= order.len() <= capacity`.
    order: VecDeque<(Digest, u64)>,
    next_sequence: u64,
}

impl<V: Copy> ExpiringMap<V> {
    /// An empty map holding at most `capacity` (at least 1) entries for `ttl` each.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        ExpiringMap {
            capacity: capacity.max(1),
            ttl,
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_sequence: 0,
        }
    }

    /// What is known about `digest` at `now`.
    pub fn get(&self, digest: &Digest, now: Instant) -> Found<V> {
        match self.entries.get(digest) {
            Some(entry) if now < entry.expires_at => Found::Fresh(entry.value),
            Some(_) => Found::Expired,
            None => Found::Absent,
        }
    }

    /// Remembers `value` for `digest` from `now` on, evicting the oldest entries past capacity.
    pub fn insert(&mut self, digest: Digest, value: V, now: Instant) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.entries.insert(
            digest,
            Entry {
                value,
                expires_at: now + self.ttl,
                sequence,
            },
        );
        self.order.push_back((digest, sequence));
        while self.order.len() > self.capacity {
            let Some((oldest, oldest_sequence)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&oldest)
                .is_some_and(|entry| entry.sequence == oldest_sequence)
            {
                self.entries.remove(&oldest);
            }
        }
        debug_assert!(self.entries.len() <= self.order.len());
        debug_assert!(self.order.len() <= self.capacity);
    }

    /// Entries held, fresh or expired.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: u8) -> Digest {
        [byte; 32]
    }

    #[test]
    fn entries_are_fresh_until_the_ttl_then_expired() {
        let start = Instant::now();
        let mut map = ExpiringMap::new(10, Duration::from_secs(5));
        assert_eq!(map.get(&digest(1), start), Found::Absent);
        map.insert(digest(1), 'a', start);
        assert_eq!(map.get(&digest(1), start), Found::Fresh('a'));
        let almost = start + Duration::from_millis(4_999);
        assert_eq!(map.get(&digest(1), almost), Found::Fresh('a'));
        let expired = start + Duration::from_secs(5);
        assert_eq!(map.get(&digest(1), expired), Found::Expired);
        map.insert(digest(1), 'b', expired);
        assert_eq!(map.get(&digest(1), expired), Found::Fresh('b'));
    }

    #[test]
    fn a_zero_ttl_remembers_nothing_as_fresh() {
        let now = Instant::now();
        let mut map = ExpiringMap::new(10, Duration::ZERO);
        map.insert(digest(1), (), now);
        assert_eq!(map.get(&digest(1), now), Found::Expired);
    }

    #[test]
    fn a_full_map_evicts_the_oldest_insertion_only() {
        let now = Instant::now();
        let mut map = ExpiringMap::new(3, Duration::from_secs(60));
        for byte in 1..=3 {
            map.insert(digest(byte), byte, now);
        }
        map.insert(digest(4), 4, now);
        assert_eq!(map.len(), 3);
        assert_eq!(map.get(&digest(1), now), Found::Absent);
        for byte in 2..=4 {
            assert_eq!(map.get(&digest(byte), now), Found::Fresh(byte));
        }
    }

    #[test]
    fn a_digest_inserted_again_is_not_evicted_by_its_older_place() {
        let now = Instant::now();
        let mut map = ExpiringMap::new(3, Duration::from_secs(60));
        map.insert(digest(1), 1, now);
        map.insert(digest(2), 2, now);
        map.insert(digest(1), 10, now);
        // Pops the stale place of digest 1, which must leave its newer entry alone.
        map.insert(digest(3), 3, now);
        assert_eq!(map.get(&digest(1), now), Found::Fresh(10));
        assert_eq!(map.get(&digest(2), now), Found::Fresh(2));
        assert_eq!(map.get(&digest(3), now), Found::Fresh(3));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_distinct_digests() {
        let now = Instant::now();
        let mut map = ExpiringMap::new(100, Duration::from_secs(60));
        for index in 0..10_000_u32 {
            let mut flooded = [0_u8; 32];
            flooded[..4].copy_from_slice(&index.to_be_bytes());
            map.insert(flooded, (), now);
            // The same digest again, as a re-check after expiry would.
            map.insert(flooded, (), now);
        }
        assert!(map.len() <= 100);
        assert!(map.order.len() <= 100);
    }
}
