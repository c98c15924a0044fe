//! Usage rollups: what a book's operations add to the account's runs of each UTC day (of the
//! run's creation), task type and model, for the store to add to `usage_rollups` in the same
//! transaction, so usage summaries stay exact without reading every run.
//!
//! A run is counted once it is resolved (settled, released or expired), with all it captured
//! by then; later captures (a late settle) add to it. Active runs are not in the rollups: a
//! summary reads them from the account's active holds, which are few. So Authorize, the most
//! frequent write, adds nothing, and a run costs one rollup update. Refunds are counted when
//! made, whatever the run's status; summaries read refunds of active runs from the rollups
//! too.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::book::AccountBook;
use super::model::{HoldState, HoldStatus};
use crate::money::Credits;

/// The runs of one account created on one UTC day with one task type and model.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsageKey {
    /// UTC day of the runs' `created_at`.
    pub day: NaiveDate,
    /// Task type name ("" when unspecified).
    pub task_type: String,
    /// Model id ("" when none).
    pub model: String,
}

impl UsageKey {
    /// The key a run is counted under.
    pub fn of(hold: &HoldState) -> Self {
        UsageKey {
            day: hold.created_at.date_naive(),
            task_type: hold.meta.task_type.clone(),
            model: hold.meta.model.clone(),
        }
    }
}

/// What a transaction adds to one key's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageDelta {
    /// Runs created.
    pub runs: i64,
    /// Credits charged (a hold's `captured` moving up).
    pub captured: Credits,
    /// Credits refunded.
    pub refunded: Credits,
    /// The latest `created_at` of the runs created.
    pub last_run_at: Option<DateTime<Utc>>,
}

impl UsageDelta {
    /// Adds `other`.
    pub fn add(&mut self, other: &UsageDelta) {
        self.runs += other.runs;
        self.captured += other.captured;
        self.refunded += other.refunded;
        self.last_run_at = self.last_run_at.max(other.last_run_at);
    }

    fn is_zero(&self) -> bool {
        self.runs == 0 && self.captured.is_zero() && self.refunded.is_zero()
    }
}

impl AccountBook {
    /// What this book's operations add to the account's usage rollups, one entry per key that
    /// moved: a hold resolved here counts a run with everything it captured, a hold resolved
    /// before its capture since it was loaded, a refund what it gave back.
    pub(super) fn usage_deltas(&self) -> Vec<(UsageKey, UsageDelta)> {
        let mut deltas: BTreeMap<UsageKey, UsageDelta> = BTreeMap::new();
        for hold_id in self.changed_holds.union(&self.created_holds) {
            let Some(hold) = self.holds.get(hold_id) else {
                continue;
            };
            if hold.status == HoldStatus::Active {
                continue;
            }
            let delta = match self.loaded_holds.get(hold_id) {
                Some((status, captured)) if *status != HoldStatus::Active => UsageDelta {
                    captured: hold.captured - *captured,
                    ..UsageDelta::default()
                },
                _ => UsageDelta {
                    runs: 1,
                    captured: hold.captured,
                    last_run_at: Some(hold.created_at),
                    ..UsageDelta::default()
                },
            };
            deltas.entry(UsageKey::of(hold)).or_default().add(&delta);
        }
        for refund in &self.refunds {
            let hold = self.holds.get(&refund.hold_id).unwrap_or_else(|| {
                panic!(
                    "hold {} must be loaded with the settlement it refunds",
                    refund.hold_id
                )
            });
            let delta = UsageDelta {
                refunded: refund.amount,
                ..UsageDelta::default()
            };
            deltas.entry(UsageKey::of(hold)).or_default().add(&delta);
        }
        deltas
            .into_iter()
            .filter(|(_, delta)| !delta.is_zero())
            .collect()
    }
}
