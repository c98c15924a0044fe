//! Authentication and scopes on every creditgate RPC.

use creditgate::auth::Scope;
use creditgate::proto::v1::{
    GetBalanceRequest, GetCatalogRequest, QuoteRequest, ReleaseRequest, WatchEventsRequest,
};
use tonic::Code;

use crate::helpers::{TestApp, reason};

#[tokio::test]
async fn a_call_without_a_key_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let status = app
        .credit_as(None)
        .quote(QuoteRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("authorization: Bearer"),
        "{}",
        status.message()
    );
    let status = app
        .account_as(None)
        .get_balance(GetBalanceRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_or_malformed_key_is_unauthenticated_and_not_echoed() {
    let app = TestApp::spawn().await;
    let forged = "cg_000000000000000000000000000000000000000000000000";
    let status = app
        .credit_as(Some(forged))
        .quote(QuoteRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!status.message().contains(forged));
    let mut request = tonic::Request::new(QuoteRequest::default());
    request.metadata_mut().insert(
        "authorization",
        format!("Basic {}", app.key).parse().unwrap(),
    );
    let mut bare =
        creditgate::proto::v1::credit_service_client::CreditServiceClient::new(app.channel.clone());
    let status = bare.quote(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // A good key still passes authentication and reaches the RPC, which judges the request.
    let status = app
        .credit()
        .quote(QuoteRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status).as_deref(), Some("INVALID_USAGE"));
    app.stop().await;
}

#[tokio::test]
async fn a_key_without_the_scope_is_denied_with_scope_missing() {
    let app = TestApp::spawn().await;
    let reader = app.key_with(&[Scope::Reader]).await;
    let status = app
        .credit_as(Some(&reader))
        .release(ReleaseRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason(&status).as_deref(), Some("SCOPE_MISSING"));
    assert!(status.message().contains("worker"), "{}", status.message());

    let worker = app.key_with(&[Scope::Worker]).await;
    let status = app
        .account_as(Some(&worker))
        .get_balance(GetBalanceRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason(&status).as_deref(), Some("SCOPE_MISSING"));
    app.stop().await;
}

#[tokio::test]
async fn a_key_with_the_scope_reaches_the_rpc() {
    let app = TestApp::spawn().await;
    // A reader key opens an event stream (WatchEvents is a read).
    let reader = app.key_with(&[Scope::Reader]).await;
    let stream = app
        .account_as(Some(&reader))
        .watch_events(WatchEventsRequest::default())
        .await;
    assert!(stream.is_ok(), "{stream:?}");
    drop(stream);
    // A worker key may read the catalog.
    let worker = app.key_with(&[Scope::Worker]).await;
    let catalog = app
        .catalog_as(Some(&worker))
        .get_catalog(GetCatalogRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(catalog.catalog.unwrap().version, 1);
    app.stop().await;
}
