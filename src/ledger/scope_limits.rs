//! Spend limits on the book. The counters are not moved by each operation: a limit as loaded
//! (rolled to the book's clock) plus what the book's changed holds of its scope moved since
//! they were loaded (their outstanding reservation to `reserved`, their captures to `spent`)
//! and its refunds, is the limit now. So no operation can forget a limit, and operations that
//! share a transaction see each other's holds.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::book::AccountBook;
use super::decline::Decline;
use super::model::HoldState;
use super::spend_limit::{LimitPeriod, SpendLimitState, SpendScope};
use crate::ids::{HoldId, SpendLimitId};
use crate::money::Credits;

/// What a scope's active holds reserve, read for a limit to be set on it: a new limit counts
/// them (their settlements and releases will move it), and the captures from then on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeUsage {
    /// The scope.
    pub scope: SpendScope,
    /// Credits its active holds reserve.
    pub reserved: Credits,
    /// How many limits the account has (counted up to a bound).
    pub account_limits: usize,
}

/// A SetSpendLimit: the limit of a scope and period, or its removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitChange {
    /// The id a new limit gets.
    pub new_id: SpendLimitId,
    /// The scope.
    pub scope: SpendScope,
    /// The period.
    pub period: LimitPeriod,
    /// The new limit; `None` removes it.
    pub limit: Option<Credits>,
}

/// The book's spend limits.
#[derive(Debug, Clone, Default)]
pub(super) struct ScopeLimits {
    /// The limits loaded (rolled to the book's clock) or set in the book, before its holds'
    /// changes are counted.
    base: Vec<SpendLimitState>,
    /// Limits set in the book, or whose period rolled (written even when their counters did
    /// not move: a stored limit must say which period its `spent` counts).
    set: BTreeSet<SpendLimitId>,
    /// Limits removed in the book.
    pub(super) removed: Vec<SpendLimitId>,
    /// Limits created in the book (inserted; the others are updated).
    created: BTreeSet<SpendLimitId>,
    /// The loaded holds with a scope: (outstanding, captured) as loaded.
    baselines: BTreeMap<HoldId, (Credits, Credits)>,
    /// Refunds made in the book: the scope, the amount, when the refunded capture was made.
    refunds: Vec<(SpendScope, Credits, DateTime<Utc>)>,
    /// Scopes' history, read for limits to be set.
    usage: Vec<ScopeUsage>,
}

impl ScopeLimits {
    /// No limits yet, remembering what the loaded holds with a scope held and captured.
    pub(super) fn with_holds(holds: &[HoldState]) -> Self {
        ScopeLimits {
            baselines: holds
                .iter()
                .filter(|hold| hold.meta.spend_scope.is_some())
                .map(|hold| (hold.hold_id, (hold.outstanding(), hold.captured)))
                .collect(),
            ..ScopeLimits::default()
        }
    }
}

impl AccountBook {
    /// The book with the spend limits of the scopes it may touch, and the history of scopes
    /// whose limits may be set.
    pub fn with_spend_limits(
        mut self,
        mut limits: Vec<SpendLimitState>,
        usage: Vec<ScopeUsage>,
    ) -> Self {
        for limit in &mut limits {
            let period_start = limit.period_start;
            limit.roll(self.now);
            if limit.period_start != period_start {
                self.limits.set.insert(limit.spend_limit_id);
            }
        }
        self.limits.base = limits;
        self.limits.usage = usage;
        self
    }

    /// The spend limits loaded, as of now.
    pub fn spend_limits(&self) -> Vec<SpendLimitState> {
        self.limits
            .base
            .iter()
            .map(|limit| self.limit_now(limit).0)
            .collect()
    }

    /// A limit with the book's changes counted, and whether they moved it.
    fn limit_now(&self, base: &SpendLimitState) -> (SpendLimitState, bool) {
        let mut limit = base.clone();
        let mut moved = false;
        let scoped = self.changed_holds.iter().filter_map(|hold_id| {
            self.holds
                .get(hold_id)
                .filter(|hold| hold.meta.spend_scope.as_ref() == Some(&limit.scope))
        });
        let mut counted: Vec<(Credits, Credits)> = Vec::new();
        for hold in scoped {
            let (outstanding, captured) = self
                .limits
                .baselines
                .get(&hold.hold_id)
                .copied()
                .unwrap_or((Credits::ZERO, Credits::ZERO));
            counted.push((hold.outstanding() - outstanding, hold.captured - captured));
        }
        for (reserved, captured) in counted {
            if reserved.is_positive() {
                limit.reserve(reserved);
            } else {
                limit.release(-reserved);
            }
            limit.capture(Credits::ZERO, captured);
            moved |= !reserved.is_zero() || !captured.is_zero();
        }
        for (scope, amount, captured_at) in &self.limits.refunds {
            if *scope == limit.scope {
                let before = limit.spent;
                limit.refund(*amount, *captured_at);
                moved |= limit.spent != before;
            }
        }
        (limit, moved)
    }

    /// The first limit of `scope` that a new reservation of `amount` would pass.
    pub(super) fn limit_refusal(
        &self,
        scope: Option<&SpendScope>,
        amount: Credits,
    ) -> Option<Decline> {
        let scope = scope?;
        self.limits
            .base
            .iter()
            .filter(|limit| limit.scope == *scope)
            .find_map(|limit| self.limit_now(limit).0.check(amount).err())
            .map(Decline::SpendLimitReached)
    }

    /// A refund of `amount` of a capture of `hold_id` made at `captured_at`: its scope's spend
    /// this period goes down. The hold must be loaded for its scope to be known.
    pub(super) fn count_limit_refund(
        &mut self,
        hold_id: HoldId,
        amount: Credits,
        captured_at: DateTime<Utc>,
    ) {
        let scope = self
            .holds
            .get(&hold_id)
            .and_then(|hold| hold.meta.spend_scope.clone());
        if let Some(scope) = scope {
            self.limits.refunds.push((scope, amount, captured_at));
        }
    }

    /// The history read for `scope`, when it was asked for.
    pub fn scope_usage(&self, scope: &SpendScope) -> Option<&ScopeUsage> {
        self.limits.usage.iter().find(|usage| usage.scope == *scope)
    }

    /// Sets, changes or removes the limit of a scope and period; returns it as of now (with
    /// its last counters when removed). A new limit counts what the scope's active holds
    /// reserve, which must have been loaded ([`with_spend_limits`](Self::with_spend_limits)),
    /// and the captures from now on.
    ///
    /// # Panics
    /// When a new limit's scope usage was not loaded.
    pub fn set_spend_limit(&mut self, change: &LimitChange) -> SpendLimitState {
        self.begin();
        let existing = self
            .limits
            .base
            .iter()
            .position(|limit| limit.scope == change.scope && limit.period == change.period);
        let state = match (existing, change.limit) {
            (Some(index), Some(limit)) => {
                self.limits.base[index].limit = limit;
                let id = self.limits.base[index].spend_limit_id;
                self.limits.set.insert(id);
                self.limit_now(&self.limits.base[index]).0
            }
            (Some(index), None) => {
                let removed = self.limits.base.remove(index);
                self.limits.removed.push(removed.spend_limit_id);
                self.limits.set.remove(&removed.spend_limit_id);
                self.limit_now(&removed).0
            }
            (None, limit) => {
                let usage = self.scope_usage(&change.scope).unwrap_or_else(|| {
                    panic!("a scope's usage must be loaded before a limit is set on it")
                });
                let mut state = SpendLimitState::new(
                    change.new_id,
                    change.scope.clone(),
                    change.period,
                    limit.unwrap_or(Credits::ZERO),
                    self.now,
                );
                state.reserved = usage.reserved;
                if limit.is_some() {
                    self.limits.set.insert(state.spend_limit_id);
                    self.limits.created.insert(state.spend_limit_id);
                    self.limits.base.push(state.clone());
                }
                self.limit_now(&state).0
            }
        };
        self.finish();
        state
    }

    /// The limits to write: those created, then the others set, rolled or whose counters
    /// moved.
    pub(super) fn changed_limits(&self) -> (Vec<SpendLimitState>, Vec<SpendLimitState>) {
        self.limits
            .base
            .iter()
            .filter_map(|base| {
                let (limit, moved) = self.limit_now(base);
                (moved || self.limits.set.contains(&base.spend_limit_id)).then_some(limit)
            })
            .partition(|limit| self.limits.created.contains(&limit.spend_limit_id))
    }
}
