//! `creditgate events tail`: a tenant's events as JSON lines, for operators; the same stream
//! WatchEvents serves (replay after a cursor, then live), read straight from the database.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;

use super::with_database;
use crate::auth::ScopeSet;
use crate::clock::SystemClock;
use crate::config::DatabaseSettings;
use crate::service::access::Caller;
use crate::service::events::watch::{WatchRequest, watch};
use crate::service::events::{EventType, cursor, hub, json};
use crate::service::{Context, tenants};
use crate::store::StoreError;

#[derive(Debug, Subcommand)]
pub(super) enum EventsCommand {
    /// Prints a tenant's events, one JSON object per line, as they commit (until interrupted).
    Tail {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Only this account (its id or external id).
        #[arg(long)]
        account: Option<String>,
        /// Replay the events after this cursor first (an event's `cursor`); default: from now.
        #[arg(long)]
        from_cursor: Option<String>,
        /// Only these types (BALANCE_LOW, CREDITS_EXPIRING, CREDITS_EXPIRED, HOLD_EXPIRED,
        /// DEBT_INCURRED, GRANT_ADDED); repeat the flag for several.
        #[arg(long = "type")]
        types: Vec<String>,
        /// Stop after this many events.
        #[arg(long)]
        limit: Option<u64>,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

pub(super) async fn run(command: EventsCommand) -> anyhow::Result<()> {
    let EventsCommand::Tail {
        tenant,
        account,
        from_cursor,
        types,
        limit,
        database,
    } = command;
    let types = types
        .iter()
        .map(|name| {
            EventType::from_name(&name.to_ascii_uppercase())
                .with_context(|| format!("--type {name}: not an event type"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cursor = from_cursor
        .map(|text| cursor::decode(&text).context("--from-cursor: not an event cursor"))
        .transpose()?;
    with_database(&database, async |db| {
        let client = db.pool.get().await.map_err(StoreError::from)?;
        let tenant = tenants::find_tenant(&client, &tenant).await?;
        let account_id = match &account {
            None => None,
            Some(account) => {
                let (id, external) = match account.parse() {
                    Ok(id) => (Some(id), None),
                    Err(_) => (None, Some(account.as_str())),
                };
                let found =
                    crate::store::accounts::find_account(&client, tenant.tenant_id, id, external)
                        .await?
                        .with_context(|| {
                            format!("no account {account} for tenant {}", tenant.name)
                        })?;
                Some(found.account_id)
            }
        };
        drop(client);
        let mut context = Context::new(
            db.pool.clone(),
            Arc::new(SystemClock),
            crate::config::MoneyLimits::default(),
        );
        context.listen = Some((db.config.clone(), db.connector.clone()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        hub::start(&context).await?;
        let reader = tokio::spawn(hub::run(context.clone(), stopped.clone()));
        let listener = tokio::spawn(hub::listen(
            (db.config.clone(), db.connector.clone()),
            Arc::clone(&context.events),
            stopped,
        ));
        let caller = Caller {
            tenant_id: tenant.tenant_id,
            key_id: uuid::Uuid::nil(),
            scopes: ScopeSet::all(),
        };
        let request = WatchRequest {
            account_id,
            cursor,
            types,
        };
        let printed = async {
            let mut stream = watch(&context, caller, request).await?;
            let mut printed = 0_u64;
            let mut out = std::io::stdout().lock();
            while limit.is_none_or(|limit| printed < limit) {
                let Some(event) = stream.events.recv().await else {
                    let end = stream.end.lock().ok().and_then(|mut slot| slot.take());
                    return end.map_or(Ok(()), |error| Err(anyhow::Error::new(error)));
                };
                out.write_all(&json(&event))?;
                writeln!(out)?;
                out.flush()?;
                printed += 1;
            }
            anyhow::Ok(())
        };
        let result = tokio::select! {
            result = printed => result,
            _ = tokio::signal::ctrl_c() => Ok(()),
        };
        let _ = stop.send(true);
        let _ = reader.await;
        let _ = listener.await;
        result
    })
    .await
}
