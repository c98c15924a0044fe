//! Versioned schema migrations embedded in the binary. They are applied under an advisory lock,
//! so replicas starting together apply each exactly once, and an applied migration whose text
//! changed is refused rather than silently skipped. Most run in a transaction; an *online*
//! one builds indexes or checks constraints while writes go on (see [`Kind`]).
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

use sha2::{Digest as _, Sha256};
use tokio_postgres::{Client, GenericClient};

use contract::apply_contract;
pub use contract::{Waiting, WaitingFor, finish_waiting, up_to_date};
use online::apply_online;

mod contract;
mod online;
mod versions;

use versions::MIGRATIONS;

use super::StoreError;

/// Advisory lock key that serializes migrations across replicas ("creditg" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0063_7265_6469_7467;

struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
    kind: Kind,
}

/// How a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// In a transaction with the ordinary migrations beside it. Servers of the version before
    /// keep working after it (it adds; they name their columns).
    Ordinary,
    /// Each statement alone, outside a transaction, so that it can build an index
    /// `CONCURRENTLY`, validate a constraint or backfill rows while writes go on. Every
    /// statement can run again (`IF NOT EXISTS`, validating a valid constraint, inserting
    /// `ON CONFLICT DO NOTHING`), so an interrupted run is
    /// finished by the next; an index an interrupted build left invalid is built again. The
    /// statements are separated by semicolons; comments stand on lines of their own.
    Online,
    /// Breaks the servers built before it (it drops or replaces what their statements name):
    /// it waits until none is connected, and the later contract migrations wait with it; the
    /// other migrations do not wait, so one that needs a contract migration applied is a
    /// contract migration too. Servers of its own version work before and after it. It runs
    /// while servers serve: it changes only the catalog, takes its locks up front, `accounts`
    /// first (every locked transaction locks its accounts first), and gives up on a lock after
    /// [`CONTRACT_LOCK_TIMEOUT`].
    Contract,
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// The newest migration this binary knows.
pub fn newest_known() -> i32 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

/// The `application_name` of this binary's connections: `creditgate/` and the newest migration
/// it knows, so that a contract migration sees which connected servers predate it. Servers
/// that know no more than migration 15 connect as plain `creditgate`.
pub fn application_name() -> String {
    format!("{APPLICATION}/{}", newest_known())
}

const APPLICATION: &str = "creditgate";

/// What a run of the migrations did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// How many migrations it applied.
    pub applied: usize,
    /// The first contract migration left for later, if one was.
    pub waiting: Option<Waiting>,
}

/// Applies the migrations this database lacks, in order, under a session advisory lock (so
/// replicas starting together apply each once): ordinary and contract migrations in a
/// transaction per run of them, online ones statement by statement. A contract migration is
/// applied only when no server that predates it is connected, and only if it gets its locks
/// quickly; otherwise it and every later contract migration wait (see [`Migrated::waiting`]
/// and [`finish_waiting`]), while the others are applied.
pub async fn migrate(client: &mut Client) -> Result<Migrated, StoreError> {
    migrate_until(client, newest_known()).await
}

/// As [`migrate`], applying no migration after `last`: the schema of an older version, for
/// testing what the later migrations do to its data.
pub async fn migrate_until(client: &mut Client, last: i32) -> Result<Migrated, StoreError> {
    // Another server may be migrating: wait for it as long as for a table.
    if !take_lock(client, LOCK_WAIT).await? {
        return Err(StoreError::Timeout(format!(
            "another process has been migrating this database for {LOCK_WAIT:?}; try again once it is done"
        )));
    }
    migrate_holding_lock(client, last).await
}

/// How long a migration waits for another to finish.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// Takes the migration lock, trying every 100 ms for `wait` (zero: once). It is tried, not
/// waited for in Postgres: a session waiting in `pg_advisory_lock` holds a snapshot, which an
/// index build `CONCURRENTLY` by the holder waits for in turn, a deadlock.
async fn take_lock(client: &Client, wait: Duration) -> Result<bool, StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let taken: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await?
            .get(0);
        if taken {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Migrates with the migration lock held, then releases it.
async fn migrate_holding_lock(client: &mut Client, last: i32) -> Result<Migrated, StoreError> {
    let migrated = migrate_locked(client, last).await;
    // The lock is the session's: released here, or with the connection if it broke. The
    // connection goes back to the pool with its own timeouts.
    let unlocked = client
        .batch_execute(&format!(
            "RESET statement_timeout; RESET lock_timeout; RESET client_connection_check_interval; \
             RESET TimeZone; RESET DateStyle; SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"
        ))
        .await;
    let migrated = migrated?;
    unlocked?;
    if let Some(waiting) = &migrated.waiting {
        tracing::warn!(%waiting, "a migration waits");
    }
    Ok(migrated)
}

async fn migrate_locked(client: &mut Client, last: i32) -> Result<Migrated, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await?;
    let applied: Vec<(i32, String)> = client
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
    let mut pending = Vec::new();
    for migration in MIGRATIONS
        .iter()
        .filter(|migration| migration.version <= last)
    {
        match applied
            .iter()
            .find(|(version, _)| *version == migration.version)
        {
            Some((_, stored)) if *stored == checksum(migration.sql) => {}
            Some(_) => {
                return Err(StoreError::Schema(format!(
                    "migration {} ({}) differs from the one applied to this database; migrations must never be edited",
                    migration.version, migration.name
                )));
            }
            None => pending.push(migration),
        }
    }
    let mut migrated = Migrated {
        applied: 0,
        waiting: None,
    };
    let mut rest = pending.as_slice();
    while let Some((first, _)) = rest.split_first() {
        if first.kind == Kind::Online {
            apply_online(client, first).await?;
            record(client, first).await?;
            migrated.applied += 1;
            rest = &rest[1..];
            continue;
        }
        // A contract migration has a transaction of its own, so that it never waits for its
        // locks holding those of the migrations before it.
        let run = if first.kind == Kind::Contract {
            1
        } else {
            rest.iter()
                .take_while(|migration| migration.kind == Kind::Ordinary)
                .count()
        };
        apply_in_transaction(client, &rest[..run], &mut migrated).await?;
        rest = &rest[run..];
    }
    Ok(migrated)
}

/// Applies ordinary and contract migrations in one transaction.
async fn apply_in_transaction(
    client: &mut Client,
    migrations: &[&Migration],
    migrated: &mut Migrated,
) -> Result<(), StoreError> {
    let transaction = client.transaction().await?;
    // A migration may build an index over a large table: the pool's statement timeout is for
    // requests. Waiting for the tables' locks stays bounded.
    transaction
        .batch_execute(&format!(
            "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; \
             {TIME_TEXT}"
        ))
        .await?;
    for &migration in migrations {
        if migration.kind == Kind::Contract {
            // Contract migrations keep their order: once one waits, the later ones do.
            if migrated.waiting.is_some() {
                continue;
            }
            if let Some(why) = apply_contract(&transaction, migration).await? {
                migrated.waiting = Some(Waiting {
                    version: migration.version,
                    name: migration.name,
                    why,
                });
                continue;
            }
        } else {
            transaction.batch_execute(migration.sql).await?;
        }
        record(&transaction, migration).await?;
        migrated.applied += 1;
    }
    transaction.commit().await?;
    Ok(())
}

/// Notes `migration` as applied.
async fn record(client: &impl GenericClient, migration: &Migration) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[
                &migration.version,
                &migration.name,
                &checksum(migration.sql),
            ],
        )
        .await?;
    tracing::info!(
        version = migration.version,
        name = migration.name,
        "applied migration"
    );
    Ok(())
}

/// Times written as text and read back (partition bounds) mean one instant whatever the
/// database's or the URL's settings: UTC, ISO.
const TIME_TEXT: &str = "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO'";

/// How long an ordinary migration waits for a table's lock.
const LOCK_TIMEOUT: &str = "60s";

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
