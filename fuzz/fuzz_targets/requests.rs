//! Request messages: arbitrary bytes decoded as each request message, then the pure steps that
//! read them: the idempotency key check and the field-by-field comparison of two encoded
//! requests (proto descriptors), amounts, quote ids. The API's own parse functions (`api::parse`,
//! `api::pricing`) are private to the crate, so they are reached through the gRPC tests instead.
#![no_main]

use creditgate::money::{Credits, parse_amount};
use creditgate::proto::v1;
use creditgate::service::ServiceError;
use creditgate::service::idempotency::{Fingerprint, Rpc};
use creditgate::pricing::quote_token::QuoteKey;
use creditgate::store::idempotency::{StoredAnswer, StoredRecord};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use uuid::Uuid;

/// What a mutating request carries that the pure steps read.
struct Fields<'a> {
    key: &'a str,
    amounts: Vec<&'a str>,
    quote_id: Option<&'a str>,
}

/// Decodes `bytes` as `M`; re-encoding and decoding again must give the same message.
fn decode<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<M> {
    let message = M::decode(bytes).ok()?;
    assert_eq!(
        M::decode(message.encode_to_vec().as_slice()).as_ref(),
        Ok(&message)
    );
    Some(message)
}

/// The pure steps of one mutating request: key check, then replay against a stored request.
fn check(rpc: Rpc, fields: Fields<'_>, encoded: Vec<u8>, stored: &[u8]) {
    for text in fields.amounts {
        let _ = parse_amount(text, Credits::whole(1_000_000_000), true);
    }
    if let Some(text) = fields.quote_id {
        assert_eq!(QuoteKey::new([7; 32]).verify(creditgate::ids::TenantId::from_uuid(Uuid::nil()), text), None);
    }
    let Ok(fingerprint) = Fingerprint::new(fields.key, rpc, encoded) else {
        return;
    };
    let record = StoredRecord {
        rpc: rpc.as_str().to_owned(),
        request_hash: Vec::new(),
        // A record of the form before field digests: the request whole.
        request_fields: None,
        request: Some(stored.to_vec()),
        answer: StoredAnswer::Response(Vec::new()),
    };
    match fingerprint.replay(&record) {
        Err(ServiceError::IdempotencyKeyReused { fields }) => {
            assert!(fields.len() <= 32, "{fields:?}");
        }
        other => panic!("a request with another hash replayed as {other:?}"),
    }
}

fuzz_target!(|input: (u8, &[u8], &[u8])| {
    let (which, bytes, stored) = input;
    match which % 8 {
        0 => {
            if let Some(request) = decode::<v1::QuoteRequest>(bytes) {
                let _ = request.usage.map(|usage| usage.encode_to_vec());
            }
        }
        1 => {
            if let Some(request) = decode::<v1::AuthorizeRequest>(bytes) {
                use v1::authorize_request::Price;
                let (amounts, quote_id) = match &request.price {
                    Some(Price::Amount(text)) => (vec![text.as_str()], None),
                    Some(Price::QuoteId(text)) => (Vec::new(), Some(text.as_str())),
                    _ => (Vec::new(), None),
                };
                let fields = Fields {
                    key: &request.idempotency_key,
                    amounts,
                    quote_id,
                };
                check(Rpc::Authorize, fields, request.encode_to_vec(), stored);
            }
        }
        2 => {
            if let Some(request) = decode::<v1::SettleRequest>(bytes) {
                let amounts = match &request.charge {
                    Some(v1::settle_request::Charge::Amount(text)) => vec![text.as_str()],
                    _ => Vec::new(),
                };
                let fields = Fields {
                    key: &request.idempotency_key,
                    amounts,
                    quote_id: None,
                };
                check(Rpc::Settle, fields, request.encode_to_vec(), stored);
            }
        }
        3 => {
            if let Some(request) = decode::<v1::GrantRequest>(bytes) {
                let fields = Fields {
                    key: &request.idempotency_key,
                    amounts: vec![&request.amount],
                    quote_id: None,
                };
                check(Rpc::Grant, fields, request.encode_to_vec(), stored);
            }
        }
        4 => {
            if let Some(request) = decode::<v1::ExtendHoldRequest>(bytes) {
                let fields = Fields {
                    key: &request.idempotency_key,
                    amounts: vec![&request.amount],
                    quote_id: None,
                };
                check(Rpc::ExtendHold, fields, request.encode_to_vec(), stored);
            }
        }
        5 => {
            if let Some(request) = decode::<v1::RefundRequest>(bytes) {
                let fields = Fields {
                    key: &request.idempotency_key,
                    amounts: vec![&request.amount],
                    quote_id: None,
                };
                check(Rpc::Refund, fields, request.encode_to_vec(), stored);
            }
        }
        6 => {
            if let Some(request) = decode::<v1::ReleaseRequest>(bytes) {
                let fields = Fields {
                    key: &request.idempotency_key,
                    amounts: Vec::new(),
                    quote_id: None,
                };
                check(Rpc::Release, fields, request.encode_to_vec(), stored);
            }
        }
        _ => {
            if let Some(request) = decode::<v1::PublishCatalogRequest>(bytes) {
                let _ = request.catalog.map(|catalog| catalog.encode_to_vec());
            }
        }
    }
});
