//! creditgate: credit holds, settlement and balances for AI platforms, over gRPC and Postgres.
//!
//! Layers, bottom to top (docs/ARCHITECTURE.md; `layers` tests the arrows): `money`, `ids` →
//! the pure domains `ledger` and `pricing` → `store` (the only SQL) → `service` (use cases,
//! batching, the locked runner) → `api` (the only gRPC status codes) → `app`, `cli`, `bench`.

pub mod api;
pub mod app;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod ids;
#[cfg(test)]
mod layers;
pub mod ledger;
pub mod money;
pub mod pricing;
pub mod proto;
pub mod service;
pub mod store;
pub mod telemetry;
