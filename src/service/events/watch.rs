//! One WatchEvents stream: the tenant's events after the cursor from the database, then the
//! reader's live batches; a stream that falls behind the broadcast catches up from the
//! database, a consumer that lets its buffer fill and takes nothing for the stall timeout is
//! disconnected, the server's drain ends it.

use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};

use super::cursor;
use super::hub::{Batch, EventHub};
use crate::ids::{AccountId, TenantId};
use crate::ledger::{EventType, Reason};
use crate::service::access::Caller;
use crate::service::{Context, ServiceError};
use crate::store::StoreError;
use crate::store::events::{self, CursorCheck, Ended, EventFilter, Position, StoredEvent};
use crate::store::usage::account_exists;

/// Events read from the database per page while catching up.
const REPLAY_PAGE: i64 = 500;

/// What a watcher asks for.
#[derive(Debug, Clone, Default)]
pub struct WatchRequest {
    /// Only this account's events.
    pub account_id: Option<AccountId>,
    /// Resume after this position; `None`: from now on.
    pub cursor: Option<Position>,
    /// Only these types; empty: all.
    pub types: Vec<EventType>,
}

/// An open stream: its events, then why it ended.
#[derive(Debug)]
pub struct EventStream {
    /// The events, in position order.
    pub events: mpsc::Receiver<StoredEvent>,
    /// Why the stream ended, set before `events` closes (a stream never ends complete).
    pub end: Arc<Mutex<Option<ServiceError>>>,
}

/// A stream's place in its tenant's count; gives it back when dropped.
struct StreamPermit {
    hub: Arc<EventHub>,
    tenant_id: TenantId,
}

impl StreamPermit {
    fn take(hub: &Arc<EventHub>, tenant_id: TenantId, limit: usize) -> Option<StreamPermit> {
        let mut streams = hub.streams.lock().ok()?;
        let open = streams.entry(tenant_id).or_default();
        if *open >= limit {
            return None;
        }
        *open += 1;
        Some(StreamPermit {
            hub: Arc::clone(hub),
            tenant_id,
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        if let Ok(mut streams) = self.hub.streams.lock()
            && let Some(open) = streams.get_mut(&self.tenant_id)
        {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.tenant_id);
            }
        }
    }
}

fn draining() -> ServiceError {
    ServiceError::Declined {
        reason: Reason::ServerDraining,
        message: "the server is shutting down: reconnect and resume after your last cursor"
            .to_owned(),
        metadata: Vec::new(),
    }
}

/// The server drains, or its event reader has not reached the database yet.
fn not_following() -> ServiceError {
    ServiceError::Unavailable(StoreError::Unavailable(
        "this server is not following events (starting or shutting down); retry".to_owned(),
    ))
}

fn stalled(message: String) -> ServiceError {
    ServiceError::Exhausted {
        reason: Reason::StreamStalled,
        message,
    }
}

/// Opens a stream of the caller's events: checks the account and the cursor, takes one of the
/// tenant's stream places, and starts following.
pub async fn watch(
    context: &Context,
    caller: Caller,
    request: WatchRequest,
) -> Result<EventStream, ServiceError> {
    let tenant_id = caller.tenant_id;
    let client = context.pool.get().await.map_err(StoreError::from)?;
    if let Some(account_id) = request.account_id
        && !account_exists(&client, tenant_id, account_id).await?
    {
        return Err(ServiceError::account_not_found(account_id));
    }
    if let Some(position) = request.cursor {
        match events::check_cursor(&client, tenant_id, position).await? {
            CursorCheck::Valid => {}
            CursorCheck::Expired(oldest) => {
                let oldest = oldest.map(cursor::encode).unwrap_or_default();
                return Err(ServiceError::Declined {
                    reason: Reason::CursorExpired,
                    message: format!(
                        "events after this cursor were removed by retention; resume from the \
                         oldest cursor kept ({oldest:?}) or from now (no cursor)"
                    ),
                    metadata: vec![("oldest_cursor".to_owned(), oldest)],
                });
            }
            CursorCheck::Unknown => {
                return Err(ServiceError::InvalidArgument {
                    field: "cursor",
                    message: "names no event of this tenant: pass the cursor of an event \
                              this stream delivered, or none to start from now"
                        .to_owned(),
                });
            }
        }
    }
    // "From now" is decided here, before the stream is answered: an event committed before
    // the call is not delivered, one committed after it is, however far the reader lags.
    let start = match request.cursor {
        Some(position) => Start::After(position),
        None => Start::Now(events::ended_now(&client).await?),
    };
    drop(client);
    let limit = context.limits.watch_streams_per_tenant;
    let permit =
        StreamPermit::take(&context.events, tenant_id, limit).ok_or(ServiceError::Exhausted {
            reason: Reason::TooManyStreams,
            message: format!(
                "this tenant already has {limit} event streams open on this server; close one \
                 or retry later"
            ),
        })?;
    // Subscribed before the call is answered: "from now" is the moment the client is told the
    // stream is open.
    let subscription = context.events.subscribe().ok_or_else(not_following)?;
    let (sender, events) = mpsc::channel(context.limits.watch_buffer);
    let end = Arc::new(Mutex::new(Some(draining())));
    let ended = Arc::clone(&end);
    let context = context.clone();
    let filter = EventFilter {
        account_id: request.account_id,
        types: request.types,
    };
    tokio::spawn(async move {
        let _permit = permit;
        let outcome = follow(
            &context,
            (tenant_id, &filter, &start),
            subscription,
            &sender,
        )
        .await;
        if let (Err(error), Ok(mut slot)) = (outcome, ended.lock()) {
            *slot = Some(error);
        }
    });
    Ok(EventStream { events, end })
}

/// Where a stream starts.
#[derive(Debug, Clone)]
enum Start {
    /// After a cursor's position.
    After(Position),
    /// With the transactions that had not ended when the stream was opened.
    Now(Ended),
}

impl Start {
    fn position(&self) -> Position {
        match self {
            Start::After(position) => *position,
            Start::Now(ended) => ended.start(),
        }
    }

    /// Whether the stream delivers `event` (not one committed before it was opened).
    fn delivers(&self, event: &StoredEvent) -> bool {
        match self {
            Start::After(_) => true,
            Start::Now(ended) => !ended.includes(event.position.tx),
        }
    }
}

/// Follows the tenant's events after `start` until the client goes away (`Ok`) or the stream
/// must end.
async fn follow(
    context: &Context,
    (tenant_id, filter, start): (TenantId, &EventFilter, &Start),
    first: (Position, broadcast::Receiver<Arc<Batch>>),
    sender: &mpsc::Sender<StoredEvent>,
) -> Result<(), ServiceError> {
    let hub = &context.events;
    let mut from = start.position();
    let mut subscription = Some(first);
    loop {
        let Some((upto, mut receiver)) = subscription.take().or_else(|| hub.subscribe()) else {
            return Err(draining());
        };
        if from < upto && !replay(context, (tenant_id, filter, start), from, upto, sender).await? {
            return Ok(());
        }
        let mut seen = from.max(upto);
        loop {
            tokio::select! {
                received = receiver.recv() => match received {
                    Ok(batch) => {
                        for event in batch.events.iter().filter(|event| {
                            event.tenant_id == tenant_id
                                && event.position > seen
                                && filter.admits(event)
                                && start.delivers(event)
                        }) {
                            // A batch may hold more events than the buffer has room for,
                            // however fast the consumer reads: wait for room, within bounds.
                            if !deliver(context, sender, event.clone()).await? {
                                return Ok(());
                            }
                        }
                        seen = seen.max(batch.upto);
                    }
                    // Fell behind the broadcast: catch up from the database.
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return Err(draining()),
                },
                () = sender.closed() => return Ok(()),
                () = hub.drained() => return Err(draining()),
            }
        }
        from = seen;
    }
}

/// Sends the tenant's events in (`from`, `upto`] from the database, page by page, at the
/// client's pace; `false` when the client went away.
async fn replay(
    context: &Context,
    (tenant_id, filter, start): (TenantId, &EventFilter, &Start),
    from: Position,
    upto: Position,
    sender: &mpsc::Sender<StoredEvent>,
) -> Result<bool, ServiceError> {
    let mut after = from;
    loop {
        let page = {
            let client = context.pool.get().await.map_err(StoreError::from)?;
            events::tenant_events(&client, tenant_id, after, upto, filter, REPLAY_PAGE).await?
        };
        let full = i64::try_from(page.len()).unwrap_or(i64::MAX) >= REPLAY_PAGE;
        for event in page {
            after = event.position;
            if !start.delivers(&event) {
                continue;
            }
            if !deliver(context, sender, event).await? {
                return Ok(false);
            }
        }
        if !full {
            return Ok(true);
        }
    }
}

/// Hands `event` to the client's buffer, waiting while it is full at most the stall timeout
/// (the broadcast meanwhile may lag: the stream then catches up from the database, so writers
/// never wait); `false` when the client went away.
async fn deliver(
    context: &Context,
    sender: &mpsc::Sender<StoredEvent>,
    event: StoredEvent,
) -> Result<bool, ServiceError> {
    let stall = context.limits.watch_stall_timeout;
    tokio::select! {
        sent = tokio::time::timeout(stall, sender.send(event)) => match sent {
            Ok(Ok(())) => Ok(true),
            Ok(Err(_)) => Ok(false),
            Err(_) => Err(stalled(format!(
                "the stream was ended: its {} buffered events were not read for {} ms; resume \
                 after your last cursor",
                sender.max_capacity(),
                stall.as_millis()
            ))),
        },
        () = context.events.drained() => Err(draining()),
    }
}
