//! What a refusal must say: its code, its ErrorInfo reason and metadata.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// The ErrorInfo reason of a status, if any.
pub fn reason(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}

/// The ErrorInfo metadata of a status (empty without ErrorInfo).
pub fn metadata(status: &Status) -> HashMap<String, String> {
    status
        .get_details_error_info()
        .map(|info| info.metadata)
        .unwrap_or_default()
}

/// Asserts `status` has `code` and ErrorInfo `expected_reason`.
#[track_caller]
pub fn assert_refused(status: &Status, code: Code, expected_reason: &str) {
    assert_eq!(
        (status.code(), reason(status).as_deref()),
        (code, Some(expected_reason)),
        "unexpected refusal: {status:?}"
    );
}

/// Asserts that `result` is a refusal with `code` and ErrorInfo `expected_reason`; returns it.
#[track_caller]
pub fn expect_refused<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    expected_reason: &str,
) -> Status {
    let status = result.expect_err("the call should have been refused");
    assert_refused(&status, code, expected_reason);
    status
}

/// Asserts `status` is ALREADY_EXISTS / IDEMPOTENCY_KEY_REUSED naming `field` among the fields
/// that differ (`rpc` when the key was used by another RPC).
#[track_caller]
pub fn assert_key_reused(status: &Status, field: &str) {
    assert_refused(status, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    let fields = metadata(status).get("fields").cloned().unwrap_or_default();
    assert!(
        fields.split(',').any(|name| name.trim() == field),
        "metadata `fields` should name {field:?}, got {fields:?} ({status:?})"
    );
}

/// Asserts `status` is INVALID_ARGUMENT with ErrorInfo `expected_reason` naming `field`.
#[track_caller]
pub fn assert_invalid_field(status: &Status, expected_reason: &str, field: &str) {
    assert_refused(status, Code::InvalidArgument, expected_reason);
    assert_eq!(
        metadata(status).get("field").map(String::as_str),
        Some(field),
        "ErrorInfo should name the field: {status:?}"
    );
}
