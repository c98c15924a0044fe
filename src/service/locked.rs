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

use super::combiner::{self, MAX_WAITING};
use super::idempotency::{Fingerprint, Rpc, answer_result, stored_answer};
use super::{Context, ServiceError};
use crate::ids::{AccountId, AccountKey, HoldId, SettlementId, TenantId};
use crate::ledger::{AccountBook, SettlementRecord};
use crate::store::StoreError;
use crate::store::book::{AccountChanges, LoadedAccount, LockTarget, LockedBooks};
use crate::store::idempotency::{self, StoredRecord};

/// Longest a transaction may take, whatever happens to its connection (a half-open socket
/// never errors); its callers are then told to retry with the same key.
const GROUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Longest the records of a failed transaction's operations are looked for.
const RECHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Applies one operation to the account's book and encodes its answer. Called once per
/// transaction the operation is part of: when the database refuses a shared transaction, the
/// operations are applied again in smaller ones (see [`run_group`]).
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
    /// What it does.
    pub apply: Apply,
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
    let operation = Operation {
        fingerprint,
        hold_id: target.hold_id,
        settlement_id,
        external_ref: target.external_ref,
        refund_id: target.refund_id,
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

/// The answer to one operation of a transaction.
struct Answer {
    result: Result<Vec<u8>, ServiceError>,
    /// Not answered from a committed record, so a failed commit must be explained to it.
    ran: bool,
}

/// What one attempt at a group's transaction came to.
enum Attempt {
    /// Every operation has its answer, in the group's order (committed, or explained).
    Answered(Vec<Vec<Answer>>),
    /// Something one operation carried failed the transaction: nothing was committed, and no
    /// operation has been answered.
    Refused(Refusal),
}

/// Why a transaction was refused for what one of its operations carried.
#[derive(Debug)]
enum Refusal {
    /// The database refused a value, a constraint or a statement (not the connection).
    Store(StoreError),
    /// Applying an operation to its book panicked (a broken invariant): the book is not
    /// trusted, so nothing of the transaction is written.
    Panic(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Store(error) => write!(formatter, "{error}"),
            Refusal::Panic(message) => write!(formatter, "an operation panicked: {message}"),
        }
    }
}

/// Whether a failed transaction was refused for something one of its operations carried (so
/// the operation can be found and the others rerun), rather than for the connection, a
/// timeout or an unclassified error (which every operation may retry: an answer recorded for
/// those would outlive a cause that was not the request's).
fn refused_by_data(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Refused { .. } | StoreError::UniqueViolation { .. }
    )
}

fn lock_target(group: &Group) -> LockTarget {
    let mut target = LockTarget::default();
    for (key, batch) in group {
        target.accounts.push(*key);
        for (operation, _) in batch {
            target
                .idempotency_keys
                .push((key.tenant, operation.fingerprint.key.clone()));
            target.hold_ids.extend(operation.hold_id);
            target.settlement_ids.extend(operation.settlement_id);
            target.external_refs.extend(operation.external_ref.clone());
            target.refund_ids.extend(operation.refund_id);
            if operation.fingerprint.rpc == Rpc::Authorize {
                target
                    .authorize_keys
                    .push((key.tenant, operation.fingerprint.key.clone()));
            }
        }
    }
    target
}

/// Runs the group's transaction; when the database refuses it for something an operation
/// carried, finds that operation by halving: each half runs in a transaction of its own, until
/// the operation that fails alone is answered with a non-retryable refusal and every other one
/// has committed. One caller's bad data never fails another's operation.
async fn run_group(context: &Context, group: Group) {
    // (operations, isolating): an operation is declared the culprit only once it has failed
    // alone in a second transaction, so a refusal caused by a race (a unique key another
    // server committed meanwhile) is answered from what committed instead.
    let mut pending = vec![(group, false)];
    while let Some((group, isolating)) = pending.pop() {
        match attempt(context, &group).await {
            Attempt::Answered(answers) => {
                for ((_, batch), answers) in group.into_iter().zip(answers) {
                    for ((_, reply), answer) in batch.into_iter().zip(answers) {
                        let _ = reply.send(answer.result);
                    }
                }
            }
            Attempt::Refused(refusal) => {
                let operations: usize = group.iter().map(|(_, batch)| batch.len()).sum();
                tracing::warn!(
                    operations,
                    %refusal,
                    "a transaction was refused for what an operation carried; rerunning its \
                     operations in halves"
                );
                if operations > 1 {
                    let (first, second) = combiner::halves(group, operations / 2);
                    pending.push((second, true));
                    pending.push((first, true));
                } else if !isolating {
                    pending.push((group, true));
                } else {
                    answer_culprit(context, group, &refusal).await;
                }
            }
        }
    }
}

/// The one operation of `group` that the database refused even alone: it is answered with a
/// non-retryable refusal, recorded under its idempotency key so a retry gets the same answer
/// (and cannot refuse a later transaction again). The cause stays in the log.
async fn answer_culprit(context: &Context, group: Group, refusal: &Refusal) {
    for (key, batch) in group {
        let (tenant_id, account_id) = (key.tenant, key.account);
        for (operation, reply) in batch {
            let fingerprint = &operation.fingerprint;
            tracing::error!(
                %tenant_id,
                %account_id,
                rpc = fingerprint.rpc.as_str(),
                %refusal,
                "an operation failed its transaction alone; answered on its own"
            );
            let error = match refusal {
                Refusal::Store(error) => error,
                Refusal::Panic(message) => {
                    // A bug, not the request: not recorded, so a fixed server can apply it.
                    let cause = StoreError::Other(format!("an operation panicked: {message}"));
                    let _ = reply.send(Err(ServiceError::Internal(cause)));
                    continue;
                }
            };
            let refused = ServiceError::refused_by_store(error.sqlstate());
            let Some(answer) = stored_answer(&Err(refused)) else {
                continue;
            };
            let record = fingerprint.record(tenant_id, Some(account_id), answer.clone());
            let stored = async {
                let client = context.pool.get().await.map_err(StoreError::from)?;
                match idempotency::insert(&client, &record).await {
                    // Another server committed this key meanwhile: that answer stands.
                    Err(StoreError::UniqueViolation { .. }) => {
                        idempotency::find(&client, tenant_id, &fingerprint.key).await
                    }
                    Err(error) => Err(error),
                    Ok(()) => Ok(None),
                }
            };
            let result = match tokio::time::timeout(RECHECK_TIMEOUT, stored).await {
                Ok(Ok(Some(committed))) => fingerprint.replay(&committed),
                Ok(Ok(None)) => answer_result(answer),
                Ok(Err(store_error)) => {
                    tracing::error!(%store_error, "the refusal could not be recorded");
                    answer_result(answer)
                }
                Err(_) => answer_result(answer),
            };
            let _ = reply.send(result);
        }
    }
}

/// Every operation of `batch` answered with `error` (nothing ran).
fn refused<P>(batch: &[P], error: impl Fn() -> ServiceError) -> Vec<Answer> {
    batch
        .iter()
        .map(|_| Answer {
            result: Err(error()),
            ran: false,
        })
        .collect()
}

/// Every operation of `group` answered with the error of its account.
fn every_refused(group: &Group, error: impl Fn(&AccountKey) -> ServiceError) -> Vec<Vec<Answer>> {
    group
        .iter()
        .map(|(key, batch)| refused(batch, || error(key)))
        .collect()
}

/// One transaction over the group's accounts: lock, apply every operation, commit.
async fn attempt(context: &Context, group: &Group) -> Attempt {
    let target = lock_target(group);
    let (locked, mut loaded) = match LockedBooks::lock(
        &context.pool,
        &target,
        context.clock.now(),
        context.clock.shift(),
    )
    .await
    {
        Ok(Some(locked)) => locked,
        Ok(None) => {
            return Attempt::Answered(every_refused(group, |key| {
                ServiceError::account_not_found(key.account)
            }));
        }
        Err(error) if refused_by_data(&error) => return Attempt::Refused(Refusal::Store(error)),
        Err(error) => return Attempt::Answered(every_refused(group, |_| error.clone().into())),
    };
    let mut recorded: HashMap<(TenantId, String), StoredRecord> = HashMap::new();
    let mut records = Vec::new();
    let mut answers: Vec<Vec<Answer>> = Vec::with_capacity(group.len());
    let mut changes = Vec::new();
    for (key, batch) in group {
        let (tenant_id, account_id) = (key.tenant, key.account);
        let Some(LoadedAccount {
            mut book,
            mut settlements,
        }) = loaded.accounts.remove(key)
        else {
            answers.push(refused(batch, || {
                ServiceError::account_not_found(account_id)
            }));
            continue;
        };
        let mut account_answers = Vec::with_capacity(batch.len());
        for (operation, _) in batch {
            let fingerprint = &operation.fingerprint;
            let key = (tenant_id, fingerprint.key.clone());
            if let Some(previous) = loaded.records.get(&key) {
                account_answers.push(Answer {
                    result: fingerprint.replay(previous),
                    ran: false,
                });
                continue;
            }
            if let Some(previous) = recorded.get(&key) {
                // A duplicate of an operation of this transaction: its answer stands only if
                // the transaction commits, so it is rechecked like the operation's own.
                account_answers.push(Answer {
                    result: fingerprint.replay(previous),
                    ran: true,
                });
                continue;
            }
            let refunded = operation
                .refund_id
                .is_some_and(|refund_id| loaded.refunded.contains(&refund_id));
            if refunded || fingerprint.rpc == Rpc::Authorize && loaded.authorized.contains(&key) {
                // The key made a hold or a refund whose idempotency record has been pruned since.
                account_answers.push(Answer {
                    result: Err(ServiceError::IdempotencyKeyReused {
                        fields: vec!["idempotency_key".to_owned()],
                    }),
                    ran: false,
                });
                continue;
            }
            let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (operation.apply)(&mut book, &mut settlements)
            }));
            let result = match applied {
                Ok(result) => result,
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                        .unwrap_or_default();
                    locked.rollback().await;
                    return Attempt::Refused(Refusal::Panic(message));
                }
            };
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
            account_answers.push(Answer { result, ran: true });
        }
        answers.push(account_answers);
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
    match committed {
        Ok(()) => {}
        Err(error) if refused_by_data(&error) => return Attempt::Refused(Refusal::Store(error)),
        Err(error) => after_failed_commit(context, group, &mut answers, &error).await,
    }
    Attempt::Answered(answers)
}

/// Nothing of the transaction was committed: tell each operation that ran what is true of
/// its key now (the answer a concurrent duplicate committed, or retry), with one bounded query.
async fn after_failed_commit(
    context: &Context,
    group: &Group,
    answers: &mut [Vec<Answer>],
    error: &StoreError,
) {
    let keys: Vec<(TenantId, String)> = group
        .iter()
        .zip(answers.iter())
        .flat_map(|((key, batch), answers)| {
            batch
                .iter()
                .zip(answers)
                .filter(|(_, answer)| answer.ran)
                .map(move |((operation, _), _)| (key.tenant, operation.fingerprint.key.clone()))
        })
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
    for ((key, batch), answers) in group.iter().zip(answers.iter_mut()) {
        for ((operation, _), answer) in batch.iter().zip(answers.iter_mut()) {
            if !answer.ran {
                continue;
            }
            let fingerprint = &operation.fingerprint;
            answer.result = match found.get(&(key.tenant, fingerprint.key.clone())) {
                // A concurrent duplicate elsewhere committed first.
                Some(stored) => fingerprint.replay(stored),
                None => Err(ServiceError::Unavailable(StoreError::Unavailable(format!(
                    "the transaction did not commit ({error}); retry with the same idempotency key"
                )))),
            };
        }
    }
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
        ..LockTarget::default()
    };
    let Some((locked, mut loaded)) = LockedBooks::lock(
        &context.pool,
        &target,
        context.clock.now(),
        context.clock.shift(),
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
    locked.commit(&changes, &[]).await?;
    Ok(true)
}
