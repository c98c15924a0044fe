//! What keys and references protect beyond a plain retry: a declined Authorize stays declined,
//! a grant's external reference credits once under any key, and the idempotency records are
//! pruned past their retention.

use std::collections::HashSet;

use creditgate::proto::v1::{GetHoldRequest, GrantRequest, GrantSource, get_hold_request};
use tonic::Code;

use crate::helpers::TestApp;
use crate::helpers::concurrency::race;
use crate::helpers::money::{authorize_request, grant_request, key};
use crate::helpers::snapshot::Snapshot;
use crate::helpers::status::{assert_refused, metadata};

#[tokio::test]
async fn a_declined_authorize_stays_declined_on_retry_after_a_top_up_while_a_new_key_succeeds() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("5").await;
    let declined_key = key();
    let request = authorize_request(&account_id, &declined_key, "10");
    let first = app.credit().authorize(request.clone()).await.unwrap_err();
    assert_refused(&first, Code::FailedPrecondition, "INSUFFICIENT_CREDITS");
    app.grant(&account_id, GrantSource::Topup, "10").await;
    let before_retry = Snapshot::of(&app).await;
    assert_eq!(before_retry.account(&account_id).available, "15");
    let retry = app.credit().authorize(request).await.unwrap_err();
    assert_refused(&retry, Code::FailedPrecondition, "INSUFFICIENT_CREDITS");
    assert_eq!(
        retry.message(),
        first.message(),
        "the retry gets the first answer"
    );
    assert_eq!(metadata(&retry), metadata(&first));
    Snapshot::of(&app)
        .await
        .assert_is(&before_retry, "the retry holds nothing");
    // A worker asking for the outcome by the key learns of the decline too.
    let lookup = app
        .credit()
        .get_hold(GetHoldRequest {
            lookup: Some(get_hold_request::Lookup::AuthorizeIdempotencyKey(
                declined_key.clone(),
            )),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_refused(&lookup, Code::FailedPrecondition, "INSUFFICIENT_CREDITS");
    // A new key is a new request, and now affordable.
    let held = app
        .credit()
        .authorize(authorize_request(&account_id, &key(), "10"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(held.available, "5");
    app.assert_balance(&account_id, "5", "10").await;
    app.finish().await;
}

#[tokio::test]
async fn grants_with_the_same_external_ref_under_different_keys_credit_once() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    let payment = format!("pi_{}", key());
    let first = app
        .grant_request(GrantRequest {
            external_ref: payment.clone(),
            ..grant_request(&account_id, &key(), "30")
        })
        .await
        .unwrap();
    let second = app
        .grant_request(GrantRequest {
            external_ref: payment.clone(),
            ..grant_request(&account_id, &key(), "30")
        })
        .await
        .unwrap();
    let (first, second) = (first.grant.unwrap(), second.grant.unwrap());
    assert_eq!(
        first.grant_id, second.grant_id,
        "one grant per external_ref"
    );
    assert_eq!(second.external_ref, payment);
    assert_eq!(app.balance(&account_id).await.available, "30");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_grants_with_the_same_external_ref_under_different_keys_credit_once() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    let payment = format!("pi_{}", key());
    let client = app.account_as(Some(&app.key));
    let results = race(20, |_| {
        let mut client = client.clone();
        let request = GrantRequest {
            external_ref: payment.clone(),
            ..grant_request(&account_id, &key(), "30")
        };
        async move { client.grant(request).await.map(tonic::Response::into_inner) }
    })
    .await;
    let ids: HashSet<String> = results
        .into_iter()
        .map(|result| {
            result
                .unwrap_or_else(|status| panic!("grant failed: {status:?}"))
                .grant
                .unwrap()
                .grant_id
        })
        .collect();
    assert_eq!(ids.len(), 1, "one grant per external_ref: {ids:?}");
    assert_eq!(app.balance(&account_id).await.available, "30");
    app.finish().await;
}

#[tokio::test]
async fn the_sweeper_prunes_idempotency_records_past_retention_and_keeps_recent_ones() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    app.grant(&account_id, GrantSource::Topup, "10").await;
    let client = app.pool.get().await.unwrap();
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let recorded = count("SELECT count(*) FROM idempotency_records").await;
    assert_eq!(recorded, 2, "CreateAccount and Grant are recorded");
    // Age one record past the 7-day retention; the other stays recent.
    client
        .execute(
            "UPDATE idempotency_records SET created_at = now() - interval '8 days'
             WHERE idempotency_key = (SELECT min(idempotency_key) FROM idempotency_records)",
            &[],
        )
        .await
        .unwrap();
    let report = app.sweep().await;
    assert_eq!(report.records_pruned, 1);
    assert_eq!(count("SELECT count(*) FROM idempotency_records").await, 1);
    app.finish().await;
}
