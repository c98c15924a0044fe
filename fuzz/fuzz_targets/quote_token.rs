//! Quote tokens (`quote_id`): arbitrary text must never verify; arbitrary payloads signed with
//! the right key (what a leaked key or a signing bug would let through) must decode or be
//! refused without a panic, and whatever decodes signs back to the same claims; arbitrary claims
//! round-trip, sealed for their hold too; arbitrary seals unseal or are refused without a panic.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use creditgate::ids::{AccountId, TenantId};
use creditgate::money::Credits;
use creditgate::pricing::quote_token::{QuoteClaims, QuoteKey, QuoteOnHold, seal, unseal};
use hmac::{Hmac, Mac as _};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use sha2::Sha256;
use uuid::Uuid;

const SECRET: [u8; 32] = [7; 32];
const TENANT: TenantId =
    TenantId::from_uuid(Uuid::from_u128(0x0190_a3c2_0000_7000_8000_0000_0000_0001));
/// Bytes of the signature a token carries.
const TAG_LENGTH: usize = 16;

#[derive(Debug, Arbitrary)]
struct Claims {
    quote_id: u128,
    account_id: Option<u128>,
    catalog_version: i64,
    tool: String,
    model: String,
    required_entitlement: Option<String>,
    total_units: i64,
    total_places: u8,
    expires_at_micros: i64,
}

#[derive(Debug, Arbitrary)]
enum Input {
    /// What a client may send as `quote_id`.
    Text(String),
    /// A payload signed with the server's key, in the token's layout.
    Signed(Vec<u8>),
    /// Claims to sign and read back.
    Claims(Claims),
    /// What a hold's row may keep as `quote_seal`.
    Seal(Vec<u8>),
}

fn signed(payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&SECRET).expect("any key length");
    mac.update(TENANT.uuid().as_bytes());
    mac.update(payload);
    let tag = mac.finalize().into_bytes();
    let mut token = payload.to_vec();
    token.extend_from_slice(&tag[..TAG_LENGTH]);
    URL_SAFE_NO_PAD.encode(token)
}

fuzz_target!(|input: Input| {
    let key = QuoteKey::new(SECRET);
    match input {
        Input::Text(text) => {
            assert_eq!(key.verify(TENANT, &text), None, "{text:?} verified");
        }
        Input::Signed(payload) => {
            if let Some(claims) = key.verify(TENANT, &signed(&payload)) {
                let token = key
                    .sign(TENANT, &claims)
                    .expect("decoded claims fit a token");
                assert_eq!(key.verify(TENANT, &token), Some(claims));
            }
        }
        Input::Claims(claims) => {
            let Some(expires_at) =
                chrono::DateTime::from_timestamp_micros(claims.expires_at_micros)
            else {
                return;
            };
            let total = Decimal::new(
                claims.total_units.saturating_abs(),
                u32::from(claims.total_places % 10),
            );
            let claims = QuoteClaims {
                quote_id: Uuid::from_u128(claims.quote_id),
                account_id: claims
                    .account_id
                    .map(|id| AccountId::from_uuid(Uuid::from_u128(id))),
                catalog_version: claims.catalog_version,
                tool: claims.tool,
                model: claims.model,
                required_entitlement: claims.required_entitlement,
                total: Credits::from_decimal(total),
                expires_at,
            };
            if let Some(token) = key.sign(TENANT, &claims) {
                assert_eq!(key.verify(TENANT, &token), Some(claims.clone()));
                assert_eq!(key.verify(TenantId::from_uuid(Uuid::nil()), &token), None);
                let hold = hold_of(&claims);
                let sealed = seal(&token, &hold).expect("a signed token seals for its hold");
                assert_eq!(unseal(&sealed, &hold), Some(token));
            }
        }
        Input::Seal(bytes) => {
            let claims = QuoteClaims {
                quote_id: Uuid::nil(),
                account_id: None,
                catalog_version: 1,
                tool: String::new(),
                model: "m".to_owned(),
                required_entitlement: None,
                total: Credits::ZERO,
                expires_at: chrono::DateTime::UNIX_EPOCH,
            };
            let _ = unseal(&bytes, &hold_of(&claims));
        }
    }
});

/// The hold made from `claims` (on their account, or one of its own).
fn hold_of(claims: &QuoteClaims) -> QuoteOnHold<'_> {
    QuoteOnHold {
        quote_id: claims.quote_id,
        account_id: claims
            .account_id
            .unwrap_or(AccountId::from_uuid(Uuid::from_u128(1))),
        catalog_version: claims.catalog_version,
        tool: &claims.tool,
        model: &claims.model,
    }
}
