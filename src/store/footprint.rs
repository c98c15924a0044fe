//! What the database has written: the WAL position and the size of the tables with their
//! indexes, read before and after a load to give bytes per run.

use deadpool_postgres::GenericClient;

use super::StoreError;

/// The WAL written since the cluster began and the bytes of the schema's tables (with their
/// indexes and TOAST), at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// `pg_current_wal_lsn()` as a byte count.
    pub wal_bytes: i64,
    /// Sum of `pg_total_relation_size` over the tables of the current schema.
    pub table_bytes: i64,
}

/// The database's footprint now.
pub async fn footprint(client: &impl GenericClient) -> Result<Footprint, StoreError> {
    let row = client
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8 AS wal, \
             (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 FROM pg_class c \
              WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace) AS tables",
            &[],
        )
        .await?;
    Ok(Footprint {
        wal_bytes: row.get("wal"),
        table_bytes: row.get("tables"),
    })
}
