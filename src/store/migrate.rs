//! Versioned schema migrations embedded in the binary. They are applied in one transaction
//! under an advisory lock, so replicas starting together apply each exactly once, and an
//! applied migration whose text changed is refused rather than silently skipped.
//!
//! Most migrations leave the servers of the version before working (they add, and those name
//! their columns). A *contract* migration removes or replaces what older servers name, so it
//! runs only when none is connected: every connection says the newest migration its binary
//! knows in `application_name`, and `pg_stat_activity` shows the rest. During a rolling
//! upgrade the migration Job applies what it can, and a server of the new version applies the
//! contract once the last older server has gone ([`finish_waiting`]).

use std::time::Duration;

use deadpool_postgres::Pool;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tokio_postgres::Client;

use super::StoreError;

/// Advisory lock key that serializes migrations across replicas ("creditg" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0063_7265_6469_7467;

struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
    /// Whether servers built before it break once it has run (it drops or replaces what their
    /// statements name). It waits until none is connected, and the migrations after it wait
    /// with it; servers of its own version work before and after it.
    contract: bool,
}

/// Every migration, in order. Never edit an entry once released: add a new one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tenants",
        sql: include_str!("../../migrations/0001_tenants.sql"),
        contract: false,
    },
    Migration {
        version: 2,
        name: "ledger",
        sql: include_str!("../../migrations/0002_ledger.sql"),
        contract: false,
    },
    Migration {
        version: 3,
        name: "catalog",
        sql: include_str!("../../migrations/0003_catalog.sql"),
        contract: false,
    },
    Migration {
        version: 4,
        name: "grant_account_index",
        sql: include_str!("../../migrations/0004_grant_account_index.sql"),
        contract: false,
    },
    Migration {
        version: 5,
        name: "signing_keys",
        sql: include_str!("../../migrations/0005_signing_keys.sql"),
        contract: false,
    },
    Migration {
        version: 6,
        name: "hot_grant_updates",
        sql: include_str!("../../migrations/0006_hot_grant_updates.sql"),
        contract: false,
    },
    Migration {
        version: 7,
        name: "ledger_references_in_verify",
        sql: include_str!("../../migrations/0007_ledger_references_in_verify.sql"),
        contract: false,
    },
    Migration {
        version: 8,
        name: "allowances_and_spend_limits",
        sql: include_str!("../../migrations/0008_allowances_and_spend_limits.sql"),
        contract: false,
    },
    Migration {
        version: 9,
        name: "usage_history",
        sql: include_str!("../../migrations/0009_usage_history.sql"),
        contract: false,
    },
    Migration {
        version: 10,
        name: "events",
        sql: include_str!("../../migrations/0010_events.sql"),
        contract: false,
    },
    Migration {
        version: 11,
        name: "webhooks",
        sql: include_str!("../../migrations/0011_webhooks.sql"),
        contract: false,
    },
    Migration {
        version: 12,
        name: "key_last_used",
        sql: include_str!("../../migrations/0012_key_last_used.sql"),
        contract: false,
    },
    Migration {
        version: 13,
        name: "lean_writes",
        sql: include_str!("../../migrations/0013_lean_writes.sql"),
        contract: false,
    },
    Migration {
        version: 14,
        name: "usage_months",
        sql: include_str!("../../migrations/0014_usage_months.sql"),
        contract: false,
    },
    Migration {
        version: 15,
        name: "allowances_due",
        sql: include_str!("../../migrations/0015_allowances_due.sql"),
        contract: false,
    },
    Migration {
        version: 16,
        name: "account_keys",
        sql: include_str!("../../migrations/0016_account_keys.sql"),
        contract: false,
    },
    Migration {
        version: 17,
        name: "account_keys_contract",
        sql: include_str!("../../migrations/0017_account_keys_contract.sql"),
        contract: true,
    },
];

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// The newest migration this binary knows.
fn newest_known() -> i32 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

/// The `application_name` of this binary's connections: `creditgate/` and the newest migration
/// it knows, so that a contract migration sees which connected servers predate it. Servers
/// before 0017 connect as plain `creditgate`.
pub fn application_name() -> String {
    format!("{APPLICATION}/{}", newest_known())
}

const APPLICATION: &str = "creditgate";

/// The other connections to this database of servers that do not know migration `$1`, counted
/// by application name. The `CASE` keeps the cast from names it does not fit.
const OLDER_SERVERS: &str = "SELECT application_name, count(*) FROM pg_stat_activity \
     WHERE datname = current_database() AND pid <> pg_backend_pid() \
     AND CASE WHEN application_name ~ '^creditgate/[0-9]{1,9}$' \
         THEN substr(application_name, 12)::int4 < $1 \
         ELSE application_name = 'creditgate' END \
     GROUP BY 1 ORDER BY 1";

/// What a run of the migrations did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// How many migrations it applied.
    pub applied: usize,
    /// The contract migration left for later, because servers that predate it are connected.
    pub waiting: Option<Waiting>,
}

/// A contract migration that waits for the servers before it to disconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Its version; it and every later migration wait.
    pub version: i32,
    /// Its name.
    pub name: &'static str,
    /// The connected servers that predate it: application name and connection count.
    pub older: Vec<(String, i64)>,
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let older: Vec<String> = self
            .older
            .iter()
            .map(|(name, count)| format!("{count} of {name}"))
            .collect();
        write!(
            f,
            "migration {} ({}) waits until the servers that predate it disconnect (connections: {}); \
             a server of this version applies it then",
            self.version,
            self.name,
            older.join(", ")
        )
    }
}

/// How long a migration waits for a table's lock. At startup or in the migration Job, a long
/// wait is fine; a server finishing a waiting migration while it serves gives up sooner, as
/// every request behind the lock queue waits with it, and tries again later.
#[derive(Debug, Clone, Copy)]
enum LockWait {
    Long,
    Short,
}

/// Applies the migrations this database lacks. A contract migration is applied only when no
/// server that predates it is connected; otherwise it and the ones after it wait (see
/// [`Migrated::waiting`] and [`finish_waiting`]).
pub async fn migrate(client: &mut Client) -> Result<Migrated, StoreError> {
    apply(client, LockWait::Long).await
}

async fn apply(client: &mut Client, wait: LockWait) -> Result<Migrated, StoreError> {
    let transaction = client.transaction().await?;
    // A migration may build an index over a large table: the pool's statement timeout is for
    // requests. Waiting for the tables' locks stays bounded.
    let lock_timeout = match wait {
        LockWait::Long => "60s",
        LockWait::Short => "2s",
    };
    transaction
        .batch_execute(&format!(
            "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '{lock_timeout}'"
        ))
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
    let newest_known = newest_known();
    if let Some((version, _)) = applied.iter().find(|(version, _)| *version > newest_known) {
        return Err(StoreError::Schema(format!(
            "the database has migration {version}, newer than this binary knows ({newest_known}); run a newer creditgate"
        )));
    }
    let mut count = 0;
    let mut waiting = None;
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
        if migration.contract {
            // An older server that connects after this check starts by migrating: it waits
            // for the advisory lock, then refuses the newer schema.
            let older: Vec<(String, i64)> = transaction
                .query(OLDER_SERVERS, &[&migration.version])
                .await?
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect();
            if !older.is_empty() {
                waiting = Some(Waiting {
                    version: migration.version,
                    name: migration.name,
                    older,
                });
                break;
            }
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
    if let Some(waiting) = &waiting {
        tracing::warn!(%waiting, "a migration waits");
    }
    Ok(Migrated {
        applied: count,
        waiting,
    })
}

/// Whether this database lacks some migration this binary knows (one that waits, as every
/// other was applied when the server started).
async fn lacks_some(client: &Client) -> Result<bool, StoreError> {
    let row = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await?;
    let applied: i64 = row.get(0);
    Ok(applied < i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX))
}

/// Applies a waiting contract migration once the servers that predate it are gone: checks every
/// `interval` until nothing is left to apply or `shutdown` flips. Returns at once when nothing
/// waits, which is the common case.
pub async fn finish_waiting(pool: Pool, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        let attempt = async {
            let mut client = pool.get().await?;
            if !lacks_some(&client).await? {
                return Ok::<_, StoreError>(true);
            }
            let migrated = apply(&mut client, LockWait::Short).await?;
            Ok(migrated.waiting.is_none())
        };
        match attempt.await {
            Ok(true) => return,
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "applying a waiting migration; trying again"),
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
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
