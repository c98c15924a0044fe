//! A first watcher: a grant's GRANT_ADDED arrives live, and a cursor replays it.

use creditgate::proto::v1::{EventType, GrantSource, WatchEventsRequest};

use crate::helpers::TestApp;

#[tokio::test]
async fn a_grant_arrives_live_and_replays_after_a_cursor() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let mut stream = app
        .clients()
        .account
        .watch_events(WatchEventsRequest {
            account_id: account.clone(),
            ..WatchEventsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    app.grant(&account, GrantSource::Purchase, "10").await;
    let event = stream.message().await.unwrap().unwrap().event.unwrap();
    assert_eq!(event.r#type(), EventType::GrantAdded);
    assert_eq!(event.account_id, account);
    assert_eq!(event.attributes["amount"], "10");
    app.grant(&account, GrantSource::Purchase, "5").await;
    let second = stream.message().await.unwrap().unwrap().event.unwrap();
    assert_eq!(second.attributes["amount"], "5");
    let mut replay = app
        .clients()
        .account
        .watch_events(WatchEventsRequest {
            cursor: event.cursor.clone(),
            ..WatchEventsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let replayed = replay.message().await.unwrap().unwrap().event.unwrap();
    assert_eq!(replayed.event_id, second.event_id);
    app.finish().await;
}
