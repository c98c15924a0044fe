//! Event cursors: an event's position, opaque to clients (URL-safe base64 of its transaction
//! id and place). Not signed: a cursor only ever selects the caller's own tenant's events, and
//! one that names no event of the tenant is refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::store::events::Position;

/// Bytes of a decoded cursor: 8 of transaction id, 4 of place.
const CURSOR_BYTES: usize = 12;

/// The cursor of the event at `position`.
pub fn encode(position: Position) -> String {
    let mut bytes = [0_u8; CURSOR_BYTES];
    bytes[..8].copy_from_slice(&position.tx.to_be_bytes());
    bytes[8..].copy_from_slice(&position.seq.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The position a cursor names; `None` when it is not one of ours.
pub fn decode(cursor: &str) -> Option<Position> {
    if cursor.len() > 32 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let bytes: [u8; CURSOR_BYTES] = bytes.try_into().ok()?;
    let tx = i64::from_be_bytes(bytes[..8].try_into().ok()?);
    let seq = i32::from_be_bytes(bytes[8..].try_into().ok()?);
    (tx >= 0 && seq >= 0).then_some(Position { tx, seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let position = Position {
            tx: 123_456_789,
            seq: 7,
        };
        assert_eq!(decode(&encode(position)), Some(position));
        for bad in [
            "",
            "not a cursor",
            "AAAA",
            &"A".repeat(40),
            "____________________",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        let negative = Position { tx: 5, seq: -1 };
        assert_eq!(decode(&encode(negative)), None);
    }
}
