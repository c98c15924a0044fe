//! Running operations on accounts under their row locks, exactly once. Operations on the same
//! account that arrive while one of its transactions runs are applied together in the next
//! one: one lock, one commit, each keeping its own answer, decline and idempotency record. So a
//! hot account costs one transaction per batch, not per request. Operations on different
//! accounts share a transaction too when they wait for one of the few transactions a server
//! keeps in flight (group commit): each account keeps its own lock, book and journal
//! transaction, and the rows are locked in account id order, so transactions never deadlock.
//! Transactions run in their own tasks, so a caller that hangs up cannot cut one in half.
//!
//! Here: the entry points and the flow of a group of operations. One transaction's steps are
//! in [`transaction`]; finding the operation whose data made the database refuse a shared
//! transaction is in [`isolation`].

use std::collections::HashMap;

use tokio::sync::oneshot;
use uuid::Uuid;

use super::combiner::{self, MAX_WAITING};
use super::idempotency::Fingerprint;
use super::{Context, ServiceError};
use crate::ids::{AccountId, AccountKey, HoldId, SettlementId, TenantId};
use crate::ledger::{AccountBook, SettlementRecord, SpendScope};
use crate::store::book::{AccountChanges, LoadedAccount, LockTarget, LockedBooks};
use crate::store::idempotency;
use crate::store::{HoldForm, StoreError};

mod isolation;
mod transaction;

/// Longest a transaction may take, whatever happens to its connection (a half-open socket
/// never errors); its callers are then told to retry with the same key.
const GROUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Longest the records of a failed transaction's operations are looked for.
const RECHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Applies one operation to the account's book and encodes its answer. Called once per
/// transaction the operation is part of: when the database refuses a shared transaction, the
/// operations are applied again in smaller ones (see [`isolation`]).
pub type Apply = Box<
    dyn Fn(
            &mut AccountBook,
            &mut HashMap<SettlementId, SettlementRecord>,
        ) -> Result<Vec<u8>, ServiceError>
        + Send
        + Sync,
>;

/// One mutating call on one account.
pub struct Operation {
    /// Its idempotency key and request.
    pub fingerprint: Fingerprint,
    /// A hold it needs loaded.
    pub hold_id: Option<HoldId>,
    /// A settlement it needs loaded.
    pub settlement_id: Option<SettlementId>,
    /// A grant external reference it needs loaded.
    pub external_ref: Option<String>,
    /// The id of the refund it makes (derived from its key), looked up so that a key whose
    /// record was pruned never refunds twice.
    pub refund_id: Option<Uuid>,
    /// A scope whose spend limits it needs loaded.
    pub spend_scope: Option<SpendScope>,
    /// Whether the scope's history is read too (to set a limit on it).
    pub scope_usage: bool,
    /// Whether it needs the account's allowance rules whatever their due time (to set one).
    pub allowances: bool,
    /// What it does.
    pub apply: Apply,
    /// The caller's RPC span, the parent of the round trips of the transaction it runs in.
    pub span: tracing::Span,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Operation")
            .field("rpc", &self.fingerprint.rpc.as_str())
            .finish_non_exhaustive()
    }
}

/// Where an operation runs and what it needs loaded.
#[derive(Debug, Clone)]
pub struct OpTarget {
    /// The caller's tenant.
    pub tenant_id: TenantId,
    /// The account whose lock it needs.
    pub account_id: AccountId,
    /// A hold it needs loaded.
    pub hold_id: Option<HoldId>,
    /// A settlement it needs loaded.
    pub settlement_id: Option<SettlementId>,
    /// A grant external reference it needs loaded.
    pub external_ref: Option<String>,
    /// The id of the refund it makes.
    pub refund_id: Option<Uuid>,
    /// A scope whose spend limits it needs loaded.
    pub spend_scope: Option<SpendScope>,
    /// Whether the scope's history is read too (to set a limit on it).
    pub scope_usage: bool,
    /// Whether it needs the account's allowance rules whatever their due time (to set one).
    pub allowances: bool,
}

impl OpTarget {
    /// The account's lock, with nothing else to load.
    pub fn new(tenant_id: TenantId, account_id: AccountId) -> Self {
        OpTarget {
            tenant_id,
            account_id,
            hold_id: None,
            settlement_id: None,
            external_ref: None,
            refund_id: None,
            spend_scope: None,
            scope_usage: false,
            allowances: false,
        }
    }
}

/// Applies `operate` to the account's book (with its settlement, when it names one) and answers
/// with `encode` of its result; batched with other operations of the same account.
pub async fn run_operation<T, Operate, Encode>(
    context: &Context,
    target: OpTarget,
    fingerprint: Fingerprint,
    operate: Operate,
    encode: Encode,
) -> Result<Vec<u8>, ServiceError>
where
    Operate: Fn(&mut AccountBook, Option<&mut SettlementRecord>) -> Result<T, ServiceError>
        + Send
        + Sync
        + 'static,
    Encode: Fn(&AccountBook, T) -> Vec<u8> + Send + Sync + 'static,
{
    let settlement_id = target.settlement_id;
    let hold_id = target.hold_id;
    super::span::record_ids(
        Some(target.account_id),
        target.hold_id,
        target.settlement_id,
    );
    let span = tracing::Span::current();
    let operation = Operation {
        fingerprint,
        hold_id: target.hold_id,
        settlement_id,
        external_ref: target.external_ref,
        refund_id: target.refund_id,
        spend_scope: target.spend_scope,
        scope_usage: target.scope_usage,
        allowances: target.allowances,
        apply: Box::new(move |book, settlements| {
            // The hold was found before the lock (or in this server's memory of recent holds)
            // but not under it: answered as missing, never applied to a book without it.
            if let Some(hold_id) = hold_id.filter(|hold_id| book.hold(*hold_id).is_none()) {
                return Err(ServiceError::hold_not_found(format!("hold {hold_id}")));
            }
            let settlement = settlement_id.and_then(|id| settlements.get_mut(&id));
            let value = operate(book, settlement)?;
            Ok(encode(book, value))
        }),
        span,
    };
    run_locked(context, target.tenant_id, target.account_id, operation).await
}

type Pending = (Operation, oneshot::Sender<Result<Vec<u8>, ServiceError>>);
type Group = combiner::Group<Pending>;
/// Batches the operations of each account, and of accounts waiting together.
pub type Combiner = combiner::Combiner<Pending>;

/// Runs `operation` on the account, alone or batched with others.
pub async fn run_locked(
    context: &Context,
    tenant_id: TenantId,
    account_id: AccountId,
    operation: Operation,
) -> Result<Vec<u8>, ServiceError> {
    let (answer, answered) = oneshot::channel();
    let key = AccountKey {
        tenant: tenant_id,
        account: account_id,
    };
    let groups = context.combiner.enqueue(key, (operation, answer));
    let Some(groups) = groups else {
        return Err(ServiceError::Unavailable(StoreError::Unavailable(format!(
            "{MAX_WAITING} operations are already waiting on this server; retry with the same \
             idempotency key"
        ))));
    };
    for group in groups {
        start_group(context.clone(), group);
    }
    // Dropped unanswered: its transaction timed out or panicked, and may or may not have
    // committed; a retry with the same key finds out.
    answered.await.unwrap_or_else(|_| {
        Err(ServiceError::Unavailable(StoreError::Unavailable(
            "the transaction did not finish; retry with the same idempotency key".to_owned(),
        )))
    })
}

fn start_group(context: Context, group: Group) {
    tokio::spawn(async move {
        let keys: Vec<AccountKey> = group.iter().map(|(key, _)| *key).collect();
        // One transaction's failure (even a panic) answers its callers and leaves the next be.
        let group_context = context.clone();
        let run = tokio::spawn(async move {
            tokio::time::timeout(GROUP_TIMEOUT, isolation::run_group(&group_context, group)).await
        });
        match run.await {
            Ok(Ok(())) => {}
            // The callers' answers were dropped with the transaction: each gets UNAVAILABLE.
            Ok(Err(_)) => tracing::error!(accounts = keys.len(), "a transaction timed out"),
            Err(error) => {
                tracing::error!(accounts = keys.len(), %error, "a transaction of operations panicked");
            }
        }
        let next = context.combiner.finish(&keys);
        for group in next {
            start_group(context.clone(), group);
        }
    });
}

/// The same key committed concurrently elsewhere (another account): answer with its record.
pub async fn replay_after_conflict(
    context: &Context,
    tenant_id: TenantId,
    fingerprint: &Fingerprint,
) -> Result<Vec<u8>, ServiceError> {
    let client = context.pool.get().await.map_err(StoreError::from)?;
    match idempotency::find(&client, tenant_id, &fingerprint.key).await? {
        Some(stored) => fingerprint.replay(&stored),
        None => Err(ServiceError::Unavailable(StoreError::Timeout(
            "a concurrent request with this idempotency key did not finish; retry".to_owned(),
        ))),
    }
}

/// Housekeeping of one account (due holds, expired grants, debt); skips a locked account.
pub async fn sweep_account(context: &Context, key: AccountKey) -> Result<bool, ServiceError> {
    let target = LockTarget {
        accounts: vec![key],
        skip_locked: true,
        expiry_warning: Some(context.limits.expiry_warning),
        ..LockTarget::default()
    };
    let Some((locked, mut loaded)) = LockedBooks::lock(
        &context.pool,
        &target,
        context.clock.now(),
        context.clock.as_ref(),
    )
    .await?
    else {
        return Ok(false);
    };
    let Some(LoadedAccount { mut book, .. }) = loaded.accounts.remove(&key) else {
        locked.rollback().await;
        return Ok(false);
    };
    book.sweep();
    let changes = book.into_changes();
    if changes.is_empty() {
        locked.rollback().await;
        return Ok(false);
    }
    let changes = [AccountChanges {
        tenant_id: key.tenant,
        account_id: key.account,
        changes,
    }];
    let complete = context
        .schema_complete
        .load(std::sync::atomic::Ordering::Relaxed);
    locked
        .commit(&changes, &[], HoldForm::when_complete(complete))
        .await?;
    Ok(true)
}
