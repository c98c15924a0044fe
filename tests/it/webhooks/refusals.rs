//! Bad requests: a malformed url, type, account or endpoint id is INVALID_ARGUMENT naming the
//! field; an unknown endpoint or another tenant's is NOT_FOUND; the endpoint limit holds; a
//! retried Create answers the same endpoint and secret.

use creditgate::proto::v1::{
    CreateWebhookEndpointRequest, DeleteWebhookEndpointRequest, GetWebhookEndpointRequest,
    ListWebhookDeliveriesRequest, ListWebhookEndpointsRequest, ResumeWebhookEndpointRequest,
};
use creditgate::service::webhooks::MAX_ENDPOINTS_PER_TENANT;
use tonic::{Code, Status};

use super::endpoint_for;
use crate::helpers::money::key;
use crate::helpers::status::{assert_invalid_field, assert_refused};
use crate::helpers::{Clients, TestApp};

const URL: &str = "https://hooks.example.com/creditgate";

fn create(url: &str, account_id: &str, types: Vec<i32>) -> CreateWebhookEndpointRequest {
    CreateWebhookEndpointRequest {
        idempotency_key: key(),
        url: url.to_owned(),
        account_id: account_id.to_owned(),
        types,
    }
}

/// Every RPC that names an endpoint, called on `endpoint_id`.
async fn each_naming(clients: &Clients, endpoint_id: &str) -> Vec<(&'static str, Status)> {
    let mut webhooks = clients.webhooks.clone();
    let id = || endpoint_id.to_owned();
    let answers = [
        (
            "GetWebhookEndpoint",
            webhooks
                .get_webhook_endpoint(GetWebhookEndpointRequest { endpoint_id: id() })
                .await
                .map(drop),
        ),
        (
            "ResumeWebhookEndpoint",
            webhooks
                .resume_webhook_endpoint(ResumeWebhookEndpointRequest { endpoint_id: id() })
                .await
                .map(drop),
        ),
        (
            "ListWebhookDeliveries",
            webhooks
                .list_webhook_deliveries(ListWebhookDeliveriesRequest {
                    endpoint_id: id(),
                    ..ListWebhookDeliveriesRequest::default()
                })
                .await
                .map(drop),
        ),
        (
            "DeleteWebhookEndpoint",
            webhooks
                .delete_webhook_endpoint(DeleteWebhookEndpointRequest { endpoint_id: id() })
                .await
                .map(drop),
        ),
    ];
    answers
        .into_iter()
        .map(|(rpc, answer)| (rpc, answer.expect_err(rpc)))
        .collect()
}

#[tokio::test]
async fn malformed_fields_are_invalid_argument_naming_the_field() {
    let app = TestApp::spawn().await;
    let mut webhooks = app.webhooks_as(Some(&app.key));
    let long = format!("https://example.com/{}", "a".repeat(2_048));
    for url in [
        "",
        "not a url",
        "ftp://example.com/x",
        "file:///etc/passwd",
        "https://",
        &long,
    ] {
        let status = webhooks
            .create_webhook_endpoint(create(url, "", vec![]))
            .await
            .unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "url");
    }
    for types in [vec![0], vec![99]] {
        let status = webhooks
            .create_webhook_endpoint(create(URL, "", types))
            .await
            .unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "types");
    }
    let status = webhooks
        .create_webhook_endpoint(create(URL, "nope", vec![]))
        .await
        .unwrap_err();
    assert_invalid_field(&status, "INVALID_ARGUMENT", "account_id");
    let unknown = uuid::Uuid::now_v7().to_string();
    let status = webhooks
        .create_webhook_endpoint(create(URL, &unknown, vec![]))
        .await
        .unwrap_err();
    assert_refused(&status, Code::NotFound, "ACCOUNT_NOT_FOUND");
    for (rpc, status) in each_naming(&app.clients(), "not-an-id").await {
        assert_eq!(status.code(), Code::InvalidArgument, "{rpc}: {status:?}");
    }
    for page_size in [-1, 101] {
        let request = ListWebhookEndpointsRequest {
            page_size,
            ..ListWebhookEndpointsRequest::default()
        };
        let status = webhooks.list_webhook_endpoints(request).await.unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "page_size");
    }
    let request = ListWebhookEndpointsRequest {
        page_token: "garbage".to_owned(),
        ..ListWebhookEndpointsRequest::default()
    };
    let status = webhooks.list_webhook_endpoints(request).await.unwrap_err();
    assert_invalid_field(&status, "INVALID_ARGUMENT", "page_token");
    app.finish().await;
}

#[tokio::test]
async fn an_unknown_or_another_tenants_endpoint_is_not_found() {
    let app = TestApp::spawn().await;
    let other_key = app.other_tenant_key().await;
    let theirs = endpoint_for(&app, &other_key, URL, "", &[]).await;
    let their_id = theirs.endpoint.unwrap().endpoint_id;
    let unknown = uuid::Uuid::now_v7().to_string();
    for endpoint_id in [&unknown, &their_id] {
        for (rpc, status) in each_naming(&app.clients(), endpoint_id).await {
            assert_eq!(status.code(), Code::NotFound, "{rpc}: {status:?}");
            assert_refused(&status, Code::NotFound, "WEBHOOK_ENDPOINT_NOT_FOUND");
        }
    }
    // Still there for its own tenant.
    let mut theirs = app.webhooks_as(Some(&other_key));
    theirs
        .get_webhook_endpoint(GetWebhookEndpointRequest {
            endpoint_id: their_id,
        })
        .await
        .unwrap();
    let listed = app
        .webhooks_as(Some(&app.key))
        .list_webhook_endpoints(ListWebhookEndpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.endpoints.is_empty(), "{listed:?}");
    app.finish().await;
}

#[tokio::test]
async fn a_retried_create_answers_the_same_secret_and_the_limit_holds() {
    let app = TestApp::spawn().await;
    let mut webhooks = app.webhooks_as(Some(&app.key));
    let request = create(URL, "", vec![]);
    let first = webhooks
        .create_webhook_endpoint(request.clone())
        .await
        .unwrap()
        .into_inner();
    let again = webhooks
        .create_webhook_endpoint(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    assert!(first.secret.starts_with("whsec_"));
    for _ in 1..MAX_ENDPOINTS_PER_TENANT {
        webhooks
            .create_webhook_endpoint(create(URL, "", vec![]))
            .await
            .unwrap();
    }
    let status = webhooks
        .create_webhook_endpoint(create(URL, "", vec![]))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::ResourceExhausted,
        "TOO_MANY_WEBHOOK_ENDPOINTS",
    );
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = webhooks
            .list_webhook_endpoints(ListWebhookEndpointsRequest {
                page_size: 5,
                page_token,
            })
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.endpoints);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        listed.len(),
        usize::try_from(MAX_ENDPOINTS_PER_TENANT).unwrap()
    );
    assert_eq!(listed[0], first.endpoint.unwrap());
    app.finish().await;
}
