//! Running operations on accounts under their row locks, exactly once. Operations on the same
//! account that arrive while one of its transactions runs are applied together in the next
//! one: one lock, one commit, each keeping its own answer, decline and idempotency record. So a
//! hot account costs one transaction per batch, not per request. Operations on different
//! accounts share a transaction too when they wait for one of the few transactions a server
//! keeps in flight (group commit): each account keeps its own lock, book and journal
//! transaction, and the rows are locked in account id order, so transactions never deadlock.
//! Transactions run in their own tasks, so a caller that hangs up cannot cut one in half.

use std::collections::HashMap;

use tokio::sync::oneshot;
use uuid::Uuid;

use super::combiner::{self, AccountKey, MAX_WAITING};
use super::idempotency::{Fingerprint, stored_answer};
use super::{Context, ServiceError};
use crate::ledger::{AccountBook, SettlementRecord};
use crate::store::StoreError;
use crate::store::book::{AccountChanges, LoadedAccount, LockTarget, LockedBooks};
use crate::store::idempotency::{self, StoredRecord};

/// Longest a transaction may take, whatever happens to its connection (a half-open socket
/// never errors); its callers are then told to retry with the same key.
const GROUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Longest the records of a failed transaction's operations are looked for.
const RECHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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
type Group = combiner::Group<Pending>;
/// Batches the operations of each account, and of accounts waiting together.
pub type Combiner = combiner::Combiner<Pending>;

/// Runs `operation` on the account, alone or batched with others.
pub async fn run_locked(
    context: &Context,
    tenant_id: Uuid,
    account_id: Uuid,
    operation: Operation,
) -> Result<Vec<u8>, ServiceError> {
    let (answer, answered) = oneshot::channel();
    let key = (tenant_id, account_id);
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
            tokio::time::timeout(GROUP_TIMEOUT, run_group(&group_context, group)).await
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

struct Answer {
    reply: oneshot::Sender<Result<Vec<u8>, ServiceError>>,
    result: Result<Vec<u8>, ServiceError>,
    /// Set unless answered from a committed record, so a failed commit can be explained to it.
    ran: Option<(Uuid, Fingerprint)>,
}

fn lock_target(group: &Group) -> LockTarget {
    let mut target = LockTarget::default();
    for ((tenant_id, account_id), batch) in group {
        target.accounts.push((*tenant_id, *account_id));
        for (operation, _) in batch {
            target
                .idempotency_keys
                .push((*tenant_id, operation.fingerprint.key.clone()));
            target.hold_ids.extend(operation.hold_id);
            target.settlement_ids.extend(operation.settlement_id);
            target.external_refs.extend(operation.external_ref.clone());
            if operation.fingerprint.rpc == "Authorize" {
                target
                    .authorize_keys
                    .push((*tenant_id, operation.fingerprint.key.clone()));
            }
        }
    }
    target
}

async fn run_group(context: &Context, group: Group) {
    let target = lock_target(&group);
    let (locked, mut loaded) =
        match LockedBooks::lock(&context.pool, &target, context.clock.now()).await {
            Ok(Some(locked)) => locked,
            Ok(None) => {
                for ((_, account_id), batch) in group {
                    for (_, reply) in batch {
                        let _ = reply.send(Err(ServiceError::account_not_found(account_id)));
                    }
                }
                return;
            }
            Err(error) => {
                for (_, batch) in group {
                    for (_, reply) in batch {
                        let _ = reply.send(Err(error.clone().into()));
                    }
                }
                return;
            }
        };
    let mut recorded: HashMap<(Uuid, String), StoredRecord> = HashMap::new();
    let mut records = Vec::new();
    let mut answers = Vec::new();
    let mut changes = Vec::new();
    for ((tenant_id, account_id), batch) in group {
        let Some(LoadedAccount {
            mut book,
            mut settlements,
        }) = loaded.accounts.remove(&(tenant_id, account_id))
        else {
            for (_, reply) in batch {
                let _ = reply.send(Err(ServiceError::account_not_found(account_id)));
            }
            continue;
        };
        for (operation, reply) in batch {
            let fingerprint = operation.fingerprint;
            let key = (tenant_id, fingerprint.key.clone());
            if let Some(previous) = loaded.records.get(&key) {
                answers.push(Answer {
                    reply,
                    result: fingerprint.replay(previous),
                    ran: None,
                });
                continue;
            }
            if let Some(previous) = recorded.get(&key) {
                // A duplicate of an operation of this transaction: its answer stands only if
                // the transaction commits, so it is rechecked like the operation's own.
                answers.push(Answer {
                    reply,
                    result: fingerprint.replay(previous),
                    ran: Some((tenant_id, fingerprint)),
                });
                continue;
            }
            if fingerprint.rpc == "Authorize" && loaded.authorized.contains(&key) {
                // The key made a hold whose idempotency record has been pruned since.
                answers.push(Answer {
                    reply,
                    result: Err(ServiceError::IdempotencyKeyReused {
                        fields: vec!["idempotency_key".to_owned()],
                    }),
                    ran: None,
                });
                continue;
            }
            let result = (operation.apply)(&mut book, &mut settlements);
            // Input refused under the lock is not kept: nothing happened.
            if let Some(answer) = stored_answer(&result) {
                let record = fingerprint.record(tenant_id, Some(account_id), answer);
                recorded.insert(
                    key,
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
                ran: Some((tenant_id, fingerprint)),
            });
        }
        let account_changes = book.into_changes();
        if !account_changes.is_empty() {
            changes.push(AccountChanges {
                tenant_id,
                account_id,
                changes: account_changes,
            });
        }
    }
    // Inserted in key order, so two transactions sharing keys cannot deadlock on them.
    records.sort_by(|first, second| {
        (first.tenant_id, &first.key).cmp(&(second.tenant_id, &second.key))
    });
    let committed = if records.is_empty() && changes.is_empty() {
        locked.rollback().await;
        Ok(())
    } else {
        locked.commit(&changes, &records).await
    };
    if let Err(error) = &committed {
        after_failed_commit(context, &mut answers, error).await;
    }
    for answer in answers {
        let _ = answer.reply.send(answer.result);
    }
}

/// Nothing of the transaction was committed: tell each operation that ran what is true of
/// its key now (the answer a concurrent duplicate committed, or retry), with one bounded query.
async fn after_failed_commit(context: &Context, answers: &mut [Answer], error: &StoreError) {
    let keys: Vec<(Uuid, String)> = answers
        .iter()
        .filter_map(|answer| answer.ran.as_ref())
        .map(|(tenant_id, fingerprint)| (*tenant_id, fingerprint.key.clone()))
        .collect();
    if keys.is_empty() {
        return;
    }
    let lookup = async {
        let client = context.pool.get().await.map_err(StoreError::from)?;
        idempotency::find_many(&client, &keys).await
    };
    let found = match tokio::time::timeout(RECHECK_TIMEOUT, lookup).await {
        Ok(Ok(found)) => found,
        Ok(Err(_)) | Err(_) => HashMap::new(),
    };
    for answer in answers.iter_mut() {
        let Some((tenant_id, fingerprint)) = &answer.ran else {
            continue;
        };
        answer.result = match found.get(&(*tenant_id, fingerprint.key.clone())) {
            // A concurrent duplicate elsewhere committed first.
            Some(stored) => fingerprint.replay(stored),
            None => Err(ServiceError::Unavailable(StoreError::Unavailable(format!(
                "the transaction did not commit ({error}); retry with the same idempotency key"
            )))),
        };
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
        accounts: vec![(tenant_id, account_id)],
        skip_locked: true,
        ..LockTarget::default()
    };
    let Some((locked, mut loaded)) =
        LockedBooks::lock(&context.pool, &target, context.clock.now()).await?
    else {
        return Ok(false);
    };
    let Some(LoadedAccount { mut book, .. }) = loaded.accounts.remove(&(tenant_id, account_id))
    else {
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
        tenant_id,
        account_id,
        changes,
    }];
    locked.commit(&changes, &[]).await?;
    Ok(true)
}
