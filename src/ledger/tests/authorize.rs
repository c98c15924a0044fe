//! Authorize: its declines, and decisions resting on state brought up to `now`.

use super::*;

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

// Regressions: decisions must rest on state brought up to `now` (debt paid by newly
// spendable credits).

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
