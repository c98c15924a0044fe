//! Page tokens of ListUsage, ListLedger and the webhook listings: the position of the last
//! row returned, signed (HMAC-SHA-256 under a key every replica shares) together with the
//! tenant and everything the request filtered on, so a token only continues the listing it came from. Reused with
//! other filters, another account or another tenant, or altered, it does not open.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use uuid::Uuid;

use crate::ids::TenantId;
use crate::store::usage::Position;

const VERSION: u8 = 1;
/// Bytes of the signature kept (128 bits).
const TAG_LENGTH: usize = 16;
/// Version, listing, time, id.
const PAYLOAD_LENGTH: usize = 1 + 1 + 8 + 16;
/// Longest token accepted; longer input is refused before decoding.
pub const MAX_TOKEN_LENGTH: usize = 128;

/// Which listing a token continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// ListUsage.
    Usage = 1,
    /// ListLedger.
    Ledger = 2,
    /// ListWebhookEndpoints.
    WebhookEndpoints = 3,
    /// ListWebhookDeliveries.
    WebhookDeliveries = 4,
}

/// What a request's token is bound to: its account and filters, in a fixed encoding.
#[derive(Debug, Clone, Default)]
pub struct Binding(Vec<u8>);

impl Binding {
    /// Adds bytes.
    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// Adds an optional time (absent and present never encode alike).
    pub fn time(self, time: Option<DateTime<chrono::Utc>>) -> Self {
        match time {
            None => self.bytes(&[]),
            Some(time) => self.bytes(&time.timestamp_micros().to_be_bytes()),
        }
    }
}

/// The key page tokens are signed with.
#[derive(Clone)]
pub struct PageKey([u8; 32]);

impl std::fmt::Debug for PageKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PageKey(..)")
    }
}

impl PageKey {
    /// A key from its bytes.
    pub fn new(secret: [u8; 32]) -> Self {
        PageKey(secret)
    }

    fn tag(&self, tenant_id: TenantId, binding: &Binding, payload: &[u8]) -> [u8; TAG_LENGTH] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(tenant_id.uuid().as_bytes());
        mac.update(&binding.0);
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut tag = [0_u8; TAG_LENGTH];
        tag.copy_from_slice(&full[..TAG_LENGTH]);
        tag
    }

    /// The token that continues `listing` after `position`.
    pub fn sign(
        &self,
        tenant_id: TenantId,
        listing: Listing,
        binding: &Binding,
        position: Position,
    ) -> String {
        let mut payload = Vec::with_capacity(PAYLOAD_LENGTH + TAG_LENGTH);
        payload.push(VERSION);
        payload.push(listing as u8);
        payload.extend_from_slice(&position.created_at.timestamp_micros().to_be_bytes());
        payload.extend_from_slice(position.id.as_bytes());
        let tag = self.tag(tenant_id, binding, &payload);
        payload.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// The position `token` continues from, if it was signed by this key for this tenant,
    /// listing and binding.
    pub fn open(
        &self,
        tenant_id: TenantId,
        listing: Listing,
        binding: &Binding,
        token: &str,
    ) -> Option<Position> {
        if token.len() > MAX_TOKEN_LENGTH {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != PAYLOAD_LENGTH + TAG_LENGTH {
            return None;
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LENGTH);
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(tenant_id.uuid().as_bytes());
        mac.update(&binding.0);
        mac.update(payload);
        // Constant-time comparison of the truncated tag.
        mac.verify_truncated_left(tag).ok()?;
        if payload[0] != VERSION || payload[1] != listing as u8 {
            return None;
        }
        let micros = i64::from_be_bytes(payload[2..10].try_into().ok()?);
        let id = Uuid::from_slice(&payload[10..26]).ok()?;
        Some(Position {
            created_at: DateTime::from_timestamp_micros(micros)?,
            id,
        })
    }
}

/// A page token that this key did not sign for the tenant, listing and binding asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadToken;

impl PageKey {
    /// Where a request continues from: `None` for the first page (no token).
    pub fn resume(
        &self,
        tenant_id: TenantId,
        listing: Listing,
        binding: &Binding,
        token: &str,
    ) -> Result<Option<Position>, BadToken> {
        if token.is_empty() {
            return Ok(None);
        }
        self.open(tenant_id, listing, binding, token)
            .map(Some)
            .ok_or(BadToken)
    }

    /// The token after a page of `rows` read with `limit`: the last row's position when the
    /// page is full, empty when it is the last page.
    pub fn next_page<T>(
        &self,
        tenant_id: TenantId,
        listing: Listing,
        binding: &Binding,
        rows: &[T],
        limit: i64,
        position: impl Fn(&T) -> Position,
    ) -> String {
        match rows.last() {
            Some(last) if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit => {
                self.sign(tenant_id, listing, binding, position(last))
            }
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> Position {
        Position {
            created_at: DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap_or_default(),
            id: Uuid::now_v7(),
        }
    }

    #[test]
    fn a_full_page_continues_from_its_last_row_and_a_short_one_ends() {
        let key = PageKey::new([7; 32]);
        let tenant = TenantId::now_v7();
        let binding = Binding::default();
        let rows = [position(), position()];
        let next = key.next_page(tenant, Listing::Usage, &binding, &rows, 2, |row| *row);
        assert_eq!(
            key.resume(tenant, Listing::Usage, &binding, &next),
            Ok(Some(rows[1]))
        );
        assert_eq!(
            key.next_page(tenant, Listing::Usage, &binding, &rows, 3, |row| *row),
            ""
        );
        assert_eq!(key.resume(tenant, Listing::Usage, &binding, ""), Ok(None));
        assert_eq!(
            key.resume(tenant, Listing::Ledger, &binding, &next),
            Err(BadToken)
        );
    }

    #[test]
    fn a_token_opens_only_for_its_tenant_listing_and_binding() {
        let key = PageKey::new([7; 32]);
        let tenant = TenantId::now_v7();
        let binding = Binding::default().bytes(b"account").time(None);
        let token = key.sign(tenant, Listing::Usage, &binding, position());
        assert!(key.open(tenant, Listing::Usage, &binding, &token).is_some());
        let other_tenant = TenantId::now_v7();
        assert!(
            key.open(other_tenant, Listing::Usage, &binding, &token)
                .is_none()
        );
        assert!(
            key.open(tenant, Listing::Ledger, &binding, &token)
                .is_none()
        );
        let other = Binding::default()
            .bytes(b"account")
            .time(DateTime::from_timestamp_micros(0));
        assert!(key.open(tenant, Listing::Usage, &other, &token).is_none());
        assert!(
            PageKey::new([8; 32])
                .open(tenant, Listing::Usage, &binding, &token)
                .is_none()
        );
        let mut altered = token.clone().into_bytes();
        altered[5] = if altered[5] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap_or_default();
        assert!(
            key.open(tenant, Listing::Usage, &binding, &altered)
                .is_none()
        );
        assert!(
            key.open(tenant, Listing::Usage, &binding, "garbage")
                .is_none()
        );
    }

    #[test]
    fn the_position_round_trips() {
        let key = PageKey::new([1; 32]);
        let tenant = TenantId::now_v7();
        let binding = Binding::default();
        let at = position();
        let token = key.sign(tenant, Listing::Ledger, &binding, at);
        assert_eq!(
            key.open(tenant, Listing::Ledger, &binding, &token),
            Some(at)
        );
    }

    #[test]
    fn bindings_of_different_fields_differ() {
        let a = Binding::default().bytes(b"ab").bytes(b"c");
        let b = Binding::default().bytes(b"a").bytes(b"bc");
        assert_ne!(a.0, b.0);
    }
}
