//! Quote ids are signed tokens carrying the quote itself (price, catalog version, tool, model,
//! account, expiry), so Quote writes nothing and any replica can check a quote at Authorize
//! without a database read. The signature (HMAC-SHA-256 under a key every replica shares)
//! covers the tenant too, so a quote works only for the tenant that asked for it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use rust_decimal::Decimal;
use sha2::Sha256;
use uuid::Uuid;

use crate::ids::{AccountId, TenantId};
use crate::money::{Credits, MAX_DECIMAL_PLACES};

pub use sealed::{QuoteOnHold, seal, unseal};

mod sealed;

const VERSION: u8 = 1;
/// Bytes of the signature kept (128 bits).
const TAG_LENGTH: usize = 16;
/// Longest token accepted; longer input is refused before decoding.
pub const MAX_TOKEN_LENGTH: usize = 1_024;

/// What a quote says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteClaims {
    /// The quote's own id (recorded on the hold).
    pub quote_id: Uuid,
    /// The account it was made for, if any.
    pub account_id: Option<AccountId>,
    /// Catalog version that priced it.
    pub catalog_version: i64,
    /// Tool.
    pub tool: String,
    /// Model.
    pub model: String,
    /// Entitlement the model requires.
    pub required_entitlement: Option<String>,
    /// Total.
    pub total: Credits,
    /// Valid until.
    pub expires_at: DateTime<Utc>,
}

/// The key quotes are signed with.
#[derive(Clone)]
pub struct QuoteKey([u8; 32]);

impl std::fmt::Debug for QuoteKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("QuoteKey(..)")
    }
}

impl QuoteKey {
    /// A key from its bytes.
    pub fn new(secret: [u8; 32]) -> Self {
        QuoteKey(secret)
    }

    fn tag(&self, tenant_id: TenantId, payload: &[u8]) -> [u8; TAG_LENGTH] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(tenant_id.uuid().as_bytes());
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut tag = [0_u8; TAG_LENGTH];
        tag.copy_from_slice(&full[..TAG_LENGTH]);
        tag
    }

    /// The token of `claims` for `tenant_id`; `None` when it would be longer than Authorize
    /// accepts (a catalog naming a tool, model or entitlement of hundreds of bytes).
    pub fn sign(&self, tenant_id: TenantId, claims: &QuoteClaims) -> Option<String> {
        let payload = payload(claims)?;
        let tag = self.tag(tenant_id, &payload);
        token(payload, &tag)
    }

    /// The claims of `token` if this key signed it for `tenant_id`; `None` for anything else
    /// (malformed, tampered with, another tenant's, another key's).
    pub fn verify(&self, tenant_id: TenantId, token: &str) -> Option<QuoteClaims> {
        if token.len() > MAX_TOKEN_LENGTH {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let (payload, tag) = bytes.split_at_checked(bytes.len().checked_sub(TAG_LENGTH)?)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).ok()?;
        mac.update(tenant_id.uuid().as_bytes());
        mac.update(payload);
        mac.verify_truncated_left(tag).ok()?;
        Reader(payload).claims()
    }
}

/// What [`QuoteKey::sign`] signs: `None` when a text is longer than a length prefix holds.
fn payload(claims: &QuoteClaims) -> Option<Vec<u8>> {
    let mut payload = Vec::with_capacity(128);
    payload.push(VERSION);
    payload.extend_from_slice(claims.quote_id.as_bytes());
    match claims.account_id {
        Some(account_id) => {
            payload.push(1);
            payload.extend_from_slice(account_id.uuid().as_bytes());
        }
        None => payload.push(0),
    }
    payload.extend_from_slice(&claims.catalog_version.to_be_bytes());
    payload.extend_from_slice(&claims.expires_at.timestamp_micros().to_be_bytes());
    payload.extend_from_slice(&claims.total.decimal().serialize());
    for text in [
        Some(&claims.tool),
        Some(&claims.model),
        claims.required_entitlement.as_ref(),
    ] {
        push_text(&mut payload, text.map(String::as_str))?;
    }
    Some(payload)
}

/// An optional text as a payload keeps it: 0, or 1, a 2-byte length and the bytes.
fn push_text(bytes: &mut Vec<u8>, text: Option<&str>) -> Option<()> {
    match text {
        Some(text) => {
            let length = u16::try_from(text.len()).ok()?;
            bytes.push(1);
            bytes.extend_from_slice(&length.to_be_bytes());
            bytes.extend_from_slice(text.as_bytes());
        }
        None => bytes.push(0),
    }
    Some(())
}

/// The token of a payload and its tag; `None` when longer than Authorize accepts.
fn token(mut payload: Vec<u8>, tag: &[u8; TAG_LENGTH]) -> Option<String> {
    payload.extend_from_slice(tag);
    let token = URL_SAFE_NO_PAD.encode(payload);
    (token.len() <= MAX_TOKEN_LENGTH).then_some(token)
}

/// Reads a payload written by [`QuoteKey::sign`].
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(count)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn time(&mut self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(i64::from_be_bytes(self.array()?))
    }

    /// An amount as `sign` writes it; anything else is refused rather than break `Credits`'
    /// invariant (neither a signature nor a seal vouches for it).
    fn total(&mut self) -> Option<Credits> {
        let total = Decimal::deserialize(self.array()?);
        if total < Decimal::ZERO || total.normalize().scale() > MAX_DECIMAL_PLACES {
            return None;
        }
        Some(Credits::from_decimal(total))
    }

    fn text(&mut self) -> Option<Option<String>> {
        match self.byte()? {
            0 => Some(None),
            1 => {
                let length = u16::from_be_bytes(self.array()?);
                let bytes = self.take(usize::from(length))?;
                Some(Some(String::from_utf8(bytes.to_vec()).ok()?))
            }
            _ => None,
        }
    }

    fn claims(mut self) -> Option<QuoteClaims> {
        if self.byte()? != VERSION {
            return None;
        }
        let quote_id = Uuid::from_bytes(self.array()?);
        let account_id = match self.byte()? {
            0 => None,
            1 => Some(AccountId::from_uuid(Uuid::from_bytes(self.array()?))),
            _ => return None,
        };
        let catalog_version = i64::from_be_bytes(self.array()?);
        let expires_at = self.time()?;
        let total = self.total()?;
        let tool = self.text()??;
        let model = self.text()??;
        let required_entitlement = self.text()?;
        if !self.0.is_empty() {
            return None;
        }
        Some(QuoteClaims {
            quote_id,
            account_id,
            catalog_version,
            tool,
            model,
            required_entitlement,
            total,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::pricing::hostile::hostile_text;

    fn claims() -> QuoteClaims {
        let now = DateTime::from_timestamp_micros(1_790_000_000_123_456).expect("in range");
        QuoteClaims {
            quote_id: Uuid::now_v7(),
            account_id: Some(AccountId::now_v7()),
            catalog_version: 3,
            tool: "chat".to_owned(),
            model: "openai/o3-pro".to_owned(),
            required_entitlement: Some("pro".to_owned()),
            total: Credits::from_decimal(Decimal::new(2_500_000_001, 9)),
            expires_at: now + chrono::Duration::minutes(5),
        }
    }

    #[test]
    fn a_signed_quote_reads_back_for_its_tenant_only() {
        let key = QuoteKey::new([7; 32]);
        let tenant = TenantId::now_v7();
        let claims = claims();
        let token = key.sign(tenant, &claims).expect("short enough");
        assert_eq!(key.verify(tenant, &token), Some(claims.clone()));
        assert_eq!(key.verify(TenantId::now_v7(), &token), None);
        assert_eq!(QuoteKey::new([8; 32]).verify(tenant, &token), None);
        let bare = QuoteClaims {
            account_id: None,
            required_entitlement: None,
            tool: String::new(),
            ..claims
        };
        let token = key.sign(tenant, &bare).expect("short enough");
        assert_eq!(key.verify(tenant, &token), Some(bare));
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let key = QuoteKey::new([7; 32]);
        let tenant = TenantId::now_v7();
        let token = key.sign(tenant, &claims()).expect("short enough");
        let bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64url");
        for index in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[index] ^= 0x01;
            assert_eq!(key.verify(tenant, &URL_SAFE_NO_PAD.encode(changed)), None);
        }
        for length in 0..bytes.len() {
            let cut = URL_SAFE_NO_PAD.encode(&bytes[..length]);
            assert_eq!(key.verify(tenant, &cut), None);
        }
    }

    #[test]
    fn a_quote_too_long_to_accept_is_not_signed() {
        let key = QuoteKey::new([7; 32]);
        let long = QuoteClaims {
            required_entitlement: Some("e".repeat(MAX_TOKEN_LENGTH)),
            ..claims()
        };
        assert_eq!(key.sign(TenantId::now_v7(), &long), None);
    }

    #[test]
    fn garbage_is_refused() {
        let key = QuoteKey::new([7; 32]);
        let tenant = TenantId::now_v7();
        for token in [
            "",
            "not a token",
            "0190a3c2-0000-7000-8000-000000000000",
            "AAAA",
        ] {
            assert_eq!(key.verify(tenant, token), None);
        }
        assert_eq!(key.verify(tenant, &"A".repeat(MAX_TOKEN_LENGTH + 4)), None);
    }

    #[test]
    fn a_signed_total_that_is_not_an_amount_is_refused() {
        let key = QuoteKey::new([7; 32]);
        let tenant = TenantId::now_v7();
        let token = key.sign(tenant, &claims()).expect("short enough");
        let bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64url");
        let payload = &bytes[..bytes.len() - TAG_LENGTH];
        // version, quote id, account flag and id, catalog version, expiry: then the total.
        let at = 1 + 16 + 1 + 16 + 8 + 8;
        for total in [Decimal::new(1, 10), Decimal::new(-1, 0)] {
            let mut changed = payload.to_vec();
            changed[at..at + 16].copy_from_slice(&total.serialize());
            let tag = key.tag(tenant, &changed);
            changed.extend_from_slice(&tag);
            assert_eq!(key.verify(tenant, &URL_SAFE_NO_PAD.encode(changed)), None);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn hostile_quote_ids_never_verify(
            text in hostile_text(),
            bytes in prop::collection::vec(any::<u8>(), 0..1_200),
        ) {
            let key = QuoteKey::new([7; 32]);
            let tenant = TenantId::now_v7();
            prop_assert_eq!(key.verify(tenant, &text), None);
            // Well-formed base64url of any length, up to past the longest token.
            prop_assert_eq!(key.verify(tenant, &URL_SAFE_NO_PAD.encode(&bytes)), None);
        }
    }
}
