//! The event reader of one server: follows the outbox in position order (every tenant at
//! once, one query per wake-up, whatever the number of watchers) and broadcasts what it reads
//! to the WatchEvents streams. It wakes on Postgres notifications (`LISTEN`), so an event
//! committed through any replica arrives at once, and polls as a fallback when a notification
//! is lost or the listening connection is down.

use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use tokio_postgres::AsyncMessage;

use tokio::sync::{Notify, broadcast, watch};

use super::super::Context;
use crate::store::StoreError;
use crate::store::events::{self, Position, StoredEvent};
use crate::telemetry;

/// Events read per query.
const READ_BATCH: i64 = 1_000;
/// Batches kept for streams that fall behind; a stream further behind catches up from the
/// database.
const BROADCAST_BATCHES: usize = 256;
/// Pause before reading again while committed events wait for older transactions to end.
const PENDING_RETRY: Duration = Duration::from_millis(5);
/// Pause before reconnecting the listening connection, or retrying a failed read.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// The notification channel the events trigger signals.
pub const CHANNEL: &str = "creditgate_events";

/// Events read together, and the position everything up to which has been read.
#[derive(Debug)]
pub struct Batch {
    /// The events, in position order.
    pub events: Vec<StoredEvent>,
    /// Every event up to here was in this batch or an earlier one.
    pub upto: Position,
}

#[derive(Debug)]
struct Followed {
    /// Everything before it has been broadcast; `None` until the reader starts.
    position: Option<Position>,
    sender: broadcast::Sender<Arc<Batch>>,
}

/// The reader's state, shared with the streams.
#[derive(Debug)]
pub struct EventHub {
    followed: Mutex<Followed>,
    wake: Notify,
    /// Open streams per tenant.
    pub(super) streams: Mutex<std::collections::HashMap<crate::ids::TenantId, usize>>,
    draining: watch::Sender<bool>,
}

impl Default for EventHub {
    fn default() -> Self {
        let (sender, _) = broadcast::channel(BROADCAST_BATCHES);
        EventHub {
            followed: Mutex::new(Followed {
                position: None,
                sender,
            }),
            wake: Notify::new(),
            streams: Mutex::default(),
            draining: watch::channel(false).0,
        }
    }
}

impl EventHub {
    /// The position everything before which has been broadcast, and a receiver of every batch
    /// after it; `None` before the reader started or once the server drains.
    pub fn subscribe(&self) -> Option<(Position, broadcast::Receiver<Arc<Batch>>)> {
        if *self.draining.borrow() {
            return None;
        }
        let followed = self.followed.lock().ok()?;
        let position = followed.position?;
        Some((position, followed.sender.subscribe()))
    }

    /// Completes when the server starts draining.
    pub async fn drained(&self) {
        let mut draining = self.draining.subscribe();
        let _ = draining.wait_for(|draining| *draining).await;
    }

    /// Streams of `tenant_id` open on this server now.
    pub fn open_streams(&self, tenant_id: crate::ids::TenantId) -> usize {
        self.streams
            .lock()
            .map_or(0, |streams| streams.get(&tenant_id).copied().unwrap_or(0))
    }

    /// Wakes the reader (a notification arrived).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn publish(&self, events: Vec<StoredEvent>, upto: Position) {
        if let Ok(mut followed) = self.followed.lock() {
            followed.position = Some(upto);
            if !events.is_empty() {
                // No receiver is not an error: nobody is watching.
                let _ = followed.sender.send(Arc::new(Batch { events, upto }));
            }
        }
    }

    /// Ends every stream (they answer SERVER_DRAINING) and refuses new ones.
    pub fn drain(&self) {
        self.draining.send_replace(true);
    }
}

/// Starts following the outbox from now; the streams can subscribe once this returns.
pub async fn start(context: &Context) -> Result<(), StoreError> {
    let client = context.pool.get().await?;
    if events::positions_ahead(&client).await? {
        tracing::error!(
            "the events table holds positions ahead of this database's transaction ids (was it \
             restored from a dump?): cursors of those events would skip new ones. Delete them \
             (DELETE FROM events; DELETE FROM event_horizons) and let watchers start from now"
        );
    }
    let horizon = events::horizon(&client).await?;
    context.events.publish(Vec::new(), horizon);
    Ok(())
}

/// Reads and broadcasts until `shutdown` flips.
pub async fn run(context: Context, mut shutdown: watch::Receiver<bool>) {
    let hub = Arc::clone(&context.events);
    let poll = context.limits.event_poll_interval;
    let mut pending_pause = PENDING_RETRY;
    // Since when committed events have waited to be broadcast; `None` while caught up.
    let mut behind_since: Option<tokio::time::Instant> = None;
    loop {
        let read = read_once(&context).await;
        record_lag(&read, &mut behind_since);
        let pause = match read.map(|(outcome, _)| outcome) {
            Ok(ReadOutcome::More) => Duration::ZERO,
            // Usually the older transactions end within milliseconds; a long one (a migration,
            // a session idle in a transaction) is waited for at a slowing pace.
            Ok(ReadOutcome::Pending { progressed }) => {
                if progressed {
                    pending_pause = PENDING_RETRY;
                }
                let pause = pending_pause;
                pending_pause = (pending_pause * 2).min(poll);
                pause
            }
            Ok(ReadOutcome::Idle) => {
                pending_pause = PENDING_RETRY;
                poll
            }
            Err(error) => {
                tracing::warn!(%error, "reading events failed");
                RETRY_PAUSE
            }
        };
        if pause.is_zero() {
            continue;
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            () = hub.wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
    hub.drain();
}

enum ReadOutcome {
    /// A full batch: read again at once.
    More,
    /// Committed events wait for older transactions (`progressed`: this read delivered some).
    Pending { progressed: bool },
    /// Caught up.
    Idle,
}

/// One read: what it came to, and how many events it broadcast.
async fn read_once(context: &Context) -> Result<(ReadOutcome, usize), StoreError> {
    let Some(after) = context
        .events
        .followed
        .lock()
        .ok()
        .and_then(|followed| followed.position)
    else {
        // Not started (the database did not answer at start): start from now.
        start(context).await?;
        return Ok((ReadOutcome::More, 0));
    };
    let client = context.pool.get().await?;
    let page = events::read_after(&client, after, READ_BATCH).await?;
    drop(client);
    let full = i64::try_from(page.events.len()).unwrap_or(i64::MAX) >= READ_BATCH;
    let pending = page.pending;
    let read = page.events.len();
    let progressed = read > 0;
    context.events.publish(page.events, page.horizon);
    let outcome = if full {
        ReadOutcome::More
    } else if pending {
        ReadOutcome::Pending { progressed }
    } else {
        ReadOutcome::Idle
    };
    Ok((outcome, read))
}

/// The reader's lag for the metrics: zero once caught up, else how long it has been behind.
fn record_lag(
    read: &Result<(ReadOutcome, usize), StoreError>,
    behind_since: &mut Option<tokio::time::Instant>,
) {
    let Some(metrics) = telemetry::metrics() else {
        return;
    };
    let (caught_up, events) = match read {
        Ok((ReadOutcome::Idle, events)) => (true, *events),
        Ok((_, events)) => (false, *events),
        Err(_) => (false, 0),
    };
    let lag = if caught_up {
        *behind_since = None;
        Duration::ZERO
    } else {
        behind_since
            .get_or_insert_with(tokio::time::Instant::now)
            .elapsed()
    };
    metrics.events(events, lag);
}

/// Listens for the events trigger's notifications on a connection of its own (a pooled one
/// would drop them), waking the reader on each; reconnects after a failure.
pub async fn listen(
    (config, connector): (tokio_postgres::Config, crate::store::tls::PgConnector),
    hub: Arc<EventHub>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            result = listen_once(&config, connector.clone(), &hub) => {
                if let Err(error) = result {
                    tracing::warn!(%error, "listening for events failed; polling until it is back");
                }
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(RETRY_PAUSE) => {}
        }
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    connector: crate::store::tls::PgConnector,
    hub: &Arc<EventHub>,
) -> Result<(), StoreError> {
    // Named like the pool's connections, so that a contract migration counts it as this
    // version's (src/store/migrate.rs).
    let mut config = config.clone();
    config.application_name(crate::store::migrate::application_name());
    let (client, mut connection) = config.connect(connector.make()).await?;
    let woken = Arc::clone(hub);
    // Drives the connection; each notification only wakes the reader (nothing is queued).
    let driver = tokio::spawn(std::future::poll_fn(move |cx| {
        loop {
            match connection.poll_message(cx) {
                Poll::Ready(Some(Ok(AsyncMessage::Notification(_)))) => woken.wake(),
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(error)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }));
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // A notification sent before LISTEN took effect would be missed: read once now.
    hub.wake();
    let ended = driver.await;
    drop(client);
    match ended {
        Ok(Ok(())) => Err(StoreError::Unavailable(
            "the listening connection closed".to_owned(),
        )),
        Ok(Err(error)) => Err(error.into()),
        Err(error) => Err(StoreError::Other(format!(
            "the listener task failed: {error}"
        ))),
    }
}
