//! The load: workers each running Quote → Authorize → Settle / Release in a loop until the
//! deadline, recording every call's latency and outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tonic::Status;
use tonic_types::StatusExt as _;

use super::report::{Report, Samples};
use super::setup::{Clients, PLAN_MEMBER};
use super::{BenchSettings, Pricing};
use crate::proto::v1::{
    AuthorizeRequest, QuoteRequest, ReleaseRequest, RunMetadata, SettleRequest, SpendScope,
    SpendScopeKind, TaskType, Usage, authorize_request, settle_request,
};

/// Latency samples kept per worker and RPC (memory bound).
const MAX_SAMPLES: usize = 1_000_000;
/// The model every bench run uses (priced in the default catalog).
const MODEL: &str = "bytedance/seed-1.8";

/// What one worker saw.
#[derive(Debug, Default)]
struct WorkerOutcome {
    runs: u64,
    samples: BTreeMap<&'static str, Samples>,
    errors: BTreeMap<String, u64>,
}

impl WorkerOutcome {
    /// Runs one call, timing it from just before the request is sent to its answer.
    async fn timed<T, F>(
        &mut self,
        rpc: &'static str,
        call: impl FnOnce() -> F,
    ) -> Result<T, Status>
    where
        F: Future<Output = Result<T, Status>>,
    {
        let started = Instant::now();
        let result = call().await;
        self.record(rpc, started, &result);
        result
    }

    fn record<T>(&mut self, rpc: &'static str, started: Instant, result: &Result<T, Status>) {
        let samples = self.samples.entry(rpc).or_default();
        if samples.len() < MAX_SAMPLES {
            samples.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
        }
        if let Err(status) = result {
            let reason = status
                .get_details_error_info()
                .map(|info| info.reason)
                .unwrap_or_else(|| format!("{:?}", status.code()));
            *self.errors.entry(format!("{rpc}: {reason}")).or_default() += 1;
        }
    }
}

fn usage(scale: u64) -> Usage {
    Usage {
        input_tokens: 1_000 * scale,
        output_tokens: 2_000 * scale,
        ..Usage::default()
    }
}

/// How a run ends.
#[derive(Debug, Clone, Copy)]
enum Finish {
    /// Release the hold.
    Release,
    /// Settle it, above the estimate or within it.
    Settle { above: bool },
}

struct Worker {
    index: usize,
    run: String,
    clients: Clients,
    accounts: Arc<Vec<String>>,
    pricing: Pricing,
    release_percent: u8,
    above_percent: u8,
    /// Count every run against the accounts' member limit ([`PLAN_MEMBER`]).
    plans: bool,
    rng: StdRng,
    outcome: WorkerOutcome,
}

impl Worker {
    /// One run: pick an account and an ending, find the price (quoting first when so set),
    /// authorize a hold, then release or settle it. A failed call ends the run; it is counted.
    async fn one_run(&mut self, sequence: u64) {
        let mut credit = self.clients.credit(self.index);
        let account_id = self.accounts[self.rng.random_range(0..self.accounts.len())].clone();
        let finish = self.roll_finish();
        let price = match self.pricing {
            Pricing::Quote => {
                let request = QuoteRequest {
                    model: MODEL.to_owned(),
                    usage: Some(usage(1)),
                    ..QuoteRequest::default()
                };
                let result = self.outcome.timed("Quote", || credit.quote(request)).await;
                match result {
                    Ok(response) => {
                        authorize_request::Price::QuoteId(response.into_inner().quote_id)
                    }
                    Err(_) => return,
                }
            }
            Pricing::Usage => authorize_request::Price::Usage(usage(1)),
            Pricing::Amount => authorize_request::Price::Amount("0.02".to_owned()),
        };
        let request = self.authorize_request(account_id, sequence, price);
        let result = self
            .outcome
            .timed("Authorize", || credit.authorize(request))
            .await;
        let Some(hold) = result.ok().and_then(|response| response.into_inner().hold) else {
            return;
        };
        let key = self.key(sequence, "s");
        let finished = match finish {
            Finish::Release => {
                let call = || {
                    credit.release(ReleaseRequest {
                        hold_id: hold.hold_id,
                        idempotency_key: key,
                        reason: "bench".to_owned(),
                        ..ReleaseRequest::default()
                    })
                };
                self.outcome.timed("Release", call).await.is_ok()
            }
            Finish::Settle { above } => {
                let pricing = self.pricing;
                let call = || credit.settle(settle_request(pricing, hold.hold_id, key, above));
                self.outcome.timed("Settle", call).await.is_ok()
            }
        };
        self.outcome.runs += u64::from(finished);
    }

    /// Rolls how this run ends, so the mix of endings follows the settings.
    fn roll_finish(&mut self) -> Finish {
        let roll = self.rng.random_range(0..100_u8);
        let release = roll < self.release_percent;
        let above = !release && roll < self.release_percent + self.above_percent;
        if release {
            Finish::Release
        } else {
            Finish::Settle { above }
        }
    }

    /// An idempotency key unique to this bench run, worker, sequence number and step.
    fn key(&self, sequence: u64, step: &str) -> String {
        format!("{}-{}-{sequence}-{step}", self.run, self.index)
    }

    fn authorize_request(
        &self,
        account_id: String,
        sequence: u64,
        price: authorize_request::Price,
    ) -> AuthorizeRequest {
        AuthorizeRequest {
            account_id,
            idempotency_key: self.key(sequence, "a"),
            price: Some(price),
            run: Some(RunMetadata {
                task_type: TaskType::Chat as i32,
                model: MODEL.to_owned(),
                ..RunMetadata::default()
            }),
            spend_scope: self.plans.then(|| SpendScope {
                kind: SpendScopeKind::Member as i32,
                scope_id: PLAN_MEMBER.to_owned(),
            }),
            ..AuthorizeRequest::default()
        }
    }
}

/// A Settle of the hold: an explicit amount when the bench prices by amount, else usage,
/// three times the estimate when the run goes above it.
fn settle_request(pricing: Pricing, hold_id: String, key: String, above: bool) -> SettleRequest {
    let charge = match pricing {
        Pricing::Amount => {
            settle_request::Charge::Amount(if above { "0.05" } else { "0.015" }.to_owned())
        }
        _ => settle_request::Charge::Usage(usage(if above { 3 } else { 1 })),
    };
    SettleRequest {
        hold_id,
        idempotency_key: key,
        charge: Some(charge),
        partial: false,
        ..SettleRequest::default()
    }
}

/// Runs the workers until the deadline and gathers their outcomes.
pub async fn run(clients: &Clients, accounts: &[String], settings: &BenchSettings) -> Report {
    let accounts = Arc::new(accounts.to_vec());
    let run = format!("bench-{}", uuid::Uuid::now_v7().simple());
    let started = Instant::now();
    let deadline = started + settings.duration();
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..settings.workers {
        let mut worker = Worker {
            index,
            run: run.clone(),
            clients: clients.clone(),
            accounts: Arc::clone(&accounts),
            pricing: settings.pricing,
            release_percent: settings.release_percent,
            above_percent: settings.above_percent,
            plans: settings.plans,
            rng: StdRng::seed_from_u64(
                settings
                    .seed
                    .wrapping_mul(1_000_003)
                    .wrapping_add(index as u64),
            ),
            outcome: WorkerOutcome::default(),
        };
        tasks.spawn(async move {
            let mut sequence = 0;
            while Instant::now() < deadline {
                worker.one_run(sequence).await;
                sequence += 1;
            }
            worker.outcome
        });
    }
    let mut report = Report::default();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(outcome) = joined {
            report.runs += outcome.runs;
            for (rpc, samples) in outcome.samples {
                report.samples.entry(rpc).or_default().extend(samples);
            }
            for (reason, count) in outcome.errors {
                *report.errors.entry(reason).or_default() += count;
            }
        }
    }
    report.elapsed = started.elapsed().max(Duration::from_millis(1));
    report
}
