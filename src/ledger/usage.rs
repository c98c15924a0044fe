//! Usage rollups: what a book's operations add to the account's runs of each UTC day, task
//! type and model (runs created, credits charged, credits refunded), for the store to add to
//! `usage_rollups` in the same transaction, so usage summaries stay exact without reading
//! every run.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::book::AccountBook;
use super::model::HoldState;
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
    /// moved: holds created count a run (and whatever they captured already), loaded holds
    /// the capture since they were loaded, refunds what they gave back.
    pub(super) fn usage_deltas(&self) -> Vec<(UsageKey, UsageDelta)> {
        let mut deltas: BTreeMap<UsageKey, UsageDelta> = BTreeMap::new();
        for hold_id in self.changed_holds.union(&self.created_holds) {
            let Some(hold) = self.holds.get(hold_id) else {
                continue;
            };
            let delta = if self.created_holds.contains(hold_id) {
                UsageDelta {
                    runs: 1,
                    captured: hold.captured,
                    last_run_at: Some(hold.created_at),
                    ..UsageDelta::default()
                }
            } else {
                let loaded = self
                    .loaded_captured
                    .get(hold_id)
                    .copied()
                    .unwrap_or(Credits::ZERO);
                UsageDelta {
                    captured: hold.captured - loaded,
                    ..UsageDelta::default()
                }
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
