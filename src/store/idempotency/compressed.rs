//! A stored response, LZ4-compressed when that saves bytes. A response is an encoded protobuf
//! message, whose first byte is never 0 (a field tag of field 0), so a leading 0 marks the
//! compressed form and responses stored before it read unchanged.
//!
//! A response may also be compressed against a dictionary: text the database holds elsewhere
//! (the hold the answer shows), so that what the ledger keeps already is not stored again.
//! Its length has the top bit set, which a server of the version before reads as too large:
//! it answers an internal error, never another answer (and records in this form are written
//! only once no such server is connected). A check of the response catches a dictionary that
//! is not the one it was compressed against.

use sha2::Digest as _;

/// Marks a compressed response.
const MARK: u8 = 0;
/// Responses shorter than this are stored as they are (little to gain).
const MIN_COMPRESSED: usize = 64;
/// Largest response a stored one may expand to (gRPC messages are far smaller).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
/// Set in the length of a response compressed against a dictionary.
const WITH_DICTIONARY: u32 = 1 << 31;
/// Bytes of the response's SHA-256 kept to check what a dictionary expands to: a changed
/// dictionary of the same length expands to a response of the right length, which only the
/// check tells apart (a chance of 2⁻⁶⁴ to miss).
const CHECK_LENGTH: usize = 8;

fn check(response: &[u8]) -> [u8; CHECK_LENGTH] {
    let digest = sha2::Sha256::digest(response);
    let mut check = [0_u8; CHECK_LENGTH];
    check.copy_from_slice(&digest[..CHECK_LENGTH]);
    check
}

/// The bytes to store for `response`, compressed against `dictionary` when that is shorter
/// than [`store`]'s form; whether the dictionary was used.
pub fn store_with(response: &[u8], dictionary: &[u8]) -> (Vec<u8>, bool) {
    let plain = store(response);
    if dictionary.is_empty() || response.len() < MIN_COMPRESSED || response.len() > MAX_RESPONSE {
        return (plain, false);
    }
    let compressed = lz4_flex::block::compress_with_dict(response, dictionary);
    let length = u32::try_from(response.len()).unwrap_or(u32::MAX) | WITH_DICTIONARY;
    let mut stored = Vec::with_capacity(compressed.len() + 5 + CHECK_LENGTH);
    stored.push(MARK);
    stored.extend_from_slice(&length.to_le_bytes());
    stored.extend_from_slice(&check(response));
    stored.extend_from_slice(&compressed);
    if stored.len() < plain.len() {
        (stored, true)
    } else {
        (plain, false)
    }
}

/// Whether `stored` was compressed against a dictionary (which [`load_with`] then needs).
pub fn needs_dictionary(stored: &[u8]) -> bool {
    stored.first() == Some(&MARK)
        && stored
            .get(1..5)
            .and_then(|length| <[u8; 4]>::try_from(length).ok())
            .is_some_and(|length| u32::from_le_bytes(length) & WITH_DICTIONARY != 0)
}

/// The response stored as `stored`, expanded against `dictionary` when it was compressed
/// against one; `None` when it does not expand, or not to what was stored.
pub fn load_with(stored: Vec<u8>, dictionary: &[u8]) -> Option<Vec<u8>> {
    if !needs_dictionary(&stored) {
        return load(stored);
    }
    let length: [u8; 4] = stored.get(1..5)?.try_into().ok()?;
    let length = usize::try_from(u32::from_le_bytes(length) & !WITH_DICTIONARY).ok()?;
    if length > MAX_RESPONSE {
        return None;
    }
    let expected = stored.get(5..5 + CHECK_LENGTH)?;
    let block = stored.get(5 + CHECK_LENGTH..)?;
    let response = lz4_flex::block::decompress_with_dict(block, length, dictionary).ok()?;
    (response.len() == length && check(&response) == expected).then_some(response)
}

/// The bytes to store for `response`.
pub fn store(response: &[u8]) -> Vec<u8> {
    if response.len() >= MIN_COMPRESSED && response.len() <= MAX_RESPONSE {
        let compressed = lz4_flex::block::compress(response);
        // The mark and the length (4 bytes) must still leave it shorter.
        if compressed.len() + 5 < response.len() {
            let length = u32::try_from(response.len()).unwrap_or(u32::MAX);
            let mut stored = Vec::with_capacity(compressed.len() + 5);
            stored.push(MARK);
            stored.extend_from_slice(&length.to_le_bytes());
            stored.extend_from_slice(&compressed);
            return stored;
        }
    }
    response.to_vec()
}

/// The response stored as `stored`; `None` when a compressed one does not expand.
pub fn load(stored: Vec<u8>) -> Option<Vec<u8>> {
    if stored.first() != Some(&MARK) {
        return Some(stored);
    }
    let length: [u8; 4] = stored.get(1..5)?.try_into().ok()?;
    let length = usize::try_from(u32::from_le_bytes(length)).ok()?;
    if length > MAX_RESPONSE {
        return None;
    }
    lz4_flex::block::decompress(stored.get(5..)?, length).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_repetitive_response_is_stored_smaller_and_loads_back() {
        let response: Vec<u8> =
            b"\x0a\x24hold 01a22d3e-fd94-762e-ad6a-bbb13d2f3a80 model bytedance/seed-1.8 "
                .repeat(4);
        let stored = store(&response);
        assert_eq!(stored[0], MARK);
        assert!(stored.len() < response.len() / 2, "{} bytes", stored.len());
        assert_eq!(load(stored), Some(response));
    }

    #[test]
    fn short_or_incompressible_responses_are_stored_as_they_are() {
        assert_eq!(store(b"\x0a\x02ok"), b"\x0a\x02ok");
        assert_eq!(store(&[]), Vec::<u8>::new());
        // SHA-256 output does not compress.
        let noise: Vec<u8> = (0_u8..7)
            .flat_map(|n| <sha2::Sha256 as sha2::Digest>::digest([n]))
            .map(|byte| byte | 1)
            .collect();
        assert_eq!(store(&noise), noise);
        assert_eq!(load(noise.clone()), Some(noise));
    }

    #[test]
    fn a_damaged_compressed_response_does_not_load() {
        let response = b"\x0a\x10abcdefabcdefabcd".repeat(8);
        let mut stored = store(&response);
        stored.truncate(stored.len() - 3);
        assert_ne!(load(stored), Some(response));
        assert_eq!(
            load(vec![MARK, 0xff, 0xff, 0xff, 0xff, 1]),
            None,
            "too large to expand"
        );
        assert_eq!(load(vec![MARK, 1]), None);
    }

    const HOLD_TEXT: &[u8] = b"01a22d3e-fd94-762e-ad6a-bbb13d2f3a80\x0099aa2d3e-fd94-762e-ad6a-bbb13d2f3a81\x00\
        AQGi0JzT1Hl3kP2gVx6rQmZ0bEtZcG9ydHMtdGhpcy1pcy1hLXNpZ25lZC1xdW90ZS10b2tlbi1vZi1hYm91dC0xMjAtY2hhcnM\x00\
        bytedance/seed-1.8\x00run-7\x00";

    fn answer() -> Vec<u8> {
        let mut answer = b"\x0a\x24".to_vec();
        answer.extend_from_slice(&HOLD_TEXT[..36]);
        answer.extend_from_slice(b"\x12\x24");
        answer.extend_from_slice(&HOLD_TEXT[37..73]);
        answer.extend_from_slice(b"\x22\x0512.50\x42\x66");
        answer.extend_from_slice(&HOLD_TEXT[74..176]);
        answer.extend_from_slice(b"\x52\x14\x1a\x12bytedance/seed-1.8");
        answer
    }

    #[test]
    fn a_response_compressed_against_its_dictionary_loads_back_only_with_it() {
        let response = answer();
        let (stored, used) = store_with(&response, HOLD_TEXT);
        assert!(used);
        assert!(needs_dictionary(&stored));
        assert!(
            stored.len() + 100 < store(&response).len(),
            "{} bytes against {}",
            stored.len(),
            store(&response).len()
        );
        assert_eq!(load_with(stored.clone(), HOLD_TEXT), Some(response.clone()));
        // Another dictionary (a changed text) is caught by the check, never another answer.
        let mut other = HOLD_TEXT.to_vec();
        other[40] ^= 1;
        assert_eq!(load_with(stored.clone(), &other), None);
        assert_eq!(load_with(stored.clone(), b""), None);
        // A server that knows no dictionaries finds the length too large: nothing loads.
        assert_eq!(load(stored), None);
    }

    #[test]
    fn without_a_gain_from_the_dictionary_the_plain_form_is_stored() {
        let response = answer();
        let (stored, used) = store_with(&response, b"nothing in common at all here");
        assert!(!used);
        assert_eq!(stored, store(&response));
        assert_eq!(load_with(stored, b"anything"), Some(response.clone()));
        assert_eq!(store_with(&response, b""), (store(&response), false));
    }

    proptest! {
        #[test]
        fn every_response_loads_back_against_its_dictionary(
            first in 1_u8..=255,
            rest in proptest::collection::vec(0_u8..4, 0..600),
            dictionary in proptest::collection::vec(0_u8..4, 0..300),
        ) {
            let mut response = vec![first];
            response.extend(rest);
            let (stored, _) = store_with(&response, &dictionary);
            prop_assert_eq!(load_with(stored, &dictionary), Some(response));
        }

        #[test]
        fn every_response_loads_back_as_it_was(
            first in 1_u8..=255, rest in proptest::collection::vec(0_u8..4, 0..600),
        ) {
            let mut response = vec![first];
            response.extend(rest);
            prop_assert_eq!(load(store(&response)), Some(response));
        }
    }
}
