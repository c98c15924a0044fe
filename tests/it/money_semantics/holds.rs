//! Holds: release, expiry and late settle, ExtendHold and GetHold.

use chrono::Duration;
use creditgate::proto::v1::{GrantSource, HoldStatus, get_hold_request};
use tonic::Code;

use super::{
    allocations, assert_bucket, assert_settlement, assert_totals, authorize_with, extend, get_hold,
    grant_id, pairs, release, settle,
};
use crate::helpers::TestApp;
use crate::helpers::money::key;
use crate::helpers::status::expect_refused;
use crate::helpers::time::time;

#[tokio::test]
async fn release_returns_the_credits_to_the_grants_they_were_reserved_from() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "5").await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "50").await;
    let before = app.balance(&account).await;
    assert_totals(&before, "55", "0", "0");

    let hold = app.hold(&account, "20").await;
    assert_eq!(
        allocations(&hold),
        pairs(&[(&free, "5"), (&purchase, "15")])
    );
    assert_totals(&app.balance(&account).await, "35", "20", "0");

    let released = release(&app, &hold.hold_id).await.unwrap();
    assert_eq!(released.released, "20");
    let released_hold = released.hold.unwrap();
    assert_eq!(released_hold.status(), HoldStatus::Released);
    assert_eq!(released_hold.captured, "0");
    assert!(released_hold.resolved_at.is_some());

    let after = app.balance(&account).await;
    assert_totals(&after, "55", "0", "0");
    assert_bucket(&after, GrantSource::FreeDaily, "5", "0", "0");
    assert_bucket(&after, GrantSource::Purchase, "50", "0", "0");
    // The free grant got its credits back: it is consumed first again.
    let again = app.hold(&account, "6").await;
    assert_eq!(
        allocations(&again),
        pairs(&[(&free, "5"), (&purchase, "1")])
    );

    expect_refused(
        release(&app, &hold.hold_id).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    expect_refused(
        app.settle(&hold.hold_id, "1", false).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    assert_eq!(
        app.get_hold(&hold.hold_id).await.hold.unwrap().status(),
        HoldStatus::Released
    );

    app.finish().await;
}

#[tokio::test]
async fn an_expired_hold_frees_its_credits_and_a_late_settle_is_charged_from_the_balance_once() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "100").await;
    let key_of_hold = key();
    let response = authorize_with(&app, &account, "30", 60, &key_of_hold)
        .await
        .unwrap();
    let hold = response.hold.unwrap();
    assert_eq!(response.available, "70");
    let ttl = time(hold.expires_at.as_ref().unwrap()) - time(hold.created_at.as_ref().unwrap());
    assert_eq!(ttl, Duration::seconds(60));

    app.advance(Duration::seconds(61));
    // Whether or not a sweep ran, the hold counts as expired.
    let balance = app.balance(&account).await;
    assert_totals(&balance, "100", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "100", "0", "0");
    assert_eq!(
        app.get_hold(&hold.hold_id).await.hold.unwrap().status(),
        HoldStatus::Expired
    );

    app.sweep().await;
    let swept = app.get_hold(&hold.hold_id).await.hold.unwrap();
    assert_eq!(swept.status(), HoldStatus::Expired);
    assert!(swept.resolved_at.is_some());
    assert_totals(&app.balance(&account).await, "100", "0", "0");
    app.assert_books_balance().await;

    // Neither released nor extended once expired.
    expect_refused(
        release(&app, &hold.hold_id).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    expect_refused(
        extend(&app, &hold.hold_id, "40", 0).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );

    let (late, after) = settle(&app, &hold.hold_id, "40", false).await;
    assert!(late.late);
    assert_settlement(&late, ["40", "0", "40", "0", "0", "0"]);
    assert_eq!(late.hold_id, hold.hold_id);
    assert_eq!(after.status(), HoldStatus::Expired);
    assert_eq!(after.captured, "40");
    assert_totals(&app.balance(&account).await, "60", "0", "0");

    expect_refused(
        app.settle(&hold.hold_id, "5", false).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    let view = get_hold(
        &app,
        get_hold_request::Lookup::AuthorizeIdempotencyKey(key_of_hold),
    )
    .await
    .unwrap();
    assert_eq!(view.settlements.len(), 1);
    assert!(view.settlements[0].late);
    assert_eq!(view.settlements[0].settlement_id, late.settlement_id);
    assert_totals(&app.balance(&account).await, "60", "0", "0");

    app.finish().await;
}

#[tokio::test]
async fn a_settle_past_the_hold_ttl_is_late_even_before_the_sweep_ran() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "50").await;
    let hold = authorize_with(&app, &account, "20", 60, &key())
        .await
        .unwrap()
        .hold
        .unwrap();
    app.advance(Duration::seconds(61));

    let (late, after) = settle(&app, &hold.hold_id, "15", false).await;
    assert!(late.late);
    assert_settlement(&late, ["15", "0", "15", "0", "0", "0"]);
    assert_eq!(after.status(), HoldStatus::Expired);
    assert_totals(&app.balance(&account).await, "35", "0", "0");

    app.finish().await;
}

#[tokio::test]
async fn a_late_settle_after_the_holds_grant_was_spent_by_another_hold_is_charged_from_the_balance()
{
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "10").await;
    app.grant(&account, GrantSource::Topup, "50").await;
    let first = authorize_with(&app, &account, "10", 60, &key())
        .await
        .unwrap()
        .hold
        .unwrap();
    assert_eq!(allocations(&first), pairs(&[(&purchase, "10")]));
    app.advance(Duration::seconds(61));
    app.sweep().await;

    // Another run spends the purchase grant completely.
    let second = app.hold(&account, "10").await;
    assert_eq!(allocations(&second), pairs(&[(&purchase, "10")]));
    settle(&app, &second.hold_id, "10", false).await;

    let (late, after) = settle(&app, &first.hold_id, "7", false).await;
    assert!(late.late);
    assert_settlement(&late, ["7", "0", "7", "0", "0", "0"]);
    assert_eq!(after.status(), HoldStatus::Expired);
    let balance = app.balance(&account).await;
    assert_totals(&balance, "43", "0", "0");
    assert_bucket(&balance, GrantSource::Topup, "43", "0", "0");

    app.finish().await;
}

#[tokio::test]
async fn extend_hold_raises_the_amount_from_further_grants_and_moves_the_expiry() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "5").await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "50").await;
    let hold = app.hold(&account, "20").await;
    assert_eq!(
        allocations(&hold),
        pairs(&[(&free, "5"), (&purchase, "15")])
    );

    let raised = extend(&app, &hold.hold_id, "35.5", 0).await.unwrap();
    let raised_hold = raised.hold.unwrap();
    assert_eq!(raised.available, "19.5");
    assert_eq!(raised_hold.amount, "35.5");
    assert_eq!(raised_hold.status(), HoldStatus::Active);
    assert_eq!(
        allocations(&raised_hold),
        pairs(&[(&free, "5"), (&purchase, "30.5")])
    );
    assert_eq!(raised_hold.expires_at, hold.expires_at);
    assert_totals(&app.balance(&account).await, "19.5", "35.5", "0");

    let status = expect_refused(
        extend(&app, &hold.hold_id, "60", 0).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_CREDITS",
    );
    assert!(status.message().contains("19.5"), "{}", status.message());
    let unchanged = app.get_hold(&hold.hold_id).await.hold.unwrap();
    assert_eq!(unchanged.amount, "35.5");
    assert_eq!(allocations(&unchanged), allocations(&raised_hold));
    assert_totals(&app.balance(&account).await, "19.5", "35.5", "0");

    expect_refused(
        extend(&app, &hold.hold_id, "30", 0).await,
        Code::InvalidArgument,
        "INVALID_AMOUNT",
    );
    assert_eq!(
        app.get_hold(&hold.hold_id).await.hold.unwrap().amount,
        "35.5"
    );

    // TTL: counted from now.
    let before = app.now();
    let moved = extend(&app, &hold.hold_id, "", 3_600).await.unwrap();
    let after = app.now();
    let moved_hold = moved.hold.unwrap();
    let expires_at = time(moved_hold.expires_at.as_ref().unwrap());
    assert!(
        before + Duration::seconds(3_600) <= expires_at
            && expires_at <= after + Duration::seconds(3_600),
        "{expires_at} not 1h after [{before}, {after}]"
    );
    assert!(expires_at > time(hold.expires_at.as_ref().unwrap()));
    assert_eq!(moved_hold.amount, "35.5");
    assert_eq!(moved.available, "19.5");

    // Past the original 15 minutes the hold is still live and settles on time.
    app.advance(Duration::minutes(30));
    assert_eq!(
        app.get_hold(&hold.hold_id).await.hold.unwrap().status(),
        HoldStatus::Active
    );
    let (settlement, _) = settle(&app, &hold.hold_id, "35.5", false).await;
    assert!(!settlement.late);
    assert_settlement(&settlement, ["35.5", "35.5", "0", "0", "0", "0"]);
    assert_totals(&app.balance(&account).await, "19.5", "0", "0");

    app.finish().await;
}

#[tokio::test]
async fn get_hold_finds_a_hold_by_id_or_authorize_key_and_replays_a_declined_authorize() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "100").await;
    let authorize_key = key();
    let hold = authorize_with(&app, &account, "30", 0, &authorize_key)
        .await
        .unwrap()
        .hold
        .unwrap();

    let by_id = app.get_hold(&hold.hold_id).await;
    assert_eq!(by_id.hold.as_ref(), Some(&hold));
    assert!(by_id.settlements.is_empty());

    let (partial, _) = settle(&app, &hold.hold_id, "10", true).await;
    let (last, _) = settle(&app, &hold.hold_id, "5", false).await;
    let by_key = get_hold(
        &app,
        get_hold_request::Lookup::AuthorizeIdempotencyKey(authorize_key.clone()),
    )
    .await
    .unwrap();
    let found = by_key.hold.unwrap();
    assert_eq!(found.hold_id, hold.hold_id);
    assert_eq!(found.status(), HoldStatus::Settled);
    assert_eq!(found.captured, "15");
    let settlement_ids: Vec<&str> = by_key
        .settlements
        .iter()
        .map(|settlement| settlement.settlement_id.as_str())
        .collect();
    assert_eq!(
        settlement_ids,
        [partial.settlement_id.as_str(), last.settlement_id.as_str()]
    );
    assert_settlement(&by_key.settlements[0], ["10", "10", "0", "0", "0", "0"]);
    assert!(by_key.settlements[0].partial);
    assert_settlement(&by_key.settlements[1], ["5", "5", "0", "0", "0", "15"]);

    // A declined Authorize: its key answers with the same decline.
    let declined_key = key();
    expect_refused(
        authorize_with(&app, &account, "1000", 0, &declined_key).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_CREDITS",
    );
    expect_refused(
        get_hold(
            &app,
            get_hold_request::Lookup::AuthorizeIdempotencyKey(declined_key),
        )
        .await,
        Code::FailedPrecondition,
        "INSUFFICIENT_CREDITS",
    );

    expect_refused(
        get_hold(
            &app,
            get_hold_request::Lookup::AuthorizeIdempotencyKey(key()),
        )
        .await,
        Code::NotFound,
        "HOLD_NOT_FOUND",
    );
    expect_refused(
        get_hold(&app, get_hold_request::Lookup::HoldId(key())).await,
        Code::NotFound,
        "HOLD_NOT_FOUND",
    );

    app.finish().await;
}
