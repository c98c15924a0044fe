//! No overspend under concurrency: one server and two replicas on one database, holds settled
//! at once, grants raced with authorizes.

use std::collections::HashSet;
use std::time::Instant;

use creditgate::proto::v1::{AuthorizeResponse, HoldStatus};
use tonic::{Code, Status};

use crate::helpers::concurrency::race;
use crate::helpers::money::{authorize_request, grant_request, key, settle_request};
use crate::helpers::status::assert_refused;
use crate::helpers::{TestApp, reason};

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

/// Sends 500 Authorize calls of 1 credit on `account_id` (funded with 100) at once, spread over
/// `servers`: exactly 100 are held and 400 declined, and every server reads the same balance.
async fn five_hundred_authorizes_hold_exactly_the_hundred_available(
    servers: &[&TestApp],
    account_id: &str,
) {
    let clients: Vec<_> = servers.iter().map(|server| server.credit()).collect();
    let started = Instant::now();
    let results = race(500, |index| {
        let mut client = clients[index % clients.len()].clone();
        let request = authorize_request(account_id, &key(), "1");
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
        "500 concurrent Authorize calls over {} server(s): {} held, {declined} declined, in {elapsed:?}",
        servers.len(),
        hold_ids.len()
    );
    assert_eq!(
        hold_ids.len(),
        100,
        "exactly the available credits are held"
    );
    assert_eq!(declined, 400);
    for server in servers {
        let balance = server.balance(account_id).await;
        assert_eq!(
            (&*balance.available, &*balance.held, &*balance.debt),
            ("0", "100", "0")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_authorizes_of_one_credit_hold_exactly_the_hundred_available() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("100").await;
    five_hundred_authorizes_hold_exactly_the_hundred_available(&[&app], &account_id).await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authorizes_raced_across_two_replicas_on_one_database_hold_exactly_the_available() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let account_id = app.funded_account("100").await;
    five_hundred_authorizes_hold_exactly_the_hundred_available(&[&app, &replica], &account_id)
        .await;
    replica.stop().await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_holds_settled_concurrently_below_and_above_the_hold_leave_exact_totals() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("1000").await;
    let mut hold_ids = Vec::new();
    for _ in 0..50 {
        hold_ids.push(app.hold(&account_id, "10").await.hold_id);
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
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_hold_settled_concurrently_with_different_keys_is_captured_once() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("100").await;
    let hold_id = app.hold(&account_id, "10").await.hold_id;
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
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_grants_and_authorizes_on_one_account_stay_consistent() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("50").await;
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
    app.finish().await;
}
