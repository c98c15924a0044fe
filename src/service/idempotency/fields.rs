//! Field digests of an encoded request: for each top-level field, its number and 8 bytes of the
//! SHA-256 of its encoding. A record keeps these instead of the request, which is all a reused
//! key's refusal needs to name the fields that changed (the request's own hash decides whether
//! it changed at all).

use std::collections::BTreeMap;

use prost::bytes::Buf as _;
use prost::encoding::{WireType, decode_key, decode_varint};
use sha2::{Digest as _, Sha256};

/// Bytes of a field's digest.
const DIGEST_BYTES: usize = 8;

/// The digests of `request`'s top-level fields, in field-number order: the field number as a
/// varint, then the digest of every occurrence of the field, in order. Empty when the bytes are
/// not a protobuf message (nothing can then be named).
pub fn field_digests(request: &[u8]) -> Vec<u8> {
    let Some(fields) = fields(request) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(fields.len() * (DIGEST_BYTES + 2));
    for (number, hasher) in fields {
        prost::encoding::encode_varint(u64::from(number), &mut out);
        out.extend_from_slice(&hasher.finalize()[..DIGEST_BYTES]);
    }
    out
}

/// The numbers of the fields whose digests differ between two [`field_digests`], or `None`
/// when either cannot be read.
pub fn differing(stored: &[u8], received: &[u8]) -> Option<Vec<u32>> {
    let (stored, received) = (parse(stored)?, parse(received)?);
    let mut numbers: Vec<u32> = stored
        .keys()
        .chain(received.keys())
        .copied()
        .filter(|number| stored.get(number) != received.get(number))
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    Some(numbers)
}

/// `digests` (of [`field_digests`]) without field `number`'s; unchanged when they cannot be
/// read.
pub fn without(digests: &[u8], number: u32) -> Vec<u8> {
    let Some(mut parsed) = parse(digests) else {
        return digests.to_vec();
    };
    parsed.remove(&number);
    let mut out = Vec::with_capacity(digests.len());
    for (number, digest) in parsed {
        prost::encoding::encode_varint(u64::from(number), &mut out);
        out.extend_from_slice(&digest);
    }
    out
}

/// Each top-level field's running hash, by number.
fn fields(mut message: &[u8]) -> Option<BTreeMap<u32, Sha256>> {
    let mut fields: BTreeMap<u32, Sha256> = BTreeMap::new();
    while !message.is_empty() {
        let start = message;
        let (number, wire_type) = decode_key(&mut message).ok()?;
        match wire_type {
            WireType::Varint => {
                decode_varint(&mut message).ok()?;
            }
            WireType::SixtyFourBit => skip(&mut message, 8)?,
            WireType::ThirtyTwoBit => skip(&mut message, 4)?,
            WireType::LengthDelimited => {
                let length = usize::try_from(decode_varint(&mut message).ok()?).ok()?;
                skip(&mut message, length)?;
            }
            WireType::StartGroup | WireType::EndGroup => return None,
        }
        let occurrence = &start[..start.len() - message.len()];
        fields.entry(number).or_default().update(occurrence);
    }
    Some(fields)
}

fn skip(message: &mut &[u8], length: usize) -> Option<()> {
    if message.len() < length {
        return None;
    }
    message.advance(length);
    Some(())
}

fn parse(mut digests: &[u8]) -> Option<BTreeMap<u32, [u8; DIGEST_BYTES]>> {
    let mut parsed = BTreeMap::new();
    while !digests.is_empty() {
        let number = u32::try_from(decode_varint(&mut digests).ok()?).ok()?;
        let digest: [u8; DIGEST_BYTES] = digests.get(..DIGEST_BYTES)?.try_into().ok()?;
        digests.advance(DIGEST_BYTES);
        parsed.insert(number, digest);
    }
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost::Message as _;

    use super::*;
    use crate::proto::v1::{AuthorizeRequest, RunMetadata, authorize_request::Price};

    fn request(amount: &str, tool: &str, ttl: u32) -> Vec<u8> {
        AuthorizeRequest {
            account_id: "acct".to_owned(),
            idempotency_key: "key".to_owned(),
            price: Some(Price::Amount(amount.to_owned())),
            ttl_seconds: ttl,
            run: Some(RunMetadata {
                tool: tool.to_owned(),
                ..RunMetadata::default()
            }),
            ..AuthorizeRequest::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn names_exactly_the_fields_that_changed() {
        let first = field_digests(&request("1", "chat", 60));
        assert_eq!(differing(&first, &first), Some(vec![]));
        assert_eq!(
            differing(&first, &field_digests(&request("2", "chat", 60))),
            Some(vec![3])
        );
        assert_eq!(
            differing(&first, &field_digests(&request("1", "browser", 0))),
            Some(vec![6, 7]),
            "a nested field names its top-level field; a field left out differs too"
        );
    }

    #[test]
    fn a_digest_is_a_few_bytes_per_field_whatever_the_field_holds() {
        let small = field_digests(&request("1", "chat", 60));
        let large = field_digests(&request("1", &"x".repeat(4_000), 60));
        assert_eq!(small.len(), 5 * (1 + DIGEST_BYTES));
        assert_eq!(large.len(), small.len());
    }

    #[test]
    fn digests_without_a_field_are_those_of_the_request_without_it() {
        let whole = request("1", "chat", 60);
        let without_key = AuthorizeRequest {
            idempotency_key: String::new(),
            ..AuthorizeRequest::decode(whole.as_slice()).expect("it decodes")
        };
        let lean = without(&field_digests(&whole), 2);
        assert_eq!(lean, field_digests(&without_key.encode_to_vec()));
        assert_eq!(lean.len(), 4 * (1 + DIGEST_BYTES));
        assert_eq!(differing(&lean, &field_digests(&whole)), Some(vec![2]));
        // Digests that do not read are kept as they are.
        assert_eq!(without(&[0x08], 2), vec![0x08]);
    }

    #[test]
    fn bytes_that_are_not_a_message_name_nothing() {
        assert_eq!(field_digests(&[0x0a, 0x05, b'a']), Vec::<u8>::new());
        assert_eq!(differing(&[0x08], &[]), None);
    }

    proptest! {
        #[test]
        fn equal_requests_never_differ_and_one_change_names_one_field(
            amount in "[0-9]{1,6}", tool in "[a-z]{0,12}", ttl in 0_u32..100_000, other in "[0-9]{1,6}",
        ) {
            let digests = field_digests(&request(&amount, &tool, ttl));
            prop_assert_eq!(differing(&digests, &field_digests(&request(&amount, &tool, ttl))), Some(vec![]));
            let changed = differing(&digests, &field_digests(&request(&other, &tool, ttl)));
            prop_assert_eq!(changed, Some(if other == amount { vec![] } else { vec![3] }));
        }
    }
}
