//! Resuming: a cursor replays what followed it, then the stream continues live; events written
//! while the watcher's server was down arrive after a restart, none lost, in order, with
//! stable ids; a watcher on one replica sees what another committed; one account's events
//! come in the order of its operations.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use creditgate::proto::v1::{
    CreateAccountRequest, Event, EventType, GrantSource, SettlePolicy, WatchEventsRequest,
};
use futures::future::join_all;

use crate::helpers::TestApp;
use crate::helpers::events::{after, everything, next_events, read_to_end};
use crate::helpers::money::{create_account_request, key};
use crate::helpers::status::assert_refused;

/// Grants `count` credits of 1 to `account` through `app`, one after the other; their ids.
async fn grants(app: &TestApp, account: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let grant = app.grant(account, GrantSource::Purchase, "1").await;
        ids.push(grant.grant.unwrap().grant_id);
    }
    ids
}

/// The grant ids of GRANT_ADDED events.
fn granted(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|event| {
            assert_eq!(event.r#type(), EventType::GrantAdded, "{event:#?}");
            event.attributes["grant_id"].clone()
        })
        .collect()
}

#[tokio::test]
async fn a_cursor_replays_what_followed_it_then_the_stream_continues_live() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let mut live = app.watch(everything()).await;
    let written = grants(&app, &account, 4).await;
    let first = next_events(&mut live, 4).await;
    assert_eq!(granted(&first), written);

    let mut resumed = app.watch(after(&first[0].cursor)).await;
    let replayed = next_events(&mut resumed, 3).await;
    assert_eq!(
        replayed,
        first[1..],
        "a replay repeats the events as first sent"
    );
    let more = grants(&app, &account, 2).await;
    assert_eq!(granted(&next_events(&mut resumed, 2).await), more);
    assert_eq!(granted(&next_events(&mut live, 2).await), more);

    // Resuming after the last event waits for the next one.
    let mut caught_up = app.watch(after(&first[3].cursor)).await;
    assert_eq!(
        granted(&next_events(&mut caught_up, 2).await),
        more,
        "resuming after the fourth event"
    );
    app.finish().await;
}

#[tokio::test]
async fn events_written_while_the_watchers_server_was_down_arrive_after_a_restart() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let account = app.account().await;
    let mut stream = app.watch(everything()).await;
    let mut written = grants(&app, &account, 2).await;
    let mut received = next_events(&mut stream, 2).await;

    app.stop().await;
    let (late, status) = read_to_end(&mut stream).await;
    assert_refused(&status, tonic::Code::Unavailable, "SERVER_DRAINING");
    assert!(late.is_empty(), "{late:#?}");
    written.extend(grants(&replica, &account, 3).await);
    let restarted = replica.replica().await;
    replica.stop().await;

    // Resuming from the last cursor received: nothing lost, nothing repeated, in order.
    let last = received.last().unwrap().cursor.clone();
    let mut resumed = restarted.watch(after(&last)).await;
    received.extend(next_events(&mut resumed, 3).await);
    assert_eq!(granted(&received), written);
    // From an older cursor, the events already seen come again, with the same ids: a
    // consumer drops them by event_id.
    let mut again = restarted.watch(after(&received[0].cursor)).await;
    let repeated = next_events(&mut again, 4).await;
    let seen: HashSet<&str> = received
        .iter()
        .map(|event| event.event_id.as_str())
        .collect();
    assert_eq!(seen.len(), received.len(), "event ids are unique");
    assert!(
        repeated
            .iter()
            .all(|event| seen.contains(event.event_id.as_str()))
    );
    assert_eq!(repeated, received[1..]);
    restarted.finish().await;
}

#[tokio::test]
async fn a_watcher_on_one_replica_receives_what_another_committed_when_notified() {
    // The reader would poll only after an hour: delivery within the test's deadline comes
    // from the notification of the commit.
    let first = TestApp::spawn_with_limits(|limits| {
        limits.event_poll_interval = Duration::from_secs(3_600);
    })
    .await;
    let second = first.replica().await;
    let account = first.account().await;
    let mut on_second = second.watch(everything()).await;
    let mut on_first = first.watch(everything()).await;
    let through_first = grants(&first, &account, 2).await;
    let through_second = grants(&second, &account, 2).await;
    let expected: Vec<String> = through_first.into_iter().chain(through_second).collect();
    assert_eq!(granted(&next_events(&mut on_second, 4).await), expected);
    assert_eq!(granted(&next_events(&mut on_first, 4).await), expected);
    second.stop().await;
    first.finish().await;
}

#[tokio::test]
async fn one_accounts_events_arrive_in_the_order_of_its_operations() {
    let app = TestApp::spawn().await;
    let account = app
        .create_account_as(
            &app.key,
            CreateAccountRequest {
                low_balance_threshold: "5".to_owned(),
                settle_policy: SettlePolicy::Debt as i32,
                ..create_account_request(&key(), &key())
            },
        )
        .await;
    let mut stream = app
        .watch(WatchEventsRequest {
            account_id: account.clone(),
            ..WatchEventsRequest::default()
        })
        .await;
    app.grant(&account, GrantSource::Purchase, "10").await;
    let hold = app.hold(&account, "8").await;
    app.settle(&hold.hold_id, "12", false).await.unwrap();
    app.grant(&account, GrantSource::Topup, "20").await;
    let kinds: Vec<EventType> = next_events(&mut stream, 4)
        .await
        .iter()
        .map(Event::r#type)
        .collect();
    assert_eq!(
        kinds,
        [
            EventType::GrantAdded,
            EventType::BalanceLow,
            EventType::DebtIncurred,
            EventType::GrantAdded
        ]
    );

    // Concurrent grants on the account may share a transaction: each grant is told once, in
    // the order of the transactions, with the balance its transaction left (never less than
    // what its own response said, the last one the final balance).
    let responses = join_all((0..16).map(|_| app.grant(&account, GrantSource::Promo, "1"))).await;
    let events = next_events(&mut stream, 16).await;
    let answered: HashMap<String, u32> = responses
        .into_iter()
        .map(|response| {
            let available = response.available.parse().unwrap();
            (response.grant.unwrap().grant_id, available)
        })
        .collect();
    let told: Vec<(String, u32)> = events
        .iter()
        .map(|event| {
            assert_eq!(event.r#type(), EventType::GrantAdded, "{event:#?}");
            let available = event.attributes["available"].parse().unwrap();
            (event.attributes["grant_id"].clone(), available)
        })
        .collect();
    let told_ids: HashSet<&String> = told.iter().map(|(grant_id, _)| grant_id).collect();
    assert_eq!(told_ids.len(), 16, "each grant once");
    for (grant_id, available) in &told {
        assert!(*available >= answered[grant_id], "{told:?} {answered:?}");
    }
    assert!(
        told.windows(2).all(|pair| pair[0].1 <= pair[1].1),
        "{told:?}"
    );
    assert_eq!(told.last().unwrap().1, 34);
    app.assert_balance(&account, "34", "0").await;
    app.finish().await;
}

#[tokio::test]
async fn a_stream_without_a_cursor_starts_when_it_is_answered_whatever_runs_meanwhile() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    // A transaction left open holds every reader's horizon below the commits that follow.
    let mut client = app.pool.get().await.unwrap();
    let open = client.transaction().await.unwrap();
    open.query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .unwrap();
    let before = app.grant(&account, GrantSource::Purchase, "1").await;
    let mut stream = app.watch(everything()).await;
    let after_open = app.grant(&account, GrantSource::Purchase, "2").await;
    open.rollback().await.unwrap();
    let first = next_events(&mut stream, 1).await;
    assert_eq!(
        granted(&first),
        [after_open.grant.unwrap().grant_id],
        "the grant committed before the call ({:?}) is not delivered",
        before.grant.unwrap().grant_id
    );
    app.finish().await;
}
