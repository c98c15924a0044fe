//! Event watchers for `creditgate bench --watchers N`: N WatchEvents streams spread over the
//! loaded server and the `--watch-address` replicas, each timing every event from its commit
//! (its `created_at`, the database's clock, on this machine) to its arrival; and a prober that
//! grants one credit to an account of its own every `--probe-ms`, so events fire during the run
//! whatever the mix (with or without watchers, for a fair comparison).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::report::Samples;
use super::setup::Clients;
use crate::proto::v1::{
    AccountKind, CreateAccountRequest, GrantRequest, GrantSource, WatchEventsRequest,
};

/// Events in flight at the end of the load get this long to arrive before the watchers stop.
const SETTLE_TIME: Duration = Duration::from_millis(500);

/// Running watchers.
#[derive(Debug)]
pub struct Watchers {
    tasks: Vec<JoinHandle<anyhow::Result<Samples>>>,
    stop: watch::Sender<bool>,
}

/// Opens `count` streams, round-robin over `addresses`; returns once every stream is open.
pub async fn start(addresses: &[SocketAddr], key: &str, count: usize) -> anyhow::Result<Watchers> {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::with_capacity(count);
    for index in 0..count {
        let address = addresses[index % addresses.len()];
        let clients = Clients::connect(&[address], key, 1).await?;
        let mut stream = clients
            .account(0)
            .watch_events(WatchEventsRequest::default())
            .await
            .with_context(|| format!("opening a WatchEvents stream on {address}"))?
            .into_inner();
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::new();
            loop {
                tokio::select! {
                    _ = stopped.changed() => return Ok(samples),
                    message = stream.message() => {
                        let Some(message) = message.context("a WatchEvents stream failed")? else {
                            return Ok(samples);
                        };
                        let arrived = chrono::Utc::now();
                        let created = message.event.and_then(|event| event.created_at);
                        if let Some(created) = created {
                            let created = chrono::DateTime::from_timestamp(
                                created.seconds,
                                u32::try_from(created.nanos).unwrap_or(0),
                            )
                            .unwrap_or(arrived);
                            let micros = (arrived - created).num_microseconds().unwrap_or(0);
                            samples.push(u32::try_from(micros.max(0)).unwrap_or(u32::MAX));
                        }
                    }
                }
            }
        }));
    }
    Ok(Watchers { tasks, stop })
}

impl Watchers {
    /// Lets events in flight arrive, stops the streams, and returns every delivery's latency.
    pub async fn finish(self) -> anyhow::Result<Samples> {
        tokio::time::sleep(SETTLE_TIME).await;
        let _ = self.stop.send(true);
        let mut all = Samples::new();
        for task in self.tasks {
            all.extend(task.await.context("a watcher panicked")??);
        }
        Ok(all)
    }
}

/// The prober: grants one credit every `interval` to an account of its own until stopped;
/// returns how many grants it made.
pub async fn probe(
    clients: &Clients,
    interval: Duration,
) -> anyhow::Result<(watch::Sender<bool>, JoinHandle<anyhow::Result<u64>>)> {
    let run = uuid::Uuid::now_v7().simple().to_string();
    let account = clients
        .account(0)
        .create_account(CreateAccountRequest {
            idempotency_key: format!("bench-{run}-probe"),
            external_id: format!("bench-{run}-probe"),
            kind: AccountKind::Organization as i32,
            ..CreateAccountRequest::default()
        })
        .await
        .context("creating the probe account")?
        .into_inner()
        .account
        .context("CreateAccount answered without an account")?;
    let (stop, mut stopped) = watch::channel(false);
    let client = clients.account(0);
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        let mut granted = 0_u64;
        loop {
            tokio::select! {
                _ = stopped.changed() => return Ok(granted),
                _ = ticks.tick() => {
                    client
                        .clone()
                        .grant(GrantRequest {
                            account_id: account.account_id.clone(),
                            idempotency_key: format!("bench-{run}-probe-{granted}"),
                            source: GrantSource::Topup as i32,
                            amount: "1".to_owned(),
                            ..GrantRequest::default()
                        })
                        .await
                        .context("a probe grant failed")?;
                    granted += 1;
                }
            }
        }
    });
    Ok((stop, task))
}
