//! Webhook endpoints of a tenant: registration (the signing secret answered once), listing,
//! deletion, resuming a paused one, and the attempts made. Delivery is [`delivery`]; the body
//! and its signature are [`signature`].

pub mod delivery;
pub mod signature;

use chrono::{DateTime, Utc};

use super::idempotency::Fingerprint;
use super::page_token::{Binding, Listing, PageKey};
use super::usage::Page;
use super::{Context, ServiceError};
use crate::ids::{AccountId, TenantId, WebhookEndpointId};
pub use crate::ledger::EventType;
use crate::ledger::Reason;
use crate::store::StoreError;
use crate::store::idempotency::{self, StoredAnswer};
use crate::store::usage::Position as PagePosition;
pub use crate::store::webhooks::deliveries::Attempt;
use crate::store::webhooks::{self as store, NewEndpoint, Registered};
pub use crate::store::webhooks::{Endpoint, EndpointStatus};

/// Most endpoints a tenant may register: each one costs a read of the tenant's events per
/// worker tick, and a handful covers every real receiver.
pub const MAX_ENDPOINTS_PER_TENANT: i64 = 16;
/// Longest endpoint URL, in bytes.
pub const MAX_URL_LENGTH: usize = 2_048;
/// Page size when a request sends none.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page of endpoints.
pub const MAX_ENDPOINT_PAGE_SIZE: i64 = 100;
/// Largest page of delivery attempts.
pub const MAX_DELIVERY_PAGE_SIZE: i64 = 500;

/// An endpoint URL: http or https, with a host, at most [`MAX_URL_LENGTH`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// Checks `text`.
    pub fn parse(text: &str) -> Result<Self, ServiceError> {
        let invalid = |message: String| ServiceError::InvalidArgument {
            field: "url",
            message,
        };
        if text.is_empty() {
            return Err(invalid("required".to_owned()));
        }
        if text.len() > MAX_URL_LENGTH {
            return Err(invalid(format!(
                "{} bytes long; at most {MAX_URL_LENGTH}",
                text.len()
            )));
        }
        let url =
            reqwest::Url::parse(text).map_err(|error| invalid(format!("not a URL: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "scheme {:?} is not accepted: http or https only",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("a host is required".to_owned()));
        }
        // Normalizing may escape characters: the stored form must fit too.
        let normalized = url.to_string();
        if normalized.len() > MAX_URL_LENGTH {
            return Err(invalid(format!(
                "{} bytes long once escaped; at most {MAX_URL_LENGTH}",
                normalized.len()
            )));
        }
        Ok(WebhookUrl(normalized))
    }

    /// The URL as text (normalized).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a new endpoint receives.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Where events are POSTed.
    pub url: WebhookUrl,
    /// Only this account's events, when set.
    pub account_id: Option<AccountId>,
    /// Only these types; empty: all.
    pub event_types: Vec<EventType>,
}

/// A new endpoint and its secret, the only time the secret is answered.
#[derive(Debug, Clone)]
pub struct Created {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its signing secret.
    pub secret: String,
}

/// Registers an endpoint; a retry with the same idempotency key answers the first response
/// (the same endpoint and secret). `encode` makes the response stored with the key.
pub async fn create(
    context: &Context,
    tenant_id: TenantId,
    registration: Registration,
    fingerprint: &Fingerprint,
    encode: impl FnOnce(&Created) -> Vec<u8>,
) -> Result<Vec<u8>, ServiceError> {
    let client = context.pool.get().await.map_err(StoreError::from)?;
    if let Some(stored) = idempotency::find(&client, tenant_id, &fingerprint.key).await? {
        return fingerprint.replay(&stored);
    }
    if let Some(account_id) = registration.account_id
        && !crate::store::usage::account_exists(&client, tenant_id, account_id).await?
    {
        return Err(ServiceError::account_not_found(account_id));
    }
    drop(client);
    let secret = signature::new_secret();
    let new = NewEndpoint {
        endpoint_id: WebhookEndpointId::from_uuid(fingerprint.durable_id(tenant_id)),
        tenant_id,
        url: registration.url.0,
        secret: secret.clone(),
        account_id: registration.account_id,
        event_types: registration.event_types,
        now: context.clock.now(),
    };
    let mut bytes = Vec::new();
    let record = |endpoint: &Endpoint| {
        bytes = encode(&Created {
            endpoint: endpoint.clone(),
            secret,
        });
        fingerprint.record(tenant_id, None, StoredAnswer::Response(bytes.clone()))
    };
    match store::create(&context.pool, &new, MAX_ENDPOINTS_PER_TENANT, record).await {
        Ok(Registered::Created(_)) => Ok(bytes),
        Ok(Registered::LimitReached) => Err(ServiceError::Exhausted {
            reason: Reason::TooManyWebhookEndpoints,
            message: format!(
                "the tenant has {MAX_ENDPOINTS_PER_TENANT} webhook endpoints, the most allowed; delete one first"
            ),
        }),
        Err(StoreError::UniqueViolation { .. }) => {
            super::locked::replay_after_conflict(context, tenant_id, fingerprint).await
        }
        Err(error) => Err(error.into()),
    }
}

fn not_found(endpoint_id: WebhookEndpointId) -> ServiceError {
    ServiceError::NotFound {
        reason: Reason::WebhookEndpointNotFound,
        what: format!("webhook endpoint {endpoint_id}"),
    }
}

fn bad_token() -> ServiceError {
    ServiceError::InvalidArgument {
        field: "page_token",
        message: "not a next_page_token of this listing (same endpoint, same tenant)".to_owned(),
    }
}

/// Where a listing's request continues from, as the stores take it.
fn page_after(
    key: &PageKey,
    tenant_id: TenantId,
    listing: Listing,
    binding: &Binding,
    token: &str,
) -> Result<Option<(DateTime<Utc>, uuid::Uuid)>, ServiceError> {
    let position = key
        .resume(tenant_id, listing, binding, token)
        .map_err(|_| bad_token())?;
    Ok(position.map(|position| (position.created_at, position.id)))
}

/// A page of the tenant's endpoints, oldest first.
pub async fn list(
    context: &Context,
    tenant_id: TenantId,
    page_token: &str,
    page_size: i64,
) -> Result<Page<Endpoint>, ServiceError> {
    let key = context.page_key().await?;
    let binding = Binding::default();
    let listing = Listing::WebhookEndpoints;
    let after = page_after(key, tenant_id, listing, &binding, page_token)?;
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let rows = store::list(&client, tenant_id, after, page_size).await?;
    let next_page_token = key.next_page(tenant_id, listing, &binding, &rows, page_size, |row| {
        PagePosition {
            created_at: row.created_at,
            id: row.endpoint_id.uuid(),
        }
    });
    Ok(Page {
        rows,
        next_page_token,
    })
}

/// The tenant's endpoint.
pub async fn get(
    context: &Context,
    tenant_id: TenantId,
    endpoint_id: WebhookEndpointId,
) -> Result<Endpoint, ServiceError> {
    let client = context.pool.get().await.map_err(StoreError::from)?;
    store::get(&client, tenant_id, endpoint_id)
        .await?
        .ok_or_else(|| not_found(endpoint_id))
}

/// Deletes the tenant's endpoint; answers it as it was.
pub async fn delete(
    context: &Context,
    tenant_id: TenantId,
    endpoint_id: WebhookEndpointId,
) -> Result<Endpoint, ServiceError> {
    let client = context.pool.get().await.map_err(StoreError::from)?;
    store::delete(&client, tenant_id, endpoint_id)
        .await?
        .ok_or_else(|| not_found(endpoint_id))
}

/// Makes the endpoint active again, its head event due now with a fresh failure window.
pub async fn resume(
    context: &Context,
    tenant_id: TenantId,
    endpoint_id: WebhookEndpointId,
) -> Result<Endpoint, ServiceError> {
    let client = context.pool.get().await.map_err(StoreError::from)?;
    store::resume(&client, tenant_id, endpoint_id, context.clock.now())
        .await?
        .ok_or_else(|| not_found(endpoint_id))
}

/// A page of the endpoint's delivery attempts, newest first.
pub async fn deliveries(
    context: &Context,
    tenant_id: TenantId,
    endpoint_id: WebhookEndpointId,
    page_token: &str,
    page_size: i64,
) -> Result<Page<Attempt>, ServiceError> {
    let key = context.page_key().await?;
    let binding = Binding::default().bytes(endpoint_id.uuid().as_bytes());
    let listing = Listing::WebhookDeliveries;
    let before = page_after(key, tenant_id, listing, &binding, page_token)?;
    let client = context.pool.get().await.map_err(StoreError::from)?;
    if store::get(&client, tenant_id, endpoint_id).await?.is_none() {
        return Err(not_found(endpoint_id));
    }
    let rows = store::deliveries::list(&client, tenant_id, endpoint_id, before, page_size).await?;
    let next_page_token = key.next_page(tenant_id, listing, &binding, &rows, page_size, |row| {
        PagePosition {
            created_at: row.attempted_at,
            id: row.delivery_id,
        }
    });
    Ok(Page {
        rows,
        next_page_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_with_a_host_are_accepted() {
        for good in ["https://example.com/hooks", "http://127.0.0.1:8080/x?y=1"] {
            assert!(WebhookUrl::parse(good).is_ok(), "{good}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LENGTH));
        for bad in [
            "",
            "example.com/hooks",
            "ftp://example.com/",
            "file:///etc/passwd",
            "https://",
            "mailto:someone@example.com",
            long.as_str(),
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
