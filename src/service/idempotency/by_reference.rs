//! Which records are stored by reference to the hold their answer shows
//! ([`crate::store::idempotency`] compresses them against the hold's text).

use super::Rpc;
use crate::ids::HoldId;
use crate::ledger::AccountBook;
use crate::store::idempotency::{self, NewRecord, StoredAnswer};

impl Rpc {
    /// The hold an answer of this RPC shows, when it shows one (the hold its record may be
    /// stored by reference to).
    pub fn hold_shown(self, answer: &StoredAnswer) -> Option<HoldId> {
        use prost::Message as _;

        use crate::proto::v1;
        let StoredAnswer::Response(bytes) = answer else {
            return None;
        };
        let bytes = bytes.as_slice();
        let hold = match self {
            Rpc::Authorize => v1::AuthorizeResponse::decode(bytes).ok()?.hold,
            Rpc::ExtendHold => v1::ExtendHoldResponse::decode(bytes).ok()?.hold,
            Rpc::Settle => v1::SettleResponse::decode(bytes).ok()?.hold,
            Rpc::Release => v1::ReleaseResponse::decode(bytes).ok()?.hold,
            _ => None,
        }?;
        hold.hold_id.parse().ok()
    }
}

/// Names in `record` the hold its answer shows, with that hold's text from `book` (the book of
/// the record's account), so that the answer is stored by reference to it.
pub fn refer_to_hold(record: &mut NewRecord, rpc: Rpc, book: &AccountBook) {
    let Some(account_id) = record.account_id else {
        return;
    };
    record.answer_hold = rpc.hold_shown(&record.answer).and_then(|hold_id| {
        let hold = book.hold(hold_id)?;
        Some((
            hold_id,
            idempotency::hold_dictionary(hold_id, account_id, &hold.meta),
        ))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hold_an_answer_shows_is_read_for_the_rpcs_that_show_one() {
        use prost::Message as _;

        use crate::proto::v1;
        let hold_id = HoldId::now_v7();
        let hold = Some(v1::Hold {
            hold_id: hold_id.to_string(),
            ..v1::Hold::default()
        });
        let settled = v1::SettleResponse {
            hold: hold.clone(),
            ..v1::SettleResponse::default()
        };
        let answer = StoredAnswer::Response(settled.encode_to_vec());
        assert_eq!(Rpc::Settle.hold_shown(&answer), Some(hold_id));
        let released = StoredAnswer::Response(
            v1::ReleaseResponse {
                hold,
                ..v1::ReleaseResponse::default()
            }
            .encode_to_vec(),
        );
        assert_eq!(Rpc::Release.hold_shown(&released), Some(hold_id));
        // Another RPC's answer, a decline and bytes that do not decode show none.
        assert_eq!(Rpc::Refund.hold_shown(&answer), None);
        let declined = StoredAnswer::Declined {
            reason: "INSUFFICIENT_CREDITS".to_owned(),
            message: String::new(),
            metadata: Vec::new(),
        };
        assert_eq!(Rpc::Authorize.hold_shown(&declined), None);
        let garbage = StoredAnswer::Response(vec![0xff, 0xff]);
        assert_eq!(Rpc::Authorize.hold_shown(&garbage), None);
    }
}
