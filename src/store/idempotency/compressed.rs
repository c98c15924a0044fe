//! A stored response, LZ4-compressed when that saves bytes. A response is an encoded protobuf
//! message, whose first byte is never 0 (a field tag of field 0), so a leading 0 marks the
//! compressed form and responses stored before it read unchanged.

/// Marks a compressed response.
const MARK: u8 = 0;
/// Responses shorter than this are stored as they are (little to gain).
const MIN_COMPRESSED: usize = 64;
/// Largest response a stored one may expand to (gRPC messages are far smaller).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

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

    proptest! {
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
