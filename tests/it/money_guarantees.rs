//! The money guarantees, through the gRPC surface: no overspend under concurrency, bad input
//! refused with a clear error and nothing changed, and what keys and references protect. That
//! every mutating RPC applies exactly once is in `idempotency`.

mod bad_input;
mod concurrency;
mod keys;
mod named_account;
