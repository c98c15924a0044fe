#![allow(clippy::unwrap_used)]
//! Tests of the money domain: one example per rule, then properties over random sequences of
//! operations checked against the journal after every step.

mod allowance;
mod authorize;
mod burn_order;
mod events;
mod expiry;
mod hold;
mod properties;
mod refund;
mod settle;
mod usage;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::ids::{AccountId, GrantId, HoldId, SettlementId};
use crate::money::Credits;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

fn c(value: i64) -> Credits {
    Credits::whole(value)
}

fn dec(mantissa: i64, scale: u32) -> Credits {
    Credits::from_decimal(Decimal::new(mantissa, scale))
}

fn account(policy: SettlePolicy) -> AccountState {
    AccountState {
        account_id: AccountId::from_uuid(Uuid::from_u128(0xacc0)),
        status: AccountStatus::Active,
        settle_policy: policy,
        debt: Credits::ZERO,
        entitlements: Vec::new(),
        low_balance_threshold: None,
    }
}

fn grant_of(
    source: GrantSource,
    amount: Credits,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> GrantState {
    GrantState {
        grant_id: GrantId::now_v7(),
        source,
        priority: source.default_priority(),
        effective_at: created_at,
        expires_at,
        created_at,
        amount,
        remaining: amount,
        reserved: Credits::ZERO,
        external_ref: None,
        expiry_warned: false,
    }
}

fn hold_of(amount: Credits, now: DateTime<Utc>, ttl: Duration) -> HoldState {
    HoldState {
        hold_id: HoldId::now_v7(),
        status: HoldStatus::Active,
        amount,
        captured: Credits::ZERO,
        expires_at: now + ttl,
        allocations: Vec::new(),
        partial_captures: 0,
        late_settled: false,
        created_at: now,
        resolved_at: None,
        meta: HoldMeta::default(),
    }
}

fn settle_request(hold_id: HoldId, total: Credits, partial: bool) -> SettleRequest {
    SettleRequest {
        settlement_id: SettlementId::now_v7(),
        hold_id,
        total,
        partial,
        max_partial_captures: 3,
        line_items: Vec::new(),
    }
}

fn refund_request(amount: Option<Credits>, grant_expires_at: DateTime<Utc>) -> RefundRequest {
    RefundRequest {
        refund_id: Uuid::now_v7(),
        amount,
        reason: "test".to_owned(),
        refund_grant_id: GrantId::now_v7(),
        refund_grant_expires_at: grant_expires_at,
    }
}

/// A book whose grants were all made through `grant`, so the journal explains them.
fn book_with(policy: SettlePolicy, grants: Vec<GrantState>, now: DateTime<Utc>) -> AccountBook {
    let mut book = AccountBook::new(account(policy), Vec::new(), Vec::new(), now);
    for grant in grants {
        book.grant(grant);
    }
    book
}

/// Authorizes a fresh hold and returns its id.
fn authorize(book: &mut AccountBook, amount: Credits, ttl: Duration) -> HoldId {
    let hold = hold_of(amount, book.now, ttl);
    let hold_id = hold.hold_id;
    book.authorize(hold).unwrap();
    hold_id
}

fn sum_postings<'a>(
    postings: impl IntoIterator<Item = &'a Posting>,
    ledger: LedgerAccount,
) -> Credits {
    postings
        .into_iter()
        .filter(|posting| posting.ledger == ledger)
        .map(|posting| posting.amount)
        .sum()
}

fn kind_total(postings: &[Posting], kind: MovementKind, ledger: LedgerAccount) -> Credits {
    postings
        .iter()
        .filter(|posting| posting.kind == kind && posting.ledger == ledger)
        .map(|posting| posting.amount)
        .sum()
}

fn allocations(hold: &HoldState) -> Vec<(GrantId, Credits)> {
    hold.allocations
        .iter()
        .map(|allocation| (allocation.grant_id, allocation.reserved))
        .collect()
}

/// Persisted state, as the store would keep it: each operation opens a fresh book over it at
/// some `now` and the book's `into_changes` is merged back.
#[derive(Debug, Clone)]
struct Store {
    account: AccountState,
    grants: BTreeMap<GrantId, GrantState>,
    holds: BTreeMap<HoldId, HoldState>,
    settlements: BTreeMap<SettlementId, SettlementRecord>,
    refunds: Vec<RefundRecord>,
    journal: Vec<Posting>,
}

impl Store {
    fn new(account: AccountState) -> Store {
        Store {
            account,
            grants: BTreeMap::new(),
            holds: BTreeMap::new(),
            settlements: BTreeMap::new(),
            refunds: Vec::new(),
            journal: Vec::new(),
        }
    }

    fn open(&self, now: DateTime<Utc>) -> AccountBook {
        AccountBook::new(
            self.account.clone(),
            self.grants.values().cloned().collect(),
            self.holds.values().cloned().collect(),
            now,
        )
    }

    /// Merges what the book changed, and checks that the changes say everything that changed.
    fn commit(&mut self, book: AccountBook) -> Changes {
        let (account, grants, holds) = (
            book.account.clone(),
            book.grants.clone(),
            book.holds.clone(),
        );
        let now = book.now;
        let stored_before = self.clone();
        let changes = book.into_changes();
        if let Some(account) = &changes.account {
            self.account = account.clone();
        }
        // Rows the changes call new are inserted, the others updated: each must be right.
        for grant in &changes.grants {
            assert_eq!(
                changes.created_grants.contains(&grant.grant_id),
                !self.grants.contains_key(&grant.grant_id),
                "grant {} is called new where it was stored, or the reverse",
                grant.grant_id
            );
            self.grants.insert(grant.grant_id, grant.clone());
        }
        for grant_id in &changes.created_grants {
            assert!(
                changes
                    .grants
                    .iter()
                    .any(|grant| grant.grant_id == *grant_id),
                "a new grant is not among the changed ones"
            );
        }
        for hold in &changes.new_holds {
            assert!(
                !self.holds.contains_key(&hold.hold_id),
                "a new hold was already stored"
            );
            self.holds.insert(hold.hold_id, hold.clone());
        }
        for hold in &changes.holds {
            assert!(
                self.holds.contains_key(&hold.hold_id),
                "a changed hold was never stored"
            );
            let stored = self.holds[&hold.hold_id].allocations.len();
            assert_eq!(
                changes.stored_allocations.get(&hold.hold_id),
                Some(&stored),
                "the changes miscount a hold's stored allocations"
            );
            let grants_of = |allocations: &[AllocationState]| -> Vec<GrantId> {
                allocations
                    .iter()
                    .map(|allocation| allocation.grant_id)
                    .collect()
            };
            assert_eq!(
                grants_of(hold.allocations.get(..stored).unwrap_or_default()),
                grants_of(&self.holds[&hold.hold_id].allocations),
                "a hold's stored allocations keep their positions (new ones follow them)"
            );
            self.holds.insert(hold.hold_id, hold.clone());
        }
        for settlement in &changes.settlements {
            assert_eq!(
                changes
                    .created_settlements
                    .contains(&settlement.settlement_id),
                !self.settlements.contains_key(&settlement.settlement_id),
                "settlement {} is called new where it was stored, or the reverse",
                settlement.settlement_id
            );
            self.settlements
                .insert(settlement.settlement_id, settlement.clone());
        }
        self.refunds.extend(changes.refunds.iter().cloned());
        self.journal.extend(changes.postings.iter().cloned());
        assert_eq!(
            self.account, account,
            "a change to the account is missing from the changes"
        );
        assert_eq!(
            self.grants, grants,
            "a changed grant is missing from the changes"
        );
        assert_eq!(
            self.holds, holds,
            "a changed hold is missing from the changes"
        );
        self.check_events(&stored_before, &changes, now);
        changes
    }

    /// The events of a commit are exactly what the stored state before and after says.
    fn check_events(&self, before: &Store, changes: &Changes, now: DateTime<Utc>) {
        let count = |kind: EventType| {
            changes
                .events
                .iter()
                .filter(|event| event.event_type == kind)
                .count()
        };
        let available = |store: &Store| -> Credits {
            store
                .grants
                .values()
                .filter(|grant| grant.effective_at <= now)
                .map(|grant| grant.remaining)
                .sum()
        };
        let low = |store: &Store| {
            store
                .account
                .low_balance_threshold
                .is_some_and(|threshold| available(store) < threshold)
        };
        assert_eq!(
            count(EventType::BalanceLow),
            usize::from(low(self) && !low(before)),
            "BALANCE_LOW fires exactly on a crossing"
        );
        let added = self
            .grants
            .keys()
            .filter(|id| !before.grants.contains_key(id))
            .count();
        assert_eq!(
            count(EventType::GrantAdded),
            added,
            "one GRANT_ADDED per new grant"
        );
        let expired = self
            .holds
            .values()
            .filter(|hold| {
                hold.status == HoldStatus::Expired
                    && before
                        .holds
                        .get(&hold.hold_id)
                        .is_some_and(|was| was.status != HoldStatus::Expired)
            })
            .count();
        assert_eq!(
            count(EventType::HoldExpired),
            expired,
            "one HOLD_EXPIRED per expiry"
        );
        let indebted = changes
            .settlements
            .iter()
            .filter(|settlement| {
                settlement.debt.is_positive()
                    && !before.settlements.contains_key(&settlement.settlement_id)
            })
            .count();
        assert_eq!(
            count(EventType::DebtIncurred),
            indebted,
            "one DEBT_INCURRED per indebted settlement"
        );
    }
}
