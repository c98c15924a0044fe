//! Counts read for the metrics, each one index-only scan of a partial index.

use deadpool_postgres::GenericClient;

use super::StoreError;

/// Active holds in the database (every tenant): read from `holds_due_idx`, which holds only
/// the active ones, so the cost follows the active holds, not the history.
pub async fn active_holds(client: &impl GenericClient) -> Result<i64, StoreError> {
    let row = client
        .query_one("SELECT count(*) FROM holds WHERE status = 'ACTIVE'", &[])
        .await?;
    Ok(row.get(0))
}
