//! WatchEvents on the wire: the request parsed once, events encoded, the stream ending with
//! the reason it was ended.

use futures::StreamExt as _;
use tonic::Status;

use super::account::ResponseStream;
use super::convert::timestamp;
use super::parse;
use crate::ids::AccountId;
use crate::ledger::EventType;
use crate::proto::v1;
use crate::service::access::Caller;
use crate::service::events::StoredEvent;
use crate::service::events::cursor;
use crate::service::events::watch::{self as watch_service, WatchRequest};
use crate::service::{Context, ServiceError};

/// Most types one request may name (each at most once).
const MAX_TYPES: usize = 16;

fn event_type(value: i32) -> Result<EventType, ServiceError> {
    let invalid = || ServiceError::InvalidArgument {
        field: "types",
        message: format!(
            "{value} is not an event type: name BALANCE_LOW, CREDITS_EXPIRING, CREDITS_EXPIRED, \
             HOLD_EXPIRED, DEBT_INCURRED or GRANT_ADDED, or none for all"
        ),
    };
    match v1::EventType::try_from(value).map_err(|_| invalid())? {
        v1::EventType::Unspecified => Err(invalid()),
        v1::EventType::BalanceLow => Ok(EventType::BalanceLow),
        v1::EventType::CreditsExpiring => Ok(EventType::CreditsExpiring),
        v1::EventType::CreditsExpired => Ok(EventType::CreditsExpired),
        v1::EventType::HoldExpired => Ok(EventType::HoldExpired),
        v1::EventType::DebtIncurred => Ok(EventType::DebtIncurred),
        v1::EventType::GrantAdded => Ok(EventType::GrantAdded),
    }
}

fn wire_type(event_type: EventType) -> v1::EventType {
    match event_type {
        EventType::BalanceLow => v1::EventType::BalanceLow,
        EventType::CreditsExpiring => v1::EventType::CreditsExpiring,
        EventType::CreditsExpired => v1::EventType::CreditsExpired,
        EventType::HoldExpired => v1::EventType::HoldExpired,
        EventType::DebtIncurred => v1::EventType::DebtIncurred,
        EventType::GrantAdded => v1::EventType::GrantAdded,
    }
}

/// The request in domain terms.
pub fn watch_request(message: &v1::WatchEventsRequest) -> Result<WatchRequest, ServiceError> {
    let account_id = parse::optional_id::<AccountId>("account_id", &message.account_id)?;
    let cursor = if message.cursor.is_empty() {
        None
    } else {
        Some(cursor::decode(&message.cursor).ok_or_else(|| {
            ServiceError::InvalidArgument {
                field: "cursor",
                message: "is not a cursor: pass an event's `cursor` as received, or none to \
                          start from now"
                    .to_owned(),
            }
        })?)
    };
    if message.types.len() > MAX_TYPES {
        return Err(ServiceError::InvalidArgument {
            field: "types",
            message: format!("names {} types; at most {MAX_TYPES}", message.types.len()),
        });
    }
    let mut types = Vec::new();
    for value in &message.types {
        let kind = event_type(*value)?;
        if !types.contains(&kind) {
            types.push(kind);
        }
    }
    Ok(WatchRequest {
        account_id,
        cursor,
        types,
    })
}

/// An event as sent.
pub fn event(event: &StoredEvent) -> v1::Event {
    v1::Event {
        event_id: event.event_id.to_string(),
        cursor: cursor::encode(event.position),
        r#type: wire_type(event.event_type).into(),
        account_id: event.account_id.to_string(),
        created_at: Some(timestamp(event.created_at)),
        attributes: event
            .attributes
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
    }
}

/// WatchEvents: the events, then the status the stream was ended with.
pub async fn watch(
    context: &Context,
    caller: Caller,
    message: &v1::WatchEventsRequest,
) -> Result<ResponseStream<v1::WatchEventsResponse>, ServiceError> {
    let request = watch_request(message)?;
    let stream = watch_service::watch(context, caller, request).await?;
    let end = stream.end;
    let events = tokio_stream::wrappers::ReceiverStream::new(stream.events).map(|stored| {
        Ok(v1::WatchEventsResponse {
            event: Some(event(&stored)),
        })
    });
    let ended = futures::stream::once(async move {
        let error = end.lock().ok().and_then(|mut slot| slot.take());
        Err(error.map_or_else(
            || Status::unavailable("the stream ended; resume after your last cursor"),
            Status::from,
        ))
    });
    Ok(Box::pin(events.chain(ended)))
}
