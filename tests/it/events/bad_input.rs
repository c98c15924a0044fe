//! Requests WatchEvents refuses, with the code and reason each deserves, and tenants that
//! never see each other's events.

use chrono::Duration;
use creditgate::proto::v1::{EventType, GrantSource, WatchEventsRequest};
use creditgate::service::events::{Position, cursor};
use tonic::Code;

use crate::helpers::TestApp;
use crate::helpers::events::{after, everything, next_event, next_of_type};
use crate::helpers::money::{create_account_request, grant_request, key};
use crate::helpers::status::{assert_invalid_field, expect_refused, metadata};

/// The other tenant's account, granted `amount` through its key.
async fn other_tenants_account(app: &TestApp, other_key: &str, amount: &str) -> String {
    let account = app
        .create_account_as(other_key, create_account_request(&key(), &key()))
        .await;
    app.account_as(Some(other_key))
        .grant(grant_request(&account, &key(), amount))
        .await
        .unwrap();
    account
}

#[tokio::test]
async fn a_cursor_that_is_not_one_of_this_tenants_events_is_an_invalid_argument() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let mut stream = app.watch(everything()).await;
    app.grant(&account, GrantSource::Purchase, "1").await;
    let ours = next_event(&mut stream).await;

    let malformed = ["not a cursor", "AAAA", &"A".repeat(200), "é"];
    for cursor in malformed {
        let status = app.watch_as(&app.key, after(cursor)).await.unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "cursor");
    }
    // Well formed, but no event stands there.
    let decoded = cursor::decode(&ours.cursor).unwrap();
    for position in [
        Position {
            tx: decoded.tx + 1_000_000,
            seq: 0,
        },
        Position {
            tx: decoded.tx,
            seq: decoded.seq + 1,
        },
    ] {
        let status = app
            .watch_as(&app.key, after(&cursor::encode(position)))
            .await
            .unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "cursor");
    }
    // Another tenant's event: its cursor is nothing to this tenant.
    let other_key = app.other_tenant_key().await;
    let mut theirs = app.watch_as(&other_key, everything()).await.unwrap();
    other_tenants_account(&app, &other_key, "2").await;
    let their_event = next_event(&mut theirs).await;
    let status = app
        .watch_as(&app.key, after(&their_event.cursor))
        .await
        .unwrap_err();
    assert_invalid_field(&status, "INVALID_ARGUMENT", "cursor");
    // Its own tenant resumes after it.
    assert!(
        app.watch_as(&other_key, after(&their_event.cursor))
            .await
            .is_ok()
    );
    app.finish().await;
}

#[tokio::test]
async fn an_account_or_type_that_cannot_be_watched_is_refused() {
    let app = TestApp::spawn().await;
    let other_key = app.other_tenant_key().await;
    let theirs = other_tenants_account(&app, &other_key, "2").await;
    let watch_account = |account_id: &str| WatchEventsRequest {
        account_id: account_id.to_owned(),
        ..WatchEventsRequest::default()
    };
    for account_id in [theirs.as_str(), &uuid::Uuid::now_v7().to_string()] {
        expect_refused(
            app.watch_as(&app.key, watch_account(account_id)).await,
            Code::NotFound,
            "ACCOUNT_NOT_FOUND",
        );
    }
    let status = app
        .watch_as(&app.key, watch_account("not-an-id"))
        .await
        .unwrap_err();
    assert_invalid_field(&status, "INVALID_ARGUMENT", "account_id");

    for types in [
        vec![EventType::Unspecified as i32],
        vec![EventType::GrantAdded as i32, 99],
        vec![-1],
        vec![EventType::GrantAdded as i32; 17],
    ] {
        let request = WatchEventsRequest {
            types,
            ..WatchEventsRequest::default()
        };
        let status = app.watch_as(&app.key, request).await.unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "types");
    }
    app.finish().await;
}

#[tokio::test]
async fn a_cursor_older_than_the_retention_is_expired_and_names_the_oldest_kept() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let mut stream = app.watch(everything()).await;
    app.grant(&account, GrantSource::Purchase, "1").await;
    app.grant(&account, GrantSource::Purchase, "2").await;
    let old = next_event(&mut stream).await;
    let last_pruned = next_event(&mut stream).await;

    // Eight days later (retention: seven), a new event, and the sweeper prunes the old ones.
    app.advance(Duration::days(8));
    app.grant(&account, GrantSource::Purchase, "3").await;
    let kept = next_event(&mut stream).await;
    app.sweep().await;

    let status = expect_refused(
        app.watch_as(&app.key, after(&old.cursor)).await,
        Code::FailedPrecondition,
        "CURSOR_EXPIRED",
    );
    assert_eq!(
        metadata(&status).get("oldest_cursor"),
        Some(&kept.cursor),
        "{status:?}"
    );
    // Nothing after the last pruned event was lost: resuming after it is fine.
    let mut resumed = app.watch(after(&last_pruned.cursor)).await;
    assert_eq!(next_event(&mut resumed).await.event_id, kept.event_id);
    // From the oldest cursor kept, the stream goes on.
    let mut from_oldest = app.watch(after(&kept.cursor)).await;
    app.grant(&account, GrantSource::Purchase, "4").await;
    let newer = next_of_type(&mut from_oldest, EventType::GrantAdded).await;
    assert_eq!(newer.attributes["amount"], "4");
    app.finish().await;
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_events() {
    let app = TestApp::spawn().await;
    let other_key = app.other_tenant_key().await;
    let ours = app.account().await;
    let mut our_stream = app.watch(everything()).await;
    let mut their_stream = app.watch_as(&other_key, everything()).await.unwrap();
    let mut their_expiring = app
        .watch_as(
            &other_key,
            WatchEventsRequest {
                types: vec![EventType::GrantAdded as i32, EventType::HoldExpired as i32],
                ..WatchEventsRequest::default()
            },
        )
        .await
        .unwrap();

    // Our events of several kinds, then theirs.
    app.grant(&ours, GrantSource::Purchase, "10").await;
    app.hold(&ours, "3").await;
    app.advance(Duration::hours(1));
    app.sweep().await;
    let our_events = [
        next_of_type(&mut our_stream, EventType::GrantAdded).await,
        next_of_type(&mut our_stream, EventType::HoldExpired).await,
    ];
    assert!(our_events.iter().all(|event| event.account_id == ours));
    let theirs = other_tenants_account(&app, &other_key, "5").await;
    for stream in [&mut their_stream, &mut their_expiring] {
        let first = next_event(stream).await;
        assert_eq!(first.account_id, theirs, "{first:#?}");
        assert_eq!(first.attributes["amount"], "5");
    }
    app.finish().await;
}
