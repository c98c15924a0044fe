//! Grant expiry (breakage) and the balance view.

use super::*;

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
