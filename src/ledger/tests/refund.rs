//! Refund: to debt first, then to the grants taken from, or to a new REFUND grant.

use super::settle::settle_above_hold;
use super::*;

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
