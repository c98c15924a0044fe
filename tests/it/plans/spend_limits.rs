//! Spend limits through the gRPC surface: what a limit refuses and what it lets through, how
//! each step of a hold's life moves its counters, UTC day and month boundaries, limits set on
//! scopes with history, concurrent holds over two servers, GetAccount's listing, and bad plan
//! fields. Every figure is checked as the exact decimal string, and every test ends with
//! `verify`.

mod bad_input;
mod counters;
mod history;
mod listing;
mod periods;
mod race;
mod refusal;
