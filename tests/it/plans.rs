//! An account's plan through the gRPC surface: allowances (recurring grants per calendar
//! period, granted on first touch of the period, once, whatever the number of servers).

mod allowances;
