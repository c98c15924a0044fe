//! The money guarantees, through the gRPC surface: no overspend under concurrency (one server
//! and two replicas on one database), exactly-once application of every mutating RPC, and bad
//! input refused with a clear error and nothing changed.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use creditgate::proto::v1::{
    AccountKind, AuthorizeRequest, AuthorizeResponse, CreateAccountRequest, GetAccountRequest,
    GetBalanceRequest, GetHoldRequest, GrantRequest, GrantResponse, GrantSource, HoldStatus,
    RefundRequest, ReleaseRequest, SettlePolicy, SettleRequest, SettleResponse, authorize_request,
    get_account_request, get_hold_request, settle_request,
};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::helpers::money::key;
use crate::helpers::{TestApp, reason};

// ---------------------------------------------------------------------------------------------
// Private fixtures
// ---------------------------------------------------------------------------------------------

/// Everything a refused request must leave as it was: the account's balance and the row counts
/// of every money table (journal included) and of the idempotency records.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Books {
    available: String,
    held: String,
    debt: String,
    journal_entries: i64,
    accounts: i64,
    grants: i64,
    holds: i64,
    settlements: i64,
    refunds: i64,
    idempotency_records: i64,
}

async fn books(app: &TestApp, account_id: &str) -> Books {
    let balance = app.balance(account_id).await;
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM journal_entries), (SELECT count(*) FROM accounts), \
             (SELECT count(*) FROM grants), (SELECT count(*) FROM holds), \
             (SELECT count(*) FROM settlements), (SELECT count(*) FROM refunds), \
             (SELECT count(*) FROM idempotency_records)",
            &[],
        )
        .await
        .unwrap();
    Books {
        available: balance.available,
        held: balance.held,
        debt: balance.debt,
        journal_entries: row.get(0),
        accounts: row.get(1),
        grants: row.get(2),
        holds: row.get(3),
        settlements: row.get(4),
        refunds: row.get(5),
        idempotency_records: row.get(6),
    }
}

async fn journal_entries(app: &TestApp) -> i64 {
    let client = app.pool.get().await.unwrap();
    client
        .query_one("SELECT count(*) FROM journal_entries", &[])
        .await
        .unwrap()
        .get(0)
}

/// An account holding `amount` purchased credits.
async fn funded_account(app: &TestApp, amount: &str) -> String {
    let account_id = app.account().await;
    app.grant(&account_id, GrantSource::Purchase, amount).await;
    account_id
}

fn authorize_request(account_id: &str, idempotency_key: &str, amount: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        account_id: account_id.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        price: Some(authorize_request::Price::Amount(amount.to_owned())),
        ..AuthorizeRequest::default()
    }
}

fn settle_request(hold_id: &str, idempotency_key: &str, amount: &str) -> SettleRequest {
    SettleRequest {
        hold_id: hold_id.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        charge: Some(settle_request::Charge::Amount(amount.to_owned())),
        partial: false,
    }
}

fn release_request(hold_id: &str, idempotency_key: &str, why: &str) -> ReleaseRequest {
    ReleaseRequest {
        hold_id: hold_id.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        reason: why.to_owned(),
    }
}

fn refund_request(settlement_id: &str, idempotency_key: &str, amount: &str) -> RefundRequest {
    RefundRequest {
        settlement_id: settlement_id.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        reason: "support goodwill".to_owned(),
        amount: amount.to_owned(),
    }
}

fn grant_request(account_id: &str, idempotency_key: &str, amount: &str) -> GrantRequest {
    GrantRequest {
        account_id: account_id.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        source: GrantSource::Purchase as i32,
        amount: amount.to_owned(),
        ..GrantRequest::default()
    }
}

fn create_account_request(idempotency_key: &str, external_id: &str) -> CreateAccountRequest {
    CreateAccountRequest {
        idempotency_key: idempotency_key.to_owned(),
        external_id: external_id.to_owned(),
        kind: AccountKind::Organization as i32,
        settle_policy: SettlePolicy::Debt as i32,
        ..CreateAccountRequest::default()
    }
}

/// A hold of `amount` on the account; its id.
async fn hold(app: &TestApp, account_id: &str, amount: &str) -> String {
    app.authorize(account_id, amount)
        .await
        .unwrap()
        .hold
        .unwrap()
        .hold_id
}

/// A settled hold (`hold` held, `charged` settled); the settlement's id.
async fn settlement(app: &TestApp, account_id: &str, held: &str, charged: &str) -> String {
    let hold_id = hold(app, account_id, held).await;
    app.settle(&hold_id, charged, false)
        .await
        .unwrap()
        .settlement
        .unwrap()
        .settlement_id
}

async fn hold_status(app: &TestApp, hold_id: &str) -> HoldStatus {
    let hold = app
        .credit()
        .get_hold(GetHoldRequest {
            lookup: Some(get_hold_request::Lookup::HoldId(hold_id.to_owned())),
        })
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    HoldStatus::try_from(hold.status).unwrap()
}

/// Runs `count` calls at once (each in its own task, released together by a barrier) and
/// returns their results in call order.
async fn race<T, F, Fut>(count: usize, call: F) -> Vec<Result<T, Status>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, Status>> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(count));
    let tasks: Vec<_> = (0..count)
        .map(|index| {
            let barrier = Arc::clone(&barrier);
            let call = call(index);
            tokio::spawn(async move {
                barrier.wait().await;
                call.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(count);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// The ErrorInfo metadata of a status.
fn metadata(status: &Status) -> HashMap<String, String> {
    status
        .get_details_error_info()
        .map(|info| info.metadata)
        .unwrap_or_default()
}

/// Asserts `status` has `code` and ErrorInfo `reason`.
#[track_caller]
fn assert_refused(status: &Status, code: Code, expected_reason: &str) {
    assert_eq!(
        (status.code(), reason(status).as_deref()),
        (code, Some(expected_reason)),
        "unexpected refusal: {status:?}"
    );
}

/// Asserts `status` is ALREADY_EXISTS / IDEMPOTENCY_KEY_REUSED naming `field` among the fields
/// that differ.
#[track_caller]
fn assert_key_reused(status: &Status, field: &str) {
    assert_refused(status, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    let fields = metadata(status).get("fields").cloned().unwrap_or_default();
    assert!(
        fields.split(',').any(|name| name.trim() == field),
        "metadata `fields` should name {field:?}, got {fields:?} ({status:?})"
    );
}

/// Asserts an INVALID_ARGUMENT whose ErrorInfo names `field`.
#[track_caller]
fn assert_invalid_field(status: &Status, expected_reason: &str, field: &str) {
    assert_refused(status, Code::InvalidArgument, expected_reason);
    assert_eq!(
        metadata(status).get("field").map(String::as_str),
        Some(field),
        "ErrorInfo should name the field: {status:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Concurrency: no overspend
// ---------------------------------------------------------------------------------------------

/// Splits results into successes and the statuses of failures, failing on any failure other
/// than INSUFFICIENT_CREDITS.
fn holds_and_declines(results: Vec<Result<AuthorizeResponse, Status>>) -> (Vec<String>, usize) {
    let mut hold_ids = Vec::new();
    let mut declined = 0;
    let mut unexpected = Vec::new();
    for result in results {
        match result {
            Ok(response) => {
                let hold = response.hold.unwrap();
                assert_eq!(hold.amount, "1");
                hold_ids.push(hold.hold_id);
            }
            Err(status)
                if status.code() == Code::FailedPrecondition
                    && reason(&status).as_deref() == Some("INSUFFICIENT_CREDITS") =>
            {
                declined += 1;
            }
            Err(status) => unexpected.push(status),
        }
    }
    assert!(
        unexpected.is_empty(),
        "{} calls failed otherwise than INSUFFICIENT_CREDITS, e.g. {:?}",
        unexpected.len(),
        unexpected.first()
    );
    let distinct: HashSet<&String> = hold_ids.iter().collect();
    assert_eq!(distinct.len(), hold_ids.len(), "hold ids must be distinct");
    (hold_ids, declined)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_authorizes_of_one_credit_hold_exactly_the_hundred_available() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let client = app.credit();
    let started = Instant::now();
    let results = race(500, |_| {
        let mut client = client.clone();
        let request = authorize_request(&account_id, &key(), "1");
        async move {
            client
                .authorize(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    let elapsed = started.elapsed();
    let (hold_ids, declined) = holds_and_declines(results);
    eprintln!(
        "500 concurrent Authorize calls on one account: {} held, {declined} declined, in {elapsed:?}",
        hold_ids.len()
    );
    assert_eq!(
        hold_ids.len(),
        100,
        "exactly the available credits are held"
    );
    assert_eq!(declined, 400);
    app.assert_balance(&account_id, "0", "100").await;
    assert_eq!(app.balance(&account_id).await.debt, "0");
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authorizes_raced_across_two_replicas_on_one_database_hold_exactly_the_available() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let account_id = funded_account(&app, "100").await;
    let (first, second) = (app.credit(), replica.credit());
    let started = Instant::now();
    let results = race(500, |index| {
        let mut client = if index % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let request = authorize_request(&account_id, &key(), "1");
        async move {
            client
                .authorize(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    let elapsed = started.elapsed();
    let (hold_ids, declined) = holds_and_declines(results);
    eprintln!(
        "500 concurrent Authorize calls over two replicas: {} held, {declined} declined, in {elapsed:?}",
        hold_ids.len()
    );
    assert_eq!(
        hold_ids.len(),
        100,
        "exactly the available credits are held"
    );
    assert_eq!(declined, 400);
    for server in [&app, &replica] {
        let balance = server.balance(&account_id).await;
        assert_eq!(
            (balance.available.as_str(), balance.held.as_str()),
            ("0", "100")
        );
    }
    replica.stop().await;
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_holds_settled_concurrently_below_and_above_the_hold_leave_exact_totals() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "1000").await;
    let mut hold_ids = Vec::new();
    for _ in 0..50 {
        hold_ids.push(hold(&app, &account_id, "10").await);
    }
    app.assert_balance(&account_id, "500", "500").await;
    // Even holds are settled below their amount (7.5 of 10), odd ones above it (12 of 10).
    let charge = |index: usize| if index % 2 == 0 { "7.5" } else { "12" };
    let client = app.credit();
    let results = race(hold_ids.len(), |index| {
        let mut client = client.clone();
        let request = settle_request(&hold_ids[index], &key(), charge(index));
        async move {
            client
                .settle(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    let mut settlement_ids = HashSet::new();
    for (index, result) in results.into_iter().enumerate() {
        let response = result.unwrap_or_else(|status| panic!("settle {index}: {status:?}"));
        let settlement = response.settlement.unwrap();
        let hold = response.hold.unwrap();
        assert_eq!(settlement.hold_id, hold_ids[index]);
        assert_eq!(hold.status, HoldStatus::Settled as i32);
        let figures = (
            settlement.total.as_str(),
            settlement.from_hold.as_str(),
            settlement.from_balance.as_str(),
            settlement.debt.as_str(),
            settlement.released.as_str(),
        );
        if index % 2 == 0 {
            assert_eq!(figures, ("7.5", "7.5", "0", "0", "2.5"), "settle {index}");
        } else {
            assert_eq!(figures, ("12", "10", "2", "0", "0"), "settle {index}");
        }
        settlement_ids.insert(settlement.settlement_id);
    }
    assert_eq!(settlement_ids.len(), 50);
    // 1000 - 25 × 7.5 - 25 × 12 = 512.5
    let balance = app.balance(&account_id).await;
    assert_eq!(
        (
            balance.available.as_str(),
            balance.held.as_str(),
            balance.debt.as_str()
        ),
        ("512.5", "0", "0")
    );
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_hold_settled_concurrently_with_different_keys_is_captured_once() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let hold_id = hold(&app, &account_id, "10").await;
    let client = app.credit();
    let results = race(20, |_| {
        let mut client = client.clone();
        let request = settle_request(&hold_id, &key(), "8");
        async move {
            client
                .settle(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    let mut settled = 0;
    for result in results {
        match result {
            Ok(response) => {
                settled += 1;
                assert_eq!(response.settlement.unwrap().total, "8");
            }
            Err(status) => assert_refused(&status, Code::FailedPrecondition, "HOLD_NOT_ACTIVE"),
        }
    }
    assert_eq!(settled, 1, "a hold is settled exactly once");
    app.assert_balance(&account_id, "92", "0").await;
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_grants_and_authorizes_on_one_account_stay_consistent() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "50").await;
    let (credit, account) = (app.credit(), app.account_as(Some(&app.key)));
    // 50 grants of 2 and 200 authorizes of 1, interleaved: at most 150 credits ever exist.
    enum Outcome {
        Granted,
        Held,
    }
    let results = race(250, |index| {
        let (mut credit, mut account) = (credit.clone(), account.clone());
        let account_id = account_id.clone();
        async move {
            if index % 5 == 0 {
                account
                    .grant(grant_request(&account_id, &key(), "2"))
                    .await
                    .map(|_| Outcome::Granted)
            } else {
                credit
                    .authorize(authorize_request(&account_id, &key(), "1"))
                    .await
                    .map(|_| Outcome::Held)
            }
        }
    })
    .await;
    let (mut granted, mut held, mut declined) = (0, 0, 0);
    for result in results {
        match result {
            Ok(Outcome::Granted) => granted += 1,
            Ok(Outcome::Held) => held += 1,
            Err(status) => {
                assert_refused(&status, Code::FailedPrecondition, "INSUFFICIENT_CREDITS");
                declined += 1;
            }
        }
    }
    eprintln!("grant/authorize mix: {granted} grants, {held} holds, {declined} declined");
    assert_eq!(granted, 50, "every grant applies");
    assert_eq!(held + declined, 200);
    assert!(
        (50..=150).contains(&held),
        "holds must stay within what was ever available: {held}"
    );
    let balance = app.balance(&account_id).await;
    assert_eq!(balance.held, held.to_string());
    assert_eq!(balance.available, (150 - held).to_string());
    // What is left is exactly spendable, and no more.
    let left = 150 - held;
    if left > 0 {
        app.authorize(&account_id, &left.to_string()).await.unwrap();
    }
    let status = app.authorize(&account_id, "1").await.unwrap_err();
    assert_refused(&status, Code::FailedPrecondition, "INSUFFICIENT_CREDITS");
    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Idempotency
// ---------------------------------------------------------------------------------------------

/// Sends the same request twice: the retry must get the first answer and change nothing.
/// Returns the answer and the books after it.
async fn sent_twice<T, F, Fut>(app: &TestApp, account_id: &str, send: F) -> (T, Books)
where
    T: PartialEq + std::fmt::Debug,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let first = send().await.unwrap();
    let after_first = books(app, account_id).await;
    let retry = send().await.unwrap();
    assert_eq!(retry, first, "a retry answers with the first response");
    assert_eq!(
        books(app, account_id).await,
        after_first,
        "a retry changes nothing"
    );
    (first, after_first)
}

// Authorize

#[tokio::test]
async fn authorize_retried_with_the_same_key_returns_the_first_hold_and_holds_once() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let request = authorize_request(&account_id, &key(), "10");
    let (_, after) = sent_twice(&app, &account_id, || {
        let (mut credit, request) = (app.credit(), request.clone());
        async move {
            credit
                .authorize(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    assert_eq!(
        (after.available.as_str(), after.held.as_str()),
        ("90", "10")
    );
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_duplicate_authorizes_make_one_hold() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let request = authorize_request(&account_id, &key(), "10");
    let client = app.credit();
    let results = race(20, |_| {
        let (mut client, request) = (client.clone(), request.clone());
        async move {
            client
                .authorize(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    let responses: Vec<AuthorizeResponse> = results
        .into_iter()
        .map(|result| result.unwrap_or_else(|status| panic!("duplicate failed: {status:?}")))
        .collect();
    let hold_ids: HashSet<&str> = responses
        .iter()
        .map(|response| response.hold.as_ref().unwrap().hold_id.as_str())
        .collect();
    assert_eq!(
        hold_ids.len(),
        1,
        "all duplicates get the same hold: {hold_ids:?}"
    );
    app.assert_balance(&account_id, "90", "10").await;
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn authorize_key_reused_with_another_amount_is_refused_naming_amount_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let idempotency_key = key();
    app.credit()
        .authorize(authorize_request(&account_id, &idempotency_key, "10"))
        .await
        .unwrap();
    let before = books(&app, &account_id).await;
    let status = app
        .credit()
        .authorize(authorize_request(&account_id, &idempotency_key, "20"))
        .await
        .unwrap_err();
    assert_key_reused(&status, "amount");
    assert_eq!(books(&app, &account_id).await, before);
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn a_key_used_for_another_rpc_is_refused_naming_rpc() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    // An Authorize key reused for a Grant.
    let authorize_key = key();
    app.credit()
        .authorize(authorize_request(&account_id, &authorize_key, "10"))
        .await
        .unwrap();
    let before = books(&app, &account_id).await;
    let status = app
        .grant_request(grant_request(&account_id, &authorize_key, "10"))
        .await
        .unwrap_err();
    assert_key_reused(&status, "rpc");
    assert_eq!(books(&app, &account_id).await, before);
    // A Settle key reused for a Release of another live hold.
    let settled = hold(&app, &account_id, "5").await;
    let live = hold(&app, &account_id, "5").await;
    let settle_key = key();
    app.credit()
        .settle(settle_request(&settled, &settle_key, "5"))
        .await
        .unwrap();
    let before = books(&app, &account_id).await;
    let status = app
        .credit()
        .release(release_request(&live, &settle_key, ""))
        .await
        .unwrap_err();
    assert_key_reused(&status, "rpc");
    assert_eq!(books(&app, &account_id).await, before);
    assert_eq!(hold_status(&app, &live).await, HoldStatus::Active);
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn a_declined_authorize_stays_declined_on_retry_after_a_top_up_while_a_new_key_succeeds() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "5").await;
    let declined_key = key();
    let request = authorize_request(&account_id, &declined_key, "10");
    let first = app.credit().authorize(request.clone()).await.unwrap_err();
    assert_refused(&first, Code::FailedPrecondition, "INSUFFICIENT_CREDITS");
    app.grant(&account_id, GrantSource::Topup, "10").await;
    let before_retry = books(&app, &account_id).await;
    assert_eq!(before_retry.available, "15");
    let retry = app.credit().authorize(request).await.unwrap_err();
    assert_refused(&retry, Code::FailedPrecondition, "INSUFFICIENT_CREDITS");
    assert_eq!(
        retry.message(),
        first.message(),
        "the retry gets the first answer"
    );
    assert_eq!(metadata(&retry), metadata(&first));
    assert_eq!(
        books(&app, &account_id).await,
        before_retry,
        "the retry holds nothing"
    );
    // A worker asking for the outcome by the key learns of the decline too.
    let lookup = app
        .credit()
        .get_hold(GetHoldRequest {
            lookup: Some(get_hold_request::Lookup::AuthorizeIdempotencyKey(
                declined_key.clone(),
            )),
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
    app.assert_books_balance().await;
    app.stop().await;
}

// Settle

#[tokio::test]
async fn settle_retried_with_the_same_key_returns_the_first_settlement_and_charges_once() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let hold_id = hold(&app, &account_id, "10").await;
    let request = settle_request(&hold_id, &key(), "12");
    let (_, after) = sent_twice(&app, &account_id, || {
        let (mut credit, request) = (app.credit(), request.clone());
        async move {
            credit
                .settle(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    assert_eq!((after.available.as_str(), after.held.as_str()), ("88", "0"));
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_duplicate_settles_make_one_settlement() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let hold_id = hold(&app, &account_id, "10").await;
    let request = settle_request(&hold_id, &key(), "12");
    let client = app.credit();
    let results = race(20, |_| {
        let (mut client, request) = (client.clone(), request.clone());
        async move {
            client
                .settle(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    let responses: Vec<SettleResponse> = results
        .into_iter()
        .map(|result| result.unwrap_or_else(|status| panic!("duplicate failed: {status:?}")))
        .collect();
    let ids: HashSet<&str> = responses
        .iter()
        .map(|response| response.settlement.as_ref().unwrap().settlement_id.as_str())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "all duplicates get the same settlement: {ids:?}"
    );
    app.assert_balance(&account_id, "88", "0").await;
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn settle_key_reused_with_another_amount_is_refused_naming_amount_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    // The key's first use is a settle of one hold; the reuse targets another, live hold.
    let settled = hold(&app, &account_id, "10").await;
    let live = hold(&app, &account_id, "10").await;
    let idempotency_key = key();
    app.credit()
        .settle(settle_request(&settled, &idempotency_key, "5"))
        .await
        .unwrap();
    let before = books(&app, &account_id).await;
    let status = app
        .credit()
        .settle(settle_request(&settled, &idempotency_key, "6"))
        .await
        .unwrap_err();
    assert_key_reused(&status, "amount");
    assert_eq!(books(&app, &account_id).await, before);
    let status = app
        .credit()
        .settle(settle_request(&live, &idempotency_key, "5"))
        .await
        .unwrap_err();
    assert_key_reused(&status, "hold_id");
    assert_eq!(books(&app, &account_id).await, before);
    assert_eq!(hold_status(&app, &live).await, HoldStatus::Active);
    app.assert_books_balance().await;
    app.stop().await;
}

// Release

#[tokio::test]
async fn release_retried_with_the_same_key_returns_the_first_answer_and_releases_once() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let hold_id = hold(&app, &account_id, "10").await;
    let request = release_request(&hold_id, &key(), "run failed");
    let (first, after) = sent_twice(&app, &account_id, || {
        let (mut credit, request) = (app.credit(), request.clone());
        async move {
            credit
                .release(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    assert_eq!(first.released, "10");
    assert_eq!(
        first.hold.as_ref().unwrap().status,
        HoldStatus::Released as i32
    );
    assert_eq!(
        (after.available.as_str(), after.held.as_str()),
        ("100", "0")
    );
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_duplicate_releases_release_once_with_one_answer() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let hold_id = hold(&app, &account_id, "10").await;
    let request = release_request(&hold_id, &key(), "run failed");
    let client = app.credit();
    let results = race(20, |_| {
        let (mut client, request) = (client.clone(), request.clone());
        async move {
            client
                .release(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    let responses: Vec<_> = results
        .into_iter()
        .map(|result| result.unwrap_or_else(|status| panic!("duplicate failed: {status:?}")))
        .collect();
    assert!(
        responses.iter().all(|response| *response == responses[0]),
        "all duplicates get the same answer"
    );
    assert_eq!(responses[0].released, "10");
    app.assert_balance(&account_id, "100", "0").await;
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn release_key_reused_for_another_hold_is_refused_naming_hold_id_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let released = hold(&app, &account_id, "10").await;
    let live = hold(&app, &account_id, "10").await;
    let idempotency_key = key();
    app.credit()
        .release(release_request(&released, &idempotency_key, "run failed"))
        .await
        .unwrap();
    let before = books(&app, &account_id).await;
    let status = app
        .credit()
        .release(release_request(&live, &idempotency_key, "run failed"))
        .await
        .unwrap_err();
    assert_key_reused(&status, "hold_id");
    let status = app
        .credit()
        .release(release_request(
            &released,
            &idempotency_key,
            "another reason",
        ))
        .await
        .unwrap_err();
    assert_key_reused(&status, "reason");
    assert_eq!(books(&app, &account_id).await, before);
    assert_eq!(hold_status(&app, &live).await, HoldStatus::Active);
    app.assert_books_balance().await;
    app.stop().await;
}

// Refund

#[tokio::test]
async fn refund_retried_with_the_same_key_returns_the_first_refund_and_refunds_once() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let settlement_id = settlement(&app, &account_id, "10", "10").await;
    let request = refund_request(&settlement_id, &key(), "4");
    let (first, after) = sent_twice(&app, &account_id, || {
        let (mut credit, request) = (app.credit(), request.clone());
        async move {
            credit
                .refund(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    assert_eq!(first.refund.as_ref().unwrap().amount, "4");
    assert_eq!(after.available, "94");
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_duplicate_refunds_make_one_refund() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let settlement_id = settlement(&app, &account_id, "10", "10").await;
    let request = refund_request(&settlement_id, &key(), "4");
    let client = app.credit();
    let results = race(20, |_| {
        let (mut client, request) = (client.clone(), request.clone());
        async move {
            client
                .refund(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    let ids: HashSet<String> = results
        .into_iter()
        .map(|result| {
            result
                .unwrap_or_else(|status| panic!("duplicate failed: {status:?}"))
                .refund
                .unwrap()
                .refund_id
        })
        .collect();
    assert_eq!(ids.len(), 1, "all duplicates get the same refund: {ids:?}");
    assert_eq!(app.balance(&account_id).await.available, "94");
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn refund_key_reused_with_another_amount_is_refused_naming_amount_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let settlement_id = settlement(&app, &account_id, "10", "10").await;
    let idempotency_key = key();
    app.credit()
        .refund(refund_request(&settlement_id, &idempotency_key, "4"))
        .await
        .unwrap();
    let before = books(&app, &account_id).await;
    let status = app
        .credit()
        .refund(refund_request(&settlement_id, &idempotency_key, "3"))
        .await
        .unwrap_err();
    assert_key_reused(&status, "amount");
    assert_eq!(books(&app, &account_id).await, before);
    app.assert_books_balance().await;
    app.stop().await;
}

// Grant

#[tokio::test]
async fn grant_retried_with_the_same_key_returns_the_first_grant_and_credits_once() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    let request = grant_request(&account_id, &key(), "25");
    let (_, after) = sent_twice(&app, &account_id, || app.grant_request(request.clone())).await;
    assert_eq!(after.available, "25");
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_duplicate_grants_credit_once() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    let request = grant_request(&account_id, &key(), "25");
    let client = app.account_as(Some(&app.key));
    let results = race(20, |_| {
        let (mut client, request) = (client.clone(), request.clone());
        async move { client.grant(request).await.map(tonic::Response::into_inner) }
    })
    .await;
    let responses: Vec<GrantResponse> = results
        .into_iter()
        .map(|result| result.unwrap_or_else(|status| panic!("duplicate failed: {status:?}")))
        .collect();
    let ids: HashSet<&str> = responses
        .iter()
        .map(|response| response.grant.as_ref().unwrap().grant_id.as_str())
        .collect();
    assert_eq!(ids.len(), 1, "all duplicates get the same grant: {ids:?}");
    assert_eq!(app.balance(&account_id).await.available, "25");
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn grant_key_reused_with_another_amount_is_refused_naming_amount_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    let idempotency_key = key();
    app.grant_request(grant_request(&account_id, &idempotency_key, "25"))
        .await
        .unwrap();
    let before = books(&app, &account_id).await;
    let status = app
        .grant_request(grant_request(&account_id, &idempotency_key, "26"))
        .await
        .unwrap_err();
    assert_key_reused(&status, "amount");
    assert_eq!(books(&app, &account_id).await, before);
    assert_eq!(before.available, "25");
    app.assert_books_balance().await;
    app.stop().await;
}

// CreateAccount

async fn accounts_with_external_id(app: &TestApp, external_id: &str) -> i64 {
    let client = app.pool.get().await.unwrap();
    client
        .query_one(
            "SELECT count(*) FROM accounts WHERE external_id = $1",
            &[&external_id],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn create_account_retried_with_the_same_key_returns_the_first_account() {
    let app = TestApp::spawn().await;
    let external_id = key();
    let request = create_account_request(&key(), &external_id);
    let mut client = app.account_as(Some(&app.key));
    let first = client
        .create_account(request.clone())
        .await
        .unwrap()
        .into_inner();
    let retry = client.create_account(request).await.unwrap().into_inner();
    assert_eq!(retry, first, "a retry answers with the first account");
    assert_eq!(accounts_with_external_id(&app, &external_id).await, 1);
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_duplicate_create_accounts_make_one_account() {
    let app = TestApp::spawn().await;
    let external_id = key();
    let request = create_account_request(&key(), &external_id);
    let client = app.account_as(Some(&app.key));
    let results = race(20, |_| {
        let (mut client, request) = (client.clone(), request.clone());
        async move {
            client
                .create_account(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    let mut ids = HashSet::new();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(response) => {
                ids.insert(response.account.unwrap().account_id);
            }
            Err(status) => failures.push(format!(
                "{:?} {:?}: {}",
                status.code(),
                reason(&status),
                status.message()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "every duplicate must get the first answer; {} failed: {failures:?}",
        failures.len()
    );
    assert_eq!(ids.len(), 1, "all duplicates get the same account: {ids:?}");
    assert_eq!(accounts_with_external_id(&app, &external_id).await, 1);
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn create_account_key_reused_with_another_external_id_is_refused_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let idempotency_key = key();
    let mut client = app.account_as(Some(&app.key));
    let first = client
        .create_account(create_account_request(&idempotency_key, &key()))
        .await
        .unwrap()
        .into_inner();
    let account_id = first.account.unwrap().account_id;
    let before = books(&app, &account_id).await;
    let other_external_id = key();
    let status = client
        .create_account(create_account_request(&idempotency_key, &other_external_id))
        .await
        .unwrap_err();
    assert_key_reused(&status, "external_id");
    assert_eq!(books(&app, &account_id).await, before);
    let lookup = client
        .get_account(GetAccountRequest {
            lookup: Some(get_account_request::Lookup::ExternalId(other_external_id)),
        })
        .await
        .unwrap_err();
    assert_refused(&lookup, Code::NotFound, "ACCOUNT_NOT_FOUND");
    app.assert_books_balance().await;
    app.stop().await;
}

// Missing key

#[tokio::test]
async fn every_mutating_rpc_without_an_idempotency_key_is_invalid_argument_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let live = hold(&app, &account_id, "10").await;
    let settlement_id = settlement(&app, &account_id, "10", "10").await;
    let before = books(&app, &account_id).await;
    let (mut credit, mut account) = (app.credit(), app.account_as(Some(&app.key)));
    let statuses = [
        (
            "Authorize",
            credit
                .authorize(authorize_request(&account_id, "", "1"))
                .await
                .unwrap_err(),
        ),
        (
            "Settle",
            credit
                .settle(settle_request(&live, "", "1"))
                .await
                .unwrap_err(),
        ),
        (
            "Release",
            credit
                .release(release_request(&live, "", ""))
                .await
                .unwrap_err(),
        ),
        (
            "Refund",
            credit
                .refund(refund_request(&settlement_id, "", "1"))
                .await
                .unwrap_err(),
        ),
        (
            "Grant",
            account
                .grant(grant_request(&account_id, "", "1"))
                .await
                .unwrap_err(),
        ),
        (
            "CreateAccount",
            account
                .create_account(create_account_request("", &key()))
                .await
                .unwrap_err(),
        ),
    ];
    for (rpc, status) in &statuses {
        assert_eq!(status.code(), Code::InvalidArgument, "{rpc}: {status:?}");
        assert_eq!(
            metadata(status).get("field").map(String::as_str),
            Some("idempotency_key"),
            "{rpc}: {status:?}"
        );
        assert!(
            status.message().contains("idempotency_key"),
            "{rpc}: {status:?}"
        );
    }
    assert_eq!(books(&app, &account_id).await, before);
    assert_eq!(hold_status(&app, &live).await, HoldStatus::Active);
    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Bad input: a clear error and nothing changed
// ---------------------------------------------------------------------------------------------

/// Bad amounts and what the refusal must say.
const BAD_AMOUNTS: [(&str, &str); 8] = [
    ("-1", "plain decimal"),
    ("0", "greater than zero"),
    ("1.0000000001", "9 decimal places"),
    ("abc", "plain decimal"),
    ("1e3", "plain decimal"),
    (" 1", "plain decimal"),
    ("", "plain decimal"),
    ("1000000000.5", "maximum amount 1000000000"),
];

#[track_caller]
fn assert_invalid_amount(rpc: &str, amount: &str, hint: &str, status: &Status) {
    assert_eq!(
        (status.code(), reason(status).as_deref()),
        (Code::InvalidArgument, Some("INVALID_AMOUNT")),
        "{rpc} with amount {amount:?}: {status:?}"
    );
    assert_eq!(
        metadata(status).get("field").map(String::as_str),
        Some("amount"),
        "{rpc} with amount {amount:?}: {status:?}"
    );
    assert!(
        status.message().contains(hint),
        "{rpc} with amount {amount:?}: the message should say what is accepted ({hint:?}): {:?}",
        status.message()
    );
}

#[tokio::test]
async fn bad_amounts_are_refused_with_invalid_amount_and_change_nothing() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let live = hold(&app, &account_id, "10").await;
    let settlement_id = settlement(&app, &account_id, "10", "10").await;
    let before = books(&app, &account_id).await;
    let (mut credit, mut account) = (app.credit(), app.account_as(Some(&app.key)));
    for (amount, hint) in BAD_AMOUNTS {
        let status = credit
            .authorize(authorize_request(&account_id, &key(), amount))
            .await
            .unwrap_err();
        assert_invalid_amount("Authorize", amount, hint, &status);
        let status = account
            .grant(grant_request(&account_id, &key(), amount))
            .await
            .unwrap_err();
        assert_invalid_amount("Grant", amount, hint, &status);
        // Settle accepts zero (the run cost nothing); everything else is refused.
        if amount != "0" {
            let status = credit
                .settle(settle_request(&live, &key(), amount))
                .await
                .unwrap_err();
            assert_invalid_amount("Settle", amount, hint, &status);
        }
        // Refund's empty amount means "all that is left".
        if !amount.is_empty() {
            let status = credit
                .refund(refund_request(&settlement_id, &key(), amount))
                .await
                .unwrap_err();
            assert_invalid_amount("Refund", amount, hint, &status);
        }
    }
    assert_eq!(
        books(&app, &account_id).await,
        before,
        "bad amounts changed the books"
    );
    assert_eq!(hold_status(&app, &live).await, HoldStatus::Active);
    // The edge of what is accepted: nine decimals, and zero for Settle.
    app.authorize(&account_id, "0.000000001").await.unwrap();
    let zero = app
        .settle(&live, "0", false)
        .await
        .unwrap()
        .settlement
        .unwrap();
    assert_eq!((zero.total.as_str(), zero.released.as_str()), ("0", "10"));
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn malformed_ids_are_invalid_argument_naming_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let before = books(&app, &account_id).await;
    let journal = journal_entries(&app).await;
    let (mut credit, mut account) = (app.credit(), app.account_as(Some(&app.key)));
    for bad in ["not-an-id", "123", "00000000-0000-0000-0000-00000000000g"] {
        let status = credit
            .authorize(authorize_request(bad, &key(), "1"))
            .await
            .unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "account_id");
        let status = account
            .grant(grant_request(bad, &key(), "1"))
            .await
            .unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "account_id");
        let status = account
            .get_balance(GetBalanceRequest {
                account_id: bad.to_owned(),
                expiring_within_days: 0,
            })
            .await
            .unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "account_id");
        let status = credit
            .settle(settle_request(bad, &key(), "1"))
            .await
            .unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "hold_id");
        let status = credit
            .release(release_request(bad, &key(), ""))
            .await
            .unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "hold_id");
        let status = credit
            .refund(refund_request(bad, &key(), "1"))
            .await
            .unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "settlement_id");
        assert!(
            status.message().contains("UUID"),
            "the message should say an id is a UUID: {status:?}"
        );
    }
    assert_eq!(books(&app, &account_id).await, before);
    assert_eq!(journal_entries(&app).await, journal);
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_accounts_holds_and_settlements_are_not_found_and_change_nothing() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let before = books(&app, &account_id).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let (mut credit, mut account) = (app.credit(), app.account_as(Some(&app.key)));
    let status = credit
        .authorize(authorize_request(&unknown, &key(), "1"))
        .await
        .unwrap_err();
    assert_refused(&status, Code::NotFound, "ACCOUNT_NOT_FOUND");
    let status = account
        .grant(grant_request(&unknown, &key(), "1"))
        .await
        .unwrap_err();
    assert_refused(&status, Code::NotFound, "ACCOUNT_NOT_FOUND");
    let status = account
        .get_balance(GetBalanceRequest {
            account_id: unknown.clone(),
            expiring_within_days: 0,
        })
        .await
        .unwrap_err();
    assert_refused(&status, Code::NotFound, "ACCOUNT_NOT_FOUND");
    let status = credit
        .settle(settle_request(&unknown, &key(), "1"))
        .await
        .unwrap_err();
    assert_refused(&status, Code::NotFound, "HOLD_NOT_FOUND");
    let status = credit
        .release(release_request(&unknown, &key(), ""))
        .await
        .unwrap_err();
    assert_refused(&status, Code::NotFound, "HOLD_NOT_FOUND");
    let status = credit
        .get_hold(GetHoldRequest {
            lookup: Some(get_hold_request::Lookup::HoldId(unknown.clone())),
        })
        .await
        .unwrap_err();
    assert_refused(&status, Code::NotFound, "HOLD_NOT_FOUND");
    let status = credit
        .refund(refund_request(&unknown, &key(), "1"))
        .await
        .unwrap_err();
    assert_refused(&status, Code::NotFound, "SETTLEMENT_NOT_FOUND");
    assert_eq!(books(&app, &account_id).await, before);
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn a_hold_ttl_above_the_maximum_is_invalid_argument_and_holds_nothing() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let before = books(&app, &account_id).await;
    let status = app
        .credit()
        .authorize(AuthorizeRequest {
            ttl_seconds: 86_401,
            ..authorize_request(&account_id, &key(), "1")
        })
        .await
        .unwrap_err();
    assert_invalid_field(&status, "INVALID_ARGUMENT", "ttl_seconds");
    assert!(
        status.message().contains("86400"),
        "the message should give the maximum: {status:?}"
    );
    assert_eq!(books(&app, &account_id).await, before);
    // The maximum itself is accepted.
    let held = app
        .credit()
        .authorize(AuthorizeRequest {
            ttl_seconds: 86_400,
            ..authorize_request(&account_id, &key(), "1")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(held.available, "99");
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn a_grant_without_source_or_expiring_in_the_past_is_invalid_argument_and_credits_nothing() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let before = books(&app, &account_id).await;
    let status = app
        .grant_request(GrantRequest {
            source: GrantSource::Unspecified as i32,
            ..grant_request(&account_id, &key(), "10")
        })
        .await
        .unwrap_err();
    assert_invalid_field(&status, "INVALID_ARGUMENT", "source");
    let past = server_now(&app) - chrono::Duration::hours(1);
    let expired_key = key();
    let expired = GrantRequest {
        expires_at: Some(timestamp(past)),
        ..grant_request(&account_id, &expired_key, "10")
    };
    let status = app.grant_request(expired.clone()).await.unwrap_err();
    assert_invalid_field(&status, "INVALID_ARGUMENT", "expires_at");
    assert_eq!(books(&app, &account_id).await, before);
    // The refused grant kept nothing under its key: the same key with a valid expiry works.
    let future = server_now(&app) + chrono::Duration::days(1);
    let granted = app
        .grant_request(GrantRequest {
            expires_at: Some(timestamp(future)),
            ..expired
        })
        .await
        .unwrap();
    assert_eq!(granted.available, "110");
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn a_grant_time_outside_what_every_store_keeps_is_invalid_argument_and_credits_nothing() {
    let app = TestApp::spawn().await;
    let account_id = funded_account(&app, "100").await;
    let before = books(&app, &account_id).await;
    let at = |seconds, nanos| Some(prost_types::Timestamp { seconds, nanos });
    // Before 4714 BC (Postgres's first day), after 9999-12-31, and nanos outside a second.
    let ancient = at(-300_000_000_000, 0);
    let far = at(253_402_300_800, 0);
    let bad_nanos = at(2_000_000_000, 1_000_000_000);
    for (field, effective_at, expires_at) in [
        ("effective_at", ancient, None),
        ("effective_at", bad_nanos, None),
        ("expires_at", None, far),
        ("expires_at", None, at(2_000_000_000, -1)),
    ] {
        let request = GrantRequest {
            effective_at,
            expires_at,
            ..grant_request(&account_id, &key(), "10")
        };
        let status = app.grant_request(request).await.unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", field);
        assert!(
            status.message().contains("0001-01-01T00:00:00Z"),
            "{status:?}"
        );
    }
    assert_eq!(books(&app, &account_id).await, before);
    // The edges themselves are accepted.
    let granted = app
        .grant_request(GrantRequest {
            effective_at: at(-62_135_596_800, 0),
            expires_at: at(253_402_300_799, 999_999_999),
            ..grant_request(&account_id, &key(), "10")
        })
        .await
        .unwrap();
    assert_eq!(granted.available, "110");
    app.assert_books_balance().await;
    app.stop().await;
}

/// The server's clock now.
fn server_now(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    use creditgate::clock::Clock as _;
    app.clock.now()
}

fn timestamp(time: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap(),
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Grant external_ref
// ---------------------------------------------------------------------------------------------

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
    app.assert_books_balance().await;
    app.stop().await;
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
    app.assert_books_balance().await;
    app.stop().await;
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
    app.assert_books_balance().await;
    app.stop().await;
}
