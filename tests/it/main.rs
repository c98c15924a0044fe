//! Integration tests: each test gets its own database in one throwaway Postgres cluster and a
//! server on port 0, and talks to it through the real gRPC surface.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

mod access;
mod bench;
mod cli;
mod discovery;
mod distribution;
mod drain;
mod events;
mod faults;
mod faults_contract;
mod helpers;
mod hostile_input;
mod idempotency;
mod migrations;
mod model;
mod money_edges;
mod money_groups;
mod money_guarantees;
mod money_semantics;
mod node_client;
mod partitions;
mod plans;
mod pricing;
mod private_database;
mod query_plans;
mod replicas;
mod security;
mod telemetry;
mod tls;
mod usage;
mod webhooks;
