//! `creditgate key create | list | revoke`: a tenant's API keys, against the database.

use clap::Subcommand;
use uuid::Uuid;

use super::with_database;
use crate::auth::ScopeSet;
use crate::config::DatabaseSettings;
use crate::service::tenants;
use crate::store::StoreError;
use crate::store::tenants as stored;

#[derive(Debug, Subcommand)]
pub(super) enum KeyCommand {
    /// Create an API key and print it once (it is stored hashed and cannot be shown again).
    Create {
        /// The tenant the key belongs to.
        #[arg(long)]
        tenant: String,
        /// Comma-separated scopes: worker (CreditService), billing (account writes), reader
        /// (reads), admin (catalog, everything).
        #[arg(long, value_parser = ScopeSet::parse_list)]
        scopes: ScopeSet,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// List a tenant's keys: id, secret prefix, scopes, created, last used (looked up by a
    /// server, at most once per key cache period), revoked. Never the secret.
    List {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Revoke a key: servers refuse it once their cache of it expires (`--key-cache-seconds`).
    Revoke {
        /// The key's id (from `key create` or `key list`).
        key_id: Uuid,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

fn time(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

pub(super) async fn run(command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create {
            tenant,
            scopes,
            database,
        } => {
            with_database(&database, async |db| {
                let client = db.pool.get().await.map_err(StoreError::from)?;
                let tenant = tenants::find_tenant(&client, &tenant).await?;
                let key = tenants::create_key(&client, tenant.tenant_id, scopes).await?;
                println!("{}", key.secret);
                eprintln!(
                    "created key {} for tenant {} with scopes {scopes}; it is shown only this once",
                    key.key_id, tenant.name
                );
                Ok(())
            })
            .await
        }
        KeyCommand::List { tenant, database } => {
            with_database(&database, async |db| {
                let client = db.pool.get().await.map_err(StoreError::from)?;
                let tenant = tenants::find_tenant(&client, &tenant).await?;
                println!(
                    "{:<36}  {:<12}  {:<26}  {:<20}  {:<20}  revoked",
                    "key_id", "prefix", "scopes", "created", "last used"
                );
                for key in stored::list_keys(&client, tenant.tenant_id).await? {
                    println!(
                        "{:<36}  {:<12}  {:<26}  {:<20}  {:<20}  {}",
                        key.key_id,
                        key.prefix,
                        key.scopes.join(","),
                        time(Some(key.created_at)),
                        time(key.last_used_at),
                        time(key.revoked_at)
                    );
                }
                Ok(())
            })
            .await
        }
        KeyCommand::Revoke { key_id, database } => {
            with_database(&database, async |db| {
                let client = db.pool.get().await.map_err(StoreError::from)?;
                match stored::revoke_key(&client, key_id).await? {
                    Some(_) => {
                        eprintln!(
                            "revoked key {key_id}; servers refuse it within their key cache period"
                        );
                        Ok(())
                    }
                    None => anyhow::bail!("no live key {key_id} (unknown or already revoked)"),
                }
            })
            .await
        }
    }
}
