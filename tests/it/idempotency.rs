//! Exactly-once application of every mutating RPC, each behaviour written once over
//! [`Mutating`] and run for every case: a retry with the same key gets the first answer and
//! changes nothing; concurrent duplicates make one effect and one answer; the key reused with
//! another request, or first used by another RPC, is refused naming what differs and changes
//! nothing; a request without a key is refused naming the field.

use crate::helpers::TestApp;
use crate::helpers::concurrency::race;
use crate::helpers::money::key;
use crate::helpers::mutating::{
    Authorize, CreateAccount, CreateWebhookEndpoint, ExtendHold, Grant, Mutating, PublishCatalog,
    Refund, Release, SetAllowance, SetSpendLimit, Settle, UpdateAccount,
};
use crate::helpers::snapshot::Snapshot;
use crate::helpers::status::{assert_invalid_field, assert_key_reused};

/// Duplicates sent at once.
const DUPLICATES: usize = 20;

/// Asserts `after` is `before` with one application of the call that answered `response`.
#[track_caller]
fn assert_applied_once<R: Mutating>(
    before: &Snapshot,
    after: &Snapshot,
    subject: &R::Subject,
    response: &R::Response,
) {
    let mut expected = before.clone();
    R::apply(&mut expected, subject, response);
    expected.idempotency_records += 1;
    // However many entries one operation writes, `verify` (at the end of every test) checks
    // that the journal explains the balances, which are compared here.
    expected.journal_entries = after.journal_entries;
    after.assert_is(&expected, &format!("{} applied once", R::RPC));
}

async fn a_retry_returns_the_first_answer_and_changes_nothing<R: Mutating>() {
    let app = TestApp::spawn().await;
    let subject = R::prepare(&app).await;
    let request = R::request(&subject, &key());
    let before = Snapshot::of(&app).await;
    let first = R::send(app.clients(), request.clone()).await.unwrap();
    let after = Snapshot::of(&app).await;
    assert_applied_once::<R>(&before, &after, &subject, &first);
    let retry = R::send(app.clients(), request).await.unwrap();
    assert_eq!(retry, first, "a retry answers with the first response");
    let again = Snapshot::of(&app).await;
    again.assert_is(&after, "a retry changes nothing");
    app.finish().await;
}

async fn concurrent_duplicates_make_one_effect_and_one_answer<R: Mutating>() {
    let app = TestApp::spawn().await;
    let subject = R::prepare(&app).await;
    let request = R::request(&subject, &key());
    let before = Snapshot::of(&app).await;
    let clients = app.clients();
    let results = race(DUPLICATES, |_| R::send(clients.clone(), request.clone())).await;
    let answers: Vec<R::Response> = results
        .into_iter()
        .map(|result| result.unwrap_or_else(|status| panic!("a duplicate failed: {status:?}")))
        .collect();
    let first = &answers[0];
    assert!(
        answers.iter().all(|answer| answer == first),
        "every duplicate gets the same answer: {answers:#?}"
    );
    let after = Snapshot::of(&app).await;
    assert_applied_once::<R>(&before, &after, &subject, first);
    let late = R::send(app.clients(), request).await.unwrap();
    assert_eq!(late, *first, "a later retry gets the same answer");
    app.finish().await;
}

async fn the_key_reused_with_another_request_is_refused_naming_the_field<R: Mutating>() {
    let app = TestApp::spawn().await;
    let subject = R::prepare(&app).await;
    let idempotency_key = key();
    let request = R::request(&subject, &idempotency_key);
    let first = R::send(app.clients(), request.clone()).await.unwrap();
    let before = Snapshot::of(&app).await;
    let variants = R::variants(&subject, &idempotency_key);
    assert!(!variants.is_empty(), "{}: no other request to try", R::RPC);
    for (field, other) in variants {
        let status = R::send(app.clients(), other).await.unwrap_err();
        assert_key_reused(&status, field);
        let after = Snapshot::of(&app).await;
        after.assert_is(&before, &format!("reused with another {field}"));
    }
    let retry = R::send(app.clients(), request).await.unwrap();
    assert_eq!(retry, first, "the key still answers its first request");
    app.finish().await;
}

async fn a_key_first_used_by_another_rpc_is_refused_naming_rpc<R: Mutating, First: Mutating>() {
    assert_ne!(R::RPC, First::RPC);
    let app = TestApp::spawn().await;
    let (first_subject, subject) = (First::prepare(&app).await, R::prepare(&app).await);
    let idempotency_key = key();
    let used = First::request(&first_subject, &idempotency_key);
    First::send(app.clients(), used).await.unwrap();
    let before = Snapshot::of(&app).await;
    let request = R::request(&subject, &idempotency_key);
    let status = R::send(app.clients(), request).await.unwrap_err();
    assert_key_reused(&status, "rpc");
    let after = Snapshot::of(&app).await;
    after.assert_is(&before, &format!("a {} key reused", First::RPC));
    app.finish().await;
}

async fn without_a_key_it_is_invalid_argument_naming_the_field<R: Mutating>() {
    let app = TestApp::spawn().await;
    let subject = R::prepare(&app).await;
    let before = Snapshot::of(&app).await;
    let status = R::send(app.clients(), R::request(&subject, ""))
        .await
        .unwrap_err();
    assert_invalid_field(&status, "INVALID_ARGUMENT", "idempotency_key");
    assert!(status.message().contains("idempotency_key"), "{status:?}");
    Snapshot::of(&app)
        .await
        .assert_is(&before, "a request without a key");
    app.finish().await;
}

/// For each case, a module of one test per behaviour, so that a failure names the RPC; and
/// `CASES`, the RPCs covered.
macro_rules! every_mutating_rpc {
    ($($name:ident: $rpc:ident, its key first used by $first:ident;)+) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test]
                async fn a_retry_with_the_same_key_returns_the_first_answer_and_changes_nothing() {
                    a_retry_returns_the_first_answer_and_changes_nothing::<$rpc>().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn twenty_concurrent_duplicates_make_one_effect_and_get_one_answer() {
                    concurrent_duplicates_make_one_effect_and_one_answer::<$rpc>().await;
                }

                #[tokio::test]
                async fn the_key_reused_with_another_request_is_refused_naming_the_field() {
                    super::the_key_reused_with_another_request_is_refused_naming_the_field::<$rpc>()
                        .await;
                }

                #[tokio::test]
                async fn a_key_first_used_by_another_rpc_is_refused_naming_rpc() {
                    super::a_key_first_used_by_another_rpc_is_refused_naming_rpc::<$rpc, $first>()
                        .await;
                }

                #[tokio::test]
                async fn without_an_idempotency_key_it_is_invalid_argument() {
                    without_a_key_it_is_invalid_argument_naming_the_field::<$rpc>().await;
                }
            }
        )+

        /// The RPCs that have a case.
        const CASES: &[&str] = &[$(<$rpc as Mutating>::RPC),+];
    };
}

every_mutating_rpc! {
    authorize: Authorize, its key first used by Grant;
    extend_hold: ExtendHold, its key first used by Settle;
    settle: Settle, its key first used by Authorize;
    release: Release, its key first used by Settle;
    refund: Refund, its key first used by Release;
    grant: Grant, its key first used by Authorize;
    create_account: CreateAccount, its key first used by Grant;
    update_account: UpdateAccount, its key first used by CreateAccount;
    publish_catalog: PublishCatalog, its key first used by UpdateAccount;
    set_allowance: SetAllowance, its key first used by Grant;
    set_spend_limit: SetSpendLimit, its key first used by SetAllowance;
    create_webhook_endpoint: CreateWebhookEndpoint, its key first used by PublishCatalog;
}

/// A record written before records kept field digests and compressed answers holds the whole
/// request and the answer as encoded: a retry still gets that answer, and a key reused with
/// another request is still refused naming the field.
#[tokio::test]
async fn a_record_in_the_older_form_still_replays_and_names_the_field() {
    use prost::Message as _;
    let app = TestApp::spawn().await;
    let subject = Authorize::prepare(&app).await;
    let idempotency_key = key();
    let request = Authorize::request(&subject, &idempotency_key);
    let first = Authorize::send(app.clients(), request.clone())
        .await
        .unwrap();
    let client = app.pool.get().await.unwrap();
    let rewritten = client
        .execute(
            "UPDATE idempotency_records SET request = $1, request_fields = NULL, response = $2 \
             WHERE idempotency_key = $3",
            &[
                &request.encode_to_vec(),
                &first.encode_to_vec(),
                &idempotency_key,
            ],
        )
        .await
        .unwrap();
    assert_eq!(rewritten, 1);
    let before = Snapshot::of(&app).await;
    for (field, other) in Authorize::variants(&subject, &idempotency_key) {
        let status = Authorize::send(app.clients(), other).await.unwrap_err();
        assert_key_reused(&status, field);
    }
    Snapshot::of(&app)
        .await
        .assert_is(&before, "refused, nothing changed");
    let retry = Authorize::send(app.clients(), request).await.unwrap();
    assert_eq!(retry, first, "the key still answers its first request");
    app.finish().await;
}

/// Every RPC of the contract that takes an idempotency key has a case.
#[test]
fn every_rpc_that_takes_an_idempotency_key_has_a_case() {
    use crate::security::rpcs::contract_rpcs;
    let mutating: Vec<String> = contract_rpcs(|method| {
        method
            .input()
            .get_field_by_name("idempotency_key")
            .is_some()
    });
    let mut cases: Vec<String> = CASES.iter().map(|&rpc| rpc.to_owned()).collect();
    cases.sort();
    assert_eq!(cases, mutating);
}
