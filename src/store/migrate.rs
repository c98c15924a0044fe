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

use deadpool_postgres::Pool;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tokio_postgres::{Client, GenericClient};

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
    /// `CONCURRENTLY` or validate a constraint while writes go on. Every statement can run
    /// again (`IF NOT EXISTS`, validating a valid constraint), so an interrupted run is
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

/// Every migration, in order. Never edit an entry once released: add a new one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tenants",
        sql: include_str!("../../migrations/0001_tenants.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 2,
        name: "ledger",
        sql: include_str!("../../migrations/0002_ledger.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 3,
        name: "catalog",
        sql: include_str!("../../migrations/0003_catalog.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 4,
        name: "grant_account_index",
        sql: include_str!("../../migrations/0004_grant_account_index.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 5,
        name: "signing_keys",
        sql: include_str!("../../migrations/0005_signing_keys.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 6,
        name: "hot_grant_updates",
        sql: include_str!("../../migrations/0006_hot_grant_updates.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 7,
        name: "ledger_references_in_verify",
        sql: include_str!("../../migrations/0007_ledger_references_in_verify.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 8,
        name: "allowances_and_spend_limits",
        sql: include_str!("../../migrations/0008_allowances_and_spend_limits.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 9,
        name: "usage_history",
        sql: include_str!("../../migrations/0009_usage_history.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 10,
        name: "events",
        sql: include_str!("../../migrations/0010_events.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 11,
        name: "webhooks",
        sql: include_str!("../../migrations/0011_webhooks.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 12,
        name: "key_last_used",
        sql: include_str!("../../migrations/0012_key_last_used.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 13,
        name: "lean_writes",
        sql: include_str!("../../migrations/0013_lean_writes.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 14,
        name: "usage_months",
        sql: include_str!("../../migrations/0014_usage_months.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 15,
        name: "allowances_due",
        sql: include_str!("../../migrations/0015_allowances_due.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 16,
        name: "account_keys",
        sql: include_str!("../../migrations/0016_account_keys.sql"),
        kind: Kind::Online,
    },
    Migration {
        version: 17,
        name: "tenant_keys",
        sql: include_str!("../../migrations/0017_tenant_keys.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 18,
        name: "journal_bound",
        sql: include_str!("../../migrations/0018_journal_bound.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 19,
        name: "journal_bound_checked",
        sql: include_str!("../../migrations/0019_journal_bound_checked.sql"),
        kind: Kind::Online,
    },
    Migration {
        version: 20,
        name: "journal_partitions",
        sql: include_str!("../../migrations/0020_journal_partitions.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 21,
        name: "account_keys_contract",
        sql: include_str!("../../migrations/0021_account_keys_contract.sql"),
        kind: Kind::Contract,
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
/// that know no more than migration 15 connect as plain `creditgate`.
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
         THEN application_name WHEN application_name = '' THEN 'an unnamed event listener' \
         ELSE 'an event listener named ' || quote_literal(application_name) END, \
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

/// The statements of an online migration: its text split at semicolons, comment lines left
/// out.
fn statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The index an online statement builds (`… INDEX CONCURRENTLY IF NOT EXISTS name …`).
fn index_built(statement: &str) -> Option<&str> {
    let (_, rest) = statement.split_once("INDEX CONCURRENTLY IF NOT EXISTS ")?;
    rest.split_whitespace().next()
}

/// Runs an online migration's statements one by one, outside a transaction.
async fn apply_online(client: &Client, migration: &Migration) -> Result<(), StoreError> {
    // A build `CONCURRENTLY` waits in the lock manager for every older transaction (a backup,
    // a long report): no lock timeout, or any such transaction would throw the build away. A
    // Job killed meanwhile leaves a backend that stops within 10 s instead of building on
    // with the migration lock held.
    client
        .batch_execute(
            "SET statement_timeout = 0; SET lock_timeout = 0; \
             SET client_connection_check_interval = '10s'; \
             SET TimeZone = 'UTC'; SET DateStyle = 'ISO'",
        )
        .await?;
    for statement in statements(migration.sql) {
        if let Some(index) = index_built(&statement) {
            // An interrupted build leaves the index invalid, and `IF NOT EXISTS` would keep it.
            let invalid: bool = client
                .query_one(
                    "SELECT coalesce((SELECT NOT indisvalid FROM pg_index \
                     WHERE indexrelid = to_regclass($1::text)), false)",
                    &[&index],
                )
                .await?
                .get(0);
            if invalid {
                client
                    .batch_execute(&format!("DROP INDEX CONCURRENTLY {index}"))
                    .await?;
            }
        }
        client.batch_execute(&statement).await?;
    }
    Ok(())
}

/// Times written as text and read back (partition bounds) mean one instant whatever the
/// database's or the URL's settings: UTC, ISO.
const TIME_TEXT: &str = "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO'";

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
                return Ok::<_, StoreError>(Some(None));
            }
            // Another server migrating does this one's work: skip, never wait.
            if !take_lock(&client, Duration::ZERO).await? {
                return Ok(None);
            }
            let migrated = migrate_holding_lock(&mut client, newest_known()).await?;
            Ok(Some(migrated.waiting))
        };
        // Not raced with shutdown: dropped halfway, it would leave the migration lock held on
        // a pooled connection. It is short: the contract gives up on its locks within seconds.
        let pause = match attempt.await {
            Ok(Some(None)) => return,
            // Requests or a long read held the locks: back off, as every server tries.
            Ok(Some(Some(Waiting {
                why: WaitingFor::Locks,
                ..
            }))) => interval * 4,
            Ok(_) => interval,
            Err(error) => {
                tracing::warn!(%error, "applying a waiting migration; trying again");
                interval
            }
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(pause) => {}
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

    #[test]
    fn every_statement_of_an_online_migration_can_run_again() {
        for migration in MIGRATIONS.iter().filter(|m| m.kind == Kind::Online) {
            let statements = statements(migration.sql);
            assert!(!statements.is_empty(), "{}", migration.name);
            for statement in statements {
                let again = index_built(&statement).is_some()
                    || statement.contains(" VALIDATE CONSTRAINT ");
                assert!(again, "{}: {statement}", migration.name);
            }
        }
    }

    #[test]
    fn an_online_statement_names_the_index_it_builds() {
        let sql = "-- a comment; with a semicolon\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \
                   a_key\n    ON a (b, c);\nALTER TABLE a VALIDATE CONSTRAINT d;\n";
        let statements = statements(sql);
        assert_eq!(statements.len(), 2);
        assert_eq!(index_built(&statements[0]), Some("a_key"));
        assert_eq!(index_built(&statements[1]), None);
    }
}
