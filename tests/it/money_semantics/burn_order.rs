//! Burn order: which grants a hold takes, and what GetBalance says of them.

use chrono::Duration;
use creditgate::proto::v1::{GrantSource, HoldStatus};

use super::{
    allocations, assert_bucket, assert_totals, balance_within, grant_expiring, grant_id, pairs,
};
use crate::helpers::TestApp;

#[tokio::test]
async fn authorize_burns_free_then_subscription_then_expiring_purchase_then_never_expiring_purchase_before_topup()
 {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let in_a_day = app.now() + Duration::days(1);
    // Created in an order that FIFO alone would not explain: top-up and never-expiring
    // purchase first.
    let topup = grant_id(&app, &account, GrantSource::Topup, "100").await;
    let purchase_forever = grant_id(&app, &account, GrantSource::Purchase, "20").await;
    let purchase_expiring =
        grant_expiring(&app, &account, GrantSource::Purchase, "20", in_a_day).await;
    let subscription = grant_id(&app, &account, GrantSource::Subscription, "10").await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "5").await;

    let before = app.balance(&account).await;
    assert_totals(&before, "155", "0", "0");
    assert_bucket(&before, GrantSource::FreeDaily, "5", "0", "0");
    assert_bucket(&before, GrantSource::Subscription, "10", "0", "0");
    assert_bucket(&before, GrantSource::Purchase, "40", "0", "20");
    assert_bucket(&before, GrantSource::Topup, "100", "0", "0");
    assert_eq!(before.buckets.len(), 4, "{before:#?}");

    let response = app.authorize(&account, "40").await.unwrap();
    let hold = response.hold.unwrap();
    assert_eq!(response.available, "115");
    assert_eq!(hold.status(), HoldStatus::Active);
    assert_eq!(hold.amount, "40");
    assert_eq!(hold.captured, "0");
    assert_eq!(hold.account_id, account);
    assert_eq!(
        allocations(&hold),
        pairs(&[
            (&free, "5"),
            (&subscription, "10"),
            (&purchase_expiring, "20"),
            (&purchase_forever, "5"),
        ])
    );
    assert!(!allocations(&hold).iter().any(|(grant, _)| *grant == topup));

    let after = app.balance(&account).await;
    assert_totals(&after, "115", "40", "0");
    assert_bucket(&after, GrantSource::FreeDaily, "0", "5", "0");
    assert_bucket(&after, GrantSource::Subscription, "0", "10", "0");
    // The expiring purchase is fully held: none of what is still spendable expires soon.
    assert_bucket(&after, GrantSource::Purchase, "15", "25", "0");
    assert_bucket(&after, GrantSource::Topup, "100", "0", "0");

    app.finish().await;
}

#[tokio::test]
async fn get_balance_reports_what_expires_within_the_requested_window() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    grant_expiring(
        &app,
        &account,
        GrantSource::Purchase,
        "12.5",
        app.now() + Duration::days(3),
    )
    .await;
    grant_expiring(
        &app,
        &account,
        GrantSource::Purchase,
        "7.25",
        app.now() + Duration::days(10),
    )
    .await;
    grant_id(&app, &account, GrantSource::Purchase, "1").await;

    // Default window: 7 days.
    let default_window = app.balance(&account).await;
    assert_totals(&default_window, "20.75", "0", "0");
    assert_bucket(&default_window, GrantSource::Purchase, "20.75", "0", "12.5");
    assert_bucket(
        &balance_within(&app, &account, 1).await,
        GrantSource::Purchase,
        "20.75",
        "0",
        "0",
    );
    assert_bucket(
        &balance_within(&app, &account, 30).await,
        GrantSource::Purchase,
        "20.75",
        "0",
        "19.75",
    );

    app.finish().await;
}
