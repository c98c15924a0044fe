//! Events: the WatchEvents streams, fed by one reader per server that follows the outbox.

pub mod cursor;
