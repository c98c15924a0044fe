//! Each event type fires from its cause, once, with the attributes a consumer needs; the clock
//! is moved and the sweeper run by the test. A marker grant on another account proves that
//! nothing else fired before it.

use chrono::{DateTime, Duration, Utc};
use creditgate::proto::v1::{
    AuthorizeRequest, CreateAccountRequest, EventType, GrantRequest, GrantSource, SettlePolicy,
};

use crate::helpers::TestApp;
use crate::helpers::events::{everything, next_event, next_of_type, only};
use crate::helpers::money::{authorize_request, create_account_request, grant_request, key};
use crate::helpers::plans::allowance_request;
use crate::helpers::time::{time, timestamp};

/// An event's time attribute as a time.
fn attribute_time(value: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value).unwrap().to_utc()
}

/// Grants `amount` purchased credits expiring at `expires_at`; the grant's id and expiry as
/// stored.
async fn grant_expiring(
    app: &TestApp,
    account: &str,
    amount: &str,
    expires_at: DateTime<Utc>,
) -> (String, DateTime<Utc>) {
    let grant = app
        .grant_request(GrantRequest {
            expires_at: Some(timestamp(expires_at)),
            ..grant_request(account, &key(), amount)
        })
        .await
        .unwrap()
        .grant
        .unwrap();
    (grant.grant_id, time(grant.expires_at.as_ref().unwrap()))
}

#[tokio::test]
async fn a_grant_and_an_allowance_period_each_add_a_grant_once() {
    let app = TestApp::spawn_quiet().await;
    let account = app.account().await;
    let marker = app.account().await;
    let mut stream = app.watch(everything()).await;

    let request = GrantRequest {
        external_ref: "payment-1".to_owned(),
        priority: Some(3),
        ..grant_request(&account, &key(), "12.5")
    };
    let granted = app.grant_request(request.clone()).await.unwrap();
    let grant = granted.grant.unwrap();
    let event = next_of_type(&mut stream, EventType::GrantAdded).await;
    assert_eq!(event.account_id, account);
    assert!(!event.event_id.is_empty() && !event.cursor.is_empty());
    assert!(event.created_at.is_some());
    let attributes = &event.attributes;
    assert_eq!(attributes["grant_id"], grant.grant_id);
    assert_eq!(attributes["amount"], "12.5");
    assert_eq!(attributes["source"], "PURCHASE");
    assert_eq!(attributes["priority"], "3");
    assert_eq!(attributes["external_ref"], "payment-1");
    assert_eq!(attributes["available"], "12.5");
    assert!(!attributes.contains_key("expires_at"), "{attributes:?}");
    // The same request again is answered from its record: nothing fires.
    let replayed = app.grant_request(request).await.unwrap();
    assert_eq!(replayed.grant.unwrap().grant_id, grant.grant_id);
    app.expect_marker_next(&mut stream, &marker).await;

    app.set_allowance(allowance_request(
        &account,
        "daily",
        GrantSource::FreeDaily,
        "5",
        creditgate::proto::v1::AllowancePeriod::Day,
    ))
    .await
    .unwrap();
    let period = next_of_type(&mut stream, EventType::GrantAdded).await;
    assert_eq!(period.account_id, account);
    assert_eq!(period.attributes["source"], "FREE_DAILY");
    assert_eq!(period.attributes["amount"], "5");
    let expires_at = attribute_time(&period.attributes["expires_at"]);
    assert!(expires_at > app.now() && expires_at <= app.now() + Duration::days(1));
    // Operations within the same period add no grant; the period's grant expires within the
    // warning horizon, so the next one warns of it (once).
    app.hold(&account, "1").await;
    let expiring = next_of_type(&mut stream, EventType::CreditsExpiring).await;
    assert_eq!(
        expiring.attributes["grant_id"],
        period.attributes["grant_id"]
    );
    app.hold(&account, "1").await;
    app.expect_marker_next(&mut stream, &marker).await;
    app.finish().await;
}

#[tokio::test]
async fn balance_low_fires_once_per_crossing_below_the_threshold() {
    let app = TestApp::spawn_quiet().await;
    let marker = app.account().await;
    let account = app
        .create_account_as(
            &app.key,
            CreateAccountRequest {
                low_balance_threshold: "10".to_owned(),
                ..create_account_request(&key(), &key())
            },
        )
        .await;
    let mut stream = app.watch(everything()).await;
    // Rising from 0 to 50 crosses nothing downwards.
    app.grant(&account, GrantSource::Purchase, "50").await;
    next_of_type(&mut stream, EventType::GrantAdded).await;

    app.hold(&account, "20").await;
    app.expect_marker_next(&mut stream, &marker).await;
    let request = authorize_request(&account, &key(), "25");
    app.credit().authorize(request.clone()).await.unwrap();
    let low = next_of_type(&mut stream, EventType::BalanceLow).await;
    assert_eq!(low.account_id, account);
    assert_eq!(low.attributes["available"], "5");
    assert_eq!(low.attributes["threshold"], "10");
    assert_eq!(low.attributes["debt"], "0");
    // Below already: more holds, and the same Authorize replayed, fire nothing.
    app.credit().authorize(request).await.unwrap();
    app.hold(&account, "1").await;
    app.hold(&account, "1").await;
    app.expect_marker_next(&mut stream, &marker).await;

    // Back above, then below again: a second crossing.
    app.grant(&account, GrantSource::Topup, "100").await;
    let back = next_of_type(&mut stream, EventType::GrantAdded).await;
    assert_eq!(back.attributes["available"], "103");
    app.hold(&account, "95").await;
    let again = next_of_type(&mut stream, EventType::BalanceLow).await;
    assert_eq!(again.attributes["available"], "8");
    assert_ne!(again.event_id, low.event_id);
    app.expect_marker_next(&mut stream, &marker).await;
    app.finish().await;
}

#[tokio::test]
async fn credits_expiring_fires_once_per_grant_ahead_of_its_expiry() {
    let app = TestApp::spawn_quiet().await;
    let account = app.account().await;
    let marker = app.account().await;
    let mut stream = app.watch(everything()).await;
    let (later, later_expiry) =
        grant_expiring(&app, &account, "30", app.now() + Duration::days(10)).await;
    next_of_type(&mut stream, EventType::GrantAdded).await;
    // Ten days ahead is beyond the 72-hour horizon.
    app.sweep().await;
    app.expect_marker_next(&mut stream, &marker).await;

    app.advance(Duration::days(8));
    app.sweep().await;
    let expiring = next_of_type(&mut stream, EventType::CreditsExpiring).await;
    assert_eq!(expiring.account_id, account);
    assert_eq!(expiring.attributes["grant_id"], later);
    assert_eq!(
        attribute_time(&expiring.attributes["expires_at"]),
        later_expiry
    );
    assert_eq!(expiring.attributes["amount"], "30");
    assert_eq!(expiring.attributes["held"], "0");
    assert_eq!(expiring.attributes["source"], "PURCHASE");
    // Warned once: neither a sweep nor an operation on the account warns again.
    app.sweep().await;
    app.hold(&account, "1").await;
    app.expect_marker_next(&mut stream, &marker).await;

    // A grant created within the horizon is warned at the next sweep.
    let (soon, _) = grant_expiring(&app, &account, "7", app.now() + Duration::days(1)).await;
    next_of_type(&mut stream, EventType::GrantAdded).await;
    app.sweep().await;
    let warned = next_of_type(&mut stream, EventType::CreditsExpiring).await;
    assert_eq!(warned.attributes["grant_id"], soon);
    assert_eq!(warned.attributes["amount"], "7");
    app.sweep().await;
    app.expect_marker_next(&mut stream, &marker).await;
    app.finish().await;
}

#[tokio::test]
async fn credits_expired_fires_with_the_unspent_amount() {
    let app = TestApp::spawn_quiet().await;
    let account = app.account().await;
    let marker = app.account().await;
    let mut stream = app
        .watch(only(&[EventType::CreditsExpired, EventType::GrantAdded]))
        .await;
    let (grant, expiry) =
        grant_expiring(&app, &account, "10", app.now() + Duration::hours(1)).await;
    next_of_type(&mut stream, EventType::GrantAdded).await;
    let hold = app.hold(&account, "3").await;
    app.settle(&hold.hold_id, "3", false).await.unwrap();

    app.advance(Duration::hours(2));
    app.sweep().await;
    let expired = next_of_type(&mut stream, EventType::CreditsExpired).await;
    assert_eq!(expired.account_id, account);
    assert_eq!(expired.attributes["grant_id"], grant);
    assert_eq!(expired.attributes["amount"], "7");
    assert_eq!(attribute_time(&expired.attributes["expires_at"]), expiry);
    assert_eq!(expired.attributes["available"], "0");
    app.sweep().await;
    app.expect_marker_next(&mut stream, &marker).await;
    app.assert_balance(&account, "0", "0").await;
    app.finish().await;
}

#[tokio::test]
async fn hold_expired_fires_from_the_sweeper_and_from_a_locked_transaction() {
    let app = TestApp::spawn_quiet().await;
    let account = app.funded_account("100").await;
    let marker = app.account().await;
    let mut stream = app
        .watch(only(&[EventType::HoldExpired, EventType::GrantAdded]))
        .await;
    let authorize = |amount: &str| AuthorizeRequest {
        ttl_seconds: 60,
        ..authorize_request(&account, &key(), amount)
    };
    let swept = app.credit().authorize(authorize("10")).await.unwrap();
    let swept = swept.into_inner().hold.unwrap();
    app.advance(Duration::minutes(2));
    app.sweep().await;
    let expired = next_of_type(&mut stream, EventType::HoldExpired).await;
    assert_eq!(expired.account_id, account);
    assert_eq!(expired.attributes["hold_id"], swept.hold_id);
    assert_eq!(expired.attributes["amount"], "10");
    assert_eq!(expired.attributes["captured"], "0");
    assert_eq!(
        attribute_time(&expired.attributes["expires_at"]),
        time(swept.expires_at.as_ref().unwrap())
    );
    app.sweep().await;
    app.expect_marker_next(&mut stream, &marker).await;

    // No sweep: the next operation on the account expires the hold under its lock.
    let locked = app.credit().authorize(authorize("20")).await.unwrap();
    let locked = locked.into_inner().hold.unwrap();
    app.advance(Duration::minutes(2));
    app.hold(&account, "1").await;
    let expired = next_of_type(&mut stream, EventType::HoldExpired).await;
    assert_eq!(expired.attributes["hold_id"], locked.hold_id);
    assert_eq!(expired.attributes["amount"], "20");
    app.sweep().await;
    app.expect_marker_next(&mut stream, &marker).await;
    app.finish().await;
}

#[tokio::test]
async fn debt_incurred_fires_per_settlement_beyond_the_balance() {
    let app = TestApp::spawn_quiet().await;
    let account = app.account_with(SettlePolicy::Debt).await;
    app.grant(&account, GrantSource::Purchase, "10").await;
    let marker = app.account().await;
    let mut stream = app.watch(everything()).await;
    let hold = app.hold(&account, "8").await;
    let request = crate::helpers::money::settle_request(&hold.hold_id, &key(), "14.5");
    let settled = app.credit().settle(request.clone()).await.unwrap();
    let settlement = settled.into_inner().settlement.unwrap();
    let debt = next_event(&mut stream).await;
    assert_eq!(debt.r#type(), EventType::DebtIncurred, "{debt:#?}");
    assert_eq!(debt.account_id, account);
    assert_eq!(debt.attributes["settlement_id"], settlement.settlement_id);
    assert_eq!(debt.attributes["hold_id"], hold.hold_id);
    assert_eq!(debt.attributes["amount"], "4.5");
    assert_eq!(debt.attributes["debt"], "4.5");
    // The Settle replayed fires nothing more.
    app.credit().settle(request).await.unwrap();
    app.expect_marker_next(&mut stream, &marker).await;
    app.finish().await;
}

#[tokio::test]
async fn a_refund_to_a_grant_expired_since_adds_a_refund_grant() {
    let app = TestApp::spawn_quiet().await;
    let account = app.account().await;
    let marker = app.account().await;
    grant_expiring(&app, &account, "50", app.now() + Duration::hours(1)).await;
    let hold = app.hold(&account, "20").await;
    let settled = app.settle(&hold.hold_id, "20", false).await.unwrap();
    let settlement_id = settled.settlement.unwrap().settlement_id;
    let mut stream = app.watch(only(&[EventType::GrantAdded])).await;

    app.advance(Duration::hours(2));
    let before = app.now();
    let refunded = crate::helpers::money::refund(&app, &settlement_id, "")
        .await
        .unwrap()
        .refund
        .unwrap();
    let added = next_of_type(&mut stream, EventType::GrantAdded).await;
    assert_eq!(added.account_id, account);
    assert_eq!(added.attributes["grant_id"], refunded.new_grant_id);
    assert_eq!(added.attributes["source"], "REFUND");
    assert_eq!(added.attributes["amount"], "20");
    let expires_at = attribute_time(&added.attributes["expires_at"]);
    // Valid for 30 days from the refund.
    assert!(expires_at >= before + Duration::days(30));
    assert!(expires_at <= app.now() + Duration::days(30));
    app.expect_marker_next(&mut stream, &marker).await;
    app.finish().await;
}
