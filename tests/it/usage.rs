//! Usage history through the gRPC surface: ListUsage's filters and records, paging that
//! neither misses nor repeats while runs arrive, the journal ListLedger lists, summaries equal
//! to the sum of the listed runs over any range, the CSV export and its bounds, and bad
//! requests. Every test ends with `verify`, which checks the usage rollups against the holds.

mod bad_input;
mod export;
mod export_limits;
mod filters;
mod ledger;
mod pagination;
mod summary;
