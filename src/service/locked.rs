//! Running operations on one account under its row lock, exactly once. Operations on the same
//! account that arrive while one of its transactions runs are applied together in the next
//! one: one lock, one commit, each keeping its own answer, decline and idempotency record. So a
//! hot account costs one transaction per batch, not per request. A leader task runs the
//! batches, so a caller that hangs up cannot cut a transaction in half.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::idempotency::{Fingerprint, stored_answer};
use super::{Context, ServiceError};
use crate::ledger::{AccountBook, SettlementRecord};
use crate::store::StoreError;
use crate::store::book::{LockTarget, LockedAccount};
use crate::store::idempotency::{self, StoredRecord};

/// The primary key of idempotency records: a conflict on it is a concurrent duplicate.
const RECORD_KEY: &str = "idempotency_records_pkey";
/// Most operations in one transaction (the rest wait for the next one).
const MAX_BATCH: usize = 256;

/// Applies one operation to the account's book and encodes its answer. Called at most once.
pub type Apply = Box<
    dyn FnOnce(
            &mut AccountBook,
            &mut HashMap<Uuid, SettlementRecord>,
        ) -> Result<Vec<u8>, ServiceError>
        + Send,
>;

/// One mutating call on one account.
pub struct Operation {
    /// Its idempotency key and request.
    pub fingerprint: Fingerprint,
    /// A hold it needs loaded.
    pub hold_id: Option<Uuid>,
    /// A settlement it needs loaded.
    pub settlement_id: Option<Uuid>,
    /// A grant external reference it needs loaded.
    pub external_ref: Option<String>,
    /// What it does.
    pub apply: Apply,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Operation")
            .field("rpc", &self.fingerprint.rpc)
            .finish_non_exhaustive()
    }
}

/// Where an operation runs and what it needs loaded.
#[derive(Debug, Clone, Default)]
pub struct OpTarget {
    /// The caller's tenant.
    pub tenant_id: Uuid,
    /// The account whose lock it needs.
    pub account_id: Uuid,
    /// A hold it needs loaded.
    pub hold_id: Option<Uuid>,
    /// A settlement it needs loaded.
    pub settlement_id: Option<Uuid>,
    /// A grant external reference it needs loaded.
    pub external_ref: Option<String>,
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
    Operate: FnOnce(&mut AccountBook, Option<&mut SettlementRecord>) -> Result<T, ServiceError>
        + Send
        + 'static,
    Encode: FnOnce(&AccountBook, T) -> Vec<u8> + Send + 'static,
{
    let settlement_id = target.settlement_id;
    let operation = Operation {
        fingerprint,
        hold_id: target.hold_id,
        settlement_id,
        external_ref: target.external_ref,
        apply: Box::new(move |book, settlements| {
            let settlement = settlement_id.and_then(|id| settlements.get_mut(&id));
            let value = operate(book, settlement)?;
            Ok(encode(book, value))
        }),
    };
    run_locked(context, target.tenant_id, target.account_id, operation).await
}

type Pending = (Operation, oneshot::Sender<Result<Vec<u8>, ServiceError>>);

/// Operations waiting per account; an entry exists while its leader runs.
#[derive(Debug, Default)]
pub struct Combiner {
    queues: Mutex<HashMap<(Uuid, Uuid), Vec<Pending>>>,
}

/// Runs `operation` on the account, alone or batched with others of the same account.
pub async fn run_locked(
    context: &Context,
    tenant_id: Uuid,
    account_id: Uuid,
    operation: Operation,
) -> Result<Vec<u8>, ServiceError> {
    let (answer, answered) = oneshot::channel();
    let lead = {
        let mut queues = context
            .combiner
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match queues.get_mut(&(tenant_id, account_id)) {
            Some(queue) => {
                queue.push((operation, answer));
                false
            }
            None => {
                queues.insert((tenant_id, account_id), vec![(operation, answer)]);
                true
            }
        }
    };
    if lead {
        let context = context.clone();
        tokio::spawn(async move { lead_batches(context, tenant_id, account_id).await });
    }
    answered.await.unwrap_or_else(|_| {
        Err(ServiceError::Internal(StoreError::Other(
            "the operation was dropped".to_owned(),
        )))
    })
}

async fn lead_batches(context: Context, tenant_id: Uuid, account_id: Uuid) {
    loop {
        let batch: Vec<Pending> = {
            let mut queues = context
                .combiner
                .queues
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(queue) = queues.get_mut(&(tenant_id, account_id)) else {
                return;
            };
            if queue.is_empty() {
                queues.remove(&(tenant_id, account_id));
                return;
            }
            let take = queue.len().min(MAX_BATCH);
            queue.drain(..take).collect()
        };
        // One batch's failure (even a panic) answers its callers and leaves the next batch be.
        let batch_context = context.clone();
        if let Err(error) =
            tokio::spawn(
                async move { run_batch(&batch_context, tenant_id, account_id, batch).await },
            )
            .await
        {
            tracing::error!(%account_id, %error, "a batch of operations panicked");
        }
    }
}

struct Answer {
    reply: oneshot::Sender<Result<Vec<u8>, ServiceError>>,
    result: Result<Vec<u8>, ServiceError>,
    /// Set when the operation ran (not replayed), so a failed commit can be explained to it.
    ran: Option<Fingerprint>,
}

async fn run_batch(context: &Context, tenant_id: Uuid, account_id: Uuid, batch: Vec<Pending>) {
    let mut target = LockTarget {
        tenant_id,
        account_id,
        ..LockTarget::default()
    };
    for (operation, _) in &batch {
        target
            .idempotency_keys
            .push(operation.fingerprint.key.clone());
        target.hold_ids.extend(operation.hold_id);
        target.settlement_ids.extend(operation.settlement_id);
        target.external_refs.extend(operation.external_ref.clone());
    }
    let locked = match LockedAccount::lock(&context.pool, &target, context.clock.now()).await {
        Ok(Some(locked)) => locked,
        Ok(None) => {
            for (_, reply) in batch {
                let _ = reply.send(Err(ServiceError::account_not_found(account_id)));
            }
            return;
        }
        Err(error) => {
            for (_, reply) in batch {
                let _ = reply.send(Err(error.clone().into()));
            }
            return;
        }
    };
    let (locked, loaded) = locked;
    let (mut book, mut settlements, stored) = (loaded.book, loaded.settlements, loaded.records);
    let mut recorded: HashMap<String, StoredRecord> = HashMap::new();
    let mut records = Vec::new();
    let mut answers = Vec::with_capacity(batch.len());
    for (operation, reply) in batch {
        let fingerprint = operation.fingerprint;
        if let Some(previous) = stored
            .get(&fingerprint.key)
            .or_else(|| recorded.get(&fingerprint.key))
        {
            answers.push(Answer {
                reply,
                result: fingerprint.replay(previous),
                ran: None,
            });
            continue;
        }
        let result = (operation.apply)(&mut book, &mut settlements);
        // Input refused under the lock is not kept: nothing happened.
        if let Some(answer) = stored_answer(&result) {
            let record = fingerprint.record(tenant_id, Some(account_id), answer);
            recorded.insert(
                fingerprint.key.clone(),
                StoredRecord {
                    rpc: record.rpc.to_owned(),
                    request_hash: record.request_hash.to_vec(),
                    request: record.request.clone(),
                    answer: record.answer.clone(),
                },
            );
            records.push(record);
        }
        answers.push(Answer {
            reply,
            result,
            ran: Some(fingerprint),
        });
    }
    let changes = book.into_changes();
    let committed = if records.is_empty() && changes.is_empty() {
        locked.rollback().await;
        Ok(())
    } else {
        locked.commit(&changes, &records).await
    };
    for mut answer in answers {
        if let (Err(error), Some(fingerprint)) = (&committed, &answer.ran) {
            answer.result = after_failed_commit(context, tenant_id, fingerprint, error).await;
        }
        let _ = answer.reply.send(answer.result);
    }
}

/// Nothing of the batch was committed: tell each operation what is true of its key now.
async fn after_failed_commit(
    context: &Context,
    tenant_id: Uuid,
    fingerprint: &Fingerprint,
    error: &StoreError,
) -> Result<Vec<u8>, ServiceError> {
    let client = context.pool.get().await.map_err(StoreError::from)?;
    if let Some(stored) = idempotency::find(&client, tenant_id, &fingerprint.key).await? {
        // A concurrent duplicate elsewhere committed first.
        return fingerprint.replay(&stored);
    }
    if let StoreError::UniqueViolation { constraint } = error {
        if constraint != RECORD_KEY && fingerprint.rpc == "Authorize" {
            let made =
                crate::store::accounts::find_hold(&client, tenant_id, None, Some(&fingerprint.key))
                    .await?;
            if made.is_some() {
                // The key made a hold whose idempotency record has been pruned since.
                return Err(ServiceError::IdempotencyKeyReused {
                    fields: vec!["idempotency_key".to_owned()],
                });
            }
        }
    }
    Err(ServiceError::Unavailable(StoreError::Unavailable(format!(
        "the transaction did not commit ({error}); retry with the same idempotency key"
    ))))
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
    locked.commit(&changes, &[]).await?;
    Ok(true)
}
