//! The one mapping from use-case errors to gRPC status codes and `google.rpc.ErrorInfo`.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::ledger::Reason;
use crate::pricing::PricingError;
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
fn status(reason: Reason, message: String, metadata: HashMap<String, String>) -> Status {
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
        code(reason),
        bounded(message, MAX_MESSAGE_BYTES),
        ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, metadata),
    )
}

/// The status code of every reason (DESIGN §4), whichever error carries it.
fn code(reason: Reason) -> Code {
    match reason {
        Reason::InvalidAmount
        | Reason::InvalidUsage
        | Reason::UnknownModel
        | Reason::UnknownTool
        | Reason::ModelNotAllowed
        | Reason::InvalidArgument => Code::InvalidArgument,
        Reason::AccountNotFound
        | Reason::HoldNotFound
        | Reason::QuoteNotFound
        | Reason::SettlementNotFound
        | Reason::TenantNotFound
        | Reason::CatalogVersionNotFound
        | Reason::WebhookEndpointNotFound => Code::NotFound,
        Reason::InsufficientCredits
        | Reason::AccountInDebt
        | Reason::AccountSuspended
        | Reason::HoldNotActive
        | Reason::QuoteExpired
        | Reason::RefundExceedsCapture
        | Reason::PartialCaptureLimit
        | Reason::NoActiveCatalog
        | Reason::SpendLimitReached
        | Reason::CursorExpired => Code::FailedPrecondition,
        Reason::EntitlementRequired | Reason::ScopeMissing => Code::PermissionDenied,
        Reason::IdempotencyKeyReused | Reason::AlreadyExists => Code::AlreadyExists,
        Reason::TooManyStreams | Reason::StreamStalled | Reason::TooManyWebhookEndpoints => {
            Code::ResourceExhausted
        }
        Reason::NotImplemented => Code::Unimplemented,
        Reason::Unavailable | Reason::ServerDraining => Code::Unavailable,
        Reason::Internal => Code::Internal,
    }
}

/// The reason of a run that cannot be priced.
fn pricing_reason(error: &PricingError) -> Reason {
    match error {
        PricingError::UnknownModel(_) => Reason::UnknownModel,
        PricingError::UnknownTool(_) => Reason::UnknownTool,
        PricingError::ModelNotAllowed { .. } => Reason::ModelNotAllowed,
        PricingError::InvalidUsage(_) => Reason::InvalidUsage,
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        let message = error.to_string();
        let mut metadata = HashMap::new();
        let reason = match &error {
            ServiceError::MissingCredentials | ServiceError::UnknownKey => {
                return Status::unauthenticated(bounded(message, MAX_MESSAGE_BYTES));
            }
            ServiceError::ScopeMissing { required } => {
                metadata.insert("required".to_owned(), required.to_string());
                Reason::ScopeMissing
            }
            ServiceError::NotImplemented { rpc } => {
                metadata.insert("rpc".to_owned(), (*rpc).to_owned());
                Reason::NotImplemented
            }
            ServiceError::InvalidArgument { field, .. } => {
                metadata.insert("field".to_owned(), (*field).to_owned());
                Reason::InvalidArgument
            }
            ServiceError::InvalidAmount { field, .. } => {
                metadata.insert("field".to_owned(), (*field).to_owned());
                Reason::InvalidAmount
            }
            ServiceError::Declined {
                reason,
                metadata: pairs,
                ..
            } => {
                metadata.extend(pairs.iter().cloned());
                *reason
            }
            ServiceError::Pricing(error) => pricing_reason(error),
            ServiceError::IdempotencyKeyReused { fields } => {
                metadata.insert("fields".to_owned(), fields.join(","));
                Reason::IdempotencyKeyReused
            }
            ServiceError::AlreadyExists { .. } => Reason::AlreadyExists,
            ServiceError::Exhausted { reason, .. } => *reason,
            ServiceError::NotFound { reason, .. } => *reason,
            ServiceError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Reason::Unavailable
            }
            ServiceError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                Reason::Internal
            }
        };
        status(reason, message, metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_stays_small_whatever_it_quotes() {
        let huge = "9".repeat(50_000);
        let status = Status::from(ServiceError::Declined {
            reason: Reason::InsufficientCredits,
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

    /// Every reason by its wire name with the code it travels with: DESIGN §4's table, and the
    /// reasons it leaves out.
    const CODES: &[(&str, Code)] = &[
        ("INVALID_AMOUNT", Code::InvalidArgument),
        ("INVALID_USAGE", Code::InvalidArgument),
        ("UNKNOWN_MODEL", Code::InvalidArgument),
        ("UNKNOWN_TOOL", Code::InvalidArgument),
        ("MODEL_NOT_ALLOWED", Code::InvalidArgument),
        ("INVALID_ARGUMENT", Code::InvalidArgument),
        ("ACCOUNT_NOT_FOUND", Code::NotFound),
        ("HOLD_NOT_FOUND", Code::NotFound),
        ("QUOTE_NOT_FOUND", Code::NotFound),
        ("SETTLEMENT_NOT_FOUND", Code::NotFound),
        ("TENANT_NOT_FOUND", Code::NotFound),
        ("CATALOG_VERSION_NOT_FOUND", Code::NotFound),
        ("INSUFFICIENT_CREDITS", Code::FailedPrecondition),
        ("ACCOUNT_IN_DEBT", Code::FailedPrecondition),
        ("ACCOUNT_SUSPENDED", Code::FailedPrecondition),
        ("HOLD_NOT_ACTIVE", Code::FailedPrecondition),
        ("QUOTE_EXPIRED", Code::FailedPrecondition),
        ("REFUND_EXCEEDS_CAPTURE", Code::FailedPrecondition),
        ("PARTIAL_CAPTURE_LIMIT", Code::FailedPrecondition),
        ("NO_ACTIVE_CATALOG", Code::FailedPrecondition),
        ("SPEND_LIMIT_REACHED", Code::FailedPrecondition),
        ("ENTITLEMENT_REQUIRED", Code::PermissionDenied),
        ("SCOPE_MISSING", Code::PermissionDenied),
        ("IDEMPOTENCY_KEY_REUSED", Code::AlreadyExists),
        ("ALREADY_EXISTS", Code::AlreadyExists),
        ("WEBHOOK_ENDPOINT_NOT_FOUND", Code::NotFound),
        ("TOO_MANY_WEBHOOK_ENDPOINTS", Code::ResourceExhausted),
        ("TOO_MANY_STREAMS", Code::ResourceExhausted),
        ("STREAM_STALLED", Code::ResourceExhausted),
        ("CURSOR_EXPIRED", Code::FailedPrecondition),
        ("SERVER_DRAINING", Code::Unavailable),
        ("NOT_IMPLEMENTED", Code::Unimplemented),
        ("UNAVAILABLE", Code::Unavailable),
        ("INTERNAL", Code::Internal),
    ];

    fn error_info(status: &Status) -> tonic_types::ErrorInfo {
        status
            .get_error_details()
            .error_info()
            .cloned()
            .expect("an ErrorInfo")
    }

    #[test]
    fn every_reason_travels_with_its_designed_code() {
        assert_eq!(CODES.len(), Reason::ALL.len());
        for (name, expected) in CODES {
            let reason = Reason::from_name(name).unwrap_or_else(|| panic!("{name} is a reason"));
            assert_eq!(code(reason), *expected, "{name}");
            let status = Status::from(ServiceError::Declined {
                reason,
                message: "refused".to_owned(),
                metadata: Vec::new(),
            });
            assert_eq!(status.code(), *expected, "{name}");
            let info = error_info(&status);
            assert_eq!(info.reason, *name);
            assert_eq!(info.domain, ERROR_DOMAIN);
        }
    }

    #[test]
    fn a_pricing_error_is_invalid_argument_with_its_own_reason() {
        let errors = [
            PricingError::UnknownModel("m".to_owned()),
            PricingError::UnknownTool("t".to_owned()),
            PricingError::ModelNotAllowed {
                tool: "t".to_owned(),
                model: "m".to_owned(),
            },
            PricingError::InvalidUsage("nothing to price".to_owned()),
        ];
        for error in errors {
            let expected = error.reason();
            let status = Status::from(ServiceError::Pricing(error));
            assert_eq!(status.code(), Code::InvalidArgument, "{expected}");
            assert_eq!(error_info(&status).reason, expected);
        }
    }

    #[test]
    fn a_missing_object_is_not_found() {
        let hold = Status::from(ServiceError::hold_not_found("hold".to_owned()));
        assert_eq!(hold.code(), Code::NotFound);
        assert_eq!(error_info(&hold).reason, "HOLD_NOT_FOUND");
    }
}
