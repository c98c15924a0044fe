//! Allowances and spend limits on the wire: SetAllowance and SetSpendLimit, the spend scope of
//! Authorize and Quote, and how allowances and limits are shown.

use chrono::{DateTime, Utc};
use prost::Message as _;

use super::{convert, parse};
use crate::ids::AccountId;
use crate::ledger::{
    AllowanceState, Every, LimitPeriod, ScopeKind, SpendLimitState, SpendScope, parse_date,
    parse_zone,
};
use crate::proto::v1;
use crate::service::access::Caller;
use crate::service::holds::Encoder;
use crate::service::idempotency::Rpc;
use crate::service::plans::{self, SetAllowanceCommand, SetSpendLimitCommand};
use crate::service::{Context, ServiceError};

/// Longest allowance name and scope id.
pub const MAX_NAME: usize = 255;

/// A name or id of 1 to [`MAX_NAME`] bytes of printable text.
fn name(field: &'static str, value: &str) -> Result<String, ServiceError> {
    if value.is_empty() || value.len() > MAX_NAME || value.chars().any(char::is_control) {
        return Err(ServiceError::InvalidArgument {
            field,
            message: format!("1-{MAX_NAME} bytes of printable text are required"),
        });
    }
    Ok(value.to_owned())
}

/// `Authorize.spend_scope` / `Quote.spend_scope`: `None` when absent (or both parts empty).
pub fn spend_scope(value: Option<&v1::SpendScope>) -> Result<Option<SpendScope>, ServiceError> {
    match value {
        None => Ok(None),
        Some(value) if value.kind == 0 && value.scope_id.is_empty() => Ok(None),
        Some(value) => scope_fields("spend_scope", "spend_scope.scope_id", value).map(Some),
    }
}

/// `SetSpendLimitRequest.scope`, required.
fn required_scope(value: Option<&v1::SpendScope>) -> Result<SpendScope, ServiceError> {
    scope_fields(
        "scope",
        "scope.scope_id",
        &value.cloned().unwrap_or_default(),
    )
}

/// A scope whose kind is reported as `field` and id as `id_field` when refused.
fn scope_fields(
    field: &'static str,
    id_field: &'static str,
    value: &v1::SpendScope,
) -> Result<SpendScope, ServiceError> {
    let kind = match v1::SpendScopeKind::try_from(value.kind) {
        Ok(v1::SpendScopeKind::Member) => ScopeKind::Member,
        Ok(v1::SpendScopeKind::ApiKey) => ScopeKind::ApiKey,
        Ok(v1::SpendScopeKind::Project) => ScopeKind::Project,
        _ => {
            return Err(ServiceError::InvalidArgument {
                field,
                message: "kind must be SPEND_SCOPE_KIND_MEMBER, SPEND_SCOPE_KIND_API_KEY or \
                          SPEND_SCOPE_KIND_PROJECT"
                    .to_owned(),
            });
        }
    };
    let id = name(id_field, &value.scope_id)?;
    Ok(SpendScope { kind, id })
}

/// SetAllowance.
pub async fn set_allowance(
    context: &Context,
    caller: Caller,
    message: &v1::SetAllowanceRequest,
) -> Result<v1::SetAllowanceResponse, tonic::Status> {
    let fingerprint = parse::fingerprint(&message.idempotency_key, Rpc::SetAllowance, message)?;
    let source = v1::GrantSource::try_from(message.source)
        .ok()
        .and_then(convert::grant_source_from)
        .ok_or_else(|| ServiceError::InvalidArgument {
            field: "source",
            message: "a grant source is required (e.g. GRANT_SOURCE_FREE_DAILY)".to_owned(),
        })?;
    let every = match v1::AllowancePeriod::try_from(message.period) {
        Ok(v1::AllowancePeriod::Day) => Every::Day,
        Ok(v1::AllowancePeriod::Month) => Every::Month,
        _ => {
            return Err(ServiceError::InvalidArgument {
                field: "period",
                message: "ALLOWANCE_PERIOD_DAY or ALLOWANCE_PERIOD_MONTH is required".to_owned(),
            }
            .into());
        }
    };
    let invalid = |field: &'static str| {
        move |error: crate::ledger::PeriodError| ServiceError::InvalidArgument {
            field,
            message: error.to_string(),
        }
    };
    let command = SetAllowanceCommand {
        account_id: parse::id("account_id", &message.account_id)?,
        name: name("name", &message.name)?,
        source,
        amount: parse::amount("amount", &message.amount, context.limits.max_amount, false)?,
        every,
        anchor: match message.anchor_date.as_str() {
            "" => None,
            text => Some(parse_date(text).map_err(invalid("anchor_date"))?),
        },
        zone: match message.time_zone.as_str() {
            "" => chrono_tz::Tz::UTC,
            text => parse_zone(text).map_err(invalid("time_zone"))?,
        },
        enabled: message.enabled,
    };
    let encode: Encoder<AllowanceState> = Box::new(|book, allowance| {
        v1::SetAllowanceResponse {
            allowance: Some(allowance_of(
                book.account().account_id,
                &allowance,
                book.now(),
            )),
        }
        .encode_to_vec()
    });
    let bytes = plans::set_allowance(context, caller, command, fingerprint, encode).await?;
    parse::decode(&bytes)
}

/// SetSpendLimit.
pub async fn set_spend_limit(
    context: &Context,
    caller: Caller,
    message: &v1::SetSpendLimitRequest,
) -> Result<v1::SetSpendLimitResponse, tonic::Status> {
    let fingerprint = parse::fingerprint(&message.idempotency_key, Rpc::SetSpendLimit, message)?;
    let period = match v1::LimitPeriod::try_from(message.period) {
        Ok(v1::LimitPeriod::Day) => LimitPeriod::Day,
        Ok(v1::LimitPeriod::Month) => LimitPeriod::Month,
        Ok(v1::LimitPeriod::Total) => LimitPeriod::Total,
        _ => {
            return Err(ServiceError::InvalidArgument {
                field: "period",
                message: "LIMIT_PERIOD_DAY, LIMIT_PERIOD_MONTH or LIMIT_PERIOD_TOTAL is required"
                    .to_owned(),
            }
            .into());
        }
    };
    let command = SetSpendLimitCommand {
        account_id: parse::id("account_id", &message.account_id)?,
        scope: required_scope(message.scope.as_ref())?,
        period,
        limit: parse::optional_amount("limit", &message.limit, context.limits.max_amount, true)?,
    };
    let removed = command.limit.is_none();
    let encode: Encoder<SpendLimitState> = Box::new(move |book, limit| {
        v1::SetSpendLimitResponse {
            spend_limit: Some(spend_limit_of(book.account().account_id, &limit, removed)),
        }
        .encode_to_vec()
    });
    let bytes = plans::set_spend_limit(context, caller, command, fingerprint, encode).await?;
    parse::decode(&bytes)
}

/// An allowance on the wire, with its next reset as of `now`.
pub fn allowance_of(
    account_id: AccountId,
    allowance: &AllowanceState,
    now: DateTime<Utc>,
) -> v1::Allowance {
    let recurrence = &allowance.recurrence;
    let next_reset = allowance
        .enabled
        .then(|| recurrence.period_at(now).map(|period| period.end))
        .flatten();
    v1::Allowance {
        allowance_id: allowance.allowance_id.to_string(),
        account_id: account_id.to_string(),
        name: allowance.name.clone(),
        source: convert::grant_source(allowance.source) as i32,
        amount: allowance.amount.to_string(),
        period: match recurrence.every {
            Every::Day => v1::AllowancePeriod::Day,
            Every::Month => v1::AllowancePeriod::Month,
        } as i32,
        anchor_date: recurrence.anchor.format("%Y-%m-%d").to_string(),
        time_zone: recurrence.zone.name().to_owned(),
        enabled: allowance.enabled,
        created_at: Some(convert::timestamp(allowance.created_at)),
        next_reset_at: next_reset.map(convert::timestamp),
        effective_from: Some(convert::timestamp(allowance.effective_from)),
    }
}

/// A spend limit on the wire; `limit` empty when it was `removed`.
pub fn spend_limit_of(
    account_id: AccountId,
    limit: &SpendLimitState,
    removed: bool,
) -> v1::SpendLimit {
    v1::SpendLimit {
        spend_limit_id: limit.spend_limit_id.to_string(),
        account_id: account_id.to_string(),
        scope: Some(scope_of(&limit.scope)),
        period: match limit.period {
            LimitPeriod::Day => v1::LimitPeriod::Day,
            LimitPeriod::Month => v1::LimitPeriod::Month,
            LimitPeriod::Total => v1::LimitPeriod::Total,
        } as i32,
        limit: if removed {
            String::new()
        } else {
            limit.limit.to_string()
        },
        spent: limit.spent.to_string(),
        reserved: limit.reserved.to_string(),
        // A TOTAL limit has one period, without a start worth showing.
        period_start: (limit.period != LimitPeriod::Total)
            .then(|| convert::timestamp(limit.period_start)),
    }
}

/// A scope on the wire.
pub fn scope_of(scope: &SpendScope) -> v1::SpendScope {
    v1::SpendScope {
        kind: match scope.kind {
            ScopeKind::Member => v1::SpendScopeKind::Member,
            ScopeKind::ApiKey => v1::SpendScopeKind::ApiKey,
            ScopeKind::Project => v1::SpendScopeKind::Project,
        } as i32,
        scope_id: scope.id.clone(),
    }
}
