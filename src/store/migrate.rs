//! Versioned schema migrations embedded in the binary. They are applied in one transaction
//! under an advisory lock, so replicas starting together apply each exactly once, and an
//! applied migration whose text changed is refused rather than silently skipped.
//!
//! Most migrations leave the servers of the version before working (they add, and those name
//! their columns). A *contract* migration removes or replaces what older servers name, so it
//! runs only when none is connected: every connection of this binary (the pool's and the
//! event listener's) says the newest migration it knows in `application_name`, and
//! `pg_stat_activity` shows the others. During a rolling upgrade the migration Job applies
//! the rest, and a server of the new version applies the contract once the last older server
//! has gone ([`finish_waiting`]). A connection pooler in transaction mode hides who is
//! connected: with one, stop the older servers before upgrading.

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
    /// statements name). It waits until none is connected, and the later contract migrations
    /// wait with it; the other migrations do not wait, so one that needs a contract migration
    /// applied is a contract migration too. Servers of its own version work before and after
    /// it. It runs while servers serve: it changes only the catalog, takes its locks up
    /// front, `accounts` first (every locked transaction locks its accounts first), and gives
    /// up on a lock after [`CONTRACT_LOCK_TIMEOUT`].
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
        name: "journal_partitions",
        sql: include_str!("../../migrations/0017_journal_partitions.sql"),
        contract: false,
    },
    Migration {
        version: 18,
        name: "account_keys_contract",
        sql: include_str!("../../migrations/0018_account_keys_contract.sql"),
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
/// before 0018 connect as plain `creditgate`.
pub fn application_name() -> String {
    format!("{APPLICATION}/{}", newest_known())
}

const APPLICATION: &str = "creditgate";

/// The other connections to this database of servers that do not know migration `$1`, counted
/// by name: those named `creditgate/N` with N below it, those named `creditgate` (servers
/// before names carried a version), and event listeners under any other name (an older
/// server's LISTEN connection took its name from the URL, and it stays open while its pool may
/// have none). The `CASE` keeps the cast from names it does not fit.
const OLDER_SERVERS: &str = "SELECT CASE WHEN application_name ~ '^creditgate(/[0-9]+)?$' \
         THEN application_name ELSE 'a listener named ' || quote_literal(application_name) END, \
     count(*) FROM pg_stat_activity \
     WHERE datname = current_database() AND pid <> pg_backend_pid() \
     AND CASE WHEN application_name ~ '^creditgate/[0-9]{1,9}$' \
         THEN substr(application_name, 12)::int4 < $1 \
         ELSE application_name = 'creditgate' OR query = 'LISTEN creditgate_events' END \
     GROUP BY 1 ORDER BY 1";

/// How long a contract migration waits for each lock: below Postgres's `deadlock_timeout`
/// (1 s), so that if a request and the migration ever wait on each other, the migration gives
/// up first and no request is chosen to fail.
const CONTRACT_LOCK_TIMEOUT: &str = "200ms";

/// How many times a contract migration tries for its locks in one run before waiting for the
/// next.
const CONTRACT_ATTEMPTS: u32 = 5;

/// What a run of the migrations did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// How many migrations it applied.
    pub applied: usize,
    /// The first contract migration left for later, if one was.
    pub waiting: Option<Waiting>,
}

/// A contract migration left for later; it and every later contract migration wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Its version.
    pub version: i32,
    /// Its name.
    pub name: &'static str,
    /// Why it waits.
    pub why: WaitingFor,
}

/// Why a contract migration waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitingFor {
    /// Servers that predate it are connected: their names and connection counts.
    OlderServers(Vec<(String, i64)>),
    /// Its tables' locks were not had in time (requests or long reads held them).
    Locks,
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "migration {} ({}) waits ", self.version, self.name)?;
        match &self.why {
            WaitingFor::OlderServers(older) => {
                let older: Vec<String> = older
                    .iter()
                    .map(|(name, count)| format!("{count} of {name}"))
                    .collect();
                write!(
                    f,
                    "until the servers that predate it disconnect (connections: {})",
                    older.join(", ")
                )?;
            }
            WaitingFor::Locks => write!(f, "for its tables' locks, held by requests")?,
        }
        write!(f, "; a server of this version applies it then")
    }
}

/// Applies the migrations this database lacks. A contract migration is applied only when no
/// server that predates it is connected, and only if it gets its locks quickly; otherwise it
/// and every later contract migration wait (see [`Migrated::waiting`] and [`finish_waiting`]),
/// while the other migrations are applied.
pub async fn migrate(client: &mut Client) -> Result<Migrated, StoreError> {
    let transaction = client.transaction().await?;
    // A migration may build an index over a large table: the pool's statement timeout is for
    // requests. Waiting for the tables' locks stays bounded.
    transaction
        .batch_execute(&format!(
            "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
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
    let mut waiting: Option<Waiting> = None;
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
            // Contract migrations keep their order: once one waits, the later ones do.
            if waiting.is_some() {
                continue;
            }
            if let Some(why) = apply_contract(&transaction, migration).await? {
                waiting = Some(Waiting {
                    version: migration.version,
                    name: migration.name,
                    why,
                });
                continue;
            }
        } else {
            transaction.batch_execute(migration.sql).await?;
        }
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

/// How long an ordinary migration waits for a table's lock.
const LOCK_TIMEOUT: &str = "60s";

/// Runs a contract migration if no older server is connected, trying for its locks a few
/// times with the short timeout; returns why it waits instead, if it does.
async fn apply_contract(
    transaction: &tokio_postgres::Transaction<'_>,
    migration: &Migration,
) -> Result<Option<WaitingFor>, StoreError> {
    // An older server that connects after this check starts by migrating: it waits for the
    // advisory lock, then refuses the newer schema.
    let older: Vec<(String, i64)> = transaction
        .query(OLDER_SERVERS, &[&migration.version])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    if !older.is_empty() {
        return Ok(Some(WaitingFor::OlderServers(older)));
    }
    for attempt in 1..=CONTRACT_ATTEMPTS {
        transaction
            .batch_execute(&format!(
                "SAVEPOINT contract; SET LOCAL lock_timeout = '{CONTRACT_LOCK_TIMEOUT}'"
            ))
            .await?;
        match transaction.batch_execute(migration.sql).await {
            Ok(()) => {
                transaction
                    .batch_execute(&format!(
                        "RELEASE SAVEPOINT contract; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
                    ))
                    .await?;
                return Ok(None);
            }
            Err(error) if gave_up_on_a_lock(&error) => {
                // Undoes the attempt and its short timeout alike.
                transaction
                    .batch_execute("ROLLBACK TO SAVEPOINT contract")
                    .await?;
                tracing::info!(
                    version = migration.version,
                    attempt,
                    "a contract migration gave up on a lock"
                );
                if attempt < CONTRACT_ATTEMPTS {
                    // Apart, and not in step with another server's attempts.
                    let jitter = rand::random_range(0..200);
                    tokio::time::sleep(Duration::from_millis(100 + jitter)).await;
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(Some(WaitingFor::Locks))
}

/// A lock not had within `lock_timeout`, or a deadlock this session was chosen to break.
fn gave_up_on_a_lock(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|code| {
        *code == tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE
            || *code == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// Whether this database lacks some migration this binary knows (a contract migration that
/// waits, as every other was applied when the server started).
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
            let migrated = migrate(&mut client).await?;
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
