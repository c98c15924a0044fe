//! Settings: compiled-in defaults, overridden by environment variables and flags (clap reads
//! both), then validated once at start. Each setting documents itself in `--help`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::store::PoolLimits;

mod serve;

pub use serve::ServeSettings;

/// Largest database pool; more connections only add contention on 1–2 hot rows.
const MAX_POOL_SIZE: usize = 512;
/// Largest request message accepted, in bytes.
pub(crate) const MAX_REQUEST_BYTES_LIMIT: usize = 16 * 1024 * 1024;

/// Where the data lives: an external Postgres, or a private one run from the installed binaries.
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// Postgres connection URL (postgres://user:password@host:port/db). Unset: run a private
    /// Postgres in --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Folder of the private Postgres, its password and the demo key. Default: the user's data
    /// folder (~/.local/share/creditgate), or /var/lib/creditgate as root.
    #[arg(long, env = "CREDITGATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Folder with the Postgres server binaries (initdb, postgres). Default: `pg_config
    /// --bindir`, then the newest /usr/lib/postgresql/*/bin.
    #[arg(long, env = "CREDITGATE_PG_BIN_DIR")]
    pub pg_bin_dir: Option<PathBuf>,

    /// Most database connections in the pool.
    #[arg(long, env = "CREDITGATE_DB_POOL_SIZE", default_value_t = 32)]
    pub db_pool_size: usize,

    /// Longest one SQL statement may run, in milliseconds.
    #[arg(long, env = "CREDITGATE_STATEMENT_TIMEOUT_MS", default_value_t = 5_000)]
    pub statement_timeout_ms: u64,

    /// Longest a statement waits for a row lock, in milliseconds.
    #[arg(long, env = "CREDITGATE_LOCK_TIMEOUT_MS", default_value_t = 2_000)]
    pub lock_timeout_ms: u64,
}

impl DatabaseSettings {
    /// The data folder, with the default applied.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    /// Pool limits, validated.
    pub fn pool_limits(&self) -> Result<PoolLimits, ConfigError> {
        check_range("--db-pool-size", self.db_pool_size, 1, MAX_POOL_SIZE)?;
        check_range(
            "--statement-timeout-ms",
            self.statement_timeout_ms,
            100,
            600_000,
        )?;
        check_range("--lock-timeout-ms", self.lock_timeout_ms, 10, 600_000)?;
        Ok(PoolLimits {
            max_connections: self.db_pool_size,
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
            lock_timeout: Duration::from_millis(self.lock_timeout_ms),
            acquire_timeout: Duration::from_millis(self.statement_timeout_ms),
        })
    }
}

/// Limits of the money path.
#[derive(Debug, Clone, Args)]
pub struct MoneySettings {
    /// Largest amount accepted in any request, in credits.
    #[arg(long, env = "CREDITGATE_MAX_AMOUNT", default_value = "1000000000")]
    pub max_amount: String,

    /// Hold TTL when Authorize sends none, in seconds.
    #[arg(
        long,
        env = "CREDITGATE_DEFAULT_HOLD_TTL_SECONDS",
        default_value_t = 900
    )]
    pub default_hold_ttl_seconds: u32,

    /// Longest hold TTL accepted (Authorize and ExtendHold), in seconds.
    #[arg(
        long,
        env = "CREDITGATE_MAX_HOLD_TTL_SECONDS",
        default_value_t = 86_400
    )]
    pub max_hold_ttl_seconds: u32,

    /// Most partial captures on one hold.
    #[arg(long, env = "CREDITGATE_MAX_PARTIAL_CAPTURES", default_value_t = 100)]
    pub max_partial_captures: i32,

    /// Validity of a REFUND grant made when the refunded credits' grant had expired, in days.
    #[arg(long, env = "CREDITGATE_REFUND_GRANT_DAYS", default_value_t = 30)]
    pub refund_grant_days: u32,

    /// How long a quote can be used by Authorize, in seconds.
    #[arg(long, env = "CREDITGATE_QUOTE_TTL_SECONDS", default_value_t = 600)]
    pub quote_ttl_seconds: u32,

    /// How long idempotency records are kept, in days (at least 7).
    #[arg(
        long,
        env = "CREDITGATE_IDEMPOTENCY_RETENTION_DAYS",
        default_value_t = 7
    )]
    pub idempotency_retention_days: u32,

    /// Pause between background sweeps (hold and grant expiry, retention), in milliseconds.
    #[arg(long, env = "CREDITGATE_SWEEP_INTERVAL_MS", default_value_t = 1_000)]
    pub sweep_interval_ms: u64,

    /// Most accounts one sweep touches.
    #[arg(long, env = "CREDITGATE_SWEEP_BATCH", default_value_t = 100)]
    pub sweep_batch: i64,

    /// How long before a grant with credits left expires CREDITS_EXPIRING fires, in hours.
    #[arg(long, env = "CREDITGATE_EXPIRY_WARNING_HOURS", default_value_t = 72)]
    pub expiry_warning_hours: u32,

    /// How long events are kept for WatchEvents cursors, in days.
    #[arg(long, env = "CREDITGATE_EVENT_RETENTION_DAYS", default_value_t = 7)]
    pub event_retention_days: u32,

    /// Longest a committed event waits for WatchEvents when its notification is lost, in ms.
    #[arg(long, env = "CREDITGATE_EVENT_POLL_MS", default_value_t = 1_000)]
    pub event_poll_ms: u64,

    /// Most WatchEvents streams one tenant may hold open on one server.
    #[arg(
        long,
        env = "CREDITGATE_WATCH_STREAMS_PER_TENANT",
        default_value_t = 64
    )]
    pub watch_streams_per_tenant: usize,

    /// Events buffered per WatchEvents stream; a consumer that lets it fill is disconnected.
    #[arg(long, env = "CREDITGATE_WATCH_BUFFER", default_value_t = 1_024)]
    pub watch_buffer: usize,

    /// Longest a WatchEvents stream with a full buffer waits for its consumer to take an event
    /// before ending it (a reading consumer takes one within milliseconds), in seconds.
    #[arg(long, env = "CREDITGATE_WATCH_STALL_SECONDS", default_value_t = 30)]
    pub watch_stall_seconds: u64,
    /// Pause between webhook delivery ticks, in milliseconds (at most 1,000); 0: this replica
    /// delivers no webhooks (others do).
    #[arg(long, env = "CREDITGATE_WEBHOOK_INTERVAL_MS", default_value_t = 1_000)]
    pub webhook_interval_ms: u64,
    /// Pause between runs that make the journal's monthly partitions three months ahead, in
    /// seconds (at most 86,400); 0: this replica makes none (others do).
    #[arg(
        long,
        env = "CREDITGATE_PARTITION_INTERVAL_SECONDS",
        default_value_t = 3_600
    )]
    pub partition_interval_seconds: u64,
}

impl MoneySettings {
    /// The limits, validated.
    pub fn limits(&self) -> Result<MoneyLimits, ConfigError> {
        let max_amount = crate::money::parse_amount(
            &self.max_amount,
            crate::money::Credits::whole(1_000_000_000_000_000),
            false,
        )
        .map_err(|error| ConfigError(format!("--max-amount: {error}")))?;
        check_range(
            "--default-hold-ttl-seconds",
            self.default_hold_ttl_seconds,
            1,
            self.max_hold_ttl_seconds,
        )?;
        check_range(
            "--max-hold-ttl-seconds",
            self.max_hold_ttl_seconds,
            1,
            30 * 86_400,
        )?;
        check_range(
            "--max-partial-captures",
            self.max_partial_captures,
            1,
            10_000,
        )?;
        check_range("--refund-grant-days", self.refund_grant_days, 1, 3_650)?;
        check_range("--quote-ttl-seconds", self.quote_ttl_seconds, 1, 86_400)?;
        check_range(
            "--idempotency-retention-days",
            self.idempotency_retention_days,
            7,
            3_650,
        )?;
        check_range("--sweep-interval-ms", self.sweep_interval_ms, 10, 3_600_000)?;
        check_range("--sweep-batch", self.sweep_batch, 1, 10_000)?;
        check_range(
            "--expiry-warning-hours",
            self.expiry_warning_hours,
            1,
            8_760,
        )?;
        check_range(
            "--event-retention-days",
            self.event_retention_days,
            1,
            3_650,
        )?;
        check_range("--event-poll-ms", self.event_poll_ms, 10, 60_000)?;
        check_range(
            "--watch-streams-per-tenant",
            self.watch_streams_per_tenant,
            1,
            10_000,
        )?;
        check_range("--watch-buffer", self.watch_buffer, 16, 100_000)?;
        check_range("--watch-stall-seconds", self.watch_stall_seconds, 1, 3_600)?;
        check_range("--webhook-interval-ms", self.webhook_interval_ms, 0, 1_000)?;
        check_range(
            "--partition-interval-seconds",
            self.partition_interval_seconds,
            0,
            86_400,
        )?;
        Ok(MoneyLimits {
            max_amount,
            default_hold_ttl: chrono::Duration::seconds(i64::from(self.default_hold_ttl_seconds)),
            max_hold_ttl_seconds: self.max_hold_ttl_seconds,
            max_partial_captures: self.max_partial_captures,
            refund_grant_ttl: chrono::Duration::days(i64::from(self.refund_grant_days)),
            quote_ttl: chrono::Duration::seconds(i64::from(self.quote_ttl_seconds)),
            idempotency_retention: Duration::from_secs(
                u64::from(self.idempotency_retention_days) * 86_400,
            ),
            sweep_interval: Duration::from_millis(self.sweep_interval_ms),
            sweep_batch: self.sweep_batch,
            expiry_warning: chrono::Duration::hours(i64::from(self.expiry_warning_hours)),
            event_retention: Duration::from_secs(u64::from(self.event_retention_days) * 86_400),
            event_poll_interval: Duration::from_millis(self.event_poll_ms),
            watch_streams_per_tenant: self.watch_streams_per_tenant,
            watch_buffer: self.watch_buffer,
            watch_stall_timeout: Duration::from_secs(self.watch_stall_seconds),
            webhook_interval: Duration::from_millis(self.webhook_interval_ms),
            partition_interval: Duration::from_secs(self.partition_interval_seconds),
        })
    }
}

/// Validated limits of the money path.
#[derive(Debug, Clone, Copy)]
pub struct MoneyLimits {
    /// Largest amount accepted.
    pub max_amount: crate::money::Credits,
    /// Hold TTL when none is sent.
    pub default_hold_ttl: chrono::Duration,
    /// Longest hold TTL, in seconds.
    pub max_hold_ttl_seconds: u32,
    /// Most partial captures per hold.
    pub max_partial_captures: i32,
    /// Validity of REFUND grants.
    pub refund_grant_ttl: chrono::Duration,
    /// Validity of quotes.
    pub quote_ttl: chrono::Duration,
    /// Idempotency record retention.
    pub idempotency_retention: Duration,
    /// Pause between sweeps.
    pub sweep_interval: Duration,
    /// Accounts per sweep.
    pub sweep_batch: i64,
    /// How long before a grant expires CREDITS_EXPIRING fires.
    pub expiry_warning: chrono::Duration,
    /// How long events are kept.
    pub event_retention: Duration,
    /// Longest the event reader sleeps without a notification.
    pub event_poll_interval: Duration,
    /// Most WatchEvents streams per tenant per server.
    pub watch_streams_per_tenant: usize,
    /// Events buffered per WatchEvents stream.
    pub watch_buffer: usize,
    /// Longest a stream with a full buffer waits for its consumer before it is ended.
    pub watch_stall_timeout: Duration,
    /// Pause between webhook delivery ticks; zero: no delivery on this replica.
    pub webhook_interval: Duration,
    /// Pause between partition maintenance runs; zero: none on this replica.
    pub partition_interval: Duration,
}

impl Default for MoneyLimits {
    fn default() -> Self {
        MoneyLimits {
            max_amount: crate::money::Credits::whole(1_000_000_000),
            default_hold_ttl: chrono::Duration::seconds(900),
            max_hold_ttl_seconds: 86_400,
            max_partial_captures: 100,
            refund_grant_ttl: chrono::Duration::days(30),
            quote_ttl: chrono::Duration::seconds(600),
            idempotency_retention: Duration::from_secs(7 * 86_400),
            sweep_interval: Duration::from_secs(1),
            sweep_batch: 100,
            expiry_warning: chrono::Duration::hours(72),
            event_retention: Duration::from_secs(7 * 86_400),
            event_poll_interval: Duration::from_secs(1),
            watch_streams_per_tenant: 64,
            watch_buffer: 1_024,
            watch_stall_timeout: Duration::from_secs(30),
            webhook_interval: Duration::from_secs(1),
            partition_interval: Duration::from_secs(3_600),
        }
    }
}

/// A setting out of its bounds.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

pub(crate) fn check_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    low: T,
    high: T,
) -> Result<(), ConfigError> {
    if value < low || value > high {
        return Err(ConfigError(format!(
            "{name} is {value}: expected {low} to {high}"
        )));
    }
    Ok(())
}

fn default_data_dir() -> PathBuf {
    // Postgres runs as `postgres` when we are root, and cannot enter root's home folder.
    if nix::unistd::Uid::effective().is_root() {
        return PathBuf::from("/var/lib/creditgate");
    }
    dirs::data_dir()
        .map(|dir| dir.join("creditgate"))
        .unwrap_or_else(|| PathBuf::from(".creditgate"))
}
