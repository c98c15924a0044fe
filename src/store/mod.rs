//! Postgres: connection pool, migrations, SQL and the private cluster. The only module that
//! speaks SQL; callers get typed rows and a [`StoreError`] classified by SQLSTATE.

pub mod accounts;
pub mod book;
pub mod catalog;
pub mod cluster;
pub mod events;
pub mod footprint;
pub mod gauges;
pub mod holds;
pub mod idempotency;
pub mod migrate;
pub mod partitions;
mod read_sql;
mod redacted;
mod rows;
pub mod secrets;
pub mod tenants;
pub mod tls;
pub mod usage;
pub mod verify;
pub mod webhooks;
mod write_columns;
mod write_rows;
mod write_sql;
mod write_table;
mod writes;

pub use self::writes::HoldForm;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;

/// Connection limits applied to every pooled connection.
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    /// Most connections the pool opens.
    pub max_connections: usize,
    /// Longest a statement may run before Postgres cancels it.
    pub statement_timeout: Duration,
    /// Longest a statement waits for a row lock before failing.
    pub lock_timeout: Duration,
    /// Longest a request waits for a free pooled connection.
    pub acquire_timeout: Duration,
}

/// Why a database call failed, classified so callers can tell "retry later" from "bug".
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or the connection broke; safe to retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A statement or lock wait ran past its timeout; safe to retry.
    #[error("database timed out: {0}")]
    Timeout(String),
    /// A unique constraint rejected the write.
    #[error("unique constraint {constraint} violated")]
    UniqueViolation {
        /// The constraint's name.
        constraint: String,
    },
    /// The database refused a statement for what it carried (a value out of range, a
    /// constraint, a limit): retrying the same data fails the same way.
    #[error("database refused the statement: {sqlstate}: {message}")]
    Refused {
        /// The SQLSTATE, e.g. `22008`.
        sqlstate: String,
        /// Postgres's message (may quote the data; logged, never sent to callers).
        message: String,
    },
    /// The stored schema does not match this binary's migrations.
    #[error("{0}")]
    Schema(String),
    /// Anything else: a bug or a broken invariant.
    #[error("database error: {0}")]
    Other(String),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        classify(&error)
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(error) => classify(&error),
            deadpool_postgres::PoolError::Timeout(_) => {
                StoreError::Timeout("no free database connection in time".to_owned())
            }
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// The one place where Postgres errors are sorted by SQLSTATE.
fn classify(error: &tokio_postgres::Error) -> StoreError {
    let Some(database_error) = error.as_db_error() else {
        // A broken socket (reset, closed, timed out) is a connection problem: retry.
        let io =
            std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>());
        return if io || error.is_closed() || error.to_string().contains("connect") {
            StoreError::Unavailable(error.to_string())
        } else {
            StoreError::Other(error.to_string())
        };
    };
    let code = database_error.code();
    if *code == SqlState::UNIQUE_VIOLATION {
        StoreError::UniqueViolation {
            constraint: database_error.constraint().unwrap_or("unknown").to_owned(),
        }
    } else if *code == SqlState::QUERY_CANCELED
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
    {
        StoreError::Timeout(database_error.message().to_owned())
    } else if code.code().starts_with("08")
        || code.code().starts_with("57P")
        || *code == SqlState::TOO_MANY_CONNECTIONS
    {
        StoreError::Unavailable(database_error.message().to_owned())
    } else if ["22", "23", "42", "54", "P0"]
        .iter()
        .any(|class| code.code().starts_with(class))
    {
        // Data exceptions, integrity constraints, statement errors, program limits, raised
        // exceptions: what the statement carried was refused.
        StoreError::Refused {
            sqlstate: code.code().to_owned(),
            message: database_error.message().to_owned(),
        }
    } else {
        StoreError::Other(format!("{}: {}", code.code(), database_error.message()))
    }
}

impl StoreError {
    /// The SQLSTATE of a refused statement.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            StoreError::Refused { sqlstate, .. } => Some(sqlstate),
            StoreError::UniqueViolation { .. } => Some("23505"),
            _ => None,
        }
    }
}

/// Builds a pool over `config` without TLS, applying the limits to every connection it opens.
pub fn connect_pool(
    config: tokio_postgres::Config,
    limits: PoolLimits,
) -> Result<Pool, StoreError> {
    let plain = tls::connector(&tls::PgTls {
        mode: tls::PgSslMode::Disable,
        root_cert: None,
    })
    .map_err(StoreError::Other)?;
    connect_pool_with(config, plain, limits)
}

/// Builds a pool over `config` whose connections use `connector` as `config`'s sslmode says.
pub fn connect_pool_with(
    mut config: tokio_postgres::Config,
    connector: tls::PgConnector,
    limits: PoolLimits,
) -> Result<Pool, StoreError> {
    config.application_name(migrate::application_name());
    config.connect_timeout(Duration::from_secs(10));
    // A connection whose peer vanished (a half-open socket) is found and closed, instead of
    // holding a transaction's slot until the process restarts.
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    config.keepalives_interval(Duration::from_secs(5));
    config.keepalives_retries(3);
    // JIT off: every statement is an index lookup or a bounded scan, and compiling one whose
    // estimate crossed `jit_above_cost` on a large table adds milliseconds it cannot win back.
    config.options(format!(
        "-c statement_timeout={} -c lock_timeout={} -c jit=off",
        limits.statement_timeout.as_millis(),
        limits.lock_timeout.as_millis()
    ));
    let manager = Manager::from_config(
        config,
        connector.make(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(limits.max_connections)
        .wait_timeout(Some(limits.acquire_timeout))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|error| StoreError::Other(error.to_string()))
}
