//! A quote token as its hold keeps it. The hold's row has the quote's id, catalog version,
//! tool and model already (and its account), so of the token it keeps only the rest, *sealed*:
//! whether the quote named the account, its expiry, total, required entitlement and signature,
//! about 42 bytes instead of a token of 120 or more characters in both versions of the row.
//! The token is rebuilt from the two exactly, byte for byte: answers replayed from their hold
//! (docs/MONEY.md, Idempotency) and GetHold show it as Authorize was given it.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{QuoteClaims, Reader, TAG_LENGTH, URL_SAFE_NO_PAD, payload, push_text, token};
use crate::ids::AccountId;

/// Format of a sealed quote (its first byte).
const SEAL_VERSION: u8 = 1;

// A seal of version 1 rebuilds a token of version 1 (`payload` writes the current version): a
// new token layout needs a new seal version that keeps rebuilding the old one.
const _: () = assert!(super::VERSION == 1 && SEAL_VERSION == 1);

/// What a hold's row says of its quote.
#[derive(Debug, Clone, Copy)]
pub struct QuoteOnHold<'a> {
    /// The quote's own id.
    pub quote_id: Uuid,
    /// The hold's account.
    pub account_id: AccountId,
    /// The catalog version that priced it.
    pub catalog_version: i64,
    /// Tool.
    pub tool: &'a str,
    /// Model.
    pub model: &'a str,
}

/// `token` sealed for the hold that says `hold`; `None` when the hold says otherwise than the
/// token or the token would not come back exactly (then the hold keeps it whole).
pub fn seal(token: &str, hold: &QuoteOnHold<'_>) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let (payload, tag) = bytes.split_at_checked(bytes.len().checked_sub(TAG_LENGTH)?)?;
    let claims = Reader(payload).claims()?;
    let names_account = match claims.account_id {
        None => 0,
        Some(account_id) if account_id == hold.account_id => 1,
        Some(_) => return None,
    };
    if claims.quote_id != hold.quote_id
        || claims.catalog_version != hold.catalog_version
        || claims.tool != hold.tool
        || claims.model != hold.model
    {
        return None;
    }
    let mut sealed = Vec::with_capacity(2 + 8 + 16 + 1 + TAG_LENGTH);
    sealed.push(SEAL_VERSION);
    sealed.push(names_account);
    sealed.extend_from_slice(&claims.expires_at.timestamp_micros().to_be_bytes());
    sealed.extend_from_slice(&claims.total.decimal().serialize());
    push_text(&mut sealed, claims.required_entitlement.as_deref())?;
    sealed.extend_from_slice(tag);
    // Proven here rather than assumed: a token that is not exactly what `sign` writes (other
    // base64 padding bits, a total stored with unused flag bits) stays whole.
    (unseal(&sealed, hold).as_deref() == Some(token)).then_some(sealed)
}

/// The token `sealed` was made from, given what its hold says; `None` when `sealed` is not
/// what [`seal`] writes.
pub fn unseal(sealed: &[u8], hold: &QuoteOnHold<'_>) -> Option<String> {
    let mut reader = Reader(sealed);
    if reader.byte()? != SEAL_VERSION {
        return None;
    }
    let account_id = match reader.byte()? {
        0 => None,
        1 => Some(hold.account_id),
        _ => return None,
    };
    let expires_at: DateTime<Utc> = reader.time()?;
    let total = reader.total()?;
    let required_entitlement = reader.text()?;
    let tag: [u8; TAG_LENGTH] = reader.array()?;
    if !reader.0.is_empty() {
        return None;
    }
    let claims = QuoteClaims {
        quote_id: hold.quote_id,
        account_id,
        catalog_version: hold.catalog_version,
        tool: hold.tool.to_owned(),
        model: hold.model.to_owned(),
        required_entitlement,
        total,
        expires_at,
    };
    token(payload(&claims)?, &tag)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use rust_decimal::Decimal;

    use super::super::QuoteKey;
    use super::*;
    use crate::ids::TenantId;
    use crate::money::Credits;

    fn claims(account_id: Option<AccountId>, entitlement: Option<&str>) -> QuoteClaims {
        let now = DateTime::from_timestamp_micros(1_790_000_000_123_456).expect("in range");
        QuoteClaims {
            quote_id: Uuid::now_v7(),
            account_id,
            catalog_version: 3,
            tool: "chat".to_owned(),
            model: "openai/o3-pro".to_owned(),
            required_entitlement: entitlement.map(str::to_owned),
            total: Credits::from_decimal(Decimal::new(2_500_000_001, 9)),
            expires_at: now + chrono::Duration::minutes(5),
        }
    }

    fn on_hold(claims: &QuoteClaims, account_id: AccountId) -> QuoteOnHold<'_> {
        QuoteOnHold {
            quote_id: claims.quote_id,
            account_id,
            catalog_version: claims.catalog_version,
            tool: &claims.tool,
            model: &claims.model,
        }
    }

    #[test]
    fn a_sealed_quote_gives_its_token_back_and_is_much_shorter() {
        let key = QuoteKey::new([7; 32]);
        let account = AccountId::now_v7();
        for claims in [
            claims(Some(account), Some("pro")),
            claims(None, None),
            claims(Some(account), None),
        ] {
            let token = key.sign(TenantId::now_v7(), &claims).expect("short enough");
            let hold = on_hold(&claims, account);
            let sealed = seal(&token, &hold).expect("seals");
            assert_eq!(unseal(&sealed, &hold), Some(token.clone()));
            assert!(
                sealed.len() + 60 < token.len(),
                "{} of {}",
                sealed.len(),
                token.len()
            );
        }
    }

    #[test]
    fn a_hold_that_says_otherwise_keeps_its_token_whole() {
        let key = QuoteKey::new([7; 32]);
        let account = AccountId::now_v7();
        let claims = claims(Some(account), None);
        let token = key.sign(TenantId::now_v7(), &claims).expect("short enough");
        let hold = on_hold(&claims, account);
        let others = [
            QuoteOnHold {
                account_id: AccountId::now_v7(),
                ..hold
            },
            QuoteOnHold {
                quote_id: Uuid::now_v7(),
                ..hold
            },
            QuoteOnHold {
                catalog_version: 4,
                ..hold
            },
            QuoteOnHold {
                tool: "image",
                ..hold
            },
            QuoteOnHold {
                model: "openai/o3",
                ..hold
            },
        ];
        for other in others {
            assert_eq!(seal(&token, &other), None);
        }
        // Not a token at all, or a uuid (the quote ids of holds before tokens).
        assert_eq!(seal("not a token", &hold), None);
        assert_eq!(seal(&claims.quote_id.to_string(), &hold), None);
    }

    #[test]
    fn a_damaged_seal_does_not_read() {
        let key = QuoteKey::new([7; 32]);
        let account = AccountId::now_v7();
        let claims = claims(Some(account), Some("pro"));
        let token = key.sign(TenantId::now_v7(), &claims).expect("short enough");
        let hold = on_hold(&claims, account);
        let sealed = seal(&token, &hold).expect("seals");
        for length in 0..sealed.len() {
            assert_eq!(unseal(&sealed[..length], &hold), None);
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(unseal(&longer, &hold), None);
        // Version, account flag, then the total's flags: its scale byte (12 places) and sign.
        let total_at = 2 + 8;
        for (at, byte) in [(0, 2), (1, 2), (total_at + 2, 12), (total_at + 3, 0x80)] {
            let mut changed = sealed.clone();
            changed[at] = byte;
            assert_eq!(unseal(&changed, &hold), None);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn any_quote_seals_and_reads_back(
            tool in "[ -~]{0,40}",
            model in "\\PC{0,40}",
            entitlement in prop::option::of("\\PC{0,30}"),
            names_account in any::<bool>(),
            units in any::<i64>(),
            scale in 0_u32..=9,
            micros in 0_i64..4_000_000_000_000_000,
            version in any::<i64>(),
        ) {
            let account = AccountId::now_v7();
            let claims = QuoteClaims {
                quote_id: Uuid::now_v7(),
                account_id: names_account.then_some(account),
                catalog_version: version,
                tool,
                model,
                required_entitlement: entitlement,
                total: Credits::from_decimal(Decimal::new(units.saturating_abs(), scale)),
                expires_at: DateTime::from_timestamp_micros(micros).expect("in range"),
            };
            let token = QuoteKey::new([9; 32]).sign(TenantId::now_v7(), &claims).expect("short");
            let hold = on_hold(&claims, account);
            let sealed = seal(&token, &hold);
            prop_assert!(sealed.is_some());
            prop_assert_eq!(unseal(&sealed.expect("sealed"), &hold), Some(token));
        }
    }
}
