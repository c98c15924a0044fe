//! An account's plan: SetAllowance and SetSpendLimit, each applied under the account lock like
//! any balance operation (a new allowance's current period is granted in the same
//! transaction; a new limit counts what the scope's active holds reserve, and its captures
//! from then on).

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::access::Caller;
use super::holds::Encoder;
use super::idempotency::Fingerprint;
use super::locked::{OpTarget, run_operation};
use super::{Context, ServiceError};
use crate::ids::{AccountId, AllowanceId, SpendLimitId};
use crate::ledger::{
    AccountBook, AllowanceRule, AllowanceState, Every, GrantSource, LimitChange, LimitPeriod,
    Recurrence, SettlementRecord, SpendLimitState, SpendScope,
};
use crate::money::Credits;

/// Most allowances an account may have: setting one loads them all (other operations only
/// those that may owe a period).
pub const MAX_ALLOWANCES: usize = 32;
/// Most spend limits an account may have (its members, keys and projects times periods); an
/// operation loads only those of the scopes it touches.
pub const MAX_SPEND_LIMITS: usize = crate::store::book::MAX_SPEND_LIMITS;

/// SetAllowance.
#[derive(Debug, Clone)]
pub struct SetAllowanceCommand {
    /// The account.
    pub account_id: AccountId,
    /// The rule's name.
    pub name: String,
    /// The source of its grants.
    pub source: GrantSource,
    /// Credits per period.
    pub amount: Credits,
    /// Day or month.
    pub every: Every,
    /// First period's local date; `None` = the replaced rule's anchor when it recurs the same
    /// way (a changed amount keeps its renewal day), else today in `zone`.
    pub anchor: Option<NaiveDate>,
    /// Where midnight is.
    pub zone: Tz,
    /// False pauses it.
    pub enabled: bool,
}

/// SetSpendLimit.
#[derive(Debug, Clone)]
pub struct SetSpendLimitCommand {
    /// The account.
    pub account_id: AccountId,
    /// The member, key or project.
    pub scope: SpendScope,
    /// Day, month or total.
    pub period: LimitPeriod,
    /// The new limit; `None` removes it.
    pub limit: Option<Credits>,
}

/// Creates or replaces an allowance.
pub async fn set_allowance(
    context: &Context,
    caller: Caller,
    command: SetAllowanceCommand,
    fingerprint: Fingerprint,
    encode: Encoder<AllowanceState>,
) -> Result<Vec<u8>, ServiceError> {
    let target = OpTarget {
        allowances: true,
        ..OpTarget::new(caller.tenant_id, command.account_id)
    };
    let operate = move |book: &mut AccountBook, _: Option<&mut SettlementRecord>| {
        let is_new = book
            .allowances()
            .iter()
            .all(|allowance| allowance.name != command.name);
        if is_new && book.allowances().len() >= MAX_ALLOWANCES {
            return Err(ServiceError::InvalidArgument {
                field: "name",
                message: format!(
                    "an account has at most {MAX_ALLOWANCES} allowances; replace one by its name"
                ),
            });
        }
        let today = book.now().with_timezone(&command.zone).date_naive();
        let kept_anchor = book
            .allowances()
            .iter()
            .find(|allowance| allowance.name == command.name)
            .filter(|previous| previous.recurrence.every == command.every)
            .map(|previous| previous.recurrence.anchor);
        let rule = AllowanceRule {
            new_id: AllowanceId::now_v7(),
            name: command.name.clone(),
            source: command.source,
            amount: command.amount,
            recurrence: Recurrence {
                every: command.every,
                anchor: command.anchor.or(kept_anchor).unwrap_or(today),
                zone: command.zone,
            },
            enabled: command.enabled,
        };
        Ok(book.set_allowance(&rule))
    };
    run_operation(context, target, fingerprint, operate, encode).await
}

/// Sets, changes or removes a spend limit; answers with the limit as of now.
pub async fn set_spend_limit(
    context: &Context,
    caller: Caller,
    command: SetSpendLimitCommand,
    fingerprint: Fingerprint,
    encode: Encoder<SpendLimitState>,
) -> Result<Vec<u8>, ServiceError> {
    let target = OpTarget {
        spend_scope: Some(command.scope.clone()),
        scope_usage: true,
        ..OpTarget::new(caller.tenant_id, command.account_id)
    };
    let operate = move |book: &mut AccountBook, _: Option<&mut SettlementRecord>| {
        let exists = book
            .spend_limits()
            .iter()
            .any(|limit| limit.scope == command.scope && limit.period == command.period);
        let account_limits = book
            .scope_usage(&command.scope)
            .map_or(0, |usage| usage.account_limits);
        if !exists && command.limit.is_some() && account_limits >= MAX_SPEND_LIMITS {
            return Err(ServiceError::InvalidArgument {
                field: "scope",
                message: format!(
                    "an account has at most {MAX_SPEND_LIMITS} spend limits; remove one first"
                ),
            });
        }
        Ok(book.set_spend_limit(&LimitChange {
            new_id: SpendLimitId::now_v7(),
            scope: command.scope.clone(),
            period: command.period,
            limit: command.limit,
        }))
    };
    run_operation(context, target, fingerprint, operate, encode).await
}
