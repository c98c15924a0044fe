//! Events: the WatchEvents streams, fed by one reader per server that follows the outbox.

pub mod cursor;
pub mod hub;
pub mod watch;

pub use crate::ledger::EventType;
pub use crate::store::events::{Position, StoredEvent};
pub use hub::EventHub;
