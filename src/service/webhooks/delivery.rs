//! The delivery worker, run by every replica: each tick it leases due endpoints (bounded, rows
//! other replicas hold skipped) and POSTs each one's next events in position order, one at a
//! time, so events reach an endpoint in order (per account too) and at least once. A failure
//! stops the endpoint's tick and backs off exponentially on the injectable clock; after
//! [`GIVE_UP_AFTER`] of failures of its head event the endpoint is paused. Nothing here runs in
//! a ledger transaction: it reads the outbox and writes only webhook rows, holding no
//! connection across an HTTP call.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::signature;
use crate::service::{Context, ServiceError};
use crate::store::StoreError;
use crate::store::events::{self, EventFilter, Position, StoredEvent};
use crate::store::webhooks::deliveries::{self, Attempt};
use crate::store::webhooks::{self as store, Claimed, Failure};

/// Endpoints one replica leases per tick.
pub const CLAIM_BATCH: i64 = 32;
/// Events one endpoint is sent per tick: bounds a tick's work when an endpoint is far behind.
pub const EVENTS_PER_TICK: i64 = 100;
/// Longest one POST may take, answer included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a head event may keep failing before its endpoint is paused.
pub const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(72);
/// Wall time after which an endpoint's tick sends nothing more (the rest waits for the next).
const TICK_BUDGET: Duration = Duration::from_secs(60);
/// Lease on a claimed endpoint: longer than its tick can last (budget plus one request).
const LEASE: chrono::Duration = chrono::Duration::seconds(120);
/// First retry delay; it doubles with each failure.
const FIRST_BACKOFF_MS: i64 = 1_000;
/// Longest retry delay.
const MAX_BACKOFF_MS: i64 = 3_600_000;
/// How long delivery attempts are kept.
const ATTEMPT_RETENTION: chrono::Duration = chrono::Duration::days(7);
/// Attempts deleted per tick.
const PRUNE_BATCH: i64 = 1_000;
/// Longest error text stored (characters; the column's bound is 512).
const MAX_ERROR_CHARS: usize = 500;
/// Most bytes of an answer read: the status decides, the body is read only so the connection
/// can be reused.
const MAX_ANSWER_BYTES: usize = 4_096;

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Endpoints leased.
    pub endpoints: usize,
    /// Events delivered (2xx).
    pub delivered: usize,
    /// Attempts that failed.
    pub failed: usize,
    /// Endpoints paused.
    pub paused: usize,
    /// Old attempts deleted.
    pub pruned: u64,
}

impl DeliveryReport {
    fn add(&mut self, other: DeliveryReport) {
        self.endpoints += other.endpoints;
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.paused += other.paused;
        self.pruned += other.pruned;
    }

    fn is_idle(&self) -> bool {
        self.delivered == 0 && self.failed == 0 && self.paused == 0 && self.pruned == 0
    }
}

/// One tick: prune old attempts, lease due endpoints and deliver to each in its own task.
pub async fn deliver_once(context: &Context) -> Result<DeliveryReport, ServiceError> {
    let now = context.clock.now();
    let token = Uuid::now_v7();
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let pruned = deliveries::prune(&client, now - ATTEMPT_RETENTION, PRUNE_BATCH).await?;
    let claimed = store::claim(&client, now, now + LEASE, token, CLAIM_BATCH).await?;
    // Read after the claim: every event below it is final, so none is skipped.
    let horizon = events::horizon(&client).await?;
    drop(client);
    let mut report = DeliveryReport {
        endpoints: claimed.len(),
        pruned,
        ..DeliveryReport::default()
    };
    let mut tasks = JoinSet::new();
    for endpoint in claimed {
        let context = context.clone();
        tasks.spawn(async move {
            let endpoint_id = endpoint.endpoint.endpoint_id;
            let result = deliver_endpoint(&context, endpoint, horizon, token).await;
            (endpoint_id, result)
        });
    }
    // One endpoint's failure never stops the others'; its lease runs out and it is retried.
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(done))) => report.add(done),
            Ok((endpoint_id, Err(error))) => {
                tracing::warn!(%endpoint_id, %error, "webhook delivery failed");
            }
            Err(error) => tracing::error!(%error, "webhook delivery panicked"),
        }
    }
    Ok(report)
}

/// Delivers up to [`EVENTS_PER_TICK`] of the endpoint's events below `horizon`, in order,
/// stopping at the first failure.
async fn deliver_endpoint(
    context: &Context,
    claimed: Claimed,
    horizon: Position,
    token: Uuid,
) -> Result<DeliveryReport, ServiceError> {
    let endpoint = &claimed.endpoint;
    let filter = EventFilter {
        account_id: endpoint.account_id,
        types: endpoint.event_types.clone(),
    };
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let pending = events::tenant_events(
        &client,
        endpoint.tenant_id,
        endpoint.position,
        horizon,
        &filter,
        EVENTS_PER_TICK,
    )
    .await?;
    drop(client);
    let mut report = DeliveryReport::default();
    let started = Instant::now();
    for (index, event) in pending.iter().enumerate() {
        if started.elapsed() > TICK_BUDGET {
            release(context, &claimed, token, endpoint.position).await?;
            return Ok(report);
        }
        // Only the first event of a tick can have failed before: the rest were never sent.
        let head = index == 0;
        let attempt = if head {
            endpoint.attempts.saturating_add(1)
        } else {
            1
        };
        let outcome = post(context, &claimed, event, attempt).await;
        let client = context.pool.get().await.map_err(StoreError::from)?;
        deliveries::record(&client, &outcome).await?;
        let now = context.clock.now();
        if outcome.succeeded {
            report.delivered += 1;
            if !store::delivered(&client, endpoint.endpoint_id, token, event.position, now).await? {
                return Ok(report);
            }
            continue;
        }
        report.failed += 1;
        let first_failed_at = match endpoint.first_failed_at {
            Some(since) if head => since,
            _ => now,
        };
        let failure = Failure {
            first_failed_at,
            attempts: attempt,
            next_attempt_at: now + backoff(attempt),
            error: outcome.error.clone().unwrap_or_default(),
            pause: now - first_failed_at >= GIVE_UP_AFTER,
        };
        if failure.pause {
            report.paused += 1;
            tracing::warn!(endpoint_id = %endpoint.endpoint_id, "webhook endpoint paused after failing for too long");
        }
        store::failed(&client, endpoint.endpoint_id, token, &failure, now).await?;
        return Ok(report);
    }
    // Everything read was delivered: events up to the horizon that the filter passed over
    // need no second look, unless the page was full.
    let full = i64::try_from(pending.len()).unwrap_or(i64::MAX) >= EVENTS_PER_TICK;
    let floor = if full { endpoint.position } else { horizon };
    release(context, &claimed, token, floor).await?;
    Ok(report)
}

async fn release(
    context: &Context,
    claimed: &Claimed,
    token: Uuid,
    floor: Position,
) -> Result<(), ServiceError> {
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let now = context.clock.now();
    store::release(&client, claimed.endpoint.endpoint_id, token, floor, now).await?;
    Ok(())
}

/// The delay before retry number `attempts` + 1: doubling from one second, at most an hour,
/// each drawn between half and all of it so that endpoints failing together spread out.
fn backoff(attempts: i32) -> chrono::Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(0);
    let full = FIRST_BACKOFF_MS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_BACKOFF_MS);
    let jittered = full / 2 + rand::random_range(0..=full / 2);
    chrono::Duration::milliseconds(jittered)
}

fn http_client() -> Result<&'static reqwest::Client, ServiceError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(REQUEST_TIMEOUT)
                .user_agent(concat!("creditgate-webhooks/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|error| error.to_string())
        })
        .as_ref()
        .map_err(|error| ServiceError::Internal(StoreError::Other(error.clone())))
}

/// POSTs one event; the attempt as recorded.
async fn post(context: &Context, claimed: &Claimed, event: &StoredEvent, attempt: i32) -> Attempt {
    let endpoint = &claimed.endpoint;
    let attempted_at = context.clock.now();
    let body = crate::service::events::json(event);
    let signed = signature::header(&claimed.secret, attempted_at.timestamp(), &body);
    let started = Instant::now();
    let answer = match http_client() {
        Ok(client) => send(client, &endpoint.url, &event.event_id, signed, body).await,
        Err(error) => Err(error.to_string()),
    };
    let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let (http_status, error) = match answer {
        Ok(status) if (200..300).contains(&status) => (Some(status), None),
        Ok(status) => (Some(status), Some(format!("HTTP {status}"))),
        Err(error) => (None, Some(bounded(&error))),
    };
    Attempt {
        delivery_id: Uuid::now_v7(),
        endpoint_id: endpoint.endpoint_id,
        tenant_id: endpoint.tenant_id,
        event_id: event.event_id,
        position: event.position,
        attempt,
        http_status,
        succeeded: error.is_none(),
        error,
        duration_ms,
        attempted_at,
    }
}

/// Sends the request and reads a bounded part of the answer; the status, or why none came
/// (the URL left out of the error: it may carry credentials).
async fn send(
    client: &reqwest::Client,
    url: &str,
    event_id: &Uuid,
    signature: String,
    body: Vec<u8>,
) -> Result<i32, String> {
    let mut response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("creditgate-event-id", event_id.to_string())
        .header("creditgate-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|error| error.without_url().to_string())?;
    let status = i32::from(response.status().as_u16());
    let mut read = 0;
    while read < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(status)
}

fn bounded(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

/// Delivers every `interval` until `shutdown` flips; a tick in progress is dropped then (its
/// leases run out, and what it had not recorded is sent again: at least once).
pub async fn run(context: Context, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            result = deliver_once(&context) => match result {
                Ok(report) if !report.is_idle() => tracing::info!(
                    endpoints = report.endpoints,
                    delivered = report.delivered,
                    failed = report.failed,
                    paused = report.paused,
                    pruned = report.pruned,
                    "webhooks delivered"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "webhook tick failed"),
            },
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_to_an_hour_with_jitter() {
        for attempts in 1..40 {
            let delay = backoff(attempts).num_milliseconds();
            let exponent = u32::try_from(attempts - 1).unwrap_or(0).min(30);
            let full = (FIRST_BACKOFF_MS << exponent).min(MAX_BACKOFF_MS);
            assert!(delay >= full / 2 && delay <= full, "{attempts}: {delay}");
        }
        assert!(backoff(1).num_milliseconds() <= 1_000);
        assert!(backoff(100).num_milliseconds() <= MAX_BACKOFF_MS);
    }
}
