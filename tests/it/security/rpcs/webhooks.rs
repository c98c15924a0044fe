//! The WebhookService rows of the table: every RPC needs `admin`; those naming an endpoint
//! find only the caller's tenant's.

use creditgate::proto::v1::{
    CreateWebhookEndpointRequest, DeleteWebhookEndpointRequest, GetWebhookEndpointRequest,
    ListWebhookDeliveriesRequest, ListWebhookEndpointsRequest, ResumeWebhookEndpointRequest,
};

use super::{ADMIN_ONLY, Call, Row, Target};
use crate::helpers::money::key;

/// A call of the WebhookService `$method` with a `$request` naming the endpoint.
macro_rules! on_endpoint {
    ($method:ident($request:ident)) => {
        |mut clients, objects| {
            Box::pin(async move {
                let request = $request {
                    endpoint_id: objects.webhook_endpoint_id,
                };
                clients.webhooks.$method(request).await.map(drop)
            })
        }
    };
}

pub fn rows() -> Vec<Row> {
    const ENDPOINT: Target = Target::Object("WEBHOOK_ENDPOINT_NOT_FOUND");
    let row = |rpc: &'static str, target: Target, call: Call| Row {
        rpc,
        accepts: ADMIN_ONLY,
        target,
        call,
    };
    vec![
        row(
            "WebhookService/CreateWebhookEndpoint",
            Target::Tenant,
            |mut clients, _| {
                Box::pin(async move {
                    let request = CreateWebhookEndpointRequest {
                        idempotency_key: key(),
                        url: "https://hooks.example.com/matrix".into(),
                        ..CreateWebhookEndpointRequest::default()
                    };
                    clients
                        .webhooks
                        .create_webhook_endpoint(request)
                        .await
                        .map(drop)
                })
            },
        ),
        row(
            "WebhookService/ListWebhookEndpoints",
            Target::Tenant,
            |mut clients, _| {
                Box::pin(async move {
                    let request = ListWebhookEndpointsRequest::default();
                    clients
                        .webhooks
                        .list_webhook_endpoints(request)
                        .await
                        .map(drop)
                })
            },
        ),
        row(
            "WebhookService/GetWebhookEndpoint",
            ENDPOINT,
            on_endpoint!(get_webhook_endpoint(GetWebhookEndpointRequest)),
        ),
        row(
            "WebhookService/ResumeWebhookEndpoint",
            ENDPOINT,
            on_endpoint!(resume_webhook_endpoint(ResumeWebhookEndpointRequest)),
        ),
        row(
            "WebhookService/ListWebhookDeliveries",
            ENDPOINT,
            |mut clients, objects| {
                Box::pin(async move {
                    let request = ListWebhookDeliveriesRequest {
                        endpoint_id: objects.webhook_endpoint_id,
                        ..ListWebhookDeliveriesRequest::default()
                    };
                    clients
                        .webhooks
                        .list_webhook_deliveries(request)
                        .await
                        .map(drop)
                })
            },
        ),
        // Last of the endpoint rows: the allowed call deletes the own endpoint.
        row(
            "WebhookService/DeleteWebhookEndpoint",
            ENDPOINT,
            on_endpoint!(delete_webhook_endpoint(DeleteWebhookEndpointRequest)),
        ),
    ]
}
