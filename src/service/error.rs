//! The one error type of the use-case layer.

use crate::auth::ScopeSet;
use crate::ledger::Reason;
use crate::store::StoreError;

/// Why a use case failed. Each variant maps to one gRPC code and ErrorInfo reason in
/// `api::error`; internal causes stay in logs.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No usable `authorization: Bearer <key>` metadata.
    #[error(
        "missing or malformed credentials: expected metadata `authorization: Bearer <api key>`"
    )]
    MissingCredentials,
    /// The key is unknown or revoked.
    #[error("unknown or revoked API key")]
    UnknownKey,
    /// The key lacks every scope the call accepts.
    #[error("this API key lacks the scope this call needs: one of {required}")]
    ScopeMissing {
        /// Scopes that would have been accepted.
        required: ScopeSet,
    },
    /// The RPC exists in the contract but is not served by this version.
    #[error("{rpc} is not implemented by this server yet")]
    NotImplemented {
        /// The full RPC name, e.g. `creditgate.v1.CreditService/Quote`.
        rpc: &'static str,
    },
    /// A request field is malformed.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The offending field.
        field: &'static str,
        /// What was wrong and what is accepted.
        message: String,
    },
    /// An amount field is malformed or out of bounds.
    #[error("{field}: {message}")]
    InvalidAmount {
        /// The offending field.
        field: &'static str,
        /// What was wrong and what is accepted.
        message: String,
    },
    /// The account's state refused the operation (decided under the lock, or replayed).
    #[error("{message}")]
    Declined {
        /// ErrorInfo reason, e.g. INSUFFICIENT_CREDITS.
        reason: Reason,
        /// What happened.
        message: String,
        /// The figures behind it.
        metadata: Vec<(String, String)>,
    },
    /// The run cannot be priced (unknown model or tool, model not allowed, unpriced usage).
    #[error("{0}")]
    Pricing(#[from] crate::pricing::PricingError),
    /// The idempotency key was used before with a different request.
    #[error("idempotency key was already used with a different request (differing: {})", fields.join(", "))]
    IdempotencyKeyReused {
        /// Top-level fields that differ (`rpc` when it was another RPC).
        fields: Vec<String>,
    },
    /// Something with that name already exists.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What it was.
        what: String,
    },
    /// A named object does not exist (for this tenant).
    #[error("{what} not found")]
    NotFound {
        /// ErrorInfo reason, e.g. ACCOUNT_NOT_FOUND.
        reason: Reason,
        /// What was looked for.
        what: String,
    },
    /// A bounded resource is used up (streams open, a stalled stream's buffer).
    #[error("{message}")]
    Exhausted {
        /// ErrorInfo reason, e.g. TOO_MANY_STREAMS.
        reason: Reason,
        /// What was exhausted and what to do.
        message: String,
    },
    /// The database could not be reached or timed out; retrying with the same key is safe.
    #[error("the database is unavailable; retry with the same idempotency key")]
    Unavailable(#[source] StoreError),
    /// A bug or broken invariant; details are logged, not returned.
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl From<crate::ledger::Decline> for ServiceError {
    fn from(decline: crate::ledger::Decline) -> Self {
        ServiceError::Declined {
            reason: decline.reason(),
            message: decline.to_string(),
            metadata: decline.metadata(),
        }
    }
}

impl ServiceError {
    /// `NOT_FOUND` of an account.
    pub fn account_not_found(account_id: crate::ids::AccountId) -> Self {
        ServiceError::NotFound {
            reason: Reason::AccountNotFound,
            what: format!("account {account_id}"),
        }
    }

    /// The refusal of an operation the database refused even alone: not retryable, since the
    /// same request fails the same way. Its cause is logged; only the SQLSTATE is sent.
    pub fn refused_by_store(sqlstate: Option<&str>) -> Self {
        ServiceError::Declined {
            reason: Reason::InvalidArgument,
            message: "the database refused a value of this request; nothing was written, and this idempotency key keeps this answer"
                .to_owned(),
            metadata: vec![(
                "sqlstate".to_owned(),
                sqlstate.unwrap_or("unknown").to_owned(),
            )],
        }
    }

    /// `NOT_FOUND` of a hold.
    pub fn hold_not_found(what: String) -> Self {
        ServiceError::NotFound {
            reason: Reason::HoldNotFound,
            what,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) | StoreError::Timeout(_) => ServiceError::Unavailable(error),
            other => ServiceError::Internal(other),
        }
    }
}
