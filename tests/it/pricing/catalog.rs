//! CatalogService: publishing versions, future versions, reads and model listing.

use chrono::Duration;
use creditgate::auth::Scope;
use creditgate::proto::v1::{GetCatalogRequest, ListModelsRequest, Modality};
use tonic::Code;

use super::{SEED, get_catalog_on, list_all_models, publish, quote, tokens, with_token_rates};
use crate::helpers::TestApp;
use crate::helpers::money::key;
use crate::helpers::status::expect_refused;
use crate::helpers::time::time;

#[tokio::test]
async fn catalog_service_publishes_versions_and_lists_models() {
    let app = TestApp::spawn().await;
    let v1 = get_catalog_on(&app, 0).await.unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.models.len(), 28);
    assert_eq!(get_catalog_on(&app, 1).await.unwrap(), v1);

    // Publishing needs `admin`; a billing key can read but not publish.
    let billing = app.key_with(&[Scope::Billing]).await;
    expect_refused(
        publish(&app, &billing, &key(), v1.clone(), None).await,
        Code::PermissionDenied,
        "SCOPE_MISSING",
    );
    let read = app
        .catalog_as(Some(&billing))
        .get_catalog(GetCatalogRequest { version: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.catalog.unwrap().version, 1);

    // Invalid catalogs publish nothing.
    let negative = with_token_rates(v1.clone(), SEED, "-1", "0.05", "0.00125");
    let status = publish(&app, &app.key, &key(), negative, None)
        .await
        .expect_err("a negative rate is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let mut unknown_model = v1.clone();
    unknown_model.tools[0]
        .allowed_models
        .push("acme/no-such-model".to_owned());
    let status = publish(&app, &app.key, &key(), unknown_model, None)
        .await
        .expect_err("a tool naming an unknown model is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        get_catalog_on(&app, 2).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(get_catalog_on(&app, 0).await.unwrap().version, 1);

    // A valid catalog is the next version (retries and reused keys: see `idempotency`).
    let mut v2 = with_token_rates(v1.clone(), SEED, "0.0625", "0.5", "0.0125");
    v2.description = "seed 10x".to_owned();
    let published = publish(&app, &app.key, &key(), v2.clone(), None)
        .await
        .unwrap()
        .catalog
        .unwrap();
    assert_eq!(published.version, 2);
    assert_eq!(published.description, "seed 10x");
    assert_eq!(published.models, v2.models);
    assert_eq!(published.tools, v2.tools);
    assert_eq!(published.multipliers, v2.multipliers);
    assert_eq!(published.surcharges, v2.surcharges);
    let active = get_catalog_on(&app, 0).await.unwrap();
    assert_eq!(active.version, 2);
    assert_eq!(active.models, v2.models);
    assert_eq!(
        quote(&app, SEED, tokens(10_000, 0, 0)).await.unwrap().total,
        "0.0625"
    );

    // A version with a future effective_at is not active until then.
    let effective_at = app.now() + Duration::hours(1);
    let mut v3 = with_token_rates(v1.clone(), SEED, "0.625", "5", "0.125");
    v3.description = "seed 100x, next hour".to_owned();
    let scheduled = publish(&app, &app.key, &key(), v3.clone(), Some(effective_at))
        .await
        .unwrap()
        .catalog
        .unwrap();
    assert_eq!(scheduled.version, 3);
    assert_eq!(time(scheduled.effective_at.as_ref().unwrap()), effective_at);
    assert_eq!(get_catalog_on(&app, 0).await.unwrap().version, 2);
    let quoted = quote(&app, SEED, tokens(10_000, 0, 0)).await.unwrap();
    assert_eq!(quoted.catalog_version, 2);
    assert_eq!(quoted.total, "0.0625");
    // Readable by version before it is in effect.
    let stored = get_catalog_on(&app, 3).await.unwrap();
    assert_eq!(stored.models, v3.models);
    assert_eq!(time(stored.effective_at.as_ref().unwrap()), effective_at);
    // A replica (fresh active-version cache) whose clock is past effective_at sees version 3.
    let replica = app.replica().await;
    replica.advance(Duration::hours(2));
    assert_eq!(get_catalog_on(&replica, 0).await.unwrap().version, 3);
    let quoted = quote(&replica, SEED, tokens(10_000, 0, 0)).await.unwrap();
    assert_eq!(quoted.catalog_version, 3);
    assert_eq!(quoted.total, "0.625");
    replica.stop().await;

    // Older versions stay readable; an unknown version is NOT_FOUND.
    assert_eq!(get_catalog_on(&app, 1).await.unwrap(), v1);
    assert_eq!(
        get_catalog_on(&app, 99).await.unwrap_err().code(),
        Code::NotFound
    );
    let status = app
        .catalog_as(Some(&app.key))
        .list_models(ListModelsRequest {
            version: 99,
            ..ListModelsRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // ListModels pages through every model of the active version, ordered by id.
    let mut expected: Vec<String> = active
        .models
        .iter()
        .map(|model| model.model_id.clone())
        .collect();
    expected.sort();
    let (ids, pages) = list_all_models(&app, 10, Modality::Unspecified).await;
    assert_eq!(ids, expected);
    assert_eq!(pages, 3);
    let (images, _) = list_all_models(&app, 10, Modality::Image).await;
    assert_eq!(
        images,
        vec![
            "black-forest-labs/flux-1.1-pro",
            "google/imagen-4",
            "openai/gpt-image-1"
        ]
    );
    let (videos, _) = list_all_models(&app, 2, Modality::Video).await;
    assert_eq!(
        videos,
        vec![
            "bytedance/seedance-1-pro",
            "google/veo-3",
            "kling/kling-2.1"
        ]
    );
    let first_page = app
        .catalog_as(Some(&app.key))
        .list_models(ListModelsRequest {
            page_size: 10,
            ..ListModelsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.catalog_version, 2);
    assert_eq!(first_page.models.len(), 10);

    app.finish().await;
}

/// catalog.proto: `Catalog.created_at` is "when this version was published".
#[tokio::test]
async fn published_catalog_says_when_it_was_published() {
    let app = TestApp::spawn().await;
    let v1 = get_catalog_on(&app, 1).await.unwrap();
    assert!(
        v1.created_at.is_some(),
        "GetCatalog leaves created_at unset for version 1"
    );

    let before = app.now();
    let mut v2 = v1.clone();
    v2.created_at = None;
    v2.description = "republished".to_owned();
    let published = publish(&app, &app.key, &key(), v2, None)
        .await
        .unwrap()
        .catalog
        .unwrap();
    let after = app.now();
    let created_at = time(
        published
            .created_at
            .as_ref()
            .expect("PublishCatalog leaves created_at unset"),
    );
    assert!(
        created_at >= before && created_at <= after,
        "created_at {created_at} is not the publishing time ({before} .. {after})"
    );
    let read = get_catalog_on(&app, 2).await.unwrap();
    assert_eq!(read.created_at, published.created_at);

    app.finish().await;
}
