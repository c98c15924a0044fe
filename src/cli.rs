//! The command line: `serve`, `migrate`, `verify`, `bench`, `catalog`, `tenant create`, `key create|list|revoke`,
//! `usage export`, `events tail`, `webhooks`.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::app::{self, Database};
use crate::auth::ScopeSet;
use crate::config::{DatabaseSettings, ServeSettings};
use std::sync::Arc;

use crate::clock::SystemClock;
use crate::config::MoneyLimits;
use crate::pricing::Catalog;
use crate::service::access::Caller;
use crate::service::idempotency::{Fingerprint, Rpc};
use crate::service::{Context, catalog, demo, tenants};
use crate::store::StoreError;

mod events;
mod keys;
mod usage;
mod webhooks;

/// creditgate: credit holds, settlement and balances for AI platforms, over gRPC.
#[derive(Debug, Parser)]
#[command(name = "creditgate", version, about)]
pub struct Cli {
    /// Log format on stderr; levels come from RUST_LOG (default `info`).
    #[arg(long, global = true, env = "CREDITGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// Whether this command serves the Prometheus endpoint, so metrics must be kept.
    pub fn serves_metrics(&self) -> bool {
        matches!(&self.command, Command::Serve { serve, .. } if serve.metrics_listen.is_some())
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve gRPC. Without DATABASE_URL, runs a private Postgres in --data-dir, creates tenant
    /// `demo` on first start and prints its API key.
    Serve {
        #[command(flatten)]
        database: DatabaseSettings,
        #[command(flatten)]
        serve: ServeSettings,
    },
    /// Apply the database migrations this database lacks, then exit. A migration that breaks
    /// the servers of the version before it waits while any is connected, or while requests
    /// hold its tables' locks (it says so and exits 0); a server of this version applies it
    /// once they are gone.
    Migrate {
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Recompute every cached balance from the journal; print discrepancies and exit non-zero
    /// if there are any.
    Verify {
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Load a running server with Quote → Authorize → Settle/Release runs (loopback only) and
    /// report throughput, latency percentiles, errors and the verify result.
    Bench {
        #[command(flatten)]
        settings: crate::bench::BenchSettings,
    },
    /// Read back one account's long usage history (loopback only; bench/history.sh loads it):
    /// ListUsage pages under each filter beside GetBalance, GetUsageSummary, a full
    /// ExportUsage and the server's memory growth during it.
    BenchHistory {
        #[command(flatten)]
        settings: crate::bench::history::HistorySettings,
    },
    /// Publish or show a tenant's pricing catalog.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Manage tenants (platforms using creditgate).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        command: keys::KeyCommand,
    },
    /// Usage history from the command line.
    Usage {
        #[command(subcommand)]
        command: usage::UsageCommand,
    },
    /// Events from the command line.
    Events {
        #[command(subcommand)]
        command: events::EventsCommand,
    },
    /// Manage a tenant's webhook endpoints.
    Webhooks {
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Publish a catalog file (TOML, the shape of catalog/default.toml) as the tenant's next
    /// version; prints the version.
    Publish {
        /// The catalog file.
        file: std::path::PathBuf,
        /// The tenant whose catalog it is.
        #[arg(long, default_value = "demo")]
        tenant: String,
        /// When it takes effect (RFC 3339); default now.
        #[arg(long)]
        effective_at: Option<chrono::DateTime<chrono::Utc>>,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Print a catalog version as TOML (the active one by default).
    Show {
        /// The tenant whose catalog it is.
        #[arg(long, default_value = "demo")]
        tenant: String,
        /// The version; the active one when omitted.
        #[arg(long)]
        version: Option<i64>,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints its id.
    Create {
        /// Tenant name: 1-63 lowercase letters, digits, '-' or '_'.
        name: String,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { database, serve } => run_serve(&database, &serve).await,
        Command::BenchHistory { settings } => crate::bench::history::bench_history(settings).await,
        Command::Migrate { database } => {
            let database = app::open_database(&database).await?;
            match &database.waiting {
                None => println!("database schema is up to date"),
                Some(waiting) => println!("{waiting}"),
            }
            database.close().await;
            Ok(())
        }
        Command::Verify { database } => {
            with_database(&database, async |db| {
                let client = db.pool.get().await.map_err(StoreError::from)?;
                let found = crate::store::verify::verify(&client).await?;
                for discrepancy in &found {
                    println!(
                        "discrepancy: {}: {}: {}",
                        discrepancy.check, discrepancy.subject, discrepancy.detail
                    );
                }
                println!(
                    "verify: {} checks, {} discrepancies",
                    crate::store::verify::CHECK_COUNT,
                    found.len()
                );
                if found.is_empty() {
                    Ok(())
                } else {
                    anyhow::bail!("{} discrepancies", found.len())
                }
            })
            .await
        }
        Command::Catalog { command } => run_catalog(command).await,
        Command::Usage { command } => usage::run(command).await,
        Command::Events { command } => events::run(command).await,
        Command::Webhooks { command } => webhooks::run(command).await,
        Command::Bench { settings } => crate::bench::bench(settings).await,
        Command::Tenant {
            command: TenantCommand::Create { name, database },
        } => {
            with_database(&database, async |db| {
                let client = db.pool.get().await.map_err(StoreError::from)?;
                let tenant = tenants::create_tenant(&client, &name).await?;
                println!("{}", tenant.tenant_id);
                eprintln!("created tenant {name}");
                Ok(())
            })
            .await
        }
        Command::Key { command } => keys::run(command).await,
    }
}

async fn run_catalog(command: CatalogCommand) -> anyhow::Result<()> {
    let (tenant, database) = match &command {
        CatalogCommand::Publish {
            tenant, database, ..
        }
        | CatalogCommand::Show {
            tenant, database, ..
        } => (tenant.clone(), database.clone()),
    };
    with_database(&database, async |db| {
        let client = db.pool.get().await.map_err(StoreError::from)?;
        let tenant = tenants::find_tenant(&client, &tenant).await?;
        drop(client);
        let caller = Caller {
            tenant_id: tenant.tenant_id,
            key_id: uuid::Uuid::nil(),
            scopes: ScopeSet::all(),
        };
        let context = Context::new(
            db.pool.clone(),
            Arc::new(SystemClock),
            MoneyLimits::default(),
        );
        match command {
            CatalogCommand::Publish {
                file, effective_at, ..
            } => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let catalog = Catalog::from_toml(&text)?;
                let key = format!("cli-publish-{}", uuid::Uuid::now_v7());
                let fingerprint = Fingerprint::new(&key, Rpc::PublishCatalog, text.into_bytes())?;
                let encode = |published: &Catalog| published.version.to_be_bytes().to_vec();
                let bytes =
                    catalog::publish(&context, caller, catalog, effective_at, fingerprint, encode)
                        .await?;
                let version = i64::from_be_bytes(bytes.try_into().unwrap_or_default());
                println!("{version}");
                eprintln!(
                    "published catalog version {version} for tenant {}",
                    tenant.name
                );
            }
            CatalogCommand::Show { version, .. } => {
                let catalog = match version {
                    Some(version) => catalog::version(&context, tenant.tenant_id, version).await?,
                    None => catalog::active(&context, tenant.tenant_id).await?,
                };
                print!("{}", catalog.to_toml());
            }
        }
        Ok(())
    })
    .await
}

async fn with_database(
    settings: &DatabaseSettings,
    work: impl AsyncFnOnce(&Database) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let database = app::open_database(settings).await?;
    let result = work(&database).await;
    database.close().await;
    result
}

async fn run_serve(database: &DatabaseSettings, serve: &ServeSettings) -> anyhow::Result<()> {
    serve.validate()?;
    let mut database = app::open_database(database).await?;
    database.keep_cluster_running();
    let result = async {
        if let Some(data_dir) = &database.data_dir {
            let key = demo::ensure_demo_key(&database.pool, data_dir).await?;
            print_demo_key(&key, serve);
        }
        let shutdown = app::shutdown_signal()?;
        let listener = TcpListener::bind(serve.listen)
            .await
            .with_context(|| format!("binding {}", serve.listen))?;
        let metrics = match app::bind_metrics(serve).await? {
            Some(metrics) => {
                let address = metrics.local_addr()?;
                println!("creditgate metrics on {address}");
                tracing::info!(%address, "serving metrics");
                Some(app::serve_metrics(metrics))
            }
            None => None,
        };
        let address = listener.local_addr()?;
        println!("creditgate listening on {address}");
        tracing::info!(%address, "serving grpc");
        let mut context = app::context(database.pool.clone(), serve)?;
        context.listen = Some((database.config.clone(), database.connector.clone()));
        let served = app::serve(listener, context, serve, shutdown).await;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        served
    }
    .await;
    database.close().await;
    result
}

fn print_demo_key(key: &demo::DemoKey, serve: &ServeSettings) {
    if key.created {
        println!(
            "created tenant `demo` with an all-scopes API key: {}",
            key.secret
        );
    }
    println!("demo API key is in {}", key.path.display());
    println!(
        "try: grpcurl -plaintext -H \"authorization: Bearer $(cat {})\" -d '{{\"idempotency_key\":\"try-1\",\"external_id\":\"org-1\",\"kind\":\"ACCOUNT_KIND_ORGANIZATION\"}}' {} creditgate.v1.AccountService/CreateAccount",
        key.path.display(),
        serve.listen
    );
}
