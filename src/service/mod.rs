//! Use cases: what each RPC and CLI command does, over the pure domain and the store. Knows
//! nothing of gRPC; errors are [`ServiceError`], mapped to status codes only in `api`.

pub mod access;
pub mod accounts;
pub mod catalog;
mod combiner;
pub mod context;
pub mod demo;
pub mod error;
pub mod events;
pub mod holds;
pub mod idempotency;
mod locked;
pub mod page_token;
pub mod plans;
pub mod priced;
pub mod quote;
mod recent;
mod span;
pub mod sweeper;
pub mod tenants;
pub mod usage;
pub mod webhooks;

pub use context::Context;
pub use error::ServiceError;
