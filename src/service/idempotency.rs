//! Idempotency: a request's fingerprint, and what a retry gets back. Same key and same request
//! → the first answer (a decline included); same key and another request → refused, naming the
//! top-level fields that differ (found by decoding both requests with the proto descriptors).

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::ServiceError;
use crate::ids::{AccountId, TenantId};
use crate::store::idempotency::{NewRecord, StoredAnswer, StoredRecord};

/// Longest idempotency key.
pub const MAX_KEY_LENGTH: usize = 255;

/// A mutating request as received.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    /// Its idempotency key.
    pub key: String,
    /// The RPC, e.g. `Authorize`.
    pub rpc: &'static str,
    /// Full proto name of the request message, e.g. `creditgate.v1.AuthorizeRequest`.
    pub message: &'static str,
    /// The encoded request (prost encodes deterministically; maps are sorted).
    pub request: Vec<u8>,
}

impl Fingerprint {
    /// Checks the key and fingerprints the request.
    pub fn new(
        key: &str,
        rpc: &'static str,
        message: &'static str,
        request: Vec<u8>,
    ) -> Result<Self, ServiceError> {
        if key.is_empty() || key.len() > MAX_KEY_LENGTH || key.chars().any(char::is_control) {
            return Err(ServiceError::InvalidArgument {
                field: "idempotency_key",
                message: format!(
                    "required: 1-{MAX_KEY_LENGTH} printable characters, unique per operation"
                ),
            });
        }
        Ok(Fingerprint {
            key: key.to_owned(),
            rpc,
            message,
            request,
        })
    }

    fn hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.rpc.as_bytes());
        hasher.update([0]);
        hasher.update(&self.request);
        hasher.finalize().into()
    }

    /// An id that only this key (of this RPC and tenant) yields: a row made with it remembers
    /// the key for as long as the row exists, beyond the record's retention.
    pub fn durable_id(&self, tenant_id: TenantId) -> Uuid {
        let mut hasher = Sha256::new();
        hasher.update(tenant_id.uuid().as_bytes());
        hasher.update(self.rpc.as_bytes());
        hasher.update([0]);
        hasher.update(self.key.as_bytes());
        let digest: [u8; 32] = hasher.finalize().into();
        let mut bytes = [0_u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    }

    /// The record to store with `answer`.
    pub fn record(
        &self,
        tenant_id: TenantId,
        account_id: Option<AccountId>,
        answer: StoredAnswer,
    ) -> NewRecord {
        NewRecord {
            tenant_id,
            key: self.key.clone(),
            rpc: self.rpc,
            request_hash: self.hash(),
            request: self.request.clone(),
            account_id,
            answer,
        }
    }

    /// What a retry gets: the stored answer when the request is the same.
    pub fn replay(&self, stored: &StoredRecord) -> Result<Vec<u8>, ServiceError> {
        if stored.rpc != self.rpc {
            return Err(ServiceError::IdempotencyKeyReused {
                fields: vec!["rpc".to_owned()],
            });
        }
        if stored.request_hash != self.hash() {
            return Err(ServiceError::IdempotencyKeyReused {
                fields: differing_fields(self.message, &stored.request, &self.request),
            });
        }
        answer_result(stored.answer.clone())
    }
}

/// A stored answer as a use-case result.
pub fn answer_result(answer: StoredAnswer) -> Result<Vec<u8>, ServiceError> {
    match answer {
        StoredAnswer::Response(bytes) => Ok(bytes),
        StoredAnswer::Declined {
            reason,
            message,
            metadata,
        } => Err(ServiceError::Declined {
            reason,
            message,
            metadata,
        }),
    }
}

/// A use-case result as a stored answer (only declines are stored; other errors are not).
pub fn stored_answer(result: &Result<Vec<u8>, ServiceError>) -> Option<StoredAnswer> {
    match result {
        Ok(bytes) => Some(StoredAnswer::Response(bytes.clone())),
        Err(ServiceError::Declined {
            reason,
            message,
            metadata,
        }) => Some(StoredAnswer::Declined {
            reason: reason.clone(),
            message: message.clone(),
            metadata: metadata.clone(),
        }),
        Err(_) => None,
    }
}

fn descriptors() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET).ok())
        .as_ref()
}

/// Names of the top-level fields whose values differ between two encodings of `message`.
fn differing_fields(message: &str, stored: &[u8], received: &[u8]) -> Vec<String> {
    let decoded = descriptors()
        .and_then(|pool| pool.get_message_by_name(message))
        .and_then(|descriptor| {
            let stored = DynamicMessage::decode(descriptor.clone(), stored).ok()?;
            let received = DynamicMessage::decode(descriptor.clone(), received).ok()?;
            Some((descriptor, stored, received))
        });
    let Some((descriptor, stored, received)) = decoded else {
        return vec!["request".to_owned()];
    };
    let fields: Vec<String> = descriptor
        .fields()
        .filter(|field| stored.get_field(field) != received.get_field(field))
        .map(|field| field.name().to_owned())
        .collect();
    if fields.is_empty() {
        vec!["request".to_owned()]
    } else {
        fields
    }
}
