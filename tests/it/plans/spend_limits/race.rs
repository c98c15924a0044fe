//! Holds of one member raced over two servers on one database: the limit lets exactly its
//! amount through and not a credit more, whether it was set before the holds or among them.

use creditgate::proto::v1::credit_service_client::CreditServiceClient;
use creditgate::proto::v1::{AuthorizeResponse, LimitPeriod};
use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use tonic::Status;
use tonic::transport::Channel;

use crate::helpers::concurrency::burst;
use crate::helpers::limits::{assert_limit_reached, limit_request, member, scoped_request};
use crate::helpers::server_process::ServerProcess;
use crate::helpers::{Authed, BearerKey, TestApp};

/// Authorize calls in all, one credit each.
const CALLS: usize = 500;
/// Calls in flight at once: enough to queue many on each account lock, few enough for the
/// shared machine.
const IN_FLIGHT: usize = 64;

/// A CreditService client of the process listening on `address`, with `key`.
async fn client_of(address: std::net::SocketAddr, key: &str) -> CreditServiceClient<Authed> {
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    CreditServiceClient::with_interceptor(channel, BearerKey::for_key(key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_holds_raced_over_two_servers_reserve_exactly_the_day_limit() {
    let app = TestApp::spawn().await;
    let account = app.funded_account("1000").await;
    let alice = member("alice");
    app.limit(&account, &alice, LimitPeriod::Day, "100").await;
    let servers = [
        ServerProcess::start(&app.database_url()).await,
        ServerProcess::start(&app.database_url()).await,
    ];
    let mut clients = Vec::new();
    for server in &servers {
        clients.push(client_of(server.address, &app.key).await);
    }

    let results: Vec<Result<AuthorizeResponse, Status>> = futures::stream::iter(0..CALLS)
        .map(|index| {
            let mut client = clients[index % clients.len()].clone();
            let request = scoped_request(&account, &alice, "1");
            async move {
                client
                    .authorize(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let (held, refused): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!((held.len(), refused.len()), (100, 400));
    // Every refusal saw the limit full: none was decided on a stale count.
    for status in refused {
        assert_limit_reached(
            &status.unwrap_err(),
            &alice,
            LimitPeriod::Day,
            ("100", "0", "100"),
        );
    }
    app.assert_limit(&account, &alice, LimitPeriod::Day, ("100", "0", "100"))
        .await;
    app.assert_balance(&account, "900", "100").await;
    for server in servers {
        server.stop().await;
    }
    app.finish().await;
}

/// Holds raced with the SetSpendLimit that caps them.
const RACED_HOLDS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_set_while_holds_race_counts_every_hold_it_lets_through() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let account = app.funded_account("1000").await;
    let alice = member("alice");
    let calls: Vec<BoxFuture<'static, Option<Result<AuthorizeResponse, Status>>>> = (0
        ..=RACED_HOLDS)
        .map(|index| {
            let server = if index % 2 == 0 { &app } else { &replica };
            if index == RACED_HOLDS / 2 {
                let mut client = server.account_as(Some(&server.key));
                let request = limit_request(&account, &alice, LimitPeriod::Day, "10");
                return async move {
                    client.set_spend_limit(request).await.unwrap();
                    None
                }
                .boxed();
            }
            let mut client = server.credit();
            let request = scoped_request(&account, &alice, "1");
            async move {
                let answer = client.authorize(request).await;
                Some(answer.map(tonic::Response::into_inner))
            }
            .boxed()
        })
        .collect();
    let (held, refused): (Vec<_>, Vec<_>) = burst(calls)
        .await
        .into_iter()
        .flatten()
        .partition(Result::is_ok);
    // Holds made before the limit in its transaction or earlier count; none passes it after.
    assert!(held.len() >= 10, "{} held", held.len());
    assert_eq!(held.len() + refused.len(), RACED_HOLDS);
    let reserved = held.len().to_string();
    for status in refused {
        assert_limit_reached(
            &status.unwrap_err(),
            &alice,
            LimitPeriod::Day,
            ("10", "0", &reserved),
        );
    }
    app.assert_limit(&account, &alice, LimitPeriod::Day, ("10", "0", &reserved))
        .await;
    replica.stop().await;
    app.finish().await;
}
