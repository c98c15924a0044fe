//! `creditgate webhooks`: register, list, resume and delete a tenant's webhook endpoints and
//! show their delivery attempts, straight against the database.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;

use super::with_database;
use crate::clock::SystemClock;
use crate::config::{DatabaseSettings, MoneyLimits};
use crate::service::idempotency::{Fingerprint, Rpc};
use crate::service::webhooks::{self, Endpoint, Registration, WebhookUrl};
use crate::service::{Context, tenants};
use crate::store::StoreError;

#[derive(Debug, Subcommand)]
pub(super) enum WebhooksCommand {
    /// Registers an endpoint; prints its id, then its signing secret (shown only now).
    Create {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Where events are POSTed (http or https).
        #[arg(long)]
        url: String,
        /// Only this account's events (its id).
        #[arg(long)]
        account: Option<String>,
        /// Only events of this type (repeat for several): BALANCE_LOW, CREDITS_EXPIRING,
        /// CREDITS_EXPIRED, HOLD_EXPIRED, DEBT_INCURRED, GRANT_ADDED. None: all.
        #[arg(long = "type")]
        types: Vec<String>,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Lists the tenant's endpoints: id, status, failed attempts, url.
    List {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Makes a paused endpoint active again; its head event is retried now.
    Resume {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Endpoint id.
        #[arg(long)]
        endpoint: String,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Deletes an endpoint and its delivery history.
    Delete {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Endpoint id.
        #[arg(long)]
        endpoint: String,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Shows an endpoint's latest delivery attempts, newest first.
    Deliveries {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Endpoint id.
        #[arg(long)]
        endpoint: String,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

impl WebhooksCommand {
    fn target(&self) -> (&str, &DatabaseSettings) {
        match self {
            WebhooksCommand::Create {
                tenant, database, ..
            }
            | WebhooksCommand::List { tenant, database }
            | WebhooksCommand::Resume {
                tenant, database, ..
            }
            | WebhooksCommand::Delete {
                tenant, database, ..
            }
            | WebhooksCommand::Deliveries {
                tenant, database, ..
            } => (tenant, database),
        }
    }
}

fn print_endpoint(endpoint: &Endpoint) {
    println!(
        "{}\t{:?}\t{}\t{}",
        endpoint.endpoint_id, endpoint.status, endpoint.attempts, endpoint.url
    );
}

fn registration(
    url: &str,
    account: Option<&str>,
    types: &[String],
) -> anyhow::Result<Registration> {
    let event_types = types
        .iter()
        .map(|name| {
            webhooks::EventType::from_name(name)
                .with_context(|| format!("--type {name}: not an event type"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Registration {
        url: WebhookUrl::parse(url)?,
        account_id: account
            .map(str::parse)
            .transpose()
            .context("--account is not an account id")?,
        event_types,
    })
}

pub(super) async fn run(command: WebhooksCommand) -> anyhow::Result<()> {
    let (tenant, database) = command.target();
    let (tenant, database) = (tenant.to_owned(), database.clone());
    with_database(&database, async |db| {
        let client = db.pool.get().await.map_err(StoreError::from)?;
        let tenant = tenants::find_tenant(&client, &tenant).await?;
        drop(client);
        let context = Context::new(
            db.pool.clone(),
            Arc::new(SystemClock),
            MoneyLimits::default(),
        );
        let tenant_id = tenant.tenant_id;
        match command {
            WebhooksCommand::Create {
                url,
                account,
                types,
                ..
            } => {
                let registration = registration(&url, account.as_deref(), &types)?;
                let key = format!("cli-webhook-{}", uuid::Uuid::now_v7());
                let fingerprint =
                    Fingerprint::new(&key, Rpc::CreateWebhookEndpoint, url.into_bytes())?;
                let mut created = None;
                webhooks::create(&context, tenant_id, registration, &fingerprint, |new| {
                    created = Some(new.clone());
                    Vec::new()
                })
                .await?;
                let created = created.context("the endpoint was not created")?;
                println!("{}", created.endpoint.endpoint_id);
                println!("{}", created.secret);
                eprintln!("the secret is shown only now: keep it to verify signatures");
            }
            WebhooksCommand::List { .. } => {
                let mut token = String::new();
                loop {
                    let page = webhooks::list(&context, tenant_id, &token, 100).await?;
                    page.rows.iter().for_each(print_endpoint);
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    token = page.next_page_token;
                }
            }
            WebhooksCommand::Resume { endpoint, .. } => {
                let endpoint_id = endpoint.parse().context("--endpoint is not an id")?;
                print_endpoint(&webhooks::resume(&context, tenant_id, endpoint_id).await?);
            }
            WebhooksCommand::Delete { endpoint, .. } => {
                let endpoint_id = endpoint.parse().context("--endpoint is not an id")?;
                print_endpoint(&webhooks::delete(&context, tenant_id, endpoint_id).await?);
            }
            WebhooksCommand::Deliveries { endpoint, .. } => {
                let endpoint_id = endpoint.parse().context("--endpoint is not an id")?;
                let page = webhooks::deliveries(&context, tenant_id, endpoint_id, "", 100).await?;
                for attempt in page.rows {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        attempt.attempted_at.to_rfc3339(),
                        attempt.event_id,
                        attempt.attempt,
                        attempt.http_status.unwrap_or(0),
                        attempt.error.as_deref().unwrap_or("delivered"),
                    );
                }
            }
        }
        Ok(())
    })
    .await
}
