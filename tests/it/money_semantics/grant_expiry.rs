//! Grant expiry and breakage.

use chrono::Duration;
use creditgate::proto::v1::{GrantSource, HoldStatus};
use tonic::Code;

use super::{
    allocations, assert_bucket, assert_settlement, assert_totals, authorize_with, bucket,
    grant_expiring, journal_count, journal_sum, pairs, settle,
};
use crate::helpers::TestApp;
use crate::helpers::money::key;
use crate::helpers::status::expect_refused;

#[tokio::test]
async fn an_expired_grant_is_not_spendable_and_the_sweep_books_its_breakage() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let expiring = grant_expiring(
        &app,
        &account,
        GrantSource::Purchase,
        "30",
        app.now() + Duration::hours(1),
    )
    .await;
    app.grant(&account, GrantSource::Purchase, "10").await;
    let balance = app.balance(&account).await;
    assert_totals(&balance, "40", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "40", "0", "30");

    app.advance(Duration::hours(2));
    let balance = app.balance(&account).await;
    assert_totals(&balance, "10", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "10", "0", "0");

    app.sweep().await;
    assert!(journal_count(&app, "EXPIRY").await > 0);
    assert_eq!(
        journal_sum(&app, "EXPIRY", "EXPIRED", Some(&expiring)).await,
        "30"
    );
    app.assert_books_balance().await;

    let status = expect_refused(
        app.authorize(&account, "10.5").await,
        Code::FailedPrecondition,
        "INSUFFICIENT_CREDITS",
    );
    assert!(status.message().contains("10"), "{}", status.message());
    assert_totals(&app.balance(&account).await, "10", "0", "0");

    app.finish().await;
}

#[tokio::test]
async fn credits_held_on_a_grant_that_expires_stay_capturable_by_the_hold() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let expiring = grant_expiring(
        &app,
        &account,
        GrantSource::Purchase,
        "50",
        app.now() + Duration::hours(1),
    )
    .await;
    let hold = authorize_with(&app, &account, "30", 3 * 3600, &key())
        .await
        .unwrap()
        .hold
        .unwrap();
    assert_eq!(allocations(&hold), pairs(&[(&expiring, "30")]));

    app.advance(Duration::hours(2));
    let balance = app.balance(&account).await;
    assert_totals(&balance, "0", "30", "0");
    assert_bucket(&balance, GrantSource::Purchase, "0", "30", "0");
    app.sweep().await;
    // Only the unreserved part broke.
    assert_eq!(
        journal_sum(&app, "EXPIRY", "EXPIRED", Some(&expiring)).await,
        "20"
    );
    assert_eq!(
        app.get_hold(&hold.hold_id).await.hold.unwrap().status(),
        HoldStatus::Active
    );

    let (settlement, after) = settle(&app, &hold.hold_id, "30", false).await;
    assert!(!settlement.late);
    assert_settlement(&settlement, ["30", "30", "0", "0", "0", "0"]);
    assert_eq!(after.status(), HoldStatus::Settled);
    assert_totals(&app.balance(&account).await, "0", "0", "0");

    app.finish().await;
}

#[tokio::test]
async fn what_a_hold_leaves_of_an_expired_grant_breaks_when_the_hold_resolves() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let expiring = grant_expiring(
        &app,
        &account,
        GrantSource::Purchase,
        "50",
        app.now() + Duration::hours(1),
    )
    .await;
    app.grant(&account, GrantSource::Topup, "5").await;
    let hold = authorize_with(&app, &account, "30", 3 * 3600, &key())
        .await
        .unwrap()
        .hold
        .unwrap();
    app.advance(Duration::hours(2));

    let (settlement, _) = settle(&app, &hold.hold_id, "25", false).await;
    assert_settlement(&settlement, ["25", "25", "0", "0", "0", "5"]);
    // The 5 released went back to an expired grant: breakage, not spendable.
    let balance = app.balance(&account).await;
    assert_totals(&balance, "5", "0", "0");
    assert!(
        bucket(&balance, GrantSource::Purchase).is_none(),
        "{balance:#?}"
    );
    app.sweep().await;
    assert_eq!(
        journal_sum(&app, "EXPIRY", "EXPIRED", Some(&expiring)).await,
        "25"
    );

    app.finish().await;
}
