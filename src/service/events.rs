//! Events: the WatchEvents streams, fed by one reader per server that follows the outbox.

pub mod cursor;
pub mod hub;
pub mod watch;

pub use crate::ledger::EventType;
pub use crate::store::events::{Position, StoredEvent};
pub use hub::EventHub;

/// An event as JSON, the fields of the wire `Event` (webhook bodies, `events tail` lines).
pub fn json(event: &StoredEvent) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Json<'a> {
        event_id: String,
        cursor: String,
        #[serde(rename = "type")]
        event_type: &'static str,
        account_id: String,
        created_at: String,
        attributes: &'a std::collections::BTreeMap<String, String>,
    }
    let json = Json {
        event_id: event.event_id.to_string(),
        cursor: cursor::encode(event.position),
        event_type: event.event_type.as_str(),
        account_id: event.account_id.to_string(),
        created_at: event
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        attributes: &event.attributes,
    };
    // Strings and a map of strings always serialize.
    serde_json::to_vec(&json).unwrap_or_default()
}
