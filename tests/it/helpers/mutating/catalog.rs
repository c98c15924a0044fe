//! The CatalogService and WebhookService cases.

use creditgate::proto::v1::{
    Catalog, CreateWebhookEndpointRequest, CreateWebhookEndpointResponse, EventType,
    GetCatalogRequest, PublishCatalogRequest, PublishCatalogResponse,
};
use futures::future::BoxFuture;

use super::Mutating;
use crate::helpers::TestApp;
use crate::helpers::snapshot::Snapshot;

pub struct PublishCatalog;

impl Mutating for PublishCatalog {
    const RPC: &'static str = "CatalogService/PublishCatalog";
    /// The active catalog, to publish again.
    type Subject = Catalog;
    type Request = PublishCatalogRequest;
    type Response = PublishCatalogResponse;

    fn prepare(app: &TestApp) -> BoxFuture<'_, Catalog> {
        Box::pin(async {
            app.catalog_as(Some(&app.key))
                .get_catalog(GetCatalogRequest { version: 0 })
                .await
                .unwrap()
                .into_inner()
                .catalog
                .unwrap()
        })
    }

    fn request(active: &Catalog, key: &str) -> PublishCatalogRequest {
        let catalog = Catalog {
            description: "republished".to_owned(),
            ..active.clone()
        };
        PublishCatalogRequest {
            idempotency_key: key.to_owned(),
            catalog: Some(catalog),
            effective_at: None,
        }
    }

    fn variants(active: &Catalog, key: &str) -> Vec<(&'static str, PublishCatalogRequest)> {
        let mut other = Self::request(active, key);
        other.catalog.as_mut().unwrap().description = "something else".to_owned();
        vec![("catalog", other)]
    }

    sent_by!(catalog.publish_catalog);

    fn apply(books: &mut Snapshot, active: &Catalog, response: &PublishCatalogResponse) {
        let published = response.catalog.as_ref().unwrap();
        assert_eq!(published.version, active.version + 1, "{published:?}");
        assert_eq!(published.models, active.models);
        books.catalog_versions += 1;
    }
}

pub struct CreateWebhookEndpoint;

impl Mutating for CreateWebhookEndpoint {
    const RPC: &'static str = "WebhookService/CreateWebhookEndpoint";
    /// Nothing: an endpoint belongs to the tenant.
    type Subject = ();
    type Request = CreateWebhookEndpointRequest;
    type Response = CreateWebhookEndpointResponse;

    fn prepare(_app: &TestApp) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn request(_: &(), key: &str) -> CreateWebhookEndpointRequest {
        CreateWebhookEndpointRequest {
            idempotency_key: key.to_owned(),
            url: "https://hooks.example.com/creditgate".to_owned(),
            account_id: String::new(),
            types: vec![EventType::GrantAdded as i32],
        }
    }

    fn variants(_: &(), key: &str) -> Vec<(&'static str, CreateWebhookEndpointRequest)> {
        let mut url = Self::request(&(), key);
        url.url = "https://hooks.example.com/other".to_owned();
        let mut types = Self::request(&(), key);
        types.types = vec![EventType::BalanceLow as i32];
        vec![("url", url), ("types", types)]
    }

    sent_by!(webhooks.create_webhook_endpoint);

    fn apply(books: &mut Snapshot, _: &(), response: &CreateWebhookEndpointResponse) {
        assert!(response.secret.starts_with("whsec_"), "{response:?}");
        books.webhook_endpoints += 1;
    }
}
