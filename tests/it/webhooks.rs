//! Webhooks against a local receiver: an event arrives signed with the secret shown once, in
//! order, retried after failures as the clock moves, paused after 72 hours and resumed; bad
//! requests are refused, and an endpoint never sees another tenant's events. The worker is
//! driven with `deliver_once`.

mod cli;
mod delivery;
mod refusals;

use std::time::Duration;

use creditgate::proto::v1::{
    CreateWebhookEndpointRequest, CreateWebhookEndpointResponse, EventType,
    GetWebhookEndpointRequest, ListWebhookDeliveriesRequest, WebhookDelivery, WebhookEndpoint,
};
use creditgate::service::webhooks::delivery::{DeliveryReport, deliver_once};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::helpers::TestApp;
use crate::helpers::money::key;
use crate::helpers::receiver::Receiver;

/// Most delivery ticks a test waits through for what it expects: events become deliverable
/// once every older transaction of the cluster (other tests' too) has ended.
const MAX_TICKS: usize = 400;

/// Registers an endpoint at `url` for `types` with the app's key.
async fn endpoint_for(
    app: &TestApp,
    api_key: &str,
    url: &str,
    account_id: &str,
    types: &[EventType],
) -> CreateWebhookEndpointResponse {
    app.webhooks_as(Some(api_key))
        .create_webhook_endpoint(CreateWebhookEndpointRequest {
            idempotency_key: key(),
            url: url.to_owned(),
            account_id: account_id.to_owned(),
            types: types.iter().map(|kind| *kind as i32).collect(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// An endpoint of the app's tenant for every event, at `receiver`.
async fn endpoint(app: &TestApp, receiver: &Receiver) -> CreateWebhookEndpointResponse {
    endpoint_for(app, &app.key, &receiver.url, "", &[]).await
}

/// Runs delivery ticks until `done` holds of the total so far; fails after [`MAX_TICKS`].
async fn deliver_until(app: &TestApp, done: impl Fn(&DeliveryReport) -> bool) -> DeliveryReport {
    let mut total = DeliveryReport::default();
    for _ in 0..MAX_TICKS {
        let report = deliver_once(&app.context).await.unwrap();
        total.endpoints += report.endpoints;
        total.delivered += report.delivered;
        total.failed += report.failed;
        total.paused += report.paused;
        if done(&total) {
            return total;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("delivery did not get there: {total:?}");
}

/// The endpoint as the API shows it.
async fn get(app: &TestApp, endpoint_id: &str) -> WebhookEndpoint {
    app.webhooks_as(Some(&app.key))
        .get_webhook_endpoint(GetWebhookEndpointRequest {
            endpoint_id: endpoint_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap()
}

/// The endpoint's attempts, newest first.
async fn attempts(app: &TestApp, endpoint_id: &str) -> Vec<WebhookDelivery> {
    app.webhooks_as(Some(&app.key))
        .list_webhook_deliveries(ListWebhookDeliveriesRequest {
            endpoint_id: endpoint_id.to_owned(),
            ..ListWebhookDeliveriesRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries
}

/// Checks `signature` (`t=…,v1=…`) of `body` as a receiver would, with `secret`.
fn verifies(secret: &str, signature: &str, body: &[u8]) -> bool {
    let mut parts = signature.split(',');
    let (Some(timestamp), Some(v1)) = (
        parts.next().and_then(|part| part.strip_prefix("t=")),
        parts.next().and_then(|part| part.strip_prefix("v1=")),
    ) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::decode(v1).is_ok_and(|tag| mac.verify_slice(&tag).is_ok())
}
