#![allow(clippy::unwrap_used)]
//! Tests of the money domain: one example per rule, then properties over random sequences of
//! operations checked against the journal after every step.

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
        let changes = book.into_changes();
        if let Some(account) = &changes.account {
            self.account = account.clone();
        }
        for grant in &changes.grants {
            self.grants.insert(grant.grant_id, grant.clone());
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
            self.holds.insert(hold.hold_id, hold.clone());
        }
        for settlement in &changes.settlements {
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
        changes
    }
}

// ---------------------------------------------------------------------------------------------
// Burn order
// ---------------------------------------------------------------------------------------------

#[test]
fn burn_order_spends_free_daily_then_subscription_then_topup_regardless_of_expiry_or_age() {
    let now = t0();
    let topup = grant_of(
        GrantSource::Topup,
        c(10),
        now - Duration::hours(3),
        Some(now + Duration::hours(1)),
    );
    let subscription = grant_of(
        GrantSource::Subscription,
        c(10),
        now - Duration::hours(2),
        Some(now + Duration::days(1)),
    );
    let free = grant_of(
        GrantSource::FreeDaily,
        c(10),
        now - Duration::hours(1),
        Some(now + Duration::days(2)),
    );
    let ids = [free.grant_id, subscription.grant_id, topup.grant_id];
    let book = book_with(SettlePolicy::Debt, vec![topup, subscription, free], now);
    assert_eq!(book.spendable_in_burn_order(), ids.to_vec());
}

#[test]
fn burn_order_among_equal_priority_is_earliest_expiry_then_never_expiring_then_oldest() {
    let now = t0();
    let hours = Duration::hours;
    let never_old = grant_of(GrantSource::Purchase, c(1), now - hours(4), None);
    let never_new = grant_of(GrantSource::Purchase, c(1), now - hours(1), None);
    let late_expiry = grant_of(
        GrantSource::Purchase,
        c(1),
        now - hours(5),
        Some(now + Duration::days(2)),
    );
    let early_expiry_new = grant_of(
        GrantSource::Purchase,
        c(1),
        now - hours(2),
        Some(now + Duration::days(1)),
    );
    let early_expiry_old = grant_of(
        GrantSource::Purchase,
        c(1),
        now - hours(3),
        Some(now + Duration::days(1)),
    );
    // Not spendable: not yet effective, and already expired.
    let mut future = grant_of(GrantSource::Purchase, c(1), now - hours(6), None);
    future.effective_at = now + hours(1);
    let expired = grant_of(GrantSource::Purchase, c(1), now - hours(6), Some(now));
    let expected = vec![
        early_expiry_old.grant_id,
        early_expiry_new.grant_id,
        late_expiry.grant_id,
        never_old.grant_id,
        never_new.grant_id,
    ];
    let book = book_with(
        SettlePolicy::Debt,
        vec![
            never_new,
            future,
            early_expiry_new,
            never_old,
            expired,
            late_expiry,
            early_expiry_old,
        ],
        now,
    );
    assert_eq!(book.spendable_in_burn_order(), expected);
    assert_eq!(book.available(), c(5));
}

#[test]
fn authorize_reserves_across_several_grants_in_burn_order() {
    let now = t0();
    let topup = grant_of(GrantSource::Topup, c(10), now - Duration::hours(3), None);
    let subscription = grant_of(
        GrantSource::Subscription,
        dec(5_5, 1),
        now - Duration::hours(2),
        None,
    );
    let free = grant_of(
        GrantSource::FreeDaily,
        dec(2_000_000_001, 9),
        now - Duration::hours(1),
        None,
    );
    let (free_id, subscription_id, topup_id) =
        (free.grant_id, subscription.grant_id, topup.grant_id);
    let mut book = book_with(SettlePolicy::Debt, vec![topup, subscription, free], now);
    book.postings.clear();

    let hold_id = authorize(&mut book, c(12), Duration::minutes(10));

    let hold = book.hold(hold_id).unwrap();
    assert_eq!(hold.status, HoldStatus::Active);
    assert_eq!(
        allocations(hold),
        vec![
            (free_id, dec(2_000_000_001, 9)),
            (subscription_id, dec(5_5, 1)),
            (topup_id, dec(4_499_999_999, 9))
        ]
    );
    assert_eq!(hold.outstanding(), c(12));
    assert_eq!(book.grants[&free_id].remaining, Credits::ZERO);
    assert_eq!(book.grants[&subscription_id].remaining, Credits::ZERO);
    assert_eq!(book.grants[&topup_id].remaining, dec(5_500_000_001, 9));
    assert_eq!(book.grants[&topup_id].reserved, dec(4_499_999_999, 9));
    assert_eq!(book.available(), dec(5_500_000_001, 9));
    assert_eq!(book.postings.len(), 6);
    assert!(
        book.postings
            .iter()
            .all(|posting| posting.kind == MovementKind::Hold)
    );
    assert_eq!(sum_postings(&book.postings, LedgerAccount::Held), c(12));
    assert_eq!(
        sum_postings(&book.postings, LedgerAccount::Available),
        -c(12)
    );
}

// ---------------------------------------------------------------------------------------------
// Authorize declines
// ---------------------------------------------------------------------------------------------

#[test]
fn authorize_above_available_declines_insufficient_credits_and_changes_nothing() {
    let now = t0();
    let mut store = Store::new(account(SettlePolicy::Debt));
    let mut book = store.open(now);
    book.grant(grant_of(GrantSource::Topup, c(20), now, None));
    let mut future = grant_of(GrantSource::Promo, c(100), now, None);
    future.effective_at = now + Duration::days(1);
    book.grant(future);
    book.grant(grant_of(
        GrantSource::Promo,
        c(100),
        now - Duration::days(2),
        Some(now - Duration::days(1)),
    ));
    store.commit(book);

    let mut book = store.open(now);
    let required = dec(20_000_000_001, 9);
    let declined = book.authorize(hold_of(required, now, Duration::minutes(5)));
    assert_eq!(
        declined,
        Err(Decline::InsufficientCredits {
            required,
            available: c(20)
        })
    );
    let changes = book.into_changes();
    assert!(
        changes.is_empty(),
        "a declined authorize must change nothing: {changes:?}"
    );
    assert!(changes.postings.is_empty());
    assert!(changes.settlements.is_empty());
}

#[test]
fn authorize_on_suspended_account_declines_account_suspended() {
    let now = t0();
    let mut book = book_with(
        SettlePolicy::Debt,
        vec![grant_of(GrantSource::Topup, c(20), now, None)],
        now,
    );
    book.account.status = AccountStatus::Suspended;
    book.postings.clear();
    let declined = book.authorize(hold_of(c(1), now, Duration::minutes(5)));
    assert_eq!(
        declined,
        Err(Decline::AccountSuspended {
            status: "SUSPENDED"
        })
    );
    assert!(book.postings.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Settle
// ---------------------------------------------------------------------------------------------

#[test]
fn settle_below_hold_captures_the_total_and_releases_the_rest() {
    let now = t0();
    let grant = grant_of(GrantSource::Topup, c(15), now, None);
    let grant_id = grant.grant_id;
    let mut book = book_with(SettlePolicy::Debt, vec![grant], now);
    let hold_id = authorize(&mut book, c(10), Duration::minutes(10));
    book.postings.clear();

    let record = book
        .settle(&settle_request(hold_id, dec(4_25, 2), false))
        .unwrap();

    assert_eq!(record.total, dec(4_25, 2));
    assert_eq!(record.from_hold, dec(4_25, 2));
    assert_eq!(record.from_balance, Credits::ZERO);
    assert_eq!(record.debt, Credits::ZERO);
    assert_eq!(record.written_off, Credits::ZERO);
    assert_eq!(record.released, dec(5_75, 2));
    assert!(!record.late && !record.partial);
    assert_eq!(
        record.parts,
        vec![SettlementPart {
            grant_id,
            amount: dec(4_25, 2),
            refunded: Credits::ZERO
        }]
    );
    let hold = book.hold(hold_id).unwrap();
    assert_eq!(hold.status, HoldStatus::Settled);
    assert_eq!(hold.resolved_at, Some(now));
    assert_eq!(hold.captured, dec(4_25, 2));
    assert_eq!(hold.outstanding(), Credits::ZERO);
    assert_eq!(hold.allocations[0].captured, dec(4_25, 2));
    let grant = book.grant_state(grant_id).unwrap();
    assert_eq!(
        (grant.remaining, grant.reserved),
        (dec(10_75, 2), Credits::ZERO)
    );
    assert_eq!(
        kind_total(
            &book.postings,
            MovementKind::Capture,
            LedgerAccount::Revenue
        ),
        dec(4_25, 2)
    );
    assert_eq!(
        kind_total(
            &book.postings,
            MovementKind::Release,
            LedgerAccount::Available
        ),
        dec(5_75, 2)
    );
}

/// Free 10 and top-up 3; a hold of 8 (all on free); settle 15 → 8 from the hold, 5 from the
/// balance (free 2, then top-up 3), 2 uncovered.
fn settle_above_hold(
    policy: SettlePolicy,
) -> (AccountBook, SettlementRecord, HoldId, GrantId, GrantId) {
    let now = t0();
    let free = grant_of(
        GrantSource::FreeDaily,
        c(10),
        now,
        Some(now + Duration::days(1)),
    );
    let topup = grant_of(GrantSource::Topup, c(3), now, None);
    let (free_id, topup_id) = (free.grant_id, topup.grant_id);
    let mut book = book_with(policy, vec![topup, free], now);
    let hold_id = authorize(&mut book, c(8), Duration::minutes(10));
    assert_eq!(
        allocations(book.hold(hold_id).unwrap()),
        vec![(free_id, c(8))]
    );
    book.postings.clear();
    let record = book.settle(&settle_request(hold_id, c(15), false)).unwrap();
    assert_eq!(record.from_hold, c(8));
    assert_eq!(record.from_balance, c(5));
    assert_eq!(record.released, Credits::ZERO);
    assert_eq!(
        record.parts,
        vec![
            SettlementPart {
                grant_id: free_id,
                amount: c(10),
                refunded: Credits::ZERO
            },
            SettlementPart {
                grant_id: topup_id,
                amount: c(3),
                refunded: Credits::ZERO
            },
        ]
    );
    assert_eq!(book.available(), Credits::ZERO);
    assert_eq!(book.hold(hold_id).unwrap().status, HoldStatus::Settled);
    (book, record, hold_id, free_id, topup_id)
}

#[test]
fn settle_above_hold_draws_further_grants_then_debt_under_debt_policy() {
    let (book, record, hold_id, _, _) = settle_above_hold(SettlePolicy::Debt);
    assert_eq!((record.debt, record.written_off), (c(2), Credits::ZERO));
    assert_eq!(book.account().debt, c(2));
    assert_eq!(book.hold(hold_id).unwrap().captured, c(15));
    assert_eq!(
        kind_total(&book.postings, MovementKind::Debt, LedgerAccount::Debt),
        -c(2)
    );
    assert_eq!(
        kind_total(
            &book.postings,
            MovementKind::WriteOff,
            LedgerAccount::WrittenOff
        ),
        Credits::ZERO
    );
    assert_eq!(sum_postings(&book.postings, LedgerAccount::Revenue), c(15));
    assert!(
        book.into_changes().account.is_some(),
        "the account's new debt must be persisted"
    );
}

#[test]
fn settle_above_hold_draws_further_grants_then_writes_off_under_cap_at_hold_policy() {
    let (book, record, hold_id, _, _) = settle_above_hold(SettlePolicy::CapAtHold);
    assert_eq!((record.debt, record.written_off), (Credits::ZERO, c(2)));
    assert_eq!(record.charged(), c(13));
    assert_eq!(book.account().debt, Credits::ZERO);
    assert_eq!(book.hold(hold_id).unwrap().captured, c(13));
    assert_eq!(
        kind_total(
            &book.postings,
            MovementKind::WriteOff,
            LedgerAccount::WrittenOff
        ),
        -c(2)
    );
    assert!(
        book.postings
            .iter()
            .all(|posting| posting.ledger != LedgerAccount::Debt)
    );
    assert_eq!(sum_postings(&book.postings, LedgerAccount::Revenue), c(15));
}

#[test]
fn account_in_debt_refuses_authorize_and_new_grants_pay_the_debt_first() {
    let (mut book, _, _, _, _) = settle_above_hold(SettlePolicy::Debt);
    let now = book.now;
    assert_eq!(
        book.authorize(hold_of(Credits::ZERO, now, Duration::minutes(5))),
        Err(Decline::AccountInDebt { debt: c(2) })
    );
    book.postings.clear();

    // A grant smaller than the debt goes entirely to it.
    let small = grant_of(GrantSource::Promo, dec(5, 1), now, None);
    let small_id = small.grant_id;
    book.grant(small);
    assert_eq!(book.account().debt, dec(1_5, 1));
    assert_eq!(book.grants[&small_id].remaining, Credits::ZERO);
    // A grant that is not yet effective pays nothing.
    let mut later = grant_of(GrantSource::Promo, c(50), now, None);
    later.effective_at = now + Duration::hours(1);
    book.grant(later);
    assert_eq!(book.account().debt, dec(1_5, 1));
    // A larger grant pays the rest and keeps the remainder.
    let topup = grant_of(GrantSource::Topup, c(5), now, None);
    let topup_id = topup.grant_id;
    book.grant(topup);
    assert_eq!(book.account().debt, Credits::ZERO);
    assert_eq!(book.grants[&topup_id].remaining, dec(3_5, 1));
    let repayments: Vec<(Option<GrantId>, Credits)> = book
        .postings
        .iter()
        .filter(|posting| {
            posting.kind == MovementKind::DebtRepayment && posting.ledger == LedgerAccount::Debt
        })
        .map(|posting| (posting.grant_id, posting.amount))
        .collect();
    assert_eq!(
        repayments,
        vec![(Some(small_id), dec(5, 1)), (Some(topup_id), dec(1_5, 1))]
    );

    let hold_id = authorize(&mut book, dec(3_5, 1), Duration::minutes(5));
    assert_eq!(book.hold(hold_id).unwrap().outstanding(), dec(3_5, 1));
}

#[test]
fn late_settle_after_hold_expiry_charges_the_balance_and_is_marked_late_once() {
    let now = t0();
    let mut store = Store::new(account(SettlePolicy::Debt));
    let mut book = store.open(now);
    let grant = grant_of(GrantSource::Topup, c(10), now, None);
    let grant_id = grant.grant_id;
    book.grant(grant);
    let hold_id = authorize(&mut book, c(4), Duration::minutes(10));
    store.commit(book);

    let later = now + Duration::minutes(11);
    let mut book = store.open(later);
    assert_eq!(
        book.hold(hold_id).unwrap().status,
        HoldStatus::Active,
        "loaded still active, but due"
    );
    // Only a final settle may come late: a partial one is refused and changes nothing.
    assert_eq!(
        book.settle(&settle_request(hold_id, c(1), true)),
        Err(Decline::HoldNotActive {
            status: HoldStatus::Expired
        })
    );
    assert_eq!(book.hold(hold_id).unwrap().captured, Credits::ZERO);
    let record = book.settle(&settle_request(hold_id, c(6), false)).unwrap();
    assert!(record.late);
    assert_eq!(record.from_hold, Credits::ZERO);
    assert_eq!(record.from_balance, c(6));
    assert_eq!(record.released, Credits::ZERO);
    assert_eq!(record.debt, Credits::ZERO);
    let hold = book.hold(hold_id).unwrap();
    assert_eq!(hold.status, HoldStatus::Expired);
    assert!(hold.late_settled);
    assert_eq!(hold.captured, c(6));
    assert_eq!(hold.resolved_at, Some(later));
    assert_eq!(book.grant_state(grant_id).unwrap().remaining, c(4));
    let changes = store.commit(book);
    assert_eq!(
        kind_total(
            &changes.postings,
            MovementKind::Release,
            LedgerAccount::Available
        ),
        c(4)
    );

    let mut book = store.open(later + Duration::minutes(1));
    assert_eq!(
        book.settle(&settle_request(hold_id, c(1), false)),
        Err(Decline::HoldNotActive {
            status: HoldStatus::Expired
        })
    );
}

#[test]
fn second_final_settle_declines_hold_not_active() {
    let now = t0();
    let mut book = book_with(
        SettlePolicy::Debt,
        vec![grant_of(GrantSource::Topup, c(10), now, None)],
        now,
    );
    let hold_id = authorize(&mut book, c(5), Duration::minutes(10));
    book.settle(&settle_request(hold_id, c(5), false)).unwrap();
    let postings = book.postings.len();
    let settled = Err(Decline::HoldNotActive {
        status: HoldStatus::Settled,
    });
    assert_eq!(book.settle(&settle_request(hold_id, c(5), false)), settled);
    assert_eq!(book.settle(&settle_request(hold_id, c(1), true)), settled);
    assert_eq!(
        book.release(hold_id),
        Err(Decline::HoldNotActive {
            status: HoldStatus::Settled
        })
    );
    assert_eq!(book.postings.len(), postings);
}

#[test]
fn partial_captures_keep_the_hold_active_and_are_bounded_by_max_partial_captures() {
    let now = t0();
    let mut book = book_with(
        SettlePolicy::Debt,
        vec![grant_of(GrantSource::Topup, c(20), now, None)],
        now,
    );
    let hold_id = authorize(&mut book, c(10), Duration::minutes(10));
    let partial = |total| SettleRequest {
        max_partial_captures: 2,
        line_items: Vec::new(),
        ..settle_request(hold_id, total, true)
    };

    let first = book.settle(&partial(c(3))).unwrap();
    assert!(first.partial);
    assert_eq!((first.from_hold, first.released), (c(3), Credits::ZERO));
    let hold = book.hold(hold_id).unwrap();
    assert_eq!(
        (hold.status, hold.partial_captures, hold.outstanding()),
        (HoldStatus::Active, 1, c(7))
    );

    book.settle(&partial(c(3))).unwrap();
    let hold = book.hold(hold_id).unwrap();
    assert_eq!(
        (hold.status, hold.partial_captures, hold.outstanding()),
        (HoldStatus::Active, 2, c(4))
    );

    assert_eq!(
        book.settle(&partial(c(1))),
        Err(Decline::PartialCaptureLimit { limit: 2 })
    );

    let last = book
        .settle(&SettleRequest {
            partial: false,
            ..partial(c(2))
        })
        .unwrap();
    assert_eq!((last.from_hold, last.released), (c(2), c(2)));
    let hold = book.hold(hold_id).unwrap();
    assert_eq!((hold.status, hold.captured), (HoldStatus::Settled, c(8)));
    assert_eq!(book.available(), c(12));
}

#[test]
fn partial_capture_above_outstanding_draws_balance_and_keeps_the_hold_active() {
    let now = t0();
    let mut book = book_with(
        SettlePolicy::Debt,
        vec![grant_of(GrantSource::Topup, c(20), now, None)],
        now,
    );
    let hold_id = authorize(&mut book, c(5), Duration::minutes(10));
    let record = book.settle(&settle_request(hold_id, c(7), true)).unwrap();
    assert_eq!(
        (record.from_hold, record.from_balance, record.released),
        (c(5), c(2), Credits::ZERO)
    );
    let hold = book.hold(hold_id).unwrap();
    assert_eq!(
        (hold.status, hold.outstanding(), hold.captured),
        (HoldStatus::Active, Credits::ZERO, c(7))
    );
    assert_eq!(book.available(), c(13));
}

// ---------------------------------------------------------------------------------------------
// Release and extend
// ---------------------------------------------------------------------------------------------

#[test]
fn release_returns_every_reservation_and_only_once() {
    let now = t0();
    let mut book = book_with(
        SettlePolicy::Debt,
        vec![
            grant_of(GrantSource::FreeDaily, c(2), now, None),
            grant_of(GrantSource::Topup, c(10), now, None),
        ],
        now,
    );
    let hold_id = authorize(&mut book, c(7), Duration::minutes(10));
    assert_eq!(book.available(), c(5));
    assert_eq!(book.release(hold_id), Ok(c(7)));
    assert_eq!(book.available(), c(12));
    assert_eq!(book.hold(hold_id).unwrap().status, HoldStatus::Released);
    assert!(book.grants.values().all(|grant| grant.reserved.is_zero()));
    assert_eq!(
        book.release(hold_id),
        Err(Decline::HoldNotActive {
            status: HoldStatus::Released
        })
    );
}

#[test]
fn a_new_hold_is_refused_for_entitlement_then_status_then_debt_then_credits() {
    let now = t0();
    let mut book = book_with(
        SettlePolicy::Debt,
        vec![grant_of(GrantSource::Topup, c(10), now, None)],
        now,
    );
    let hold_id = authorize(&mut book, c(5), Duration::minutes(10));
    book.account.status = AccountStatus::Closed;
    book.account.debt = c(1);
    let suspended = Decline::AccountSuspended { status: "CLOSED" };
    let entitlement = Decline::EntitlementRequired {
        entitlement: "pro".to_owned(),
    };
    let refusal = book.hold_refusal(Some("pro"), c(6));
    assert_eq!(refusal.run, Some(entitlement.clone()));
    assert_eq!(refusal.funding, Some(Decline::AccountInDebt { debt: c(1) }));
    assert_eq!(refusal.first(), Some(entitlement));
    assert_eq!(
        book.hold_refusal(None, c(6)).first(),
        Some(suspended.clone())
    );
    // ExtendHold raising a hold asks the same, without an entitlement.
    assert_eq!(
        book.clone().extend(hold_id, Some(c(6)), None),
        Err(suspended)
    );

    book.account.status = AccountStatus::Active;
    book.account.debt = Credits::ZERO;
    book.account.entitlements.push("pro".to_owned());
    let refusal = book.hold_refusal(Some("pro"), c(6));
    assert_eq!(refusal.run, None);
    assert_eq!(
        refusal.first(),
        Some(Decline::InsufficientCredits {
            required: c(6),
            available: c(5)
        })
    );
    assert_eq!(book.hold_refusal(Some("pro"), c(5)).first(), None);
}

#[test]
fn extend_lowering_the_amount_declines_and_raising_reserves_more() {
    let now = t0();
    let mut book = book_with(
        SettlePolicy::Debt,
        vec![grant_of(GrantSource::Topup, c(10), now, None)],
        now,
    );
    let hold_id = authorize(&mut book, c(5), Duration::minutes(10));
    let postings = book.postings.len();

    assert_eq!(
        book.extend(hold_id, Some(dec(4_999_999_999, 9)), None),
        Err(Decline::AmountBelowHold {
            requested: dec(4_999_999_999, 9),
            current: c(5)
        })
    );
    assert_eq!(book.postings.len(), postings);
    assert_eq!(book.hold(hold_id).unwrap().amount, c(5));

    let new_expiry = now + Duration::hours(1);
    book.extend(hold_id, Some(c(8)), Some(new_expiry)).unwrap();
    let hold = book.hold(hold_id).unwrap();
    assert_eq!(
        (hold.amount, hold.outstanding(), hold.expires_at),
        (c(8), c(8), new_expiry)
    );
    assert_eq!(book.available(), c(2));

    assert_eq!(
        book.extend(hold_id, Some(c(11)), None),
        Err(Decline::InsufficientCredits {
            required: c(3),
            available: c(2)
        })
    );
    book.release(hold_id).unwrap();
    assert_eq!(
        book.extend(hold_id, Some(c(9)), None),
        Err(Decline::HoldNotActive {
            status: HoldStatus::Released
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Refund
// ---------------------------------------------------------------------------------------------

#[test]
fn refund_partial_then_the_rest_then_any_more_declines_refund_exceeds_capture() {
    let now = t0();
    let grant = grant_of(GrantSource::Topup, c(20), now, None);
    let grant_id = grant.grant_id;
    let mut book = book_with(SettlePolicy::Debt, vec![grant], now);
    let hold_id = authorize(&mut book, c(10), Duration::minutes(10));
    let mut settlement = book.settle(&settle_request(hold_id, c(10), false)).unwrap();
    let expiry = now + Duration::days(30);

    let first = book
        .refund(
            &mut settlement,
            &refund_request(Some(dec(4_000_000_001, 9)), expiry),
        )
        .unwrap();
    assert_eq!(first.amount, dec(4_000_000_001, 9));
    assert_eq!(first.debt_reduced, Credits::ZERO);
    assert_eq!(first.returned_to, vec![(grant_id, dec(4_000_000_001, 9))]);
    assert_eq!(first.new_grant_id, None);
    assert_eq!(
        book.grant_state(grant_id).unwrap().remaining,
        dec(14_000_000_001, 9)
    );

    let rest = book
        .refund(&mut settlement, &refund_request(None, expiry))
        .unwrap();
    assert_eq!(rest.amount, dec(5_999_999_999, 9));
    assert_eq!(settlement.refunded, c(10));
    assert_eq!(settlement.parts[0].refunded, c(10));
    assert_eq!(book.grant_state(grant_id).unwrap().remaining, c(20));

    let one_more = dec(1, 9);
    assert_eq!(
        book.refund(&mut settlement, &refund_request(Some(one_more), expiry)),
        Err(Decline::RefundExceedsCapture {
            requested: one_more,
            refundable: Credits::ZERO
        })
    );
    assert_eq!(
        book.refund(&mut settlement, &refund_request(None, expiry)),
        Err(Decline::RefundExceedsCapture {
            requested: Credits::ZERO,
            refundable: Credits::ZERO
        })
    );
    assert_eq!(
        sum_postings(&book.postings, LedgerAccount::Revenue),
        Credits::ZERO
    );
}

#[test]
fn refund_returns_to_the_latest_taken_grant_first() {
    let (mut book, mut settlement, _, free_id, topup_id) =
        settle_above_hold(SettlePolicy::CapAtHold);
    // Parts: free 10, top-up 3; written off 2, so 13 refundable.
    let record = book
        .refund(
            &mut settlement,
            &refund_request(Some(c(4)), book.now + Duration::days(1)),
        )
        .unwrap();
    assert_eq!(record.returned_to, vec![(topup_id, c(3)), (free_id, c(1))]);
    assert_eq!(
        book.refund(&mut settlement, &refund_request(Some(c(10)), book.now)),
        Err(Decline::RefundExceedsCapture {
            requested: c(10),
            refundable: c(9)
        })
    );
}

#[test]
fn refund_reduces_debt_before_returning_credits_to_grants() {
    let (mut book, mut settlement, _, free_id, topup_id) = settle_above_hold(SettlePolicy::Debt);
    assert_eq!(book.account().debt, c(2));
    let expiry = book.now + Duration::days(1);
    let record = book
        .refund(&mut settlement, &refund_request(Some(c(3)), expiry))
        .unwrap();
    assert_eq!(record.debt_reduced, c(2));
    assert_eq!(record.returned_to, vec![(topup_id, c(1))]);
    assert_eq!(book.account().debt, Credits::ZERO);
    let rest = book
        .refund(&mut settlement, &refund_request(None, expiry))
        .unwrap();
    assert_eq!(rest.amount, c(12));
    assert_eq!(rest.returned_to, vec![(topup_id, c(2)), (free_id, c(10))]);
    assert_eq!(book.available(), c(13));
}

#[test]
fn refund_to_an_expired_grant_creates_a_refund_grant() {
    let now = t0();
    let mut store = Store::new(account(SettlePolicy::Debt));
    let mut book = store.open(now);
    let free = grant_of(
        GrantSource::FreeDaily,
        c(6),
        now,
        Some(now + Duration::hours(1)),
    );
    let topup = grant_of(GrantSource::Topup, c(10), now, None);
    let (free_id, topup_id) = (free.grant_id, topup.grant_id);
    book.grant(free);
    book.grant(topup);
    let hold_id = authorize(&mut book, c(6), Duration::minutes(10));
    let settlement = book.settle(&settle_request(hold_id, c(8), false)).unwrap();
    assert_eq!(
        settlement
            .parts
            .iter()
            .map(|part| part.grant_id)
            .collect::<Vec<_>>(),
        vec![free_id, topup_id]
    );
    store.commit(book);

    let later = now + Duration::hours(2);
    let mut book = store.open(later);
    let mut settlement = store.settlements[&settlement.settlement_id].clone();
    let request = refund_request(Some(c(5)), later + Duration::days(7));
    let record = book.refund(&mut settlement, &request).unwrap();
    // Latest taken first: top-up (2) is still usable; the free grant's 3 comes back as a new grant.
    assert_eq!(record.returned_to, vec![(topup_id, c(2))]);
    assert_eq!(record.new_grant_id, Some(request.refund_grant_id));
    let new_grant = book.grant_state(request.refund_grant_id).unwrap();
    assert_eq!(new_grant.source, GrantSource::Refund);
    assert_eq!(new_grant.priority, GrantSource::Refund.default_priority());
    assert_eq!(
        (new_grant.amount, new_grant.remaining, new_grant.reserved),
        (c(3), c(3), Credits::ZERO)
    );
    assert_eq!(new_grant.expires_at, Some(later + Duration::days(7)));
    assert_eq!(new_grant.effective_at, later);
    assert_eq!(book.grant_state(free_id).unwrap().remaining, Credits::ZERO);
    let changes = store.commit(book);
    let to_new: Credits = changes
        .postings
        .iter()
        .filter(|posting| {
            posting.kind == MovementKind::Refund
                && posting.ledger == LedgerAccount::Available
                && posting.grant_id == Some(request.refund_grant_id)
        })
        .map(|posting| posting.amount)
        .sum();
    assert_eq!(to_new, c(3));
    // The free grant was spent in full, so its expiry broke nothing.
    assert_eq!(
        kind_total(
            &changes.postings,
            MovementKind::Expiry,
            LedgerAccount::Expired
        ),
        Credits::ZERO
    );
}

// ---------------------------------------------------------------------------------------------
// Expiry and balance
// ---------------------------------------------------------------------------------------------

#[test]
fn grant_expiry_posts_breakage_and_the_reservation_on_it_stays_capturable_by_its_hold() {
    let now = t0();
    let mut store = Store::new(account(SettlePolicy::Debt));
    let mut book = store.open(now);
    let free = grant_of(
        GrantSource::FreeDaily,
        c(10),
        now,
        Some(now + Duration::hours(1)),
    );
    let free_id = free.grant_id;
    book.grant(free);
    book.grant(grant_of(GrantSource::Topup, c(1), now, None));
    let hold_id = authorize(&mut book, c(6), Duration::hours(3));
    store.commit(book);

    let mut book = store.open(now + Duration::hours(2));
    book.sweep();
    let changes = store.commit(book);
    let breakage: Vec<(Option<GrantId>, Credits)> = changes
        .postings
        .iter()
        .filter(|posting| {
            posting.kind == MovementKind::Expiry && posting.ledger == LedgerAccount::Expired
        })
        .map(|posting| (posting.grant_id, posting.amount))
        .collect();
    assert_eq!(breakage, vec![(Some(free_id), c(4))]);
    assert_eq!(
        (
            store.grants[&free_id].remaining,
            store.grants[&free_id].reserved
        ),
        (Credits::ZERO, c(6))
    );
    assert_eq!(store.holds[&hold_id].status, HoldStatus::Active);

    let mut book = store.open(now + Duration::hours(2));
    let record = book.settle(&settle_request(hold_id, c(5), false)).unwrap();
    assert_eq!(
        (record.from_hold, record.from_balance, record.released),
        (c(5), Credits::ZERO, c(1))
    );
    let changes = store.commit(book);
    // The released 1 went back to the expired grant and broke at once.
    assert_eq!(
        kind_total(
            &changes.postings,
            MovementKind::Expiry,
            LedgerAccount::Expired
        ),
        c(1)
    );
    assert_eq!(
        (
            store.grants[&free_id].remaining,
            store.grants[&free_id].reserved
        ),
        (Credits::ZERO, Credits::ZERO)
    );
    assert_eq!(store.open(now + Duration::hours(2)).available(), c(1));
}

#[test]
fn balance_counts_a_due_but_unswept_hold_as_released_without_changing_the_book() {
    let now = t0();
    let mut store = Store::new(account(SettlePolicy::Debt));
    let mut book = store.open(now);
    book.grant(grant_of(
        GrantSource::Subscription,
        c(10),
        now,
        Some(now + Duration::days(1)),
    ));
    book.grant(grant_of(GrantSource::Topup, c(5), now, None));
    let hold_id = authorize(&mut book, c(12), Duration::minutes(10));
    store.commit(book);

    let book = store.open(now);
    let balance = book.balance(Duration::days(2));
    assert_eq!(
        (balance.available, balance.held, balance.debt),
        (c(3), c(12), Credits::ZERO)
    );

    let book = store.open(now + Duration::minutes(20));
    let balance = book.balance(Duration::days(2));
    assert_eq!((balance.available, balance.held), (c(15), Credits::ZERO));
    assert_eq!(
        balance.buckets,
        vec![
            BucketBalance {
                source: GrantSource::Subscription,
                available: c(10),
                held: Credits::ZERO,
                expiring_soon: c(10),
            },
            BucketBalance {
                source: GrantSource::Topup,
                available: c(5),
                held: Credits::ZERO,
                expiring_soon: Credits::ZERO
            },
        ]
    );
    assert_eq!(book.hold(hold_id).unwrap().status, HoldStatus::Active);
    assert!(
        book.into_changes().is_empty(),
        "balance must not change the book"
    );
}

// ---------------------------------------------------------------------------------------------
// Regressions: decisions must rest on state brought up to `now` (debt paid by newly spendable credits).
// ---------------------------------------------------------------------------------------------

/// Debt 2, and a promo grant of 10 that becomes effective an hour later. Once it is effective,
/// `balance()` (which sweeps a copy) says debt 0 and 8 available, but `authorize` checks the debt
/// before anything pays it and declines `AccountInDebt { debt: 2 }`; the service stores that
/// decline under the idempotency key.
#[test]
fn authorize_is_not_declined_for_debt_a_newly_effective_grant_pays() {
    let now = t0();
    let mut store = Store::new(account(SettlePolicy::Debt));
    let mut book = store.open(now);
    book.grant(grant_of(GrantSource::Topup, c(5), now, None));
    let hold_id = authorize(&mut book, c(5), Duration::minutes(10));
    book.settle(&settle_request(hold_id, c(7), false)).unwrap();
    let mut promo = grant_of(GrantSource::Promo, c(10), now, None);
    promo.effective_at = now + Duration::hours(1);
    book.grant(promo);
    store.commit(book);
    assert_eq!(store.account.debt, c(2));

    let later = now + Duration::hours(2);
    let balance = store.open(later).balance(Duration::zero());
    assert_eq!((balance.debt, balance.available), (Credits::ZERO, c(8)));
    let mut book = store.open(later);
    assert_eq!(
        book.authorize(hold_of(c(5), later, Duration::minutes(10))),
        Ok(())
    );
}

/// Same with a due hold: hold A reserves 5 while hold B's overrun makes debt 2. After A's TTL,
/// `balance()` says debt 0 and 3 available, but `authorize` expires A, then declines on the debt
/// its released credits would have paid.
#[test]
fn authorize_is_not_declined_for_debt_a_due_hold_release_pays() {
    let now = t0();
    let mut store = Store::new(account(SettlePolicy::Debt));
    let mut book = store.open(now);
    book.grant(grant_of(GrantSource::Topup, c(6), now, None));
    let hold_a = authorize(&mut book, c(5), Duration::minutes(10));
    let hold_b = authorize(&mut book, c(1), Duration::hours(1));
    book.settle(&settle_request(hold_b, c(3), false)).unwrap();
    store.commit(book);
    assert_eq!(store.account.debt, c(2));
    assert_eq!(store.holds[&hold_a].status, HoldStatus::Active);

    let later = now + Duration::minutes(20);
    let balance = store.open(later).balance(Duration::zero());
    assert_eq!((balance.debt, balance.available), (Credits::ZERO, c(3)));
    let mut book = store.open(later);
    assert_eq!(
        book.authorize(hold_of(c(1), later, Duration::minutes(10))),
        Ok(())
    );
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// What a settle's total is, relative to the hold's outstanding reservation.
#[derive(Debug, Clone)]
enum Total {
    Exact,
    Below(Credits),
    Above(Credits),
    /// Above the hold and everything spendable: debt or write-off.
    AboveAll(Credits),
    Raw(Credits),
}

#[derive(Debug, Clone)]
enum Change {
    Keep,
    Raise(Credits),
    Lower(Credits),
}

#[derive(Debug, Clone)]
enum RefundAmount {
    Rest,
    UpToRefundable(Credits),
    Raw(Credits),
}

/// Which hold an operation is about: any hold made so far, or (mostly) an active one.
#[derive(Debug, Clone, Copy)]
struct Pick {
    index: usize,
    active: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Grant {
        source: GrantSource,
        priority: Option<i32>,
        starts_in: i64,
        expires_in: Option<i64>,
        amount: Credits,
    },
    Authorize {
        amount: Credits,
        ttl: i64,
    },
    Extend {
        pick: Pick,
        change: Change,
        ttl: Option<i64>,
    },
    Settle {
        pick: Pick,
        total: Total,
        partial: bool,
    },
    Release {
        pick: Pick,
    },
    Refund {
        pick: usize,
        amount: RefundAmount,
        expires_in: i64,
    },
    Advance {
        minutes: i64,
    },
    Sweep,
    Balance,
}

/// Credits below `max_units` with 0 to 9 decimals.
fn credits(max_units: i64) -> impl Strategy<Value = Credits> {
    (0..max_units, 0u32..=9, any::<i64>()).prop_map(|(units, scale, fraction)| {
        let unit = 10i64.pow(scale);
        Credits::from_decimal(Decimal::new(
            units * unit + fraction.rem_euclid(unit),
            scale,
        ))
    })
}

fn pick() -> impl Strategy<Value = Pick> {
    (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(index, active)| Pick { index, active })
}

fn op() -> impl Strategy<Value = Op> {
    let source = prop::sample::select(vec![
        GrantSource::FreeDaily,
        GrantSource::Subscription,
        GrantSource::Purchase,
        GrantSource::Topup,
        GrantSource::Promo,
        GrantSource::Refund,
    ]);
    let grant = (
        source,
        prop::option::weighted(0.3, 0..60i32),
        prop_oneof![4 => Just(0i64), 1 => 1..120i64],
        prop::option::weighted(0.6, -10..600i64),
        credits(30),
    )
        .prop_map(
            |(source, priority, starts_in, expires_in, amount)| Op::Grant {
                source,
                priority,
                starts_in,
                expires_in,
                amount,
            },
        );
    let authorize =
        (credits(25), 1..240i64).prop_map(|(amount, ttl)| Op::Authorize { amount, ttl });
    let change = prop_oneof![
        Just(Change::Keep),
        credits(10).prop_map(Change::Raise),
        credits(5).prop_map(Change::Lower),
    ];
    let extend = (pick(), change, prop::option::of(-5..240i64))
        .prop_map(|(pick, change, ttl)| Op::Extend { pick, change, ttl });
    let total = prop_oneof![
        Just(Total::Exact),
        credits(10).prop_map(Total::Below),
        credits(15).prop_map(Total::Above),
        credits(5).prop_map(Total::AboveAll),
        credits(30).prop_map(Total::Raw),
    ];
    let settle =
        (pick(), total, prop::bool::weighted(0.3)).prop_map(|(pick, total, partial)| Op::Settle {
            pick,
            total,
            partial,
        });
    let release = pick().prop_map(|pick| Op::Release { pick });
    let refund_amount = prop_oneof![
        Just(RefundAmount::Rest),
        credits(10).prop_map(RefundAmount::UpToRefundable),
        credits(20).prop_map(RefundAmount::Raw),
    ];
    let refund =
        (any::<usize>(), refund_amount, -5..600i64).prop_map(|(pick, amount, expires_in)| {
            Op::Refund {
                pick,
                amount,
                expires_in,
            }
        });
    let advance = prop_oneof![1..30i64, 30..300i64].prop_map(|minutes| Op::Advance { minutes });
    prop_oneof![
        4 => grant,
        4 => authorize,
        1 => extend,
        4 => settle,
        1 => release,
        2 => refund,
        2 => advance,
        1 => Just(Op::Sweep),
        1 => Just(Op::Balance),
    ]
}

/// What the test knows independently of the book: the clock, the ids it made, every settlement
/// and refund, and the credits it granted.
#[derive(Debug)]
struct Sim {
    now: DateTime<Utc>,
    next_id: u128,
    max_partial: i32,
    hold_ids: Vec<HoldId>,
    settlements: BTreeMap<SettlementId, SettlementRecord>,
    refunds: Vec<RefundRecord>,
    granted: Credits,
}

impl Sim {
    fn new(max_partial: i32) -> Sim {
        Sim {
            now: t0(),
            next_id: 0,
            max_partial,
            hold_ids: Vec::new(),
            settlements: BTreeMap::new(),
            refunds: Vec::new(),
            granted: Credits::ZERO,
        }
    }

    fn id(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(self.next_id)
    }

    fn pick_hold(&self, book: &AccountBook, pick: Pick) -> Option<HoldId> {
        let active: Vec<HoldId> = self
            .hold_ids
            .iter()
            .copied()
            .filter(|hold_id| book.holds[hold_id].status == HoldStatus::Active)
            .collect();
        let from = if pick.active && !active.is_empty() {
            &active
        } else {
            &self.hold_ids
        };
        (!from.is_empty()).then(|| from[pick.index % from.len()])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Applied; the book ran `finish`.
    Applied,
    /// Refused with a decline.
    Declined,
    /// Nothing to do, or only time moved / state read.
    Passive,
}

/// A copy of the book with due holds expired: the state an operation acts on.
fn before(book: &AccountBook) -> AccountBook {
    let mut view = book.clone();
    view.begin();
    view
}

/// Applies one operation to `book`, checking its result against what the state before it says.
fn run_op(book: &mut AccountBook, op: &Op, sim: &mut Sim) -> Step {
    let now = sim.now;
    book.now = now;
    match op {
        Op::Grant {
            source,
            priority,
            starts_in,
            expires_in,
            amount,
        } => {
            let grant = GrantState {
                grant_id: GrantId::from_uuid(sim.id()),
                source: *source,
                priority: priority.unwrap_or(source.default_priority()),
                effective_at: now + Duration::minutes(*starts_in),
                expires_at: expires_in.map(|minutes| now + Duration::minutes(minutes)),
                created_at: now,
                amount: *amount,
                remaining: *amount,
                reserved: Credits::ZERO,
                external_ref: None,
            };
            let debt_before = book.account.debt;
            book.grant(grant);
            assert!(book.account.debt <= debt_before, "a grant raised the debt");
            sim.granted += *amount;
            Step::Applied
        }
        Op::Authorize { amount, ttl } => {
            let pre = before(book);
            let available = pre.available();
            let hold = HoldState {
                hold_id: HoldId::from_uuid(sim.id()),
                ..hold_of(*amount, now, Duration::minutes(*ttl))
            };
            let hold_id = hold.hold_id;
            let result = book.authorize(hold);
            if pre.account.debt.is_positive() {
                assert_eq!(
                    result,
                    Err(Decline::AccountInDebt {
                        debt: pre.account.debt
                    })
                );
                return Step::Declined;
            }
            if *amount > available {
                assert_eq!(
                    result,
                    Err(Decline::InsufficientCredits {
                        required: *amount,
                        available
                    })
                );
                assert!(book.hold(hold_id).is_none());
                return Step::Declined;
            }
            assert_eq!(result, Ok(()));
            let hold = book.hold(hold_id).unwrap();
            assert_eq!(
                hold.outstanding(),
                *amount,
                "the hold reserves exactly its amount"
            );
            assert_eq!(
                book.available(),
                available - *amount,
                "authorize reserved more than it took"
            );
            // Reserved in burn order: every grant but the last is drained, and no spendable grant
            // left with credits comes before the last one used.
            let keys: Vec<_> = hold
                .allocations
                .iter()
                .map(|allocation| book.grants[&allocation.grant_id].burn_key())
                .collect();
            assert!(
                keys.windows(2).all(|pair| pair[0] < pair[1]),
                "allocations out of burn order"
            );
            for allocation in hold.allocations.iter().rev().skip(1) {
                assert!(
                    book.grants[&allocation.grant_id].remaining.is_zero(),
                    "skipped part of a grant"
                );
            }
            if let Some(last) = keys.last() {
                for grant in book.grants.values() {
                    if grant.spendable_at(now) && grant.remaining.is_positive() {
                        assert!(
                            grant.burn_key() >= *last,
                            "reserved a later grant before an earlier one"
                        );
                    }
                }
            }
            sim.hold_ids.push(hold_id);
            Step::Applied
        }
        Op::Extend { pick, change, ttl } => {
            let Some(hold_id) = sim.pick_hold(book, *pick) else {
                return Step::Passive;
            };
            let pre = before(book);
            let hold = pre.hold(hold_id).unwrap();
            let (status, current, outstanding) = (hold.status, hold.amount, hold.outstanding());
            let requested = match change {
                Change::Keep => None,
                Change::Raise(more) => Some(current + *more),
                Change::Lower(less) => Some(current - *less - dec(1, 9)),
            };
            let expires_at = ttl.map(|minutes| now + Duration::minutes(minutes));
            let result = book.extend(hold_id, requested, expires_at);
            if status != HoldStatus::Active {
                assert_eq!(result, Err(Decline::HoldNotActive { status }));
                return Step::Declined;
            }
            let more = requested.map_or(Credits::ZERO, |requested| requested - current);
            if let Some(requested) = requested.filter(|requested| *requested < current) {
                assert_eq!(result, Err(Decline::AmountBelowHold { requested, current }));
                return Step::Declined;
            }
            if more.is_positive() && pre.account.debt.is_positive() {
                assert_eq!(
                    result,
                    Err(Decline::AccountInDebt {
                        debt: pre.account.debt
                    })
                );
                return Step::Declined;
            }
            if more > pre.available() {
                assert_eq!(
                    result,
                    Err(Decline::InsufficientCredits {
                        required: more,
                        available: pre.available()
                    })
                );
                return Step::Declined;
            }
            assert_eq!(result, Ok(()));
            let hold = book.hold(hold_id).unwrap();
            assert_eq!(hold.outstanding(), outstanding + more);
            assert_eq!(hold.amount, current + more);
            if let Some(expires_at) = expires_at {
                assert_eq!(hold.expires_at, expires_at);
            }
            Step::Applied
        }
        Op::Settle {
            pick,
            total,
            partial,
        } => {
            let Some(hold_id) = sim.pick_hold(book, *pick) else {
                return Step::Passive;
            };
            let pre = before(book);
            let hold = pre.hold(hold_id).unwrap().clone();
            let outstanding = hold.outstanding();
            let available = pre.available();
            let total = match total {
                Total::Exact => outstanding,
                Total::Below(less) => outstanding - outstanding.min(*less),
                Total::Above(more) => outstanding + *more,
                Total::AboveAll(more) => outstanding + available + *more + dec(1, 9),
                Total::Raw(total) => *total,
            };
            let request = SettleRequest {
                settlement_id: SettlementId::from_uuid(sim.id()),
                hold_id,
                total,
                partial: *partial,
                max_partial_captures: sim.max_partial,
                line_items: Vec::new(),
            };
            let result = book.settle(&request);
            let late = match hold.status {
                HoldStatus::Active => false,
                HoldStatus::Expired if !hold.late_settled && !*partial => true,
                status => {
                    assert_eq!(result, Err(Decline::HoldNotActive { status }));
                    return Step::Declined;
                }
            };
            if *partial && hold.partial_captures >= sim.max_partial {
                assert_eq!(
                    result,
                    Err(Decline::PartialCaptureLimit {
                        limit: sim.max_partial
                    })
                );
                return Step::Declined;
            }
            let record = result.unwrap();
            assert_eq!(record.total, total);
            assert_eq!(record.late, late);
            assert_eq!(record.partial, *partial);
            assert_eq!(
                record.from_hold + record.from_balance + record.debt + record.written_off,
                total
            );
            assert!(
                record.from_hold <= outstanding,
                "took more from the hold than it reserved"
            );
            assert_eq!(record.from_hold, total.min(outstanding));
            assert_eq!(
                record.from_balance,
                (total - record.from_hold).min(available)
            );
            if late {
                assert!(
                    record.from_hold.is_zero(),
                    "an expired hold reserves nothing"
                );
            }
            match pre.account.settle_policy {
                SettlePolicy::Debt => {
                    assert!(record.written_off.is_zero(), "DEBT policy wrote off")
                }
                SettlePolicy::CapAtHold => {
                    // Only what the hold authorized and nothing covered is owed; the rest is
                    // written off.
                    let authorized_left = if hold.amount > hold.captured {
                        hold.amount - hold.captured
                    } else {
                        Credits::ZERO
                    };
                    let covered = record.from_hold + record.from_balance;
                    let within = total.min(authorized_left);
                    let owed = if within > covered {
                        within - covered
                    } else {
                        Credits::ZERO
                    };
                    assert_eq!(
                        record.debt, owed,
                        "CAP_AT_HOLD owes exactly the uncovered part within the hold"
                    );
                }
            }
            let parts: Credits = record.parts.iter().map(|part| part.amount).sum();
            assert_eq!(parts, record.from_hold + record.from_balance);
            let after = book.hold(hold_id).unwrap();
            assert_eq!(after.captured, hold.captured + record.charged());
            if *partial {
                assert_eq!(record.released, Credits::ZERO);
                assert_eq!(
                    after.status, hold.status,
                    "a partial capture changed the hold's status"
                );
                assert_eq!(after.partial_captures, hold.partial_captures + 1);
                assert_eq!(after.outstanding(), outstanding - record.from_hold);
            } else {
                assert_eq!(record.released, outstanding - record.from_hold);
                assert_eq!(after.outstanding(), Credits::ZERO);
                if late {
                    assert_eq!(after.status, HoldStatus::Expired);
                    assert!(after.late_settled);
                } else {
                    assert_eq!(after.status, HoldStatus::Settled);
                    assert_eq!(after.resolved_at, Some(now));
                }
            }
            sim.settlements.insert(record.settlement_id, record);
            Step::Applied
        }
        Op::Release { pick } => {
            let Some(hold_id) = sim.pick_hold(book, *pick) else {
                return Step::Passive;
            };
            let pre = before(book);
            let hold = pre.hold(hold_id).unwrap();
            let (status, outstanding) = (hold.status, hold.outstanding());
            let result = book.release(hold_id);
            if status != HoldStatus::Active {
                assert_eq!(result, Err(Decline::HoldNotActive { status }));
                return Step::Declined;
            }
            assert_eq!(result, Ok(outstanding));
            let after = book.hold(hold_id).unwrap();
            assert_eq!(
                (after.status, after.outstanding()),
                (HoldStatus::Released, Credits::ZERO)
            );
            Step::Applied
        }
        Op::Refund {
            pick,
            amount,
            expires_in,
        } => {
            if sim.settlements.is_empty() {
                return Step::Passive;
            }
            let mut settlement = sim
                .settlements
                .values()
                .nth(pick % sim.settlements.len())
                .unwrap()
                .clone();
            let refundable = settlement.charged() - settlement.refunded;
            let requested = match amount {
                RefundAmount::Rest => None,
                RefundAmount::UpToRefundable(amount) => Some((*amount).min(refundable)),
                RefundAmount::Raw(amount) => Some(*amount),
            };
            let request = RefundRequest {
                refund_id: sim.id(),
                amount: requested,
                reason: "property".to_owned(),
                refund_grant_id: GrantId::from_uuid(sim.id()),
                refund_grant_expires_at: now + Duration::minutes(*expires_in),
            };
            let pre = before(book);
            let refunded_before = settlement.refunded;
            let result = book.refund(&mut settlement, &request);
            let amount = requested.unwrap_or(refundable);
            if amount > refundable || !amount.is_positive() {
                assert_eq!(
                    result,
                    Err(Decline::RefundExceedsCapture {
                        requested: amount,
                        refundable
                    })
                );
                return Step::Declined;
            }
            let record = result.unwrap();
            assert_eq!(record.amount, amount);
            assert_eq!(record.debt_reduced, amount.min(pre.account.debt));
            let new_grant = record.new_grant_id.map_or(Credits::ZERO, |grant_id| {
                let grant = &book.grants[&grant_id];
                assert_eq!(grant.source, GrantSource::Refund);
                grant.amount
            });
            let returned: Credits = record.returned_to.iter().map(|(_, credits)| *credits).sum();
            assert_eq!(
                record.debt_reduced + returned + new_grant,
                amount,
                "refund lost or made credits"
            );
            for (grant_id, _) in &record.returned_to {
                assert!(
                    !pre.grants[grant_id].expired_at(now),
                    "refunded to an expired grant"
                );
            }
            assert_eq!(settlement.refunded, refunded_before + amount);
            assert!(settlement.refunded <= settlement.charged());
            sim.settlements.insert(settlement.settlement_id, settlement);
            sim.refunds.push(record);
            Step::Applied
        }
        Op::Advance { minutes } => {
            sim.now = now + Duration::minutes(*minutes);
            Step::Passive
        }
        Op::Sweep => {
            book.sweep();
            Step::Applied
        }
        Op::Balance => {
            let balance = book.balance(Duration::hours(2));
            let mut view = book.clone();
            view.sweep();
            assert_eq!(balance.available, view.available());
            assert_eq!(
                balance.held,
                view.grants.values().map(|grant| grant.reserved).sum()
            );
            assert_eq!(balance.debt, view.account.debt);
            for bucket in &balance.buckets {
                assert!(bucket.expiring_soon <= bucket.available);
            }
            Step::Passive
        }
    }
}

/// The movements a posting pair may be: (kind, from, to).
const MOVEMENTS: [(MovementKind, LedgerAccount, LedgerAccount); 11] = [
    (
        MovementKind::Grant,
        LedgerAccount::Issued,
        LedgerAccount::Available,
    ),
    (
        MovementKind::Hold,
        LedgerAccount::Available,
        LedgerAccount::Held,
    ),
    (
        MovementKind::Capture,
        LedgerAccount::Held,
        LedgerAccount::Revenue,
    ),
    (
        MovementKind::Capture,
        LedgerAccount::Available,
        LedgerAccount::Revenue,
    ),
    (
        MovementKind::Release,
        LedgerAccount::Held,
        LedgerAccount::Available,
    ),
    (
        MovementKind::Expiry,
        LedgerAccount::Available,
        LedgerAccount::Expired,
    ),
    (
        MovementKind::Refund,
        LedgerAccount::Revenue,
        LedgerAccount::Debt,
    ),
    (
        MovementKind::Refund,
        LedgerAccount::Revenue,
        LedgerAccount::Available,
    ),
    (
        MovementKind::Debt,
        LedgerAccount::Debt,
        LedgerAccount::Revenue,
    ),
    (
        MovementKind::WriteOff,
        LedgerAccount::WrittenOff,
        LedgerAccount::Revenue,
    ),
    (
        MovementKind::DebtRepayment,
        LedgerAccount::Available,
        LedgerAccount::Debt,
    ),
];

/// Every invariant of an account's state against its whole journal and what the test knows.
/// `normalized`: the last thing that happened was an operation that ran `finish` at `sim.now`.
fn check_state(
    account: &AccountState,
    grants: &BTreeMap<GrantId, GrantState>,
    holds: &BTreeMap<HoldId, HoldState>,
    journal: &[Posting],
    sim: &Sim,
    normalized: bool,
) {
    // Double entry.
    let sum: Credits = journal.iter().map(|posting| posting.amount).sum();
    assert!(sum.is_zero(), "journal sums to {sum}");
    assert_eq!(journal.len() % 2, 0);
    for pair in journal.chunks(2) {
        let (from, to) = (&pair[0], &pair[1]);
        assert!(
            to.amount.is_positive(),
            "empty or reversed movement {pair:?}"
        );
        assert_eq!(from.amount, -to.amount, "unbalanced pair {pair:?}");
        assert_eq!(
            (
                from.kind,
                from.grant_id,
                from.hold_id,
                from.settlement_id,
                from.refund_id
            ),
            (
                to.kind,
                to.grant_id,
                to.hold_id,
                to.settlement_id,
                to.refund_id
            ),
            "pair with different references"
        );
        assert!(
            MOVEMENTS.contains(&(from.kind, from.ledger, to.ledger)),
            "unexpected movement {pair:?}"
        );
        for posting in pair {
            if matches!(
                posting.ledger,
                LedgerAccount::Available | LedgerAccount::Held
            ) {
                assert!(
                    posting.grant_id.is_some(),
                    "per-grant posting without grant {posting:?}"
                );
            }
            if posting.ledger == LedgerAccount::Held {
                assert!(
                    posting.hold_id.is_some(),
                    "held posting without hold {posting:?}"
                );
            }
        }
    }

    // Grants against holds and journal.
    for grant in grants.values() {
        assert!(
            grant.remaining >= Credits::ZERO,
            "negative remaining {grant:?}"
        );
        assert!(
            grant.reserved >= Credits::ZERO,
            "negative reserved {grant:?}"
        );
        assert!(
            grant.remaining + grant.reserved <= grant.amount,
            "grant holds more than it was given {grant:?}"
        );
        let held_by_holds: Credits = holds
            .values()
            .filter(|hold| hold.status == HoldStatus::Active)
            .flat_map(|hold| &hold.allocations)
            .filter(|allocation| allocation.grant_id == grant.grant_id)
            .map(|allocation| allocation.reserved)
            .sum();
        assert_eq!(
            grant.reserved, held_by_holds,
            "grant reserved differs from its holds' allocations"
        );
        let of_grant = || {
            journal
                .iter()
                .filter(|posting| posting.grant_id == Some(grant.grant_id))
        };
        assert_eq!(
            sum_postings(of_grant(), LedgerAccount::Available),
            grant.remaining,
            "AVAILABLE ≠ remaining"
        );
        assert_eq!(
            sum_postings(of_grant(), LedgerAccount::Held),
            grant.reserved,
            "HELD ≠ reserved"
        );
        if normalized {
            assert!(
                !(grant.expired_at(sim.now) && grant.remaining.is_positive()),
                "unposted breakage {grant:?}"
            );
            if account.debt.is_positive() {
                assert!(
                    !(grant.spendable_at(sim.now) && grant.remaining.is_positive()),
                    "debt left unpaid beside spendable credits"
                );
            }
        }
    }
    for posting in journal {
        if let Some(grant_id) = posting
            .grant_id
            .filter(|_| posting.ledger == LedgerAccount::Available)
        {
            assert!(
                grants.contains_key(&grant_id),
                "posting to an unknown grant"
            );
        }
    }

    // Holds.
    for hold in holds.values() {
        for allocation in &hold.allocations {
            assert!(allocation.reserved >= Credits::ZERO && allocation.captured >= Credits::ZERO);
            if hold.status != HoldStatus::Active {
                assert!(
                    allocation.reserved.is_zero(),
                    "a {} hold still reserves",
                    hold.status.as_str()
                );
            }
            let held: Credits = journal
                .iter()
                .filter(|posting| {
                    posting.ledger == LedgerAccount::Held
                        && posting.grant_id == Some(allocation.grant_id)
                        && posting.hold_id == Some(hold.hold_id)
                })
                .map(|posting| posting.amount)
                .sum();
            assert_eq!(
                held, allocation.reserved,
                "HELD of (hold, grant) ≠ allocation"
            );
        }
        let captured_from_allocations: Credits = hold
            .allocations
            .iter()
            .map(|allocation| allocation.captured)
            .sum();
        if hold.status == HoldStatus::Active {
            assert_eq!(
                hold.outstanding() + captured_from_allocations,
                hold.amount,
                "active hold lost credits"
            );
        } else {
            assert!(captured_from_allocations <= hold.amount);
        }
        let of_hold = || {
            sim.settlements
                .values()
                .filter(|settlement| settlement.hold_id == hold.hold_id)
        };
        assert_eq!(
            hold.captured,
            of_hold().map(SettlementRecord::charged).sum(),
            "hold captured ≠ its settlements"
        );
        assert_eq!(
            captured_from_allocations,
            of_hold().map(|settlement| settlement.from_hold).sum()
        );
    }

    // Settlements and refunds.
    for settlement in sim.settlements.values() {
        assert!(settlement.refunded <= settlement.charged());
        let parts_refunded: Credits = settlement.parts.iter().map(|part| part.refunded).sum();
        assert!(parts_refunded <= settlement.refunded);
        for part in &settlement.parts {
            assert!(part.refunded <= part.amount);
        }
        if account.settle_policy == SettlePolicy::Debt {
            assert!(settlement.written_off.is_zero());
        }
    }

    // Debt.
    assert!(account.debt >= Credits::ZERO, "negative debt");
    assert_eq!(
        account.debt,
        -sum_postings(journal, LedgerAccount::Debt),
        "debt ≠ −DEBT postings"
    );
    match account.settle_policy {
        // CAP_AT_HOLD may owe what a late settle could not cover within its hold.
        SettlePolicy::CapAtHold => {}
        SettlePolicy::Debt => assert!(
            journal
                .iter()
                .all(|posting| posting.kind != MovementKind::WriteOff)
        ),
    }

    // Conservation. All postings sum to zero, so with
    //   granted = −ISSUED, available = AVAILABLE = Σ remaining, held = HELD = Σ reserved,
    //   revenue = REVENUE = Σ settlement totals − Σ refunds, expired = EXPIRED,
    //   written_off = −WRITTEN_OFF = Σ settlement write-offs, debt = −DEBT = account debt:
    //   granted = available + held + expired + (revenue − written_off − debt).
    let granted = -sum_postings(journal, LedgerAccount::Issued);
    assert_eq!(granted, sim.granted, "ISSUED ≠ what was granted");
    let revenue: Credits = sim
        .settlements
        .values()
        .map(|settlement| settlement.total)
        .sum::<Credits>()
        - sim.refunds.iter().map(|refund| refund.amount).sum();
    assert_eq!(
        sum_postings(journal, LedgerAccount::Revenue),
        revenue,
        "REVENUE ≠ settled − refunded"
    );
    let written_off: Credits = sim
        .settlements
        .values()
        .map(|settlement| settlement.written_off)
        .sum();
    assert_eq!(
        -sum_postings(journal, LedgerAccount::WrittenOff),
        written_off,
        "WRITTEN_OFF ≠ write-offs"
    );
    let expired = sum_postings(journal, LedgerAccount::Expired);
    assert!(expired >= Credits::ZERO);
    let available: Credits = grants.values().map(|grant| grant.remaining).sum();
    let held: Credits = grants.values().map(|grant| grant.reserved).sum();
    assert_eq!(
        granted,
        available + held + expired + (revenue - written_off - account.debt),
        "credits not conserved"
    );
}

fn policy() -> impl Strategy<Value = SettlePolicy> {
    prop_oneof![Just(SettlePolicy::Debt), Just(SettlePolicy::CapAtHold)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The service's way: every operation opens a fresh book over the persisted state and its
    /// changes are merged back, a decline's too (it stores the decline): a decline changes
    /// nothing but the expiry of due holds.
    #[test]
    fn random_operations_on_reloaded_books_keep_every_ledger_invariant(
        policy in policy(),
        max_partial in 0..4i32,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let mut sim = Sim::new(max_partial);
        let mut store = Store::new(account(policy));
        let mut normalized = true;
        for op in &ops {
            let mut book = store.open(sim.now);
            let step = run_op(&mut book, op, &mut sim);
            match step {
                Step::Applied => {
                    store.commit(book);
                    normalized = true;
                }
                Step::Declined => {
                    let changes = store.commit(book);
                    // A decline keeps only the catch-up to `now`: expired holds and grants, paid debt.
                    prop_assert!(changes.new_holds.is_empty());
                    prop_assert!(changes.settlements.is_empty() && changes.refunds.is_empty());
                    prop_assert!(changes.holds.iter().all(|hold| hold.status == HoldStatus::Expired));
                    prop_assert!(changes.postings.iter().all(|posting| matches!(
                        posting.kind,
                        MovementKind::Release | MovementKind::Expiry | MovementKind::DebtRepayment
                    )));
                    normalized = true;
                }
                Step::Passive => normalized &= !matches!(op, Op::Advance { .. }),
            }
            prop_assert_eq!(&store.settlements, &sim.settlements);
            check_state(&store.account, &store.grants, &store.holds, &store.journal, &sim, normalized);
        }
    }

    /// One long-lived book, time moved by setting `now`: declines are kept too (they may have
    /// expired due holds first), and the book's own journal must explain its state.
    #[test]
    fn random_operations_on_one_book_keep_every_ledger_invariant(
        policy in policy(),
        max_partial in 0..4i32,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let mut sim = Sim::new(max_partial);
        let mut book = AccountBook::new(account(policy), Vec::new(), Vec::new(), sim.now);
        for op in &ops {
            let step = run_op(&mut book, op, &mut sim);
            let normalized = step == Step::Applied;
            check_state(&book.account, &book.grants, &book.holds, &book.postings, &sim, normalized);
        }
        let postings = book.postings.len();
        let changes = book.into_changes();
        prop_assert_eq!(changes.postings.len(), postings);
    }
}
