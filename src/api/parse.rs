//! Parsing request fields into domain types, once, at the edge.

use prost::Message;

use crate::money::{Credits, parse_amount};
use crate::service::ServiceError;
use crate::service::idempotency::{Fingerprint, Rpc};

/// Longest free-text field (reasons, run metadata values, labels).
pub const MAX_TEXT: usize = 1_024;
/// Most labels on a run.
pub const MAX_LABELS: usize = 32;

/// Most characters of a caller's value quoted back in an error message.
pub const MAX_ECHO: usize = 64;

/// `value` quoted for an error message: at most [`MAX_ECHO`] characters, marked when cut, so an
/// error never grows with what the caller sent.
pub fn echo(value: &str) -> String {
    let mut quoted: String = value.chars().take(MAX_ECHO).collect();
    if quoted.len() < value.len() {
        quoted.push('…');
    }
    format!("{quoted:?}")
}

/// Earliest and latest seconds of a wire timestamp: the range `google.protobuf.Timestamp`
/// defines (0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z), well inside what Postgres stores.
const TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// A wire timestamp as a time, checked against the range every store accepts and cut to the
/// microseconds Postgres keeps (so what is answered is what a later read shows).
pub fn time(
    field: &'static str,
    timestamp: &prost_types::Timestamp,
) -> Result<chrono::DateTime<chrono::Utc>, ServiceError> {
    use chrono::{SubsecRound as _, TimeZone as _};
    let out_of_range = || ServiceError::InvalidArgument {
        field,
        message: format!(
            "seconds {} and nanos {} are out of range: a time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z is accepted (seconds {}..={}, nanos 0..=999999999)",
            timestamp.seconds,
            timestamp.nanos,
            TIMESTAMP_SECONDS.start(),
            TIMESTAMP_SECONDS.end()
        ),
    };
    if !TIMESTAMP_SECONDS.contains(&timestamp.seconds) {
        return Err(out_of_range());
    }
    let nanos = u32::try_from(timestamp.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)
        .ok_or_else(out_of_range)?;
    chrono::Utc
        .timestamp_opt(timestamp.seconds, nanos)
        .single()
        .map(|time| time.trunc_subsecs(6))
        .ok_or_else(out_of_range)
}

/// A required id, typed (e.g. [`crate::ids::HoldId`]) by where it goes.
pub fn id<Id: std::str::FromStr>(field: &'static str, text: &str) -> Result<Id, ServiceError> {
    text.parse().map_err(|_| ServiceError::InvalidArgument {
        field,
        message: if text.is_empty() {
            "required".to_owned()
        } else {
            format!("{} is not an id (expected a UUID)", echo(text))
        },
    })
}

/// An optional id: empty is none, anything else must be an id.
pub fn optional_id<Id: std::str::FromStr>(
    field: &'static str,
    text: &str,
) -> Result<Option<Id>, ServiceError> {
    if text.is_empty() {
        return Ok(None);
    }
    id(field, text).map(Some)
}

/// A quote id: the opaque token Quote returned (checked by its signature later).
pub fn quote_id(text: &str) -> Result<String, ServiceError> {
    let max = crate::pricing::quote_token::MAX_TOKEN_LENGTH;
    if text.is_empty() {
        return Err(ServiceError::InvalidArgument {
            field: "quote_id",
            message: "required".to_owned(),
        });
    }
    if text.len() > max {
        return Err(ServiceError::InvalidArgument {
            field: "quote_id",
            message: format!("{} bytes long; a quote id is at most {max}", text.len()),
        });
    }
    Ok(text.to_owned())
}

/// A required amount; zero allowed only when `allow_zero`.
pub fn amount(
    field: &'static str,
    text: &str,
    max: Credits,
    allow_zero: bool,
) -> Result<Credits, ServiceError> {
    parse_amount(text, max, allow_zero).map_err(|error| ServiceError::InvalidAmount {
        field,
        message: error.to_string(),
    })
}

/// An optional amount: empty means none.
pub fn optional_amount(
    field: &'static str,
    text: &str,
    max: Credits,
    allow_zero: bool,
) -> Result<Option<Credits>, ServiceError> {
    if text.is_empty() {
        Ok(None)
    } else {
        amount(field, text, max, allow_zero).map(Some)
    }
}

/// A bounded free-text field.
pub fn text(field: &'static str, value: &str) -> Result<String, ServiceError> {
    if value.len() > MAX_TEXT || value.chars().any(char::is_control) {
        return Err(ServiceError::InvalidArgument {
            field,
            message: format!("at most {MAX_TEXT} bytes of printable text"),
        });
    }
    Ok(value.to_owned())
}

/// The fingerprint of a mutating request to `rpc`, whose message is `rpc`'s request message.
pub fn fingerprint<M: Message>(
    key: &str,
    rpc: Rpc,
    request: &M,
) -> Result<Fingerprint, ServiceError> {
    Fingerprint::new(key, rpc, request.encode_to_vec())
}

/// Decodes a stored or fresh answer into its response message.
pub fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, tonic::Status> {
    M::decode(bytes).map_err(|error| {
        tracing::error!(%error, "stored response does not decode");
        tonic::Status::internal("internal error")
    })
}

/// Longest external id or external reference.
const MAX_REFERENCE: usize = 255;
/// Most entitlements on an account.
const MAX_ENTITLEMENTS: usize = 64;
/// Longest entitlement name.
const MAX_ENTITLEMENT: usize = 64;

/// An external id or reference: 1–255 printable characters; empty is `None` unless `required`.
pub fn reference(
    field: &'static str,
    value: &str,
    required: bool,
) -> Result<Option<String>, ServiceError> {
    if value.is_empty() {
        return if required {
            Err(ServiceError::InvalidArgument {
                field,
                message: "required".to_owned(),
            })
        } else {
            Ok(None)
        };
    }
    if value.len() > MAX_REFERENCE || value.chars().any(char::is_control) {
        return Err(ServiceError::InvalidArgument {
            field,
            message: format!("at most {MAX_REFERENCE} printable characters"),
        });
    }
    Ok(Some(value.to_owned()))
}

/// Entitlement names, sorted and deduplicated.
pub fn entitlements(values: &[String]) -> Result<Vec<String>, ServiceError> {
    let valid = |name: &String| {
        !name.is_empty()
            && name.len() <= MAX_ENTITLEMENT
            && name.bytes().all(|byte| {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(&byte)
            })
    };
    if values.len() > MAX_ENTITLEMENTS || !values.iter().all(valid) {
        return Err(ServiceError::InvalidArgument {
            field: "entitlements",
            message: format!(
                "at most {MAX_ENTITLEMENTS} names of 1-{MAX_ENTITLEMENT} lowercase letters, digits, '.', '_' or '-'"
            ),
        });
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted.dedup();
    Ok(sorted)
}

/// The run a hold pays for, from the request: bounded labels and text, a known task type.
pub fn run_meta(
    authorize_key: &str,
    run: Option<&crate::proto::v1::RunMetadata>,
) -> Result<crate::ledger::HoldMeta, ServiceError> {
    use crate::proto::v1::TaskType;
    let run = run.cloned().unwrap_or_default();
    if run.labels.len() > MAX_LABELS {
        return Err(ServiceError::InvalidArgument {
            field: "run.labels",
            message: format!("at most {} labels", MAX_LABELS),
        });
    }
    let task_type =
        TaskType::try_from(run.task_type).map_err(|_| ServiceError::InvalidArgument {
            field: "run.task_type",
            message: format!("unknown task type {}", run.task_type),
        })?;
    let mut labels = Vec::with_capacity(run.labels.len());
    for (key, value) in &run.labels {
        labels.push((text("run.labels", key)?, text("run.labels", value)?));
    }
    Ok(crate::ledger::HoldMeta {
        authorize_key: authorize_key.to_owned(),
        catalog_version: 0,
        quote_id: None,
        quote_token: None,
        task_type: if task_type == TaskType::Unspecified {
            String::new()
        } else {
            task_type.as_str_name().to_owned()
        },
        tool: text("run.tool", &run.tool)?,
        model: text("run.model", &run.model)?,
        project: text("run.project", &run.project)?,
        run_id: text("run.run_id", &run.run_id)?,
        labels,
        required_entitlement: None,
        spend_scope: None,
    })
}
