//! The one mapping from use-case errors to gRPC status codes and `google.rpc.ErrorInfo`.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::service::ServiceError;

/// `ErrorInfo.domain` of every creditgate error.
pub const ERROR_DOMAIN: &str = "creditgate";

/// Longest status message sent, in bytes: with the metadata bound below it keeps every error's
/// trailers far under the 8 KiB of headers a standard gRPC client accepts, whatever a message
/// quotes of the request.
const MAX_MESSAGE_BYTES: usize = 1_024;
/// Longest ErrorInfo metadata value sent, in bytes.
const MAX_METADATA_BYTES: usize = 256;
/// Most ErrorInfo metadata entries sent.
const MAX_METADATA_ENTRIES: usize = 16;

/// `text` cut to at most `max` bytes on a character boundary, marked when cut.
fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max.saturating_sub('…'.len_utf8());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// A status with its ErrorInfo, every part bounded.
fn status(
    code: Code,
    message: String,
    reason: impl Into<String>,
    metadata: HashMap<String, String>,
) -> Status {
    let metadata = metadata
        .into_iter()
        .take(MAX_METADATA_ENTRIES)
        .map(|(key, value)| {
            (
                bounded(key, MAX_METADATA_BYTES),
                bounded(value, MAX_METADATA_BYTES),
            )
        })
        .collect::<HashMap<_, _>>();
    Status::with_error_details(
        code,
        bounded(message, MAX_MESSAGE_BYTES),
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// The code of a decline reason (DESIGN §4).
fn decline_code(reason: &str) -> Code {
    match reason {
        "INVALID_AMOUNT" | "INVALID_USAGE" | "UNKNOWN_MODEL" | "UNKNOWN_TOOL"
        | "MODEL_NOT_ALLOWED" | "INVALID_ARGUMENT" => Code::InvalidArgument,
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
                return Status::unauthenticated(bounded(message, MAX_MESSAGE_BYTES));
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
                return status(decline_code(reason), message, reason.clone(), metadata);
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
        status(code, message, reason, metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_stays_small_whatever_it_quotes() {
        let huge = "9".repeat(50_000);
        let status = Status::from(ServiceError::Declined {
            reason: "INSUFFICIENT_CREDITS".to_owned(),
            message: format!("é{huge}"),
            metadata: (0..100)
                .map(|index| (format!("key{index}"), huge.clone()))
                .collect(),
        });
        assert!(status.message().len() <= MAX_MESSAGE_BYTES);
        let info = status
            .get_error_details()
            .error_info()
            .cloned()
            .expect("an ErrorInfo");
        assert_eq!(info.reason, "INSUFFICIENT_CREDITS");
        assert!(info.metadata.len() <= MAX_METADATA_ENTRIES);
        assert!(
            info.metadata
                .values()
                .all(|value| value.len() <= MAX_METADATA_BYTES)
        );
    }

    #[test]
    fn a_refusal_by_the_store_is_invalid_argument_with_its_sqlstate() {
        let status = Status::from(ServiceError::refused_by_store(Some("22008")));
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = status
            .get_error_details()
            .error_info()
            .cloned()
            .expect("an ErrorInfo");
        assert_eq!(
            info.metadata.get("sqlstate").map(String::as_str),
            Some("22008")
        );
    }
}
