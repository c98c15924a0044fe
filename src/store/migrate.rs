//! Versioned schema migrations embedded in the binary. They are applied in one transaction
//! under an advisory lock, so replicas starting together apply each exactly once, and an
//! applied migration whose text changed is refused rather than silently skipped.

use sha2::{Digest as _, Sha256};
use tokio_postgres::Client;

use super::StoreError;

/// Advisory lock key that serializes migrations across replicas ("creditg" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0063_7265_6469_7467;

struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Never edit an entry once released: add a new one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tenants",
        sql: include_str!("../../migrations/0001_tenants.sql"),
    },
    Migration {
        version: 2,
        name: "ledger",
        sql: include_str!("../../migrations/0002_ledger.sql"),
    },
    Migration {
        version: 3,
        name: "catalog",
        sql: include_str!("../../migrations/0003_catalog.sql"),
    },
    Migration {
        version: 4,
        name: "grant_account_index",
        sql: include_str!("../../migrations/0004_grant_account_index.sql"),
    },
    Migration {
        version: 5,
        name: "signing_keys",
        sql: include_str!("../../migrations/0005_signing_keys.sql"),
    },
    Migration {
        version: 6,
        name: "hot_grant_updates",
        sql: include_str!("../../migrations/0006_hot_grant_updates.sql"),
    },
    Migration {
        version: 7,
        name: "ledger_references_in_verify",
        sql: include_str!("../../migrations/0007_ledger_references_in_verify.sql"),
    },
    Migration {
        version: 8,
        name: "allowances_and_spend_limits",
        sql: include_str!("../../migrations/0008_allowances_and_spend_limits.sql"),
    },
    Migration {
        version: 9,
        name: "usage_history",
        sql: include_str!("../../migrations/0009_usage_history.sql"),
    },
    Migration {
        version: 10,
        name: "events",
        sql: include_str!("../../migrations/0010_events.sql"),
    },
    Migration {
        version: 11,
        name: "webhooks",
        sql: include_str!("../../migrations/0011_webhooks.sql"),
    },
    Migration {
        version: 12,
        name: "key_last_used",
        sql: include_str!("../../migrations/0012_key_last_used.sql"),
    },
    Migration {
        version: 13,
        name: "lean_writes",
        sql: include_str!("../../migrations/0013_lean_writes.sql"),
    },
    Migration {
        version: 14,
        name: "usage_months",
        sql: include_str!("../../migrations/0014_usage_months.sql"),
    },
    Migration {
        version: 15,
        name: "allowances_due",
        sql: include_str!("../../migrations/0015_allowances_due.sql"),
    },
];

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Applies the migrations this database lacks; returns how many were applied.
pub async fn migrate(client: &mut Client) -> Result<usize, StoreError> {
    let transaction = client.transaction().await?;
    // A migration may build an index over a large table: the pool's statement timeout is for
    // requests. Waiting for the tables' locks stays bounded.
    transaction
        .batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '60s'")
        .await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await?;
    let applied: Vec<(i32, String)> = transaction
        .query("SELECT version, checksum FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let newest_known = MIGRATIONS.last().map_or(0, |migration| migration.version);
    if let Some((version, _)) = applied.iter().find(|(version, _)| *version > newest_known) {
        return Err(StoreError::Schema(format!(
            "the database has migration {version}, newer than this binary knows ({newest_known}); run a newer creditgate"
        )));
    }
    let mut count = 0;
    for migration in MIGRATIONS {
        let expected = checksum(migration.sql);
        match applied
            .iter()
            .find(|(version, _)| *version == migration.version)
        {
            Some((_, stored)) if *stored == expected => continue,
            Some(_) => {
                return Err(StoreError::Schema(format!(
                    "migration {} ({}) differs from the one applied to this database; migrations must never be edited",
                    migration.version, migration.name
                )));
            }
            None => {}
        }
        transaction.batch_execute(migration.sql).await?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                &[&migration.version, &migration.name, &expected],
            )
            .await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
        count += 1;
    }
    transaction.commit().await?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(migration.version).ok(), Some(index + 1));
            assert!(!migration.sql.trim().is_empty());
        }
    }
}
