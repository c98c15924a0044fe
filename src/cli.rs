//! The command line: `serve`, `migrate`, `tenant create`, `key create`.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::app::{self, Database};
use crate::auth::ScopeSet;
use crate::config::{DatabaseSettings, ServeSettings};
use crate::service::{demo, tenants};
use crate::store::StoreError;

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
    /// Apply the database migrations this database lacks, then exit.
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
    /// Manage tenants (platforms using creditgate).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
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

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an API key and print it once (it is stored hashed and cannot be shown again).
    Create {
        /// The tenant the key belongs to.
        #[arg(long)]
        tenant: String,
        /// Comma-separated scopes: worker (CreditService), billing (account writes), reader
        /// (reads), admin (catalog, everything).
        #[arg(long, value_parser = ScopeSet::parse_list)]
        scopes: ScopeSet,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { database, serve } => run_serve(&database, &serve).await,
        Command::Migrate { database } => {
            let database = app::open_database(&database).await?;
            println!("database schema is up to date");
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
        Command::Key {
            command:
                KeyCommand::Create {
                    tenant,
                    scopes,
                    database,
                },
        } => {
            with_database(&database, async |db| {
                let client = db.pool.get().await.map_err(StoreError::from)?;
                let tenant = tenants::find_tenant(&client, &tenant).await?;
                let key = tenants::create_key(&client, tenant.tenant_id, scopes).await?;
                println!("{}", key.secret);
                eprintln!(
                    "created key {} for tenant {} with scopes {scopes}; it is shown only this once",
                    key.key_id, tenant.name
                );
                Ok(())
            })
            .await
        }
    }
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
    let database = app::open_database(database).await?;
    let result = async {
        if let Some(data_dir) = &database.data_dir {
            let key = demo::ensure_demo_key(&database.pool, data_dir).await?;
            print_demo_key(&key, serve);
        }
        let listener = TcpListener::bind(serve.listen)
            .await
            .with_context(|| format!("binding {}", serve.listen))?;
        let address = listener.local_addr()?;
        println!("creditgate listening on {address}");
        tracing::info!(%address, "serving grpc");
        let context = app::context(database.pool.clone(), serve)?;
        app::serve(listener, context, serve, app::shutdown_signal()).await
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
