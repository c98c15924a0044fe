//! Wire amounts: any bytes (lossily as text) through `parse_amount`. No panic; an accepted
//! amount is within the bounds and prints back to itself; a refusal is a short `AmountError`.
#![no_main]

use creditgate::money::{AmountError, Credits, parse_amount};
use libfuzzer_sys::fuzz_target;

/// Longest refusal message: the template plus at most 64 characters of input, escaped.
const MAX_MESSAGE_BYTES: usize = 1_024;

fuzz_target!(|input: (bool, u32, &[u8])| {
    let (allow_zero, max_whole, bytes) = input;
    let text = String::from_utf8_lossy(bytes);
    let max = Credits::whole(i64::from(max_whole));
    match parse_amount(&text, max, allow_zero) {
        Ok(amount) => {
            assert!(amount <= max, "{text:?} parsed above the maximum");
            assert!(
                allow_zero || amount.is_positive(),
                "{text:?} parsed as zero"
            );
            assert!(!amount.decimal().is_sign_negative() || amount.is_zero());
            assert!(
                text.bytes()
                    .all(|byte| byte.is_ascii_digit() || byte == b'.'),
                "{text:?} is not a plain decimal yet was accepted"
            );
            assert_eq!(
                parse_amount(&amount.to_string(), max, allow_zero),
                Ok(amount)
            );
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.len() <= MAX_MESSAGE_BYTES,
                "{} bytes",
                message.len()
            );
            if let AmountError::Zero = error {
                assert!(!allow_zero);
            }
        }
    }
});
