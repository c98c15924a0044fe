//! A limit set on a scope that already has holds counts what its active holds reserve, and
//! what its settlements charge from then on (a capture made before it, or a refund of one,
//! never counts). Changing a limit keeps its counters; removing one lets holds through; setting
//! it again counts from then.

use chrono::Duration;
use creditgate::proto::v1::{HoldStatus, LimitPeriod};

use crate::helpers::TestApp;
use crate::helpers::limits::{assert_limit_reached, figures, member, next_month};
use crate::helpers::money::{key, refund_request};

#[tokio::test]
async fn a_limit_set_on_a_scope_with_history_counts_its_active_holds_and_captures_from_then() {
    let app = TestApp::spawn().await;
    // Noon of the first of a month: yesterday's capture below is this month's too.
    app.advance_to(next_month(app.now()) + Duration::hours(12));
    let account = app.funded_account("1000").await;
    let (alice, bob) = (member("alice"), member("bob"));
    app.spend(&account, &alice, "4").await;

    app.advance(Duration::days(1));
    let settlement_id = app.spend(&account, &alice, "2").await;
    app.credit()
        .refund(refund_request(&settlement_id, &key(), "0.5"))
        .await
        .unwrap();
    app.scoped_hold(&account, &alice, "1", 0).await;
    app.scoped_hold(&account, &bob, "7", 0).await;
    // Due, but still active in the books until something touches the account.
    let lapsed = app.scoped_hold(&account, &alice, "2", 60).await;
    app.advance(Duration::seconds(61));

    let day = app.limit(&account, &alice, LimitPeriod::Day, "10").await;
    assert_eq!(figures(&day), ("10", "0", "1"));
    let month = app.limit(&account, &alice, LimitPeriod::Month, "100").await;
    assert_eq!(figures(&month), ("100", "0", "1"));
    let total = app.limit(&account, &alice, LimitPeriod::Total, "100").await;
    assert_eq!(figures(&total), ("100", "0", "1"));
    assert_eq!(app.hold_status(&lapsed.hold_id).await, HoldStatus::Expired);
    app.assert_books_balance().await;

    app.spend(&account, &alice, "2").await;
    // A refund of a capture made before the limits were set: it never counted.
    app.credit()
        .refund(refund_request(&settlement_id, &key(), "0.5"))
        .await
        .unwrap();
    for period in [LimitPeriod::Day, LimitPeriod::Month, LimitPeriod::Total] {
        let limit = if period == LimitPeriod::Day {
            "10"
        } else {
            "100"
        };
        app.assert_limit(&account, &alice, period, (limit, "2", "1"))
            .await;
    }
    app.finish().await;
}

#[tokio::test]
async fn a_changed_limit_keeps_its_counters_and_a_limit_set_again_counts_from_then() {
    let app = TestApp::spawn().await;
    app.advance_to(next_month(app.now()) + Duration::hours(1));
    let account = app.funded_account("1000").await;
    let alice = member("alice");
    app.spend(&account, &alice, "1.5").await;
    app.scoped_hold(&account, &alice, "1", 0).await;
    let first = app.limit(&account, &alice, LimitPeriod::Day, "10").await;
    assert_eq!(figures(&first), ("10", "0", "1"));
    app.limit(&account, &alice, LimitPeriod::Month, "100").await;
    app.spend(&account, &alice, "1.5").await;

    let changed = app.limit(&account, &alice, LimitPeriod::Day, "3").await;
    assert_eq!(figures(&changed), ("3", "1.5", "1"));
    assert_eq!(changed.spend_limit_id, first.spend_limit_id);
    app.scoped_hold(&account, &alice, "0.5", 0).await;
    let refused = app
        .scoped_authorize(&account, &alice, "0.000000001")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &alice, LimitPeriod::Day, ("3", "1.5", "1.5"));
    app.assert_books_balance().await;

    let removed = app.limit(&account, &alice, LimitPeriod::Day, "").await;
    assert_eq!(figures(&removed), ("", "1.5", "1.5"));
    assert!(
        app.listed_limit(&account, &alice, LimitPeriod::Day)
            .await
            .is_none()
    );
    // Only the month limit counts holds now.
    app.scoped_hold(&account, &alice, "5", 0).await;
    app.assert_limit(&account, &alice, LimitPeriod::Month, ("100", "1.5", "6.5"))
        .await;
    app.assert_books_balance().await;

    let again = app.limit(&account, &alice, LimitPeriod::Day, "10").await;
    assert_eq!(figures(&again), ("10", "0", "6.5"));
    assert_ne!(again.spend_limit_id, first.spend_limit_id);
    let refused = app
        .scoped_authorize(&account, &alice, "3.6")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &alice, LimitPeriod::Day, ("10", "0", "6.5"));
    app.assert_limit(&account, &alice, LimitPeriod::Day, ("10", "0", "6.5"))
        .await;
    app.finish().await;
}
