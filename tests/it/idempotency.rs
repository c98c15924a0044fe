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
    Refund, Release, SetAllowance, SetSpendLimit, Settle, UpdateAccount, assert_applied_once,
};
use crate::helpers::snapshot::Snapshot;
use crate::helpers::status::{assert_invalid_field, assert_key_reused};

/// Duplicates sent at once.
const DUPLICATES: usize = 20;

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
/// request, its hash and the answer as encoded: a retry still gets that answer, and a key reused with
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
            "UPDATE idempotency_records SET request = $1, request_fields = NULL, response = $2, \
             request_hash = sha256(convert_to('Authorize', 'UTF8') || '\\x00'::bytea || $1) \
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

/// The answers that show a hold (Authorize, ExtendHold, Settle, Release) are stored by
/// reference to it, without the hold's text, and replay byte for byte; when the hold's text
/// is not what the answer was stored against, the replay fails as INTERNAL and never gives
/// another answer.
#[tokio::test]
async fn answers_that_show_a_hold_are_stored_by_reference_to_it() {
    use creditgate::proto::v1::credit_service_client::CreditServiceClient;
    use creditgate::proto::v1::{
        AuthorizeRequest, ExtendHoldRequest, ReleaseRequest, RunMetadata, SettleRequest, TaskType,
    };
    use prost::Message as _;

    use crate::helpers::limits::member;
    use crate::helpers::money::{authorize_request, extend_request, release_request};
    use crate::helpers::usage::labels;

    /// An answer's record: the hold it names and the length of what it stored.
    async fn stored(app: &TestApp, idempotency_key: &str) -> (Option<uuid::Uuid>, i32) {
        let client = app.pool.get().await.unwrap();
        let row = client
            .query_one(
                "SELECT answer_hold, length(response) FROM idempotency_records \
                 WHERE idempotency_key = $1",
                &[&idempotency_key],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }

    /// The four calls again, each answer as encoded.
    async fn replays(
        mut credit: CreditServiceClient<crate::helpers::Authed>,
        (authorize, extend, settle, release): &(
            AuthorizeRequest,
            ExtendHoldRequest,
            SettleRequest,
            ReleaseRequest,
        ),
    ) -> Vec<Result<Vec<u8>, tonic::Status>> {
        vec![
            credit
                .authorize(authorize.clone())
                .await
                .map(|r| r.into_inner().encode_to_vec()),
            credit
                .extend_hold(extend.clone())
                .await
                .map(|r| r.into_inner().encode_to_vec()),
            credit
                .settle(settle.clone())
                .await
                .map(|r| r.into_inner().encode_to_vec()),
            credit
                .release(release.clone())
                .await
                .map(|r| r.into_inner().encode_to_vec()),
        ]
    }

    let app = TestApp::spawn().await;
    let account_id = app.funded_account("100").await;
    let authorize = AuthorizeRequest {
        run: Some(RunMetadata {
            task_type: TaskType::Chat as i32,
            project: "project-7f3a".to_owned(),
            run_id: "run-4c1e9d2b".to_owned(),
            labels: labels(&[("team", "search"), ("env", "prod"), ("region", "eu")]),
            ..RunMetadata::default()
        }),
        spend_scope: Some(member("alice")),
        ..authorize_request(&account_id, &key(), "10")
    };
    let mut credit = app.credit();
    let first = credit
        .authorize(authorize.clone())
        .await
        .unwrap()
        .into_inner();
    let hold_id = first.hold.as_ref().unwrap().hold_id.clone();
    let extend = extend_request(&hold_id, &key(), "12", 0);
    let extended = credit
        .extend_hold(extend.clone())
        .await
        .unwrap()
        .into_inner();
    let settle = SettleRequest {
        partial: true,
        ..crate::helpers::money::settle_request(&hold_id, &key(), "4")
    };
    let settled = credit.settle(settle.clone()).await.unwrap().into_inner();
    let release = release_request(&hold_id, &key(), "done");
    let released = credit.release(release.clone()).await.unwrap().into_inner();

    let hold: uuid::Uuid = hold_id.parse().unwrap();
    for (idempotency_key, encoded) in [
        (&authorize.idempotency_key, first.encoded_len()),
        (&extend.idempotency_key, extended.encoded_len()),
        (&settle.idempotency_key, settled.encoded_len()),
        (&release.idempotency_key, released.encoded_len()),
    ] {
        let (answer_hold, length) = stored(&app, idempotency_key).await;
        assert_eq!(answer_hold, Some(hold), "{idempotency_key}");
        let length = usize::try_from(length).unwrap();
        // The hold's text is not stored: its id and its account's id alone are 72 bytes.
        assert!(
            length + 64 < encoded,
            "stored in {length} bytes, answered in {encoded}"
        );
    }
    let answers = [
        first.encode_to_vec(),
        extended.encode_to_vec(),
        settled.encode_to_vec(),
        released.encode_to_vec(),
    ];
    let requests = (authorize, extend, settle, release);
    let before = Snapshot::of(&app).await;
    for (replayed, answer) in replays(credit.clone(), &requests)
        .await
        .into_iter()
        .zip(&answers)
    {
        assert_eq!(
            &replayed.unwrap(),
            answer,
            "a retry answers the first bytes"
        );
    }

    // The hold's text changed under the records: each replay fails, none answers otherwise.
    let client = app.pool.get().await.unwrap();
    let changed = "UPDATE holds SET run_id = run_id || '-changed' WHERE hold_id = $1";
    assert_eq!(client.execute(changed, &[&hold]).await.unwrap(), 1);
    for replayed in replays(credit.clone(), &requests).await {
        assert_eq!(replayed.unwrap_err().code(), tonic::Code::Internal);
    }
    let restored = "UPDATE holds SET run_id = left(run_id, -8) WHERE hold_id = $1";
    assert_eq!(client.execute(restored, &[&hold]).await.unwrap(), 1);
    for (replayed, answer) in replays(credit, &requests).await.into_iter().zip(&answers) {
        assert_eq!(
            &replayed.unwrap(),
            answer,
            "the hold's own text expands it again"
        );
    }
    Snapshot::of(&app)
        .await
        .assert_is(&before, "replays change nothing");
    app.finish().await;
}
