//! Refunds: back to the grants they came from, up to what was captured.

use chrono::Duration;
use creditgate::proto::v1::GrantSource;
use tonic::Code;

use super::{
    allocations, assert_bucket, assert_settlement, assert_totals, balance_within, grant_expiring,
    grant_id, pairs, refund, settle,
};
use crate::helpers::TestApp;
use crate::helpers::status::expect_refused;

#[tokio::test]
async fn refunds_return_credits_to_their_grants_up_to_what_was_captured() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "5").await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "50").await;
    let hold = app.hold(&account, "20").await;
    let (settlement, _) = settle(&app, &hold.hold_id, "20", false).await;
    assert_totals(&app.balance(&account).await, "35", "0", "0");

    expect_refused(
        refund(&app, &settlement.settlement_id, "20.000000001").await,
        Code::FailedPrecondition,
        "REFUND_EXCEEDS_CAPTURE",
    );

    let first = refund(&app, &settlement.settlement_id, "8")
        .await
        .unwrap()
        .refund
        .unwrap();
    assert_eq!(first.amount, "8");
    assert_eq!(first.debt_reduced, "0");
    assert_eq!(first.new_grant_id, "");
    assert_eq!(first.settlement_id, settlement.settlement_id);
    assert_eq!(first.hold_id, hold.hold_id);
    assert_eq!(first.reason, "support");
    let returned: Vec<(String, String)> = first
        .returned_to
        .iter()
        .map(|allocation| (allocation.grant_id.clone(), allocation.amount.clone()))
        .collect();
    assert!(
        returned
            .iter()
            .all(|(grant, _)| *grant == free || *grant == purchase),
        "{returned:?}"
    );
    assert_totals(&app.balance(&account).await, "43", "0", "0");

    let rest = refund(&app, &settlement.settlement_id, "")
        .await
        .unwrap()
        .refund
        .unwrap();
    assert_eq!(rest.amount, "12");
    assert_eq!(rest.new_grant_id, "");

    // Every credit went back to the grant it came from.
    let balance = app.balance(&account).await;
    assert_totals(&balance, "55", "0", "0");
    assert_bucket(&balance, GrantSource::FreeDaily, "5", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "50", "0", "0");

    expect_refused(
        refund(&app, &settlement.settlement_id, "1").await,
        Code::FailedPrecondition,
        "REFUND_EXCEEDS_CAPTURE",
    );
    expect_refused(
        refund(&app, &settlement.settlement_id, "").await,
        Code::FailedPrecondition,
        "REFUND_EXCEEDS_CAPTURE",
    );
    let view = app.get_hold(&hold.hold_id).await;
    assert_eq!(view.settlements.len(), 1);
    assert_eq!(view.settlements[0].refunded, "20");
    assert_totals(&app.balance(&account).await, "55", "0", "0");

    app.finish().await;
}

#[tokio::test]
async fn refund_to_a_grant_that_expired_since_creates_a_refund_grant() {
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
    let topup = grant_id(&app, &account, GrantSource::Topup, "10").await;
    let hold = app.hold(&account, "20").await;
    assert_eq!(allocations(&hold), pairs(&[(&expiring, "20")]));
    let (settlement, _) = settle(&app, &hold.hold_id, "20", false).await;

    app.advance(Duration::hours(2));
    let refunded = refund(&app, &settlement.settlement_id, "")
        .await
        .unwrap()
        .refund
        .unwrap();
    assert_eq!(refunded.amount, "20");
    assert_eq!(refunded.debt_reduced, "0");
    assert_ne!(refunded.new_grant_id, "");
    assert_ne!(refunded.new_grant_id, expiring);
    assert!(
        !refunded
            .returned_to
            .iter()
            .any(|allocation| allocation.grant_id == expiring),
        "{refunded:#?}"
    );

    let balance = app.balance(&account).await;
    assert_totals(&balance, "30", "0", "0");
    assert_bucket(&balance, GrantSource::Refund, "20", "0", "0");
    assert_bucket(&balance, GrantSource::Topup, "10", "0", "0");
    // The REFUND grant is valid for a limited time.
    assert_bucket(
        &balance_within(&app, &account, 3_650).await,
        GrantSource::Refund,
        "20",
        "0",
        "20",
    );

    // And it is spendable, before the top-up (priority 40 < 50).
    let next = app.hold(&account, "25").await;
    assert_eq!(
        allocations(&next),
        pairs(&[(&refunded.new_grant_id, "20"), (&topup, "5")])
    );

    app.sweep().await;
    app.finish().await;
}

#[tokio::test]
async fn a_refund_while_in_debt_reduces_the_debt_first() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "10").await;
    let hold = app.hold(&account, "10").await;
    let (settlement, _) = settle(&app, &hold.hold_id, "15", false).await;
    assert_settlement(&settlement, ["15", "10", "0", "5", "0", "0"]);
    assert_totals(&app.balance(&account).await, "0", "0", "5");

    let refunded = refund(&app, &settlement.settlement_id, "8")
        .await
        .unwrap()
        .refund
        .unwrap();
    assert_eq!(refunded.amount, "8");
    assert_eq!(refunded.debt_reduced, "5");
    assert_eq!(refunded.new_grant_id, "");
    assert_eq!(refunded.returned_to.len(), 1, "{refunded:#?}");
    assert_eq!(refunded.returned_to[0].grant_id, purchase);
    assert_eq!(refunded.returned_to[0].amount, "3");
    assert_totals(&app.balance(&account).await, "3", "0", "0");

    // Out of debt: Authorize works again.
    let response = app.authorize(&account, "3").await.unwrap();
    assert_eq!(response.available, "0");

    app.finish().await;
}
