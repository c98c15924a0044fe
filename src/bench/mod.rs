//! `creditgate bench`: a gRPC load generator for the money path. It funds its own accounts, runs
//! Quote → Authorize → Settle (or Release) loops from many concurrent workers for a bounded time
//! against a loopback address, then prints throughput, latency percentiles per RPC, errors by
//! reason, and the `verify` result.

pub mod history;
mod report;
mod run;
mod setup;
mod watch;

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

use crate::config::DatabaseSettings;

pub use report::Report;

/// Most concurrent workers.
const MAX_WORKERS: usize = 1_024;
/// Most accounts.
const MAX_ACCOUNTS: usize = 100_000;
/// Longest run.
const MAX_DURATION_SECONDS: u64 = 600;
/// Most event watchers.
const MAX_WATCHERS: usize = 1_000;

/// How Authorize is priced in the bench loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pricing {
    /// Quote first, then Authorize with its quote_id.
    Quote,
    /// Authorize with the usage estimate (priced by the server).
    Usage,
    /// Authorize an explicit amount; Settle an explicit amount (no pricing at all).
    Amount,
}

/// Options of `creditgate bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchSettings {
    /// The server to load (loopback addresses only).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub address: String,
    /// Other servers of the same database to load as well (repeat for several): the
    /// connections are opened to each server in turn and the workers take them in turn, so
    /// every account is called through every server.
    #[arg(long)]
    pub also_address: Vec<String>,
    /// API key with scopes worker and billing (or admin).
    #[arg(long, env = "CREDITGATE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// File holding the API key (e.g. <data dir>/demo-api-key).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Concurrent in-flight runs.
    #[arg(long, default_value_t = 64)]
    pub workers: usize,
    /// Accounts the runs spread over (1 = one hot account).
    #[arg(long, default_value_t = 1)]
    pub accounts: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10)]
    pub duration_seconds: u64,
    /// Percent of runs released instead of settled.
    #[arg(long, default_value_t = 10)]
    pub release_percent: u8,
    /// Percent of runs settled above their hold.
    #[arg(long, default_value_t = 10)]
    pub above_percent: u8,
    /// How Authorize is priced.
    #[arg(long, value_enum, default_value_t = Pricing::Quote)]
    pub pricing: Pricing,
    /// Seed of the run mix (same seed, same mix).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// gRPC connections to open (requests are multiplexed over them).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Skip the `verify` check at the end.
    #[arg(long)]
    pub no_verify: bool,
    /// Give every account a daily free allowance and a daily spend limit for one member, and
    /// count every run against that member: the allowance and the limit are then read and
    /// written under the account lock on the hot path (the limit is high enough never to
    /// refuse).
    #[arg(long)]
    pub plans: bool,
    /// Skip the `VACUUM ANALYZE` after funding. By default the tables are vacuumed and their
    /// statistics refreshed once the accounts are funded (as a reference whose tables were just
    /// loaded would be), so the run measures neither plans made for empty tables nor the
    /// autovacuum that funding's inserts set off.
    #[arg(long)]
    pub no_analyze: bool,
    /// WatchEvents streams to hold open during the load, spread over `--address` and the
    /// `--watch-address` replicas; the report's `event` row is commit-to-delivery latency.
    #[arg(long, default_value_t = 0)]
    pub watchers: usize,
    /// Another server of the same database to open watchers on (repeat for several).
    #[arg(long)]
    pub watch_address: Vec<String>,
    /// Grant one credit to a probe account every this many milliseconds during the load, so
    /// events fire whatever the mix (0 = no probe).
    #[arg(long, default_value_t = 0)]
    pub probe_ms: u64,
    #[command(flatten)]
    pub database: DatabaseSettings,
}

impl BenchSettings {
    fn validate(&self) -> anyhow::Result<(SocketAddr, String)> {
        let in_range = |value: usize, max: usize| (1..=max).contains(&value);
        if !in_range(self.workers, MAX_WORKERS)
            || !in_range(self.accounts, MAX_ACCOUNTS)
            || !in_range(self.connections, 64)
        {
            bail!("--workers 1-{MAX_WORKERS}, --accounts 1-{MAX_ACCOUNTS}, --connections 1-64");
        }
        if self.watchers > MAX_WATCHERS || self.probe_ms > 10_000 {
            bail!("--watchers 0-{MAX_WATCHERS}, --probe-ms 0-10000");
        }
        if !(1..=MAX_DURATION_SECONDS).contains(&self.duration_seconds) {
            bail!("--duration-seconds must be 1-{MAX_DURATION_SECONDS}");
        }
        if self.release_percent > 100
            || self.above_percent > 100
            || self.release_percent + self.above_percent > 100
        {
            bail!("--release-percent and --above-percent must add up to at most 100");
        }
        target(
            &self.address,
            self.api_key.as_deref(),
            self.key_file.as_deref(),
        )
    }

    /// The run's length.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_seconds)
    }
}

/// The loopback address to load and the API key to load it with, from `--address` and
/// `--api-key` or `--key-file`.
fn target(
    address: &str,
    api_key: Option<&str>,
    key_file: Option<&std::path::Path>,
) -> anyhow::Result<(SocketAddr, String)> {
    let resolved = address
        .to_socket_addrs()
        .with_context(|| format!("resolving {address}"))?
        .next()
        .with_context(|| format!("{address} resolves to no address"))?;
    if !resolved.ip().is_loopback() {
        bail!("the bench only loads loopback addresses; {resolved} is not one");
    }
    let key = match (api_key, key_file) {
        (Some(key), _) => key.to_owned(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .with_context(|| format!("reading {}", file.display()))?
            .trim()
            .to_owned(),
        (None, None) => bail!("give --api-key (or CREDITGATE_API_KEY) or --key-file"),
    };
    Ok((resolved, key))
}

/// `address` and the other servers `others`, each a loopback address.
fn with_others(
    address: SocketAddr,
    others: &[String],
    key: &str,
) -> anyhow::Result<Vec<SocketAddr>> {
    let mut addresses = vec![address];
    for other in others {
        addresses.push(target(other, Some(key), None)?.0);
    }
    Ok(addresses)
}

/// Runs the bench and prints its report (human-readable, then one JSON line).
pub async fn bench(settings: BenchSettings) -> anyhow::Result<()> {
    let (address, key) = settings.validate()?;
    let addresses = with_others(address, &settings.also_address, &key)?;
    let clients = setup::Clients::connect(&addresses, &key, settings.connections).await?;
    // The database, for VACUUM ANALYZE after funding and verify at the end: opened once, if
    // needed.
    let database = if settings.no_analyze && settings.no_verify {
        None
    } else {
        Some(crate::app::open_database(&settings.database).await?)
    };
    let result = load(&settings, &clients, database.as_ref()).await;
    if let Some(database) = database {
        database.close().await;
    }
    let report = result?;
    print!("{}", report.human(&settings));
    println!("{}", report.json(&settings));
    if report.verify.as_ref().is_some_and(|found| *found > 0) {
        bail!("verify found discrepancies");
    }
    Ok(())
}

async fn load(
    settings: &BenchSettings,
    clients: &setup::Clients,
    database: Option<&crate::app::Database>,
) -> anyhow::Result<report::Report> {
    eprintln!("bench: funding {} account(s)", settings.accounts);
    let accounts = setup::fund_accounts(clients, settings.accounts, settings.plans).await?;
    let client = match database {
        Some(database) => Some(
            database
                .pool
                .get()
                .await
                .map_err(crate::store::StoreError::from)?,
        ),
        None => None,
    };
    if let (false, Some(client)) = (settings.no_analyze, &client) {
        client.batch_execute("VACUUM ANALYZE").await?;
    }
    eprintln!(
        "bench: {} workers for {} s",
        settings.workers, settings.duration_seconds
    );
    let watchers = if settings.watchers > 0 {
        let (address, key) = settings.validate()?;
        let addresses = with_others(address, &settings.watch_address, &key)?;
        eprintln!(
            "bench: {} event watchers on {} server(s)",
            settings.watchers,
            addresses.len()
        );
        Some(watch::start(&addresses, &key, settings.watchers).await?)
    } else {
        None
    };
    let prober = if settings.probe_ms > 0 {
        Some(watch::probe(clients, Duration::from_millis(settings.probe_ms)).await?)
    } else {
        None
    };
    let before = match &client {
        Some(client) => Some(crate::store::footprint::footprint(client).await?),
        None => None,
    };
    let mut report = run::run(clients, &accounts, settings).await;
    if let Some((stop, task)) = prober {
        let _ = stop.send(true);
        let granted = task.await.context("the prober panicked")??;
        eprintln!("bench: {granted} probe grants");
    }
    if let Some(watchers) = watchers {
        let samples = watchers.finish().await?;
        eprintln!("bench: {} events delivered to the watchers", samples.len());
        report.samples.insert("event", samples);
    }
    if let (Some(before), Some(client)) = (before, &client) {
        let after = crate::store::footprint::footprint(client).await?;
        report.footprint = Some(report::Footprint {
            wal_bytes: after.wal_bytes - before.wal_bytes,
            table_bytes: after.table_bytes - before.table_bytes,
        });
    }
    if let (false, Some(client)) = (settings.no_verify, &client) {
        let found = crate::store::verify::verify(client).await?;
        for discrepancy in &found {
            eprintln!(
                "discrepancy: {}: {}: {}",
                discrepancy.check, discrepancy.subject, discrepancy.detail
            );
        }
        report.verify = Some(found.len());
    }
    Ok(report)
}
