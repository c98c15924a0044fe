//! Contract migrations: applied only when no server that predates them is connected, with
//! their locks taken up front and given up quickly; and the retry every server runs while one
//! waits.

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::watch;
use tokio_postgres::Client;

use super::{LOCK_TIMEOUT, MIGRATIONS, Migration, migrate_holding_lock, newest_known, take_lock};
use crate::store::StoreError;

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

/// Runs a contract migration if no older server is connected, trying for its locks a few
/// times with the short timeout; returns why it waits instead, if it does.
pub(super) async fn apply_contract(
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

/// Whether this database has every migration this binary knows, each by its version (so no
/// server that predates any of them is connected, nor can connect: it would refuse the schema).
/// When it lacks one, that is a contract migration that waits, as every other was applied when
/// the server started.
async fn has_every(client: &Client) -> Result<bool, StoreError> {
    let versions: Vec<i32> = MIGRATIONS
        .iter()
        .map(|migration| migration.version)
        .collect();
    let row = client
        .query_one(
            "SELECT count(*) FROM schema_migrations WHERE version = ANY($1)",
            &[&versions],
        )
        .await?;
    let applied: i64 = row.get(0);
    Ok(usize::try_from(applied).is_ok_and(|applied| applied == versions.len()))
}

/// [`has_every`], on a connection of `pool`.
pub async fn up_to_date(pool: &Pool) -> Result<bool, StoreError> {
    has_every(&*pool.get().await?).await
}

/// Applies a waiting contract migration once the servers that predate it are gone: checks every
/// `interval` until nothing is left to apply (true) or `shutdown` flips (false). Returns at once
/// when nothing waits, which is the common case.
pub async fn finish_waiting(
    pool: Pool,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> bool {
    loop {
        let attempt = async {
            let mut client = pool.get().await?;
            if has_every(&client).await? {
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
            Ok(Some(None)) => return true,
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
            _ = shutdown.changed() => return false,
            () = tokio::time::sleep(pause) => {}
        }
    }
}
