//! An account's plan through the gRPC surface: recurring allowances and spend limits.

mod spend_limits;
