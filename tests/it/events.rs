//! Events through the gRPC surface: each type fires from the change that causes it, once;
//! WatchEvents replays after a cursor and continues live, across replicas and restarts; bad
//! requests; tenants never see each other's events.

mod bad_input;
mod limits;
mod resume;
mod smoke;
mod types;
