//! Settlement below and above the hold, debt and write-off, and partial capture.

use chrono::Duration;
use creditgate::proto::v1::{GrantSource, HoldStatus, SettlePolicy};
use tonic::Code;

use super::{
    allocations, assert_bucket, assert_settlement, assert_totals, authorize_with, bucket, grant_id,
    pairs, release, settle,
};
use crate::helpers::TestApp;
use crate::helpers::money::key;
use crate::helpers::status::expect_refused;

#[tokio::test]
async fn settle_below_the_hold_captures_from_the_hold_and_releases_the_rest() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "100").await;
    let hold = app.hold(&account, "30").await;
    assert_totals(&app.balance(&account).await, "70", "30", "0");

    let (settlement, after) = settle(&app, &hold.hold_id, "12.25", false).await;
    assert_settlement(&settlement, ["12.25", "12.25", "0", "0", "0", "17.75"]);
    assert!(!settlement.late);
    assert!(!settlement.partial);
    assert_eq!(settlement.hold_id, hold.hold_id);
    assert_eq!(settlement.account_id, account);
    assert_eq!(settlement.refunded, "0");
    assert_eq!(after.status(), HoldStatus::Settled);
    assert_eq!(after.captured, "12.25");
    assert_eq!(after.amount, "30");
    assert!(after.resolved_at.is_some());

    let balance = app.balance(&account).await;
    assert_totals(&balance, "87.75", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "87.75", "0", "0");

    app.finish().await;
}

#[tokio::test]
async fn settle_above_the_hold_takes_the_excess_from_further_grants() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "10").await;
    app.grant(&account, GrantSource::Purchase, "100").await;
    let hold = app.hold(&account, "10").await;
    assert_eq!(allocations(&hold), pairs(&[(&free, "10")]));

    let (settlement, after) = settle(&app, &hold.hold_id, "25", false).await;
    assert_settlement(&settlement, ["25", "10", "15", "0", "0", "0"]);
    assert_eq!(after.status(), HoldStatus::Settled);
    assert_eq!(after.captured, "25");

    let balance = app.balance(&account).await;
    assert_totals(&balance, "85", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "85", "0", "0");
    assert!(
        bucket(&balance, GrantSource::FreeDaily).is_none(),
        "{balance:#?}"
    );

    app.finish().await;
}

#[tokio::test]
async fn settle_beyond_hold_and_balance_under_debt_policy_blocks_authorize_until_a_grant_repays_it()
{
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "10").await;
    let hold = app.hold(&account, "8").await;

    let (settlement, after) = settle(&app, &hold.hold_id, "14.5", false).await;
    assert_settlement(&settlement, ["14.5", "8", "2", "4.5", "0", "0"]);
    assert_eq!(after.status(), HoldStatus::Settled);
    assert_eq!(after.captured, "14.5");
    assert_totals(&app.balance(&account).await, "0", "0", "4.5");

    let status = expect_refused(
        app.authorize(&account, "1").await,
        Code::FailedPrecondition,
        "ACCOUNT_IN_DEBT",
    );
    assert!(status.message().contains("4.5"), "{}", status.message());

    let grant = app.grant(&account, GrantSource::Topup, "10").await;
    assert_eq!(grant.debt_repaid, "4.5");
    assert_eq!(grant.available, "5.5");
    assert_totals(&app.balance(&account).await, "5.5", "0", "0");

    let response = app.authorize(&account, "5.5").await.unwrap();
    assert_eq!(response.available, "0");
    assert_eq!(response.hold.unwrap().status(), HoldStatus::Active);

    app.finish().await;
}

#[tokio::test]
async fn settle_beyond_hold_and_balance_under_cap_at_hold_writes_off_and_leaves_no_debt() {
    let app = TestApp::spawn().await;
    let account = app.account_with(SettlePolicy::CapAtHold).await;
    app.grant(&account, GrantSource::Purchase, "10").await;
    let hold = app.hold(&account, "8").await;

    let (settlement, after) = settle(&app, &hold.hold_id, "14", false).await;
    assert_settlement(&settlement, ["14", "8", "2", "0", "4", "0"]);
    assert_eq!(after.status(), HoldStatus::Settled);
    // Captured is what was charged; the written-off part is not.
    assert_eq!(after.captured, "10");
    assert_totals(&app.balance(&account).await, "0", "0", "0");

    let grant = app.grant(&account, GrantSource::Topup, "5").await;
    assert_eq!(grant.debt_repaid, "0");
    assert_eq!(grant.available, "5");
    let response = app.authorize(&account, "5").await.unwrap();
    assert_eq!(response.available, "0");

    app.finish().await;
}

#[tokio::test]
async fn partial_captures_keep_the_hold_active_and_the_final_settle_releases_the_rest() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "100").await;
    let hold = app.hold(&account, "50").await;

    let (first, after_first) = settle(&app, &hold.hold_id, "10", true).await;
    assert_settlement(&first, ["10", "10", "0", "0", "0", "0"]);
    assert!(first.partial);
    assert_eq!(after_first.status(), HoldStatus::Active);
    assert_eq!(after_first.captured, "10");
    assert_eq!(after_first.partial_captures, 1);
    assert!(after_first.resolved_at.is_none());

    let (second, after_second) = settle(&app, &hold.hold_id, "15.5", true).await;
    assert_settlement(&second, ["15.5", "15.5", "0", "0", "0", "0"]);
    assert_eq!(after_second.status(), HoldStatus::Active);
    assert_eq!(after_second.captured, "25.5");
    assert_eq!(after_second.partial_captures, 2);
    assert_totals(&app.balance(&account).await, "50", "24.5", "0");

    let (last, settled) = settle(&app, &hold.hold_id, "4.5", false).await;
    assert_settlement(&last, ["4.5", "4.5", "0", "0", "0", "20"]);
    assert!(!last.partial);
    assert_eq!(settled.status(), HoldStatus::Settled);
    assert_eq!(settled.captured, "30");
    assert_totals(&app.balance(&account).await, "70", "0", "0");

    expect_refused(
        app.settle(&hold.hold_id, "1", false).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    expect_refused(
        app.settle(&hold.hold_id, "1", true).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    expect_refused(
        release(&app, &hold.hold_id).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    let view = app.get_hold(&hold.hold_id).await;
    assert_eq!(view.settlements.len(), 3);
    assert_totals(&app.balance(&account).await, "70", "0", "0");

    app.finish().await;
}

#[tokio::test]
async fn final_settle_after_a_partial_capture_used_up_one_grant_of_the_hold_releases_the_rest() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "5").await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "20").await;
    let hold = app.hold(&account, "15").await;
    assert_eq!(
        allocations(&hold),
        pairs(&[(&free, "5"), (&purchase, "10")])
    );

    // Captures exactly the free grant's reservation: that grant is now fully spent.
    let (partial, after_partial) = settle(&app, &hold.hold_id, "5", true).await;
    assert_settlement(&partial, ["5", "5", "0", "0", "0", "0"]);
    assert_eq!(after_partial.status(), HoldStatus::Active);
    assert_eq!(allocations(&after_partial), pairs(&[(&purchase, "10")]));

    let (last, settled) = settle(&app, &hold.hold_id, "3", false).await;
    assert_settlement(&last, ["3", "3", "0", "0", "0", "7"]);
    assert_eq!(settled.status(), HoldStatus::Settled);
    assert_eq!(settled.captured, "8");
    let balance = app.balance(&account).await;
    assert_totals(&balance, "17", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "17", "0", "0");

    app.finish().await;
}

#[tokio::test]
async fn release_after_a_partial_capture_used_up_one_grant_of_the_hold_returns_the_rest() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "5").await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "20").await;
    let hold = app.hold(&account, "15").await;
    assert_eq!(
        allocations(&hold),
        pairs(&[(&free, "5"), (&purchase, "10")])
    );
    settle(&app, &hold.hold_id, "5", true).await;

    let released = release(&app, &hold.hold_id).await.unwrap();
    assert_eq!(released.released, "10");
    let released_hold = released.hold.unwrap();
    assert_eq!(released_hold.status(), HoldStatus::Released);
    assert_eq!(released_hold.captured, "5");
    let balance = app.balance(&account).await;
    assert_totals(&balance, "20", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "20", "0", "0");

    app.finish().await;
}

#[tokio::test]
async fn a_hold_expiring_after_a_partial_capture_used_up_one_of_its_grants_frees_the_rest() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    grant_id(&app, &account, GrantSource::FreeDaily, "5").await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "20").await;
    let hold = authorize_with(&app, &account, "15", 60, &key())
        .await
        .unwrap()
        .hold
        .unwrap();
    settle(&app, &hold.hold_id, "5", true).await;

    app.advance(Duration::seconds(61));
    assert_totals(&app.balance(&account).await, "20", "0", "0");
    app.sweep().await;
    let expired = app.get_hold(&hold.hold_id).await.hold.unwrap();
    assert_eq!(expired.status(), HoldStatus::Expired);
    assert_eq!(expired.captured, "5");
    let next = app.hold(&account, "20").await;
    assert_eq!(allocations(&next), pairs(&[(&purchase, "20")]));

    app.finish().await;
}
