//! Settle: capture from the hold, then the balance, then debt or write-off; late and
//! partial settlements.

use super::*;

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
pub(super) fn settle_above_hold(
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
