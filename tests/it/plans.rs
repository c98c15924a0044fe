//! An account's plan through the gRPC surface: recurring allowances (a grant per calendar
//! period, made on the period's first touch, once, whatever the number of servers) and spend
//! limits.

mod allowances;
mod spend_limits;
