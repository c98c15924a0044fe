//! Burn order: which grants are spent, and reserved, first.

use super::*;

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
