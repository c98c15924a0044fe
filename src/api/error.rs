//! The one mapping from use-case errors to gRPC status codes and `google.rpc.ErrorInfo`.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::service::ServiceError;

/// `ErrorInfo.domain` of every creditgate error.
pub const ERROR_DOMAIN: &str = "creditgate";

/// The code of a decline reason (DESIGN §4).
fn decline_code(reason: &str) -> Code {
    match reason {
        "INVALID_AMOUNT" | "INVALID_USAGE" | "UNKNOWN_MODEL" | "UNKNOWN_TOOL"
        | "MODEL_NOT_ALLOWED" => Code::InvalidArgument,
        "ENTITLEMENT_REQUIRED" | "SCOPE_MISSING" => Code::PermissionDenied,
        _ => Code::FailedPrecondition,
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        let message = error.to_string();
        let mut metadata = HashMap::new();
        let (code, reason) = match &error {
            ServiceError::MissingCredentials | ServiceError::UnknownKey => {
                return Status::unauthenticated(message);
            }
            ServiceError::ScopeMissing { required } => {
                metadata.insert("required".to_owned(), required.to_string());
                (Code::PermissionDenied, "SCOPE_MISSING")
            }
            ServiceError::NotImplemented { rpc } => {
                metadata.insert("rpc".to_owned(), (*rpc).to_owned());
                (Code::Unimplemented, "NOT_IMPLEMENTED")
            }
            ServiceError::InvalidArgument { field, .. } => {
                metadata.insert("field".to_owned(), (*field).to_owned());
                (Code::InvalidArgument, "INVALID_ARGUMENT")
            }
            ServiceError::InvalidAmount { field, .. } => {
                metadata.insert("field".to_owned(), (*field).to_owned());
                (Code::InvalidArgument, "INVALID_AMOUNT")
            }
            ServiceError::Declined {
                reason,
                metadata: pairs,
                ..
            } => {
                metadata.extend(pairs.iter().cloned());
                return Status::with_error_details(
                    decline_code(reason),
                    message,
                    ErrorDetails::with_error_info(reason.clone(), ERROR_DOMAIN, metadata),
                );
            }
            ServiceError::Pricing(error) => (Code::InvalidArgument, error.reason()),
            ServiceError::IdempotencyKeyReused { fields } => {
                metadata.insert("fields".to_owned(), fields.join(","));
                (Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED")
            }
            ServiceError::AlreadyExists { .. } => (Code::AlreadyExists, "ALREADY_EXISTS"),
            ServiceError::NotFound { reason, .. } => (Code::NotFound, *reason),
            ServiceError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                (Code::Unavailable, "UNAVAILABLE")
            }
            ServiceError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                (Code::Internal, "INTERNAL")
            }
        };
        Status::with_error_details(
            code,
            message,
            ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
        )
    }
}
