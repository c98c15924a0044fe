//! The one mapping from use-case errors to gRPC status codes and `google.rpc.ErrorInfo`.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::service::ServiceError;

/// `ErrorInfo.domain` of every creditgate error.
pub const ERROR_DOMAIN: &str = "creditgate";

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
            ServiceError::AlreadyExists { .. } => (Code::AlreadyExists, "ALREADY_EXISTS"),
            ServiceError::NotFound { .. } => (Code::NotFound, "NOT_FOUND"),
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
