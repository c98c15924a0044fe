//! Events: each one derived from what a transaction changed, once.

use super::*;

fn types(changes: &Changes) -> Vec<EventType> {
    changes
        .events
        .iter()
        .map(|event| event.event_type)
        .collect()
}

fn low_account() -> AccountState {
    AccountState {
        low_balance_threshold: Some(c(50)),
        ..account(SettlePolicy::Debt)
    }
}

#[test]
fn a_grant_tells_of_itself_with_its_amount_and_the_balance_after() {
    let mut store = Store::new(account(SettlePolicy::Debt));
    let mut book = store.open(t0());
    let grant = grant_of(GrantSource::Purchase, c(100), t0(), None);
    let grant_id = grant.grant_id;
    book.grant(grant);
    let changes = store.commit(book);
    assert_eq!(types(&changes), [EventType::GrantAdded]);
    let attributes = &changes.events[0].attributes;
    assert_eq!(attributes["grant_id"], grant_id.to_string());
    assert_eq!(attributes["amount"], "100");
    assert_eq!(attributes["available"], "100");
    assert_eq!(attributes["source"], "PURCHASE");
}

#[test]
fn the_balance_falling_below_the_threshold_fires_once_per_crossing() {
    let mut store = Store::new(low_account());
    let mut book = store.open(t0());
    book.grant(grant_of(GrantSource::Purchase, c(100), t0(), None));
    store.commit(book);
    // 100 → 60: above, nothing.
    let mut book = store.open(t0());
    authorize(&mut book, c(40), Duration::minutes(5));
    assert!(store.commit(book).events.is_empty());
    // 60 → 40: crosses.
    let mut book = store.open(t0());
    authorize(&mut book, c(20), Duration::minutes(5));
    let changes = store.commit(book);
    assert_eq!(types(&changes), [EventType::BalanceLow]);
    assert_eq!(changes.events[0].attributes["available"], "40");
    assert_eq!(changes.events[0].attributes["threshold"], "50");
    // 40 → 30: still below, nothing.
    let mut book = store.open(t0());
    authorize(&mut book, c(10), Duration::minutes(5));
    assert!(store.commit(book).events.is_empty());
    // Up to 80, then down to 45: crosses again.
    let mut book = store.open(t0());
    book.grant(grant_of(GrantSource::Topup, c(50), t0(), None));
    assert_eq!(types(&store.commit(book)), [EventType::GrantAdded]);
    let mut book = store.open(t0());
    authorize(&mut book, c(35), Duration::minutes(5));
    assert_eq!(types(&store.commit(book)), [EventType::BalanceLow]);
}

#[test]
fn one_transaction_that_dips_and_recovers_tells_nothing() {
    let mut store = Store::new(low_account());
    let mut book = store.open(t0());
    book.grant(grant_of(GrantSource::Purchase, c(100), t0(), None));
    store.commit(book);
    let mut book = store.open(t0());
    let hold_id = authorize(&mut book, c(70), Duration::minutes(5));
    book.release(hold_id).unwrap();
    assert!(store.commit(book).events.is_empty());
}

#[test]
fn a_grant_expiring_within_the_horizon_is_warned_once_then_expires() {
    let mut store = Store::new(account(SettlePolicy::Debt));
    let expires_at = t0() + Duration::days(10);
    let mut book = store.open(t0()).with_expiry_warning(Duration::days(3));
    let grant = grant_of(GrantSource::Promo, c(30), t0(), Some(expires_at));
    let grant_id = grant.grant_id;
    book.grant(grant);
    assert_eq!(types(&store.commit(book)), [EventType::GrantAdded]);
    // Eight days later it is within three days of its expiry.
    let later = t0() + Duration::days(8);
    let mut book = store.open(later).with_expiry_warning(Duration::days(3));
    book.sweep();
    let changes = store.commit(book);
    assert_eq!(types(&changes), [EventType::CreditsExpiring]);
    assert_eq!(
        changes.events[0].attributes["grant_id"],
        grant_id.to_string()
    );
    assert_eq!(changes.events[0].attributes["amount"], "30");
    let mut book = store.open(later).with_expiry_warning(Duration::days(3));
    book.sweep();
    assert!(store.commit(book).events.is_empty(), "warned once");
    // Past its expiry: the breakage.
    let mut book = store
        .open(expires_at + Duration::seconds(1))
        .with_expiry_warning(Duration::days(3));
    book.sweep();
    let changes = store.commit(book);
    assert_eq!(types(&changes), [EventType::CreditsExpired]);
    assert_eq!(changes.events[0].attributes["amount"], "30");
}

#[test]
fn a_book_without_a_horizon_never_warns() {
    let mut store = Store::new(account(SettlePolicy::Debt));
    let mut book = store.open(t0());
    book.grant(grant_of(
        GrantSource::Promo,
        c(30),
        t0(),
        Some(t0() + Duration::hours(1)),
    ));
    assert_eq!(types(&store.commit(book)), [EventType::GrantAdded]);
}

#[test]
fn a_hold_reaching_its_ttl_tells_of_its_expiry() {
    let mut store = Store::new(account(SettlePolicy::Debt));
    let mut book = store.open(t0());
    book.grant(grant_of(GrantSource::Purchase, c(100), t0(), None));
    store.commit(book);
    let mut book = store.open(t0());
    let hold_id = authorize(&mut book, c(10), Duration::minutes(5));
    store.commit(book);
    let mut book = store.open(t0() + Duration::minutes(6));
    book.sweep();
    let changes = store.commit(book);
    assert_eq!(types(&changes), [EventType::HoldExpired]);
    assert_eq!(changes.events[0].attributes["hold_id"], hold_id.to_string());
    assert_eq!(changes.events[0].attributes["amount"], "10");
}

#[test]
fn a_settlement_beyond_the_balance_tells_of_the_debt() {
    let mut store = Store::new(account(SettlePolicy::Debt));
    let mut book = store.open(t0());
    book.grant(grant_of(GrantSource::Purchase, c(20), t0(), None));
    store.commit(book);
    let mut book = store.open(t0());
    let hold_id = authorize(&mut book, c(10), Duration::minutes(5));
    let settlement = book.settle(&settle_request(hold_id, c(50), false)).unwrap();
    let changes = store.commit(book);
    assert_eq!(types(&changes), [EventType::DebtIncurred]);
    let attributes = &changes.events[0].attributes;
    assert_eq!(
        attributes["settlement_id"],
        settlement.settlement_id.to_string()
    );
    assert_eq!(attributes["hold_id"], hold_id.to_string());
    assert_eq!(attributes["amount"], "30");
    assert_eq!(attributes["debt"], "30");
}
