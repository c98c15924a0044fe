//! Bounds of WatchEvents: streams per tenant, a consumer that stops reading, and the server's
//! drain, each ending streams with its own code and reason.

use creditgate::proto::v1::account_service_client::AccountServiceClient;
use creditgate::proto::v1::{EventType, GrantRequest};
use futures::future::join_all;
use tonic::Code;
use tonic::transport::Endpoint;

use crate::helpers::events::{after, everything, next_events, only, read_to_end, wait_until};
use crate::helpers::money::{grant_request, key};
use crate::helpers::status::{assert_refused, expect_refused};
use crate::helpers::{BearerKey, TestApp};

#[tokio::test]
async fn a_tenant_opens_at_most_its_limit_of_streams() {
    let app = TestApp::spawn_with_limits(|limits| limits.watch_streams_per_tenant = 2).await;
    let first = app.watch(everything()).await;
    let _second = app.watch(only(&[EventType::BalanceLow])).await;
    expect_refused(
        app.watch_as(&app.key, everything()).await,
        Code::ResourceExhausted,
        "TOO_MANY_STREAMS",
    );
    // The limit is per tenant.
    let other_key = app.other_tenant_key().await;
    let _theirs = app.watch_as(&other_key, everything()).await.unwrap();
    // A stream the client closes gives its place back.
    drop(first);
    let tenant_id = app.tenant_id;
    wait_until("the closed stream's place is given back", || {
        app.context.events.open_streams(tenant_id) == 1
    })
    .await;
    let _third = app.watch(everything()).await;
    app.finish().await;
}

#[tokio::test]
async fn a_consumer_that_stops_reading_is_disconnected_and_resumes_from_its_last_cursor() {
    const BUFFER: usize = 16;
    const GRANTS: usize = 600;
    let app = TestApp::spawn_with_limits(|limits| {
        limits.watch_buffer = BUFFER;
        limits.watch_stall_timeout = std::time::Duration::from_millis(500);
    })
    .await;
    // HTTP/2 windows of 64 KiB: the transport holds only that much of what the server sends.
    let channel = Endpoint::from_shared(format!("http://{}", app.address))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut slow_client =
        AccountServiceClient::with_interceptor(channel, BearerKey::for_key(&app.key));
    let mut slow = slow_client
        .watch_events(everything())
        .await
        .unwrap()
        .into_inner();
    let mut reader = app.watch(everything()).await;

    let account = app.account().await;
    let mut written = Vec::with_capacity(GRANTS);
    for chunk in 0..GRANTS / 50 {
        let requests = (0..50).map(|index| GrantRequest {
            external_ref: format!("{}-{chunk}-{index}", "r".repeat(200)),
            ..grant_request(&account, &key(), "1")
        });
        let responses = join_all(requests.map(|request| app.grant_request(request))).await;
        written.extend(
            responses
                .into_iter()
                .map(|response| response.unwrap().grant.unwrap().grant_id),
        );
    }
    // A reading consumer gets everything; the one that does not read is ended by the server.
    let all = next_events(&mut reader, GRANTS).await;
    let tenant_id = app.tenant_id;
    wait_until("the stalled stream ends", || {
        app.context.events.open_streams(tenant_id) == 1
    })
    .await;

    let (delivered, status) = read_to_end(&mut slow).await;
    assert_refused(&status, Code::ResourceExhausted, "STREAM_STALLED");
    assert!(
        !delivered.is_empty() && delivered.len() < GRANTS,
        "{} of {GRANTS} delivered before the stall",
        delivered.len()
    );
    assert_eq!(delivered, all[..delivered.len()], "a prefix, in order");
    // Nothing is lost: resuming after the last cursor delivers the rest.
    let last = &delivered.last().unwrap().cursor;
    let mut resumed = app.watch(after(last)).await;
    let rest = next_events(&mut resumed, GRANTS - delivered.len()).await;
    assert_eq!(rest, all[delivered.len()..]);
    let mut granted: Vec<String> = all
        .iter()
        .map(|event| event.attributes["grant_id"].clone())
        .collect();
    granted.sort();
    written.sort();
    assert_eq!(granted, written);
    app.finish().await;
}

#[tokio::test]
async fn the_servers_drain_ends_its_streams_as_unavailable() {
    let app = TestApp::spawn().await;
    let mut everything_stream = app.watch(everything()).await;
    let mut filtered = app.watch(only(&[EventType::DebtIncurred])).await;
    app.stop().await;
    for stream in [&mut everything_stream, &mut filtered] {
        let (events, status) = read_to_end(stream).await;
        assert!(events.is_empty(), "{events:#?}");
        assert_refused(&status, Code::Unavailable, "SERVER_DRAINING");
    }
}
