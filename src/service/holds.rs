//! The worker's money path: Authorize, ExtendHold, Settle, Release, Refund, GetHold. Input is
//! already parsed into domain types; prices are resolved before the lock (see `priced`); each
//! mutation runs once under the account lock.

use chrono::Duration;

use super::access::Caller;
use super::idempotency::{Fingerprint, Rpc, answer_result};
use super::locked::{OpTarget, run_operation};
use super::priced::{self, Charge, HoldPrice};
use super::{Context, ServiceError};
use crate::ids::{AccountId, GrantId, HoldId, SettlementId};
use crate::ledger::{
    AccountBook, HoldMeta, HoldState, HoldStatus, Reason, RefundRequest, SettleRequest,
    SettlementRecord,
};
use crate::money::Credits;
use crate::store::holds::{self as stored, HoldRef};
use crate::store::{StoreError, idempotency};

/// Authorize.
#[derive(Debug, Clone)]
pub struct AuthorizeCommand {
    /// The account.
    pub account_id: AccountId,
    /// How much to hold.
    pub price: HoldPrice,
    /// Time to live.
    pub ttl: Duration,
    /// The run (authorize key included).
    pub meta: HoldMeta,
}

/// Raise a hold and/or move its expiry.
#[derive(Debug, Clone)]
pub struct ExtendCommand {
    /// The hold.
    pub hold_id: HoldId,
    /// The hold's account, when the request names it.
    pub account_id: Option<AccountId>,
    /// New total amount.
    pub amount: Option<Credits>,
    /// New TTL from now.
    pub ttl: Option<Duration>,
}

/// Capture a hold.
#[derive(Debug, Clone)]
pub struct SettleCommand {
    /// The hold.
    pub hold_id: HoldId,
    /// The hold's account, when the request names it.
    pub account_id: Option<AccountId>,
    /// What to charge.
    pub charge: Charge,
    /// Keep the hold open.
    pub partial: bool,
}

/// Refund a settlement.
#[derive(Debug, Clone)]
pub struct RefundCommand {
    /// The settlement.
    pub settlement_id: SettlementId,
    /// The settlement's account, when the request names it.
    pub account_id: Option<AccountId>,
    /// Credits; `None` = all that is left.
    pub amount: Option<Credits>,
    /// Why.
    pub reason: String,
}

/// Encodes an answer from the book after the operation and its result.
pub type Encoder<T> = Box<dyn Fn(&AccountBook, T) -> Vec<u8> + Send + Sync>;

/// A refusal found before the lock may be answered already: a retry after its quote expired
/// gets the first answer, not the new refusal.
async fn replay_or(
    context: &Context,
    caller: Caller,
    fingerprint: &Fingerprint,
    error: ServiceError,
) -> Result<Vec<u8>, ServiceError> {
    let client = context.pool.get().await.map_err(StoreError::from)?;
    match idempotency::find(&client, caller.tenant_id, &fingerprint.key).await? {
        Some(stored) => fingerprint.replay(&stored),
        None => Err(error),
    }
}

/// Holds the priced amount on the account.
pub async fn authorize(
    context: &Context,
    caller: Caller,
    mut command: AuthorizeCommand,
    fingerprint: Fingerprint,
    encode: Encoder<HoldId>,
) -> Result<Vec<u8>, ServiceError> {
    let priced = priced::price_hold(
        context,
        caller,
        command.account_id,
        &command.price,
        &mut command.meta,
    )
    .await;
    let amount = match priced {
        Ok(amount) => amount,
        Err(error) => return replay_or(context, caller, &fingerprint, error).await,
    };
    let target = OpTarget {
        spend_scope: command.meta.spend_scope.clone(),
        ..OpTarget::new(caller.tenant_id, command.account_id)
    };
    // The hold's id is chosen here so the server can remember how it was priced: the Settle
    // that follows then needs no lookup. (A replayed Authorize answers with its first hold; the
    // id remembered here is then never used.)
    let hold_id = HoldId::now_v7();
    let remembered = HoldRef {
        account_id: command.account_id,
        catalog_version: command.meta.catalog_version,
        tool: command.meta.tool.clone(),
        model: command.meta.model.clone(),
    };
    let operate = move |book: &mut AccountBook, _: Option<&mut SettlementRecord>| {
        let now = book.now();
        let hold = HoldState {
            hold_id,
            status: HoldStatus::Active,
            amount,
            captured: Credits::ZERO,
            expires_at: now + command.ttl,
            allocations: Vec::new(),
            partial_captures: 0,
            late_settled: false,
            created_at: now,
            resolved_at: None,
            meta: command.meta.clone(),
        };
        book.authorize(hold)?;
        Ok(hold_id)
    };
    let answer = run_operation(context, target, fingerprint, operate, encode).await;
    if answer.is_ok() {
        context
            .recent
            .remember_hold(caller.tenant_id, hold_id, remembered);
    }
    answer
}

/// Whose hold `hold_id` is and how it was priced: from this server's memory, else the
/// database. A request that names the account (`named`) finds the hold on that account only.
async fn hold_ref(
    context: &Context,
    caller: Caller,
    hold_id: HoldId,
    named: Option<AccountId>,
) -> Result<HoldRef, ServiceError> {
    let not_found = || match named {
        Some(account_id) => {
            ServiceError::hold_not_found(format!("hold {hold_id} of account {account_id}"))
        }
        None => ServiceError::hold_not_found(format!("hold {hold_id}")),
    };
    if let Some(hold) = context.recent.hold(caller.tenant_id, hold_id) {
        return match named {
            Some(account_id) if account_id != hold.account_id => Err(not_found()),
            _ => Ok(hold),
        };
    }
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let hold = stored::hold_ref(&client, caller.tenant_id, hold_id, named)
        .await?
        .ok_or_else(not_found)?;
    context
        .recent
        .remember_hold(caller.tenant_id, hold_id, hold.clone());
    Ok(hold)
}

fn hold_target(caller: Caller, hold_id: HoldId, hold: &HoldRef) -> OpTarget {
    OpTarget {
        hold_id: Some(hold_id),
        ..OpTarget::new(caller.tenant_id, hold.account_id)
    }
}

/// Raises a live hold and/or moves its expiry.
pub async fn extend(
    context: &Context,
    caller: Caller,
    command: ExtendCommand,
    fingerprint: Fingerprint,
    encode: Encoder<HoldId>,
) -> Result<Vec<u8>, ServiceError> {
    let hold = hold_ref(context, caller, command.hold_id, command.account_id).await?;
    let target = hold_target(caller, command.hold_id, &hold);
    let operate = move |book: &mut AccountBook, _: Option<&mut SettlementRecord>| {
        let expires_at = command.ttl.map(|ttl| book.now() + ttl);
        book.extend(command.hold_id, command.amount, expires_at)?;
        Ok(command.hold_id)
    };
    run_operation(context, target, fingerprint, operate, encode).await
}

/// Captures a hold; metered usage is priced (before the lock) with the hold's catalog version.
pub async fn settle(
    context: &Context,
    caller: Caller,
    command: SettleCommand,
    fingerprint: Fingerprint,
    encode: Encoder<SettlementRecord>,
) -> Result<Vec<u8>, ServiceError> {
    let hold = hold_ref(context, caller, command.hold_id, command.account_id).await?;
    let target = hold_target(caller, command.hold_id, &hold);
    let (total, line_items) =
        match priced::price_charge(context, caller, &hold, &command.charge).await {
            Ok(priced) => priced,
            Err(error) => return replay_or(context, caller, &fingerprint, error).await,
        };
    let max_partial_captures = context.limits.max_partial_captures;
    let operate = move |book: &mut AccountBook, _: Option<&mut SettlementRecord>| {
        let request = SettleRequest {
            settlement_id: SettlementId::now_v7(),
            hold_id: command.hold_id,
            total,
            partial: command.partial,
            max_partial_captures,
            line_items: line_items.clone(),
        };
        Ok(book.settle(&request)?)
    };
    run_operation(context, target, fingerprint, operate, encode).await
}

/// Gives a live hold back.
pub async fn release(
    context: &Context,
    caller: Caller,
    (hold_id, named): (HoldId, Option<AccountId>),
    fingerprint: Fingerprint,
    encode: Encoder<Credits>,
) -> Result<Vec<u8>, ServiceError> {
    let hold = hold_ref(context, caller, hold_id, named).await?;
    let target = hold_target(caller, hold_id, &hold);
    let operate =
        move |book: &mut AccountBook, _: Option<&mut SettlementRecord>| Ok(book.release(hold_id)?);
    run_operation(context, target, fingerprint, operate, encode).await
}

/// Refunds (part of) a settlement.
pub async fn refund(
    context: &Context,
    caller: Caller,
    command: RefundCommand,
    fingerprint: Fingerprint,
    encode: Encoder<crate::ledger::RefundRecord>,
) -> Result<Vec<u8>, ServiceError> {
    let settlement_id = command.settlement_id;
    let named = command.account_id;
    let not_found = move || ServiceError::NotFound {
        reason: Reason::SettlementNotFound,
        what: match named {
            Some(account_id) => format!("settlement {settlement_id} of account {account_id}"),
            None => format!("settlement {settlement_id}"),
        },
    };
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let (account_id, hold_id) =
        stored::settlement_account(&client, caller.tenant_id, settlement_id, named)
            .await?
            .ok_or_else(not_found)?;
    drop(client);
    // The refund's id comes from its key, so the refund itself remembers the key after the
    // idempotency record is pruned: a late retry is refused instead of refunding twice.
    let refund_id = fingerprint.durable_id(caller.tenant_id);
    // The hold is loaded for its spend scope: a refund lowers the scope's spend.
    let target = OpTarget {
        settlement_id: Some(settlement_id),
        hold_id: Some(hold_id),
        refund_id: Some(refund_id),
        ..OpTarget::new(caller.tenant_id, account_id)
    };
    let refund_grant_ttl = context.limits.refund_grant_ttl;
    let operate = move |book: &mut AccountBook, settlement: Option<&mut SettlementRecord>| {
        let settlement = settlement.ok_or_else(not_found)?;
        let request = RefundRequest {
            refund_id,
            amount: command.amount,
            reason: command.reason.clone(),
            refund_grant_id: GrantId::now_v7(),
            refund_grant_expires_at: book.now() + refund_grant_ttl,
        };
        Ok(book.refund(settlement, &request)?)
    };
    run_operation(context, target, fingerprint, operate, encode).await
}

/// A hold with its settlements, as of now.
#[derive(Debug, Clone)]
pub struct HoldView {
    /// Its account.
    pub account_id: AccountId,
    /// The hold (shown EXPIRED once past its expiry, even before the sweeper ran).
    pub hold: HoldState,
    /// Its settlements, oldest first.
    pub settlements: Vec<SettlementRecord>,
}

/// A hold by id, or by the idempotency key of the Authorize that made it; on account `named`
/// only, when the request names one. A declined Authorize answers with its decline; an unknown
/// key with HOLD_NOT_FOUND.
pub async fn get_hold(
    context: &Context,
    caller: Caller,
    hold_id: Option<HoldId>,
    authorize_key: Option<&str>,
    named: Option<AccountId>,
) -> Result<HoldView, ServiceError> {
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let lookup = stored::HoldLookup {
        hold_id,
        authorize_key,
        account_id: named,
    };
    if let Some((account_id, mut hold, settlements)) =
        stored::find_hold(&client, caller.tenant_id, lookup).await?
    {
        super::span::record_ids(Some(account_id), Some(hold.hold_id), None);
        if hold.is_due(context.clock.now()) {
            hold.status = HoldStatus::Expired;
        }
        return Ok(HoldView {
            account_id,
            hold,
            settlements,
        });
    }
    if let Some(key) = authorize_key {
        if let Some(stored) = idempotency::find(&client, caller.tenant_id, key).await? {
            let on_named = named.is_none() || stored.account_id == named;
            if Rpc::from_name(&stored.rpc) == Some(Rpc::Authorize) && on_named {
                answer_result(stored.answer)?;
            }
        }
    }
    let what = match (hold_id, authorize_key) {
        (Some(hold_id), _) => format!("hold {hold_id}"),
        (None, Some(key)) => format!("hold authorized with idempotency key {key:?}"),
        (None, None) => "hold".to_owned(),
    };
    Err(ServiceError::hold_not_found(match named {
        Some(account_id) => format!("{what} of account {account_id}"),
        None => what,
    }))
}
