//! Unit tests of idempotency: names, declines, lean records.
use prost::Message as _;

use super::*;
use crate::proto::v1::{AuthorizeRequest, authorize_request::Price};

#[test]
fn every_rpc_round_trips_through_its_name_and_names_its_request_message() {
    for (position, rpc) in Rpc::ALL.into_iter().enumerate() {
        // Exhaustive: an RPC added to the enum is not compiled until it is in `ALL`.
        let listed = match rpc {
            Rpc::Authorize => 0,
            Rpc::ExtendHold => 1,
            Rpc::Settle => 2,
            Rpc::Release => 3,
            Rpc::Refund => 4,
            Rpc::CreateAccount => 5,
            Rpc::UpdateAccount => 6,
            Rpc::Grant => 7,
            Rpc::SetAllowance => 8,
            Rpc::SetSpendLimit => 9,
            Rpc::PublishCatalog => 10,
            Rpc::CreateWebhookEndpoint => 11,
        };
        assert_eq!(listed, position, "{rpc:?}");
        assert_eq!(Rpc::from_name(rpc.as_str()), Some(rpc));
        assert_eq!(
            rpc.request_message(),
            format!("creditgate.v1.{}Request", rpc.as_str())
        );
        assert!(
            descriptors()
                .and_then(|pool| pool.get_message_by_name(rpc.request_message()))
                .is_some(),
            "{rpc:?}"
        );
        assert!(rpc.key_field().is_some(), "{rpc:?} has an idempotency key");
    }
    assert_eq!(Rpc::from_name("Quote"), None);
    assert_eq!(Rpc::from_name("authorize"), None);
}

#[test]
fn a_stored_decline_replays_as_the_same_decline() {
    for reason in Reason::ALL {
        let declined: Result<Vec<u8>, ServiceError> = Err(ServiceError::Declined {
            reason: *reason,
            message: "refused".to_owned(),
            metadata: vec![("required".to_owned(), "5".to_owned())],
        });
        let stored = stored_answer(&declined).expect("a decline is stored");
        assert_eq!(
            stored,
            StoredAnswer::Declined {
                reason: reason.as_str().to_owned(),
                message: "refused".to_owned(),
                metadata: vec![("required".to_owned(), "5".to_owned())],
            }
        );
        match answer_result(stored) {
            Err(ServiceError::Declined {
                reason: replayed,
                message,
                metadata,
            }) => {
                assert_eq!(replayed, *reason);
                assert_eq!(message, "refused");
                assert_eq!(metadata, vec![("required".to_owned(), "5".to_owned())]);
            }
            other => panic!("{reason:?} replayed as {other:?}"),
        }
    }
}

#[test]
fn a_stored_decline_of_an_unknown_reason_replays_as_internal_naming_it() {
    let answer = answer_result(StoredAnswer::Declined {
        reason: "LIMIT_REACHED".to_owned(),
        message: "refused".to_owned(),
        metadata: Vec::new(),
    });
    match answer {
        Err(ServiceError::Internal(StoreError::Other(cause))) => {
            assert!(cause.contains("\"LIMIT_REACHED\""), "{cause}");
        }
        other => panic!("replayed as {other:?}"),
    }
}

fn authorize(amount: &str) -> Fingerprint {
    let request = AuthorizeRequest {
        account_id: "acct".to_owned(),
        idempotency_key: "key".to_owned(),
        price: Some(Price::Amount(amount.to_owned())),
        ..AuthorizeRequest::default()
    };
    Fingerprint::new("key", Rpc::Authorize, request.encode_to_vec()).expect("a valid key")
}

fn stored(record: &NewRecord) -> StoredRecord {
    record.as_stored()
}

#[test]
fn a_lean_record_replays_the_same_request_and_names_what_another_changed() {
    let first = authorize("1");
    let answer = StoredAnswer::Response(vec![0x08, 0x01]);
    let whole = first.record(TenantId::now_v7(), None, answer);
    let mut lean = whole.clone();
    first.lean(&mut lean);
    // No hash, and the digests of account and amount without the key's: 42 bytes fewer.
    assert_eq!(lean.request_hash, None);
    assert_eq!(whole.request_fields.len() - lean.request_fields.len(), 9);
    for record in [&whole, &lean] {
        let replayed = first.replay(&stored(record)).expect("the same request");
        assert_eq!(replayed, vec![0x08, 0x01]);
        match authorize("2").replay(&stored(record)) {
            Err(ServiceError::IdempotencyKeyReused { fields }) => assert_eq!(fields, ["amount"]),
            other => panic!("replayed as {other:?}"),
        }
    }
    // Digests that do not read never pass for the same request.
    let unreadable = StoredRecord {
        request_fields: Some(vec![0x08]),
        ..stored(&lean)
    };
    match first.replay(&unreadable) {
        Err(ServiceError::IdempotencyKeyReused { fields }) => assert_eq!(fields, ["request"]),
        other => panic!("replayed as {other:?}"),
    }
}
