//! creditgate: credit holds, settlement and balances for AI platforms, over gRPC and Postgres.
//!
//! Layers (see README "Architecture"): `api → service → {auth, store}`; only `store` speaks SQL
//! and only `api` knows gRPC status codes.

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
