//! Races for a period's grant: a thousand Authorize calls over two servers while the day
//! turns, and over two `creditgate serve` processes on an account whose period was never
//! granted. Each period is granted once, and `verify` agrees.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Days, Duration, NaiveTime, Utc};
use creditgate::proto::v1::account_service_client::AccountServiceClient;
use creditgate::proto::v1::credit_service_client::CreditServiceClient;
use creditgate::proto::v1::{AuthorizeResponse, GetBalanceRequest};
use futures::stream::{self, StreamExt as _};
use rust_decimal::Decimal;
use tonic::Status;
use tonic::transport::Channel;

use super::daily_free;
use crate::helpers::money::{authorize_request, key, new_account};
use crate::helpers::plans::{period_grants, periods_granted_twice, recurrence_of};
use crate::helpers::server_process::ServerProcess;
use crate::helpers::time::time;
use crate::helpers::{Authed, BearerKey, TestApp, TestDatabase, fresh_database, tenant_key};

/// Authorize calls per burst.
const CALLS: usize = 1_000;
/// Calls in flight at once: bounded, so that when half the calls are answered hundreds are
/// still to be sent and the clock moves in the middle of the burst, not after it.
const IN_FLIGHT: usize = 64;
/// Bound on a burst: a stuck server fails the test instead of hanging it.
const BURST_LIMIT: std::time::Duration = std::time::Duration::from_secs(180);

/// Sends [`CALLS`] Authorize calls of `amount` on `account_id` with distinct keys, in turn over
/// `clients`, at most [`IN_FLIGHT`] at once; `on_answer(n)` runs when the n-th answer arrives.
/// Fails on any refusal.
async fn authorize_burst(
    clients: &[CreditServiceClient<Authed>],
    account_id: &str,
    amount: &str,
    on_answer: impl Fn(usize) + Send + Sync + 'static,
) {
    let answered = Arc::new(AtomicUsize::new(0));
    let on_answer = Arc::new(on_answer);
    let calls = (0..CALLS).map(|index| {
        let mut client = clients[index % clients.len()].clone();
        let request = authorize_request(account_id, &key(), amount);
        let (answered, on_answer) = (Arc::clone(&answered), Arc::clone(&on_answer));
        async move {
            let result = client.authorize(request).await;
            on_answer(answered.fetch_add(1, Ordering::SeqCst) + 1);
            result.map(tonic::Response::into_inner)
        }
    });
    let burst = stream::iter(calls.map(tokio::spawn))
        .buffer_unordered(IN_FLIGHT)
        .map(Result::unwrap)
        .collect::<Vec<Result<AuthorizeResponse, Status>>>();
    let results = tokio::time::timeout(BURST_LIMIT, burst)
        .await
        .expect("the burst did not finish in time");
    let failures: Vec<&Status> = results
        .iter()
        .filter_map(|result| result.as_ref().err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {CALLS} calls were refused, e.g. {:?}",
        failures.len(),
        failures.first()
    );
}

/// How many hold allocations each grant of `account_id` has.
async fn holds_per_grant(database: &TestDatabase, account_id: &str) -> BTreeMap<String, i64> {
    let client = database.pool.get().await.unwrap();
    let account: uuid::Uuid = account_id.parse().unwrap();
    client
        .query(
            "SELECT grant_id::text, count(*) FROM hold_allocations WHERE account_id = $1 GROUP BY 1",
            &[&account],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authorizes_over_two_servers_while_the_day_turns_grant_each_day_once() {
    let app = TestApp::spawn().await;
    // Both servers on one clock, so that one advance moves both across midnight.
    let replica = app.replica_with_clock(app.clock.clone()).await;
    let account = app.account().await;
    let allowance = app
        .set_allowance(daily_free(&account, "1000"))
        .await
        .unwrap();
    let midnight = time(allowance.next_reset_at.as_ref().unwrap());
    // Far enough ahead of midnight that the real clock cannot cross it before the advance.
    app.advance_to(midnight - Duration::minutes(5));
    let clock = Arc::clone(&app.clock);
    let turn = move |answered: usize| {
        if answered == CALLS / 2 {
            clock.advance(Duration::minutes(6));
        }
    };
    authorize_burst(&[app.credit(), replica.credit()], &account, "0.5", turn).await;

    assert_eq!(periods_granted_twice(&app.database).await, []);
    let grants = period_grants(&app.database, &account).await;
    let periods: Vec<_> = grants
        .iter()
        .map(|grant| (grant.source.as_str(), grant.period_start))
        .collect();
    let today = recurrence_of(&allowance).start_of(0).unwrap();
    assert_eq!(periods, [("FREE_DAILY", today), ("FREE_DAILY", midnight)]);
    // Every hold drew on one day's grant, and both days had some: the day turned mid-burst.
    let holds = holds_per_grant(&app.database, &account).await;
    let before = holds.get(&grants[0].grant_id).copied().unwrap_or(0);
    let after = holds.get(&grants[1].grant_id).copied().unwrap_or(0);
    assert_eq!((before + after, holds.len()), (1_000, 2), "{holds:?}");
    assert!(
        before >= 500 && after > 0,
        "{before} before, {after} after midnight"
    );
    // The first day's unreserved credits expired with it; the second's are what is left.
    let balance = app.balance(&account).await;
    let left = Decimal::from(1_000) - Decimal::new(5, 1) * Decimal::from(after);
    assert_eq!(balance.held, "500");
    assert_eq!(balance.available.parse::<Decimal>().unwrap(), left);
    replica.stop().await;
    app.finish().await;
}

/// Inserts an allowance of 100 FREE_DAILY credits a month on `account_id` whose period under
/// way is due and was never granted, as if no operation had touched the account since it
/// began; returns that period's start.
async fn insert_allowance_never_granted(
    database: &TestDatabase,
    account_id: &str,
) -> DateTime<Utc> {
    let client = database.pool.get().await.unwrap();
    let now: DateTime<Utc> = client.query_one("SELECT now()", &[]).await.unwrap().get(0);
    // Anchored ten days ago: the period under way has over two weeks left, so the burst
    // stays inside it.
    let anchor = now.date_naive() - Days::new(10);
    let start = anchor.and_time(NaiveTime::MIN).and_utc();
    let account: uuid::Uuid = account_id.parse().unwrap();
    client
        .execute(
            "INSERT INTO allowances (allowance_id, tenant_id, account_id, name, source, amount, \
             period, anchor_date, time_zone, enabled, effective_from, granted_period, created_at) \
             SELECT $1, tenant_id, account_id, 'free', 'FREE_DAILY', 100, 'MONTH', $2, 'UTC', \
             true, $3, NULL, now() FROM accounts WHERE account_id = $4",
            &[&uuid::Uuid::now_v7(), &anchor, &start, &account],
        )
        .await
        .unwrap();
    start
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_serve_processes_racing_on_a_period_never_granted_grant_it_once() {
    let database = fresh_database().await;
    let api_key = tenant_key(&database, "allowances").await;
    let servers = [
        ServerProcess::start(&database.url()).await,
        ServerProcess::start(&database.url()).await,
    ];
    let mut channels = Vec::new();
    for server in &servers {
        let address = format!("http://{}", server.address);
        channels.push(
            Channel::from_shared(address)
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
    }
    let bearer = BearerKey::for_key(&api_key);
    let mut account_client =
        AccountServiceClient::with_interceptor(channels[0].clone(), bearer.clone());
    let account = new_account(&mut account_client).await;
    let start = insert_allowance_never_granted(&database, &account).await;

    // The account has no credits but the allowance's: every hold needs the period granted.
    let clients: Vec<_> = channels
        .iter()
        .map(|channel| CreditServiceClient::with_interceptor(channel.clone(), bearer.clone()))
        .collect();
    authorize_burst(&clients, &account, "0.01", |_| {}).await;

    assert_eq!(periods_granted_twice(&database).await, []);
    let granted: Vec<_> = period_grants(&database, &account)
        .await
        .into_iter()
        .map(|grant| (grant.source, grant.period_start, grant.amount))
        .collect();
    assert_eq!(
        granted,
        [("FREE_DAILY".to_owned(), start, Decimal::from(100))]
    );
    let balance = account_client
        .get_balance(GetBalanceRequest {
            account_id: account.clone(),
            expiring_within_days: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (balance.available.as_str(), balance.held.as_str()),
        ("90", "10")
    );
    let client = database.pool.get().await.unwrap();
    let found = creditgate::store::verify::verify(&client).await.unwrap();
    assert!(found.is_empty(), "verify: {found:#?}");
    for server in servers {
        server.stop().await;
    }
}
