//! Delivery: signed, in order, retried, paused, resumed, filtered, per tenant.

use std::time::Duration;

use chrono::DateTime;
use creditgate::proto::v1::{
    CreateAccountRequest, EventType, GrantSource, ResumeWebhookEndpointRequest,
    WebhookEndpointStatus,
};
use creditgate::service::webhooks::delivery::deliver_once;

use super::{attempts, deliver_until, endpoint, endpoint_for, get, verifies};
use crate::helpers::TestApp;
use crate::helpers::money::{create_account_request, key};
use crate::helpers::receiver::Receiver;

#[tokio::test]
async fn an_event_is_posted_as_json_signed_with_the_secret_shown_once() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let created = endpoint(&app, &receiver).await;
    let endpoint_id = created.endpoint.unwrap().endpoint_id;
    let account_id = app.account().await;
    let granted = app.grant(&account_id, GrantSource::Purchase, "7").await;

    deliver_until(&app, |report| report.delivered >= 1).await;
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let request = &received[0];
    assert_eq!(request.header("content-type"), "application/json");
    assert!(
        verifies(
            &created.secret,
            request.header("creditgate-signature"),
            &request.body
        ),
        "the signature does not verify with the secret: {request:?}"
    );
    assert!(!verifies(
        "whsec_other",
        request.header("creditgate-signature"),
        &request.body
    ));
    let body = request.json();
    assert_eq!(body["type"], "GRANT_ADDED");
    assert_eq!(body["account_id"], account_id.as_str());
    assert_eq!(body["event_id"], request.header("creditgate-event-id"));
    assert!(!body["cursor"].as_str().unwrap().is_empty());
    DateTime::parse_from_rfc3339(body["created_at"].as_str().unwrap()).unwrap();
    let grant_id = granted.grant.unwrap().grant_id;
    assert_eq!(body["attributes"]["grant_id"], grant_id.as_str());
    assert_eq!(body["attributes"]["source"], "PURCHASE");

    let shown = get(&app, &endpoint_id).await;
    assert_eq!(shown.status(), WebhookEndpointStatus::Active);
    assert_eq!(shown.failed_attempts, 0);
    let made = attempts(&app, &endpoint_id).await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(made[0].succeeded);
    assert_eq!((made[0].http_status, made[0].attempt), (200, 1));
    assert_eq!(made[0].cursor, body["cursor"].as_str().unwrap());
    let idle = deliver_once(&app.context).await.unwrap();
    assert_eq!(
        idle.endpoints, 0,
        "an endpoint with nothing new is not leased"
    );
    app.finish().await;
}

#[tokio::test]
async fn events_arrive_in_the_order_they_were_written() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let endpoint_id = endpoint(&app, &receiver)
        .await
        .endpoint
        .unwrap()
        .endpoint_id;
    let (first, second) = (app.account().await, app.account().await);
    let mut expected = Vec::new();
    for (index, account_id) in [&first, &second, &first, &first, &second, &first]
        .into_iter()
        .enumerate()
    {
        let amount = (index + 1).to_string();
        let granted = app.grant(account_id, GrantSource::Purchase, &amount).await;
        expected.push(granted.grant.unwrap().grant_id);
    }
    // The first event fails once: it is retried before any later one is sent.
    receiver.answer_with(503);
    deliver_until(&app, |report| report.failed >= 1).await;
    receiver.answer_with(200);
    app.advance(chrono::Duration::seconds(2));
    deliver_until(&app, |report| report.delivered >= expected.len()).await;
    let numbers: Vec<u32> = attempts(&app, &endpoint_id)
        .await
        .iter()
        .rev()
        .map(|made| made.attempt)
        .collect();
    assert_eq!(numbers, [1, 2, 1, 1, 1, 1, 1]);
    let order: Vec<String> = receiver
        .delivered()
        .iter()
        .map(|request| {
            request.json()["attributes"]["grant_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(order, expected);
    app.finish().await;
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_as_the_clock_moves_then_paused_and_resumed() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.answer_with(500);
    let endpoint_id = endpoint(&app, &receiver)
        .await
        .endpoint
        .unwrap()
        .endpoint_id;
    let account_id = app.account().await;
    app.grant(&account_id, GrantSource::Purchase, "3").await;

    deliver_until(&app, |report| report.failed >= 1).await;
    let failing = get(&app, &endpoint_id).await;
    assert_eq!(failing.failed_attempts, 1);
    assert_eq!(failing.last_error, "HTTP 500");
    let since = failing.failing_since.unwrap();
    let next = failing.next_attempt_at.unwrap();
    let delay = next.seconds * 1_000 + i64::from(next.nanos / 1_000_000)
        - (since.seconds * 1_000 + i64::from(since.nanos / 1_000_000));
    assert!((400..=1_001).contains(&delay), "first backoff {delay} ms");
    let made = attempts(&app, &endpoint_id).await;
    assert_eq!(
        (made.len(), made[0].http_status, made[0].succeeded),
        (1, 500, false)
    );

    app.advance(chrono::Duration::seconds(2));
    deliver_until(&app, |report| report.failed >= 1).await;
    assert_eq!(get(&app, &endpoint_id).await.failed_attempts, 2);
    let made = attempts(&app, &endpoint_id).await;
    assert_eq!(
        made.iter().map(|made| made.attempt).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(
        made[0].event_id, made[1].event_id,
        "the head event is retried"
    );

    app.advance(chrono::Duration::hours(73));
    deliver_until(&app, |report| report.paused >= 1).await;
    let paused = get(&app, &endpoint_id).await;
    assert_eq!(paused.status(), WebhookEndpointStatus::Paused);
    receiver.answer_with(200);
    app.advance(chrono::Duration::hours(2));
    let idle = deliver_once(&app.context).await.unwrap();
    assert_eq!(idle.endpoints, 0, "a paused endpoint is not delivered to");

    let resumed = app
        .webhooks_as(Some(&app.key))
        .resume_webhook_endpoint(ResumeWebhookEndpointRequest {
            endpoint_id: endpoint_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    assert_eq!(resumed.status(), WebhookEndpointStatus::Active);
    deliver_until(&app, |report| report.delivered >= 1).await;
    assert_eq!(receiver.delivered().len(), 1);
    let healthy = get(&app, &endpoint_id).await;
    assert_eq!(
        (healthy.failed_attempts, healthy.last_error.as_str()),
        (0, "")
    );
    assert_eq!(attempts(&app, &endpoint_id).await.len(), 4);

    app.advance(chrono::Duration::days(8));
    assert_eq!(deliver_once(&app.context).await.unwrap().pruned, 4);
    assert!(attempts(&app, &endpoint_id).await.is_empty());
    app.finish().await;
}

#[tokio::test]
async fn filters_pick_the_account_and_the_types() {
    let app = TestApp::spawn().await;
    let (by_type, by_account) = (Receiver::start().await, Receiver::start().await);
    let low = app
        .create_account_as(
            &app.key,
            CreateAccountRequest {
                low_balance_threshold: "5".to_owned(),
                ..create_account_request(&key(), &key())
            },
        )
        .await;
    let other = app.account().await;
    endpoint_for(&app, &app.key, &by_type.url, "", &[EventType::BalanceLow]).await;
    endpoint_for(&app, &app.key, &by_account.url, &other, &[]).await;
    app.grant(&low, GrantSource::Purchase, "10").await;
    app.authorize(&low, "8").await.unwrap();
    app.grant(&other, GrantSource::Purchase, "1").await;

    deliver_until(&app, |report| report.delivered >= 2).await;
    let low_events = by_type.delivered();
    assert_eq!(low_events.len(), 1, "{low_events:?}");
    assert_eq!(low_events[0].json()["type"], "BALANCE_LOW");
    assert_eq!(low_events[0].json()["account_id"], low.as_str());
    let other_events = by_account.delivered();
    assert_eq!(other_events.len(), 1, "{other_events:?}");
    assert_eq!(other_events[0].json()["account_id"], other.as_str());
    app.finish().await;
}

#[tokio::test]
async fn an_endpoint_never_gets_another_tenants_events() {
    let app = TestApp::spawn().await;
    let (own, theirs) = (Receiver::start().await, Receiver::start().await);
    let other_key = app.other_tenant_key().await;
    endpoint(&app, &own).await;
    endpoint_for(&app, &other_key, &theirs.url, "", &[]).await;
    let mine = app.account().await;
    app.grant(&mine, GrantSource::Purchase, "1").await;
    let their_account = app
        .create_account_as(&other_key, create_account_request(&key(), &key()))
        .await;
    app.account_as(Some(&other_key))
        .grant(crate::helpers::money::grant_request(
            &their_account,
            &key(),
            "2",
        ))
        .await
        .unwrap();

    deliver_until(&app, |report| report.delivered >= 2).await;
    let own_events = own.delivered();
    assert_eq!(own_events.len(), 1, "{own_events:?}");
    assert_eq!(own_events[0].json()["account_id"], mine.as_str());
    let their_events = theirs.delivered();
    assert_eq!(their_events.len(), 1, "{their_events:?}");
    assert_eq!(their_events[0].json()["account_id"], their_account.as_str());
    app.finish().await;
}

#[tokio::test]
async fn the_servers_worker_delivers_on_its_own() {
    let app = TestApp::spawn_with_limits(|limits| {
        limits.webhook_interval = Duration::from_millis(100);
    })
    .await;
    let receiver = Receiver::start().await;
    endpoint(&app, &receiver).await;
    app.funded_account("4").await;
    let mut waited = Duration::ZERO;
    while receiver.delivered().is_empty() {
        assert!(waited < Duration::from_secs(20), "nothing was delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert_eq!(receiver.delivered()[0].json()["type"], "GRANT_ADDED");
    app.finish().await;
}
