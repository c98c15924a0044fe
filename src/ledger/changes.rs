//! [`Changes`]: what the operations on a book changed, for the store to write.

use std::collections::{BTreeMap, BTreeSet};

use super::allowance::{AllowanceGrant, AllowanceState};
use super::book::AccountBook;
use super::events::EventDraft;
use super::journal::Posting;
use super::model::{AccountState, GrantState, HoldState, RefundRecord, SettlementRecord};
use super::spend_limit::SpendLimitState;
use super::usage::{UsageDelta, UsageKey};
use crate::ids::{GrantId, HoldId, SettlementId, SpendLimitId};
use crate::money::Credits;

/// What an operation changed, for the store to write.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// The account row, when its debt changed.
    pub account: Option<AccountState>,
    /// Grants created or changed.
    pub grants: Vec<GrantState>,
    /// Which of `grants` are new rows (the others exist and are updated).
    pub created_grants: BTreeSet<GrantId>,
    /// Holds created by this operation.
    pub new_holds: Vec<HoldState>,
    /// Existing holds changed (with all their allocations).
    pub holds: Vec<HoldState>,
    /// How many of each changed hold's allocations exist (ExtendHold appends new ones).
    pub stored_allocations: BTreeMap<HoldId, usize>,
    /// Settlements created or refunded from.
    pub settlements: Vec<SettlementRecord>,
    /// Which of `settlements` are new rows (the others exist and are updated).
    pub created_settlements: BTreeSet<SettlementId>,
    /// Refunds created.
    pub refunds: Vec<RefundRecord>,
    /// Journal lines, summing to zero.
    pub postings: Vec<Posting>,
    /// Allowances set, or that granted a period (with the period they granted last).
    pub allowances: Vec<AllowanceState>,
    /// The periods granted, one row each.
    pub allowance_grants: Vec<AllowanceGrant>,
    /// Spend limits created.
    pub new_spend_limits: Vec<SpendLimitState>,
    /// Existing spend limits changed, rolled to a new period, or whose counters moved.
    pub spend_limits: Vec<SpendLimitState>,
    /// Spend limits removed.
    pub removed_spend_limits: Vec<SpendLimitId>,
    /// What the account's usage rollups gain, per key.
    pub usage: Vec<(UsageKey, UsageDelta)>,
    /// The events of these changes, in order.
    pub events: Vec<EventDraft>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.account.is_none()
            && self.grants.is_empty()
            && self.new_holds.is_empty()
            && self.holds.is_empty()
            && self.postings.is_empty()
            && self.allowances.is_empty()
            && self.new_spend_limits.is_empty()
            && self.spend_limits.is_empty()
            && self.removed_spend_limits.is_empty()
    }
}

impl AccountBook {
    /// What the operations changed.
    pub fn into_changes(self) -> Changes {
        let postings_sum: Credits = self.postings.iter().map(|posting| posting.amount).sum();
        assert!(postings_sum.is_zero(), "journal postings must sum to zero");
        let (new_spend_limits, spend_limits) = self.changed_limits();
        let usage = self.usage_deltas();
        let events = self.events();
        let created_grants = self
            .changed_grants
            .iter()
            .filter(|id| !self.loaded.grant_ids.contains(id))
            .copied()
            .collect();
        Changes {
            account: self.account_changed.then(|| self.account.clone()),
            created_grants,
            grants: self
                .changed_grants
                .iter()
                .filter_map(|id| self.grants.get(id).cloned())
                .collect(),
            new_holds: self
                .created_holds
                .iter()
                .filter_map(|id| self.holds.get(id).cloned())
                .collect(),
            holds: self
                .changed_holds
                .iter()
                .filter(|id| !self.created_holds.contains(id))
                .filter_map(|id| self.holds.get(id).cloned())
                .collect(),
            stored_allocations: self.stored_allocations,
            created_settlements: self.created_settlements,
            // A settlement refunded twice in one transaction is written once, as it ends.
            settlements: {
                let mut latest: Vec<SettlementRecord> = Vec::new();
                for settlement in self.settlements.into_iter().rev() {
                    if !latest
                        .iter()
                        .any(|kept| kept.settlement_id == settlement.settlement_id)
                    {
                        latest.push(settlement);
                    }
                }
                latest.reverse();
                latest
            },
            refunds: self.refunds,
            postings: self.postings,
            allowances: self
                .allowances
                .iter()
                .filter(|allowance| self.changed_allowances.contains(&allowance.allowance_id))
                .cloned()
                .collect(),
            allowance_grants: self.allowance_grants,
            new_spend_limits,
            spend_limits,
            removed_spend_limits: self.limits.removed,
            usage,
            events,
        }
    }
}
