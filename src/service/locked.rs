//! Running one operation on one account under its row lock, exactly once: replay a stored
//! answer, or apply the operation, store its answer and commit. Runs in its own task so a
//! caller that hangs up cannot cut a transaction in half.

use uuid::Uuid;

use super::idempotency::{Fingerprint, stored_answer};
use super::{Context, ServiceError};
use crate::ledger::{AccountBook, SettlementRecord};
use crate::store::StoreError;
use crate::store::book::{LockTarget, LockedAccount};
use crate::store::idempotency;

/// The primary key of idempotency records: a conflict on it is a concurrent duplicate.
const RECORD_KEY: &str = "idempotency_records_pkey";

/// Applies `operate` to the account's book and answers with `encode` of its result.
pub async fn run_locked<T, Operate, Encode>(
    context: &Context,
    target: LockTarget,
    fingerprint: Fingerprint,
    operate: Operate,
    encode: Encode,
) -> Result<Vec<u8>, ServiceError>
where
    T: Send + 'static,
    Operate: FnOnce(&mut AccountBook, Option<SettlementRecord>) -> Result<T, ServiceError>
        + Send
        + 'static,
    Encode: FnOnce(&AccountBook, T) -> Vec<u8> + Send + 'static,
{
    let context = context.clone();
    tokio::spawn(async move { run(&context, target, fingerprint, operate, encode).await })
        .await
        .map_err(|error| {
            ServiceError::Internal(StoreError::Other(format!("operation task failed: {error}")))
        })?
}

async fn run<T, Operate, Encode>(
    context: &Context,
    target: LockTarget,
    fingerprint: Fingerprint,
    operate: Operate,
    encode: Encode,
) -> Result<Vec<u8>, ServiceError>
where
    Operate: FnOnce(&mut AccountBook, Option<SettlementRecord>) -> Result<T, ServiceError>,
    Encode: FnOnce(&AccountBook, T) -> Vec<u8>,
{
    let (tenant_id, account_id) = (target.tenant_id, target.account_id);
    let _turn = context.accounts.enter(account_id).await;
    let now = context.clock.now();
    let Some((locked, loaded)) = LockedAccount::lock(&context.pool, &target, now).await? else {
        return Err(ServiceError::account_not_found(account_id));
    };
    if let Some(stored) = &loaded.record {
        locked.rollback().await;
        return fingerprint.replay(stored);
    }
    let mut book = loaded.book;
    let result = operate(&mut book, loaded.settlement).map(|value| encode(&book, value));
    let Some(answer) = stored_answer(&result) else {
        // Refused before anything happened (bad input found under the lock): nothing to keep.
        locked.rollback().await;
        return result;
    };
    let record = fingerprint.record(tenant_id, Some(account_id), answer);
    match locked.commit(&book.into_changes(), Some(&record)).await {
        Ok(()) => result,
        Err(StoreError::UniqueViolation { constraint }) if constraint == RECORD_KEY => {
            replay_after_conflict(context, tenant_id, &fingerprint).await
        }
        // The key made a hold whose idempotency record has been pruned since.
        Err(StoreError::UniqueViolation { .. }) => Err(ServiceError::IdempotencyKeyReused {
            fields: vec!["idempotency_key".to_owned()],
        }),
        Err(error) => Err(error.into()),
    }
}

/// The same key committed concurrently elsewhere (another account): answer with its record.
pub async fn replay_after_conflict(
    context: &Context,
    tenant_id: Uuid,
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
pub async fn sweep_account(
    context: &Context,
    tenant_id: Uuid,
    account_id: Uuid,
) -> Result<bool, ServiceError> {
    let target = LockTarget {
        tenant_id,
        account_id,
        skip_locked: true,
        ..LockTarget::default()
    };
    let Some((locked, loaded)) =
        LockedAccount::lock(&context.pool, &target, context.clock.now()).await?
    else {
        return Ok(false);
    };
    let mut book = loaded.book;
    book.sweep();
    let changes = book.into_changes();
    if changes.is_empty() {
        locked.rollback().await;
        return Ok(false);
    }
    locked.commit(&changes, None).await?;
    Ok(true)
}
