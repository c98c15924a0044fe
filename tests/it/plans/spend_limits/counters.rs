//! How each step of a hold's life moves its scope's counters: a hold reserves, a capture moves
//! its reservation to spent (above-hold usage too), a release or expiry gives it back, a refund
//! lowers the spend of the period its capture was made in, and ExtendHold reserves the raise.

use chrono::Duration;
use creditgate::proto::v1::{HoldStatus, LimitPeriod};

use crate::helpers::TestApp;
use crate::helpers::limits::{assert_limit_reached, member, next_day, next_month};
use crate::helpers::money::{extend_request, key, refund, release_request};

#[tokio::test]
async fn a_hold_reserves_until_it_is_captured_released_or_expired() {
    let app = TestApp::spawn().await;
    // An hour into a UTC day, so that the test ends before the day does.
    app.advance_to(next_day(app.now()) + Duration::hours(1));
    let account = app.funded_account("1000").await;
    let alice = member("alice");
    app.limit(&account, &alice, LimitPeriod::Day, "20").await;
    let day = |figures| app.assert_limit(&account, &alice, LimitPeriod::Day, figures);

    let hold = app.scoped_hold(&account, &alice, "2", 0).await;
    day(("20", "0", "2")).await;
    app.settle(&hold.hold_id, "1", true).await.unwrap();
    day(("20", "1", "1")).await;
    // 3 charged on what is left of a hold of 2: the usage above the hold is spent too.
    let settled = app.settle(&hold.hold_id, "3", false).await.unwrap();
    let settlement = settled.settlement.unwrap();
    assert_eq!(
        (&*settlement.from_hold, &*settlement.from_balance),
        ("1", "2")
    );
    day(("20", "4", "0")).await;

    let released = app.scoped_hold(&account, &alice, "5", 0).await;
    day(("20", "4", "5")).await;
    app.credit()
        .release(release_request(&released.hold_id, &key(), "run failed"))
        .await
        .unwrap();
    day(("20", "4", "0")).await;

    let expiring = app.scoped_hold(&account, &alice, "3", 60).await;
    day(("20", "4", "3")).await;
    app.advance(Duration::seconds(61));
    // A read counts the hold as expired at once; the stored counters follow at the sweep.
    day(("20", "4", "0")).await;
    app.assert_books_balance().await;
    app.sweep().await;
    assert_eq!(
        app.hold_status(&expiring.hold_id).await,
        HoldStatus::Expired
    );
    day(("20", "4", "0")).await;
    // A late settle of the expired hold is spent all the same.
    let late = app.settle(&expiring.hold_id, "2", false).await.unwrap();
    assert!(late.settlement.unwrap().late);
    day(("20", "6", "0")).await;
    app.assert_balance(&account, "994", "0").await;
    app.finish().await;
}

#[tokio::test]
async fn a_refund_lowers_the_spend_of_the_period_its_capture_was_made_in_only() {
    let app = TestApp::spawn().await;
    // The first of a month: the next day is in the same month, so the month limit sees both.
    app.advance_to(next_month(app.now()) + Duration::hours(1));
    let account = app.funded_account("1000").await;
    let alice = member("alice");
    app.limit(&account, &alice, LimitPeriod::Day, "20").await;
    app.limit(&account, &alice, LimitPeriod::Month, "100").await;

    let hold = app.scoped_hold(&account, &alice, "4", 0).await;
    let settled = app.settle(&hold.hold_id, "4", false).await.unwrap();
    let settlement_id = settled.settlement.unwrap().settlement_id;
    refund(&app, &settlement_id, "1").await.unwrap();
    app.assert_limit(&account, &alice, LimitPeriod::Day, ("20", "3", "0"))
        .await;
    app.assert_limit(&account, &alice, LimitPeriod::Month, ("100", "3", "0"))
        .await;

    app.advance(Duration::days(1));
    app.assert_limit(&account, &alice, LimitPeriod::Day, ("20", "0", "0"))
        .await;
    // Yesterday's capture: today's spend stays at zero, this month's goes down.
    refund(&app, &settlement_id, "1").await.unwrap();
    app.assert_limit(&account, &alice, LimitPeriod::Day, ("20", "0", "0"))
        .await;
    app.assert_limit(&account, &alice, LimitPeriod::Month, ("100", "2", "0"))
        .await;
    app.assert_books_balance().await;

    let today = app.scoped_hold(&account, &alice, "20", 0).await;
    app.settle(&today.hold_id, "20", false).await.unwrap();
    let refused = app
        .scoped_authorize(&account, &alice, "1")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &alice, LimitPeriod::Day, ("20", "20", "0"));
    app.finish().await;
}

#[tokio::test]
async fn extend_hold_reserves_the_raise_and_is_refused_past_the_limit() {
    let app = TestApp::spawn().await;
    app.advance_to(next_day(app.now()) + Duration::hours(1));
    let account = app.funded_account("1000").await;
    let alice = member("alice");
    app.limit(&account, &alice, LimitPeriod::Day, "10").await;
    let first = app.scoped_hold(&account, &alice, "4", 0).await;
    let second = app.scoped_hold(&account, &alice, "3", 0).await;
    let mut credit = app.credit();

    credit
        .extend_hold(extend_request(&first.hold_id, &key(), "7", 0))
        .await
        .unwrap();
    app.assert_limit(&account, &alice, LimitPeriod::Day, ("10", "0", "10"))
        .await;
    let refused = credit
        .extend_hold(extend_request(&first.hold_id, &key(), "7.000000001", 0))
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &alice, LimitPeriod::Day, ("10", "0", "10"));
    assert_eq!(app.get_hold(&first.hold_id).await.hold.unwrap().amount, "7");
    // A longer TTL raises nothing.
    credit
        .extend_hold(extend_request(&second.hold_id, &key(), "", 600))
        .await
        .unwrap();

    credit
        .release(release_request(&second.hold_id, &key(), "run failed"))
        .await
        .unwrap();
    credit
        .extend_hold(extend_request(&first.hold_id, &key(), "10", 0))
        .await
        .unwrap();
    app.assert_limit(&account, &alice, LimitPeriod::Day, ("10", "0", "10"))
        .await;
    app.settle(&first.hold_id, "10", false).await.unwrap();
    app.assert_limit(&account, &alice, LimitPeriod::Day, ("10", "10", "0"))
        .await;
    app.assert_balance(&account, "990", "0").await;
    app.finish().await;
}
