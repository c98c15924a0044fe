//! Idempotency: a request's fingerprint, and what a retry gets back. Same key and same request
//! → the first answer (a decline included); same key and another request → refused, naming the
//! top-level fields that differ (by the records' field digests, named with the proto
//! descriptors).

mod by_reference;
mod fields;

pub use by_reference::refer_to_hold;

use std::sync::OnceLock;

use prost_reflect::DescriptorPool;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::ServiceError;
use crate::ids::{AccountId, TenantId};
use crate::ledger::Reason;
use crate::store::StoreError;
use crate::store::idempotency::{NewRecord, StoredAnswer, StoredRecord};

/// Longest idempotency key.
pub const MAX_KEY_LENGTH: usize = 255;

/// An RPC that takes an idempotency key: every call that changes state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rpc {
    /// `CreditService/Authorize`.
    Authorize,
    /// `CreditService/ExtendHold`.
    ExtendHold,
    /// `CreditService/Settle`.
    Settle,
    /// `CreditService/Release`.
    Release,
    /// `CreditService/Refund`.
    Refund,
    /// `AccountService/CreateAccount`.
    CreateAccount,
    /// `AccountService/UpdateAccount`.
    UpdateAccount,
    /// `AccountService/Grant`.
    Grant,
    /// `AccountService/SetAllowance`.
    SetAllowance,
    /// `AccountService/SetSpendLimit`.
    SetSpendLimit,
    /// `CatalogService/PublishCatalog`.
    PublishCatalog,
    /// `WebhookService/CreateWebhookEndpoint`.
    CreateWebhookEndpoint,
}

impl Rpc {
    /// Every RPC.
    pub const ALL: [Rpc; 12] = [
        Rpc::Authorize,
        Rpc::ExtendHold,
        Rpc::Settle,
        Rpc::Release,
        Rpc::Refund,
        Rpc::CreateAccount,
        Rpc::UpdateAccount,
        Rpc::Grant,
        Rpc::SetAllowance,
        Rpc::SetSpendLimit,
        Rpc::PublishCatalog,
        Rpc::CreateWebhookEndpoint,
    ];

    /// Its method name, as stored with its idempotency records and hashed into them.
    pub fn as_str(self) -> &'static str {
        self.names().0
    }

    /// Full proto name of its request message, e.g. `creditgate.v1.AuthorizeRequest`.
    pub fn request_message(self) -> &'static str {
        self.names().1
    }

    fn names(self) -> (&'static str, &'static str) {
        match self {
            Rpc::Authorize => ("Authorize", "creditgate.v1.AuthorizeRequest"),
            Rpc::ExtendHold => ("ExtendHold", "creditgate.v1.ExtendHoldRequest"),
            Rpc::Settle => ("Settle", "creditgate.v1.SettleRequest"),
            Rpc::Release => ("Release", "creditgate.v1.ReleaseRequest"),
            Rpc::Refund => ("Refund", "creditgate.v1.RefundRequest"),
            Rpc::CreateAccount => ("CreateAccount", "creditgate.v1.CreateAccountRequest"),
            Rpc::UpdateAccount => ("UpdateAccount", "creditgate.v1.UpdateAccountRequest"),
            Rpc::Grant => ("Grant", "creditgate.v1.GrantRequest"),
            Rpc::SetAllowance => ("SetAllowance", "creditgate.v1.SetAllowanceRequest"),
            Rpc::SetSpendLimit => ("SetSpendLimit", "creditgate.v1.SetSpendLimitRequest"),
            Rpc::PublishCatalog => ("PublishCatalog", "creditgate.v1.PublishCatalogRequest"),
            Rpc::CreateWebhookEndpoint => (
                "CreateWebhookEndpoint",
                "creditgate.v1.CreateWebhookEndpointRequest",
            ),
        }
    }

    /// The number of its request's `idempotency_key` field.
    fn key_field(self) -> Option<u32> {
        static NUMBERS: OnceLock<Vec<(Rpc, u32)>> = OnceLock::new();
        let numbers = NUMBERS.get_or_init(|| {
            Rpc::ALL
                .into_iter()
                .filter_map(|rpc| {
                    let message = descriptors()?.get_message_by_name(rpc.request_message())?;
                    Some((rpc, message.get_field_by_name("idempotency_key")?.number()))
                })
                .collect()
        });
        numbers
            .iter()
            .find(|(rpc, _)| *rpc == self)
            .map(|(_, number)| *number)
    }

    /// The RPC of a stored record's name; `None` for a name no RPC has.
    pub fn from_name(name: &str) -> Option<Self> {
        Rpc::ALL.into_iter().find(|rpc| rpc.as_str() == name)
    }
}

/// A mutating request as received.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    /// Its idempotency key.
    pub key: String,
    /// The RPC.
    pub rpc: Rpc,
    /// SHA-256 of the RPC and the encoded request (prost encodes deterministically; maps are
    /// sorted), computed once on arrival, not under the account lock.
    hash: [u8; 32],
    /// The request's field digests ([`fields::field_digests`]), likewise.
    fields: Vec<u8>,
    /// The same without the idempotency key's, which the record's key already is: what a lean
    /// record keeps ([`Fingerprint::lean`]).
    lean_fields: Vec<u8>,
}

impl Fingerprint {
    /// Checks the key and fingerprints the request.
    pub fn new(key: &str, rpc: Rpc, request: Vec<u8>) -> Result<Self, ServiceError> {
        if key.is_empty() || key.len() > MAX_KEY_LENGTH || key.chars().any(char::is_control) {
            return Err(ServiceError::InvalidArgument {
                field: "idempotency_key",
                message: format!(
                    "required: 1-{MAX_KEY_LENGTH} printable characters, unique per operation"
                ),
            });
        }
        let mut hasher = Sha256::new();
        hasher.update(rpc.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(&request);
        let digests = fields::field_digests(&request);
        let lean_fields = match rpc.key_field() {
            Some(number) => fields::without(&digests, number),
            None => digests.clone(),
        };
        Ok(Fingerprint {
            key: key.to_owned(),
            rpc,
            hash: hasher.finalize().into(),
            fields: digests,
            lean_fields,
        })
    }

    /// An id that only this key (of this RPC and tenant) yields: a row made with it remembers
    /// the key for as long as the row exists, beyond the record's retention.
    pub fn durable_id(&self, tenant_id: TenantId) -> Uuid {
        let mut hasher = Sha256::new();
        hasher.update(tenant_id.uuid().as_bytes());
        hasher.update(self.rpc.as_str().as_bytes());
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
            rpc: self.rpc.as_str(),
            request_hash: Some(self.hash),
            request_fields: self.fields.clone(),
            account_id,
            answer,
            answer_hold: None,
        }
    }

    /// Makes `record` lean: without the request's SHA-256 and the key's digest. Whether a
    /// retry is the same request is then told by the other fields' digests (8 bytes of SHA-256
    /// each), 42 bytes fewer per record. Only once no server before migration 0029 (which
    /// reads the hash) is connected.
    pub fn lean(&self, record: &mut NewRecord) {
        record.request_hash = None;
        record.request_fields.clone_from(&self.lean_fields);
    }

    /// What a retry gets: the stored answer when the request is the same.
    pub fn replay(&self, stored: &StoredRecord) -> Result<Vec<u8>, ServiceError> {
        if Rpc::from_name(&stored.rpc) != Some(self.rpc) {
            return Err(ServiceError::IdempotencyKeyReused {
                fields: vec!["rpc".to_owned()],
            });
        }
        let same = match (&stored.request_hash, &stored.request_fields) {
            (Some(hash), _) => hash.as_slice() == self.hash.as_slice(),
            (None, Some(digests)) => fields::differing(digests, &self.lean_fields)
                .is_some_and(|numbers| numbers.is_empty()),
            (None, None) => false,
        };
        if !same {
            return Err(ServiceError::IdempotencyKeyReused {
                fields: differing_fields(self.rpc.request_message(), stored, &self.fields),
            });
        }
        answer_result(stored.answer.clone())
    }
}

/// A stored answer as a use-case result. A decline whose stored reason names no [`Reason`]
/// (only a record written by another version could) is not replayed under a status code
/// guessed for it: it answers `Internal`, the log naming the reason.
pub fn answer_result(answer: StoredAnswer) -> Result<Vec<u8>, ServiceError> {
    match answer {
        StoredAnswer::Response(bytes) => Ok(bytes),
        StoredAnswer::Declined {
            reason,
            message,
            metadata,
        } => Err(match Reason::from_name(&reason) {
            Some(reason) => ServiceError::Declined {
                reason,
                message,
                metadata,
            },
            None => ServiceError::Internal(StoreError::Other(format!(
                "an idempotency record declines with unknown reason {reason:?}"
            ))),
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
            reason: reason.as_str().to_owned(),
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

/// Names of the top-level fields of `message` that differ between the stored record's request
/// and the one received (its field digests); `["request"]` when they cannot be told.
fn differing_fields(message: &str, stored: &StoredRecord, received: &[u8]) -> Vec<String> {
    // Records written before digests were kept hold the whole request instead.
    let stored_digests = match (&stored.request_fields, &stored.request) {
        (Some(digests), _) => digests.clone(),
        (None, Some(request)) => fields::field_digests(request),
        (None, None) => Vec::new(),
    };
    let numbers = fields::differing(&stored_digests, received);
    let descriptor = descriptors().and_then(|pool| pool.get_message_by_name(message));
    let names: Option<Vec<String>> = numbers.and_then(|numbers| {
        numbers
            .into_iter()
            .map(|number| Some(descriptor.as_ref()?.get_field(number)?.name().to_owned()))
            .collect()
    });
    // The key is the record's: a lean record keeps no digest of it, so it differs by absence.
    let names = names.map(|names| {
        let key_field = |name: &String| name == "idempotency_key";
        names
            .into_iter()
            .filter(|name| !key_field(name))
            .collect::<Vec<_>>()
    });
    match names {
        Some(names) if !names.is_empty() => names,
        _ => vec!["request".to_owned()],
    }
}

#[cfg(test)]
mod tests;
