//! Money: [`Credits`], an exact decimal with at most 9 decimal places, parsed strictly from
//! wire strings. Never a float.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr as _;

use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places an amount may have.
pub const MAX_DECIMAL_PLACES: u32 = 9;
/// Longest amount string accepted, before parsing.
const MAX_AMOUNT_TEXT: usize = 40;

/// An exact amount of credits (may be negative only inside journal arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Credits(Decimal);

impl Credits {
    /// Zero credits.
    pub const ZERO: Credits = Credits(Decimal::ZERO);

    /// Wraps a decimal that already has at most 9 decimal places (as stored in `NUMERIC`).
    ///
    /// # Panics
    /// On a value finer than 9 places: every amount is exact to 9 places, so a finer one is a
    /// bug upstream that must not be stored or compared as if it were an amount.
    pub fn from_decimal(value: Decimal) -> Credits {
        // The scale alone settles it in the usual case; trailing zeros are normalized away
        // only when it is over.
        assert!(
            value.scale() <= MAX_DECIMAL_PLACES || value.normalize().scale() <= MAX_DECIMAL_PLACES,
            "an amount has at most {MAX_DECIMAL_PLACES} decimal places, not {value}"
        );
        Credits(value)
    }

    /// Rounds `value` to 9 decimal places, half to even: the one rounding of a price.
    pub fn round_half_even(value: Decimal) -> Credits {
        Credits(
            value.round_dp_with_strategy(MAX_DECIMAL_PLACES, RoundingStrategy::MidpointNearestEven),
        )
    }

    /// Whole credits, for tests and defaults.
    pub fn whole(value: i64) -> Credits {
        Credits(Decimal::from(value))
    }

    /// The decimal value.
    pub fn decimal(self) -> Decimal {
        self.0
    }

    /// Whether this is zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Whether this is above zero.
    pub fn is_positive(self) -> bool {
        self.0 > Decimal::ZERO
    }

    /// The smaller of two amounts.
    pub fn min(self, other: Credits) -> Credits {
        if self <= other { self } else { other }
    }
}

impl fmt::Display for Credits {
    /// The wire form: plain decimal, no exponent, no trailing zeros ("2.5", "0").
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0.normalize())
    }
}

impl Add for Credits {
    type Output = Credits;
    fn add(self, other: Credits) -> Credits {
        Credits(self.0 + other.0)
    }
}

impl Sub for Credits {
    type Output = Credits;
    fn sub(self, other: Credits) -> Credits {
        Credits(self.0 - other.0)
    }
}

impl Neg for Credits {
    type Output = Credits;
    fn neg(self) -> Credits {
        Credits(-self.0)
    }
}

impl AddAssign for Credits {
    fn add_assign(&mut self, other: Credits) {
        self.0 += other.0;
    }
}

impl SubAssign for Credits {
    fn sub_assign(&mut self, other: Credits) {
        self.0 -= other.0;
    }
}

impl Sum for Credits {
    fn sum<I: Iterator<Item = Credits>>(amounts: I) -> Credits {
        amounts.fold(Credits::ZERO, Add::add)
    }
}

/// Why an amount string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a plain non-negative decimal.
    #[error(
        "{0:?} is not an amount: expected a plain decimal string such as \"12.5\" (digits, optionally a point and up to 9 decimals; no sign, exponent or spaces)"
    )]
    Malformed(String),
    /// More than 9 decimal places.
    #[error("{0:?} has more than 9 decimal places")]
    TooPrecise(String),
    /// Zero where a positive amount is required.
    #[error("amount must be greater than zero")]
    Zero,
    /// Above the configured maximum.
    #[error("{text:?} is above the maximum amount {max}")]
    TooLarge {
        /// What was sent.
        text: String,
        /// The largest amount accepted.
        max: Credits,
    },
}

/// Parses a wire amount: digits, optionally `.` and 1–9 digits; not above `max`; zero only when
/// `allow_zero`.
pub fn parse_amount(text: &str, max: Credits, allow_zero: bool) -> Result<Credits, AmountError> {
    let malformed = || AmountError::Malformed(text.chars().take(MAX_AMOUNT_TEXT).collect());
    if text.is_empty() || text.len() > MAX_AMOUNT_TEXT {
        return Err(malformed());
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|fraction| !digits(fraction)) {
        return Err(malformed());
    }
    if fraction.is_some_and(|fraction| fraction.len() > MAX_DECIMAL_PLACES as usize) {
        return Err(AmountError::TooPrecise(text.to_owned()));
    }
    let value = Decimal::from_str(text).map_err(|_| malformed())?;
    let amount = Credits(value);
    if amount > max {
        return Err(AmountError::TooLarge {
            text: text.to_owned(),
            max,
        });
    }
    if amount.is_zero() && !allow_zero {
        return Err(AmountError::Zero);
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max() -> Credits {
        Credits::whole(1_000_000)
    }

    #[test]
    fn plain_decimals_parse_exactly() {
        assert_eq!(
            parse_amount("12.5", max(), false).map(|a| a.to_string()),
            Ok("12.5".into())
        );
        assert_eq!(
            parse_amount("0.000000001", max(), false).map(|a| a.to_string()),
            Ok("0.000000001".into())
        );
        assert_eq!(parse_amount("1000000", max(), false), Ok(max()));
        assert_eq!(parse_amount("0", max(), true), Ok(Credits::ZERO));
        assert_eq!(
            parse_amount("2.500", max(), false).map(|a| a.to_string()),
            Ok("2.5".into())
        );
    }

    #[test]
    fn everything_else_is_refused() {
        for text in [
            "", "-1", "+1", "1e3", "1E3", " 1", "1 ", "1.", ".5", "abc", "1,5", "NaN", "0x10",
            "1.2.3",
        ] {
            assert!(
                matches!(
                    parse_amount(text, max(), true),
                    Err(AmountError::Malformed(_))
                ),
                "{text:?} must be malformed"
            );
        }
        assert!(matches!(
            parse_amount("0.0000000001", max(), true),
            Err(AmountError::TooPrecise(_))
        ));
        assert!(matches!(
            parse_amount("1000000.000000001", max(), true),
            Err(AmountError::TooLarge { .. })
        ));
        assert_eq!(parse_amount("0.000", max(), false), Err(AmountError::Zero));
        assert!(parse_amount(&"9".repeat(50), max(), true).is_err());
    }

    #[test]
    fn rounding_is_half_even_at_nine_places() {
        let half_up = Decimal::from_str("0.0000000005").unwrap_or_default();
        let one_and_half = Decimal::from_str("0.0000000015").unwrap_or_default();
        assert_eq!(Credits::round_half_even(half_up), Credits::ZERO);
        assert_eq!(
            Credits::round_half_even(one_and_half).to_string(),
            "0.000000002"
        );
    }

    #[test]
    fn trailing_zeros_past_nine_places_are_still_an_amount() {
        let value = Decimal::new(1_500, 11);
        assert_eq!(Credits::from_decimal(value).decimal(), value);
    }

    #[test]
    #[should_panic(expected = "at most 9 decimal places")]
    fn an_amount_finer_than_nine_places_is_a_bug() {
        let _ = Credits::from_decimal(Decimal::new(1, 10));
    }
}
