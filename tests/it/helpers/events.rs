//! Watching events through the gRPC surface: streams opened with a key, the next events read
//! within a generous deadline (a bound that only fails a test, never a synchronization), and a
//! marker event that proves nothing else arrived before it.

use std::time::Duration;

use creditgate::proto::v1::{
    Event, EventType, GrantSource, WatchEventsRequest, WatchEventsResponse,
};
use tonic::{Status, Streaming};

use super::TestApp;

/// Longest a test waits for an event or a stream's end before it fails.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(30);

/// A WatchEvents response stream.
pub type EventStream = Streaming<WatchEventsResponse>;

/// Every event of the tenant from now on.
pub fn everything() -> WatchEventsRequest {
    WatchEventsRequest::default()
}

/// The tenant's events after `cursor`.
pub fn after(cursor: &str) -> WatchEventsRequest {
    WatchEventsRequest {
        cursor: cursor.to_owned(),
        ..WatchEventsRequest::default()
    }
}

/// Events of `types` only.
pub fn only(types: &[EventType]) -> WatchEventsRequest {
    WatchEventsRequest {
        types: types.iter().map(|kind| *kind as i32).collect(),
        ..WatchEventsRequest::default()
    }
}

/// The next event of `stream`; fails the test if the stream ends or none comes in time.
pub async fn next_event(stream: &mut EventStream) -> Event {
    match tokio::time::timeout(EVENT_DEADLINE, stream.message()).await {
        Ok(Ok(Some(response))) => response.event.expect("a response without an event"),
        Ok(Ok(None)) => panic!("the event stream ended without a status"),
        Ok(Err(status)) => panic!("the event stream ended: {status:?}"),
        Err(_) => panic!("no event within {EVENT_DEADLINE:?}"),
    }
}

/// The next `count` events of `stream`.
pub async fn next_events(stream: &mut EventStream, count: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        events.push(next_event(stream).await);
    }
    events
}

/// The next event, which must be of `expected` type.
pub async fn next_of_type(stream: &mut EventStream, expected: EventType) -> Event {
    let event = next_event(stream).await;
    assert_eq!(event.r#type(), expected, "{event:#?}");
    event
}

/// Reads `stream` to its end: the events still delivered, and the status it ended with.
pub async fn read_to_end(stream: &mut EventStream) -> (Vec<Event>, Status) {
    let mut events = Vec::new();
    loop {
        match tokio::time::timeout(EVENT_DEADLINE, stream.message()).await {
            Ok(Ok(Some(response))) => events.push(response.event.unwrap()),
            Ok(Ok(None)) => panic!("the event stream ended without a status"),
            Ok(Err(status)) => return (events, status),
            Err(_) => panic!("the stream did not end within {EVENT_DEADLINE:?}"),
        }
    }
}

/// Waits until `condition` holds, checking every few milliseconds; fails the test after
/// [`EVENT_DEADLINE`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + EVENT_DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {EVENT_DEADLINE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl TestApp {
    /// A server whose background sweeper runs once at start only: the test sweeps, so what
    /// a sweep fires is the test's doing.
    pub async fn spawn_quiet() -> TestApp {
        TestApp::spawn_with_limits(|limits| limits.sweep_interval = Duration::from_secs(86_400))
            .await
    }

    /// Opens a WatchEvents stream with `key`.
    pub async fn watch_as(
        &self,
        key: &str,
        request: WatchEventsRequest,
    ) -> Result<EventStream, Status> {
        self.account_as(Some(key))
            .watch_events(request)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Opens a WatchEvents stream with the all-scopes key.
    pub async fn watch(&self, request: WatchEventsRequest) -> EventStream {
        self.watch_as(&self.key, request).await.unwrap()
    }

    /// Grants 1 credit to `marker_account` and asserts that its GRANT_ADDED is the next event
    /// of `stream` (which must admit the marker account's grants): whatever was written
    /// before the marker and did not arrive before it was never written.
    pub async fn expect_marker_next(&self, stream: &mut EventStream, marker_account: &str) {
        let grant = self
            .grant(marker_account, GrantSource::Promo, "1")
            .await
            .grant
            .unwrap();
        let event = next_event(stream).await;
        assert_eq!(
            (event.r#type(), event.attributes.get("grant_id")),
            (EventType::GrantAdded, Some(&grant.grant_id)),
            "expected the marker grant next, got {event:#?}"
        );
    }
}
