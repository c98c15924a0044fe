//! Secrets every replica shares, kept in the database they share.

use deadpool_postgres::GenericClient;

use super::StoreError;
use super::redacted::Redacted;

/// The 32-byte secret called `name`, made (from `fresh`) by the first replica that asks.
pub async fn shared_secret(
    client: &impl GenericClient,
    name: &str,
    fresh: [u8; 32],
) -> Result<[u8; 32], StoreError> {
    client
        .execute(
            "INSERT INTO signing_keys (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &Redacted(fresh.as_slice())],
        )
        .await?;
    // The secret read back is a result column, which tokio-postgres does not log.
    let row = client
        .query_one("SELECT secret FROM signing_keys WHERE name = $1", &[&name])
        .await?;
    let secret: Vec<u8> = row.get(0);
    secret
        .try_into()
        .map_err(|_| StoreError::Other(format!("signing key {name:?} is not 32 bytes")))
}
