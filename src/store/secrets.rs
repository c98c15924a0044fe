//! Secrets every replica shares, kept in the database they share.

use deadpool_postgres::GenericClient;

use super::StoreError;
use super::redacted::Redacted;

/// Name of the secret quotes are signed with.
pub const QUOTE_KEY: &str = "quote";

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
    existing_secret(client, name)
        .await?
        .ok_or_else(|| StoreError::Other(format!("signing key {name:?} is missing")))
}

/// The 32-byte secret called `name`, if a replica made it.
pub async fn existing_secret(
    client: &impl GenericClient,
    name: &str,
) -> Result<Option<[u8; 32]>, StoreError> {
    // The secret read back is a result column, which tokio-postgres does not log.
    let Some(row) = client
        .query_opt("SELECT secret FROM signing_keys WHERE name = $1", &[&name])
        .await?
    else {
        return Ok(None);
    };
    let secret: Vec<u8> = row.get(0);
    secret
        .try_into()
        .map(Some)
        .map_err(|_| StoreError::Other(format!("signing key {name:?} is not 32 bytes")))
}
