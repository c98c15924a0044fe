//! Background housekeeping, run by every replica: expire due holds and expired grants account
//! by account (bounded batches, locked accounts skipped), and prune old idempotency records.

use std::time::Duration;

use tokio::sync::watch;

use super::locked::sweep_account;
use super::{Context, ServiceError};
use crate::store::{StoreError, accounts, events, gauges, idempotency};
use crate::telemetry::{self, Instruments, SweepWork};

/// Records deleted per pruning statement.
const PRUNE_BATCH: i64 = 1_000;
/// Pause between two counts of the active holds for the metrics: a count scans every active
/// hold's index entry, too much to repeat each sweep on a large book.
const HOLDS_COUNT_INTERVAL: Duration = Duration::from_secs(15);

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Accounts whose holds or grants were expired.
    pub accounts_swept: usize,
    /// Idempotency records deleted.
    pub records_pruned: u64,
    /// Events deleted (older than the retention).
    pub events_pruned: u64,
}

/// One sweep: up to the batch size of accounts, then one pruning batch.
pub async fn sweep_once(context: &Context) -> Result<SweepReport, ServiceError> {
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let now = context.clock.now();
    let due = accounts::accounts_to_sweep(
        &client,
        now,
        now + context.limits.expiry_warning,
        context.limits.sweep_batch,
    )
    .await?;
    let records_pruned =
        idempotency::prune(&client, context.limits.idempotency_retention, PRUNE_BATCH).await?;
    let retention = chrono::Duration::from_std(context.limits.event_retention)
        .unwrap_or(chrono::Duration::days(7));
    let events_pruned = events::prune(&client, now - retention, PRUNE_BATCH).await?;
    drop(client);
    let mut report = SweepReport {
        accounts_swept: 0,
        records_pruned,
        events_pruned,
    };
    for key in due {
        let account_id = key.account;
        // Each account in its own task: one account's failure must not stop the others.
        let task_context = context.clone();
        match tokio::spawn(async move { sweep_account(&task_context, key).await }).await {
            Ok(Ok(true)) => report.accounts_swept += 1,
            Ok(Ok(false)) => {}
            Ok(Err(error)) => tracing::warn!(%account_id, %error, "sweeping an account failed"),
            Err(error) => tracing::error!(%account_id, %error, "sweeping an account panicked"),
        }
    }
    Ok(report)
}

/// Sweeps every `interval` until `shutdown` flips.
pub async fn run(context: Context, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut holds_counted: Option<tokio::time::Instant> = None;
    loop {
        let swept = sweep_once(&context).await;
        if let Some(metrics) = telemetry::metrics() {
            metrics.sweep(swept.as_ref().ok().map(|report| SweepWork {
                accounts_swept: u64::try_from(report.accounts_swept).unwrap_or(u64::MAX),
                records_pruned: report.records_pruned,
                events_pruned: report.events_pruned,
            }));
            if holds_counted.is_none_or(|at| at.elapsed() >= HOLDS_COUNT_INTERVAL) {
                holds_counted = Some(tokio::time::Instant::now());
                count_active_holds(&context, metrics).await;
            }
        }
        match swept {
            Ok(report)
                if report.accounts_swept > 0
                    || report.records_pruned > 0
                    || report.events_pruned > 0 =>
            {
                tracing::info!(
                    accounts = report.accounts_swept,
                    records = report.records_pruned,
                    events = report.events_pruned,
                    "swept"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "sweep failed"),
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Counts the active holds into their gauge; a failure leaves the last count.
async fn count_active_holds(context: &Context, metrics: &Instruments) {
    let counted = async {
        let client = context.pool.get().await?;
        gauges::active_holds(&client).await
    }
    .await;
    match counted {
        Ok(holds) => metrics.holds_active(holds),
        Err(error) => tracing::warn!(%error, "counting active holds failed"),
    }
}
