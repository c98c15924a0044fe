//! One attempt at a group's transaction: lock every account of the group, apply each
//! operation to its account's book, commit the books and the idempotency records together.
//! A refusal caused by one operation's data (or a panic) is handed back untouched, so that
//! [`super::isolation`] can find the operation; any other failure is explained to each
//! operation here.

use std::any::Any;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use tracing::Instrument as _;

use super::isolation::{Refusal, refused_by_data};
use super::{Group, Operation, Pending, RECHECK_TIMEOUT};
use crate::ids::{AccountId, AccountKey, TenantId};
use crate::service::idempotency::{Rpc, refer_to_hold, stored_answer};
use crate::service::{Context, ServiceError};
use crate::store::book::{AccountChanges, Loaded, LoadedAccount, LockTarget, LockedBooks};
use crate::store::idempotency::{self, NewRecord, StoredRecord};
use crate::store::{HoldForm, StoreError};
use crate::telemetry;

/// The answer to one operation of a transaction.
pub(super) struct Answer {
    pub(super) result: Result<Vec<u8>, ServiceError>,
    /// Not answered from a committed record, so a failed commit must be explained to it.
    ran: bool,
}

/// What one attempt at a group's transaction came to.
pub(super) enum Attempt {
    /// Every operation has its answer, in the group's order (committed, or explained).
    Answered(Vec<Vec<Answer>>),
    /// Something one operation carried failed the transaction: nothing was committed, and no
    /// operation has been answered.
    Refused(Refusal),
}

/// What a transaction writes, gathered as its operations are applied.
#[derive(Debug, Default)]
struct Staged {
    /// The records of this transaction's operations, by key, for duplicates within it.
    recorded: HashMap<(TenantId, String), StoredRecord>,
    /// The idempotency records to insert.
    records: Vec<NewRecord>,
    /// Each changed account's changes.
    changes: Vec<AccountChanges>,
    /// Whether the schema is complete ([`Context::schema_complete`]): answers that show a hold
    /// are stored by reference to it, and new holds written lean ([`HoldForm::Lean`]).
    schema_complete: bool,
}

/// One transaction over the group's accounts: lock, apply every operation, commit.
pub(super) async fn attempt(context: &Context, group: &Group) -> Attempt {
    let operations = group.iter().map(|(_, batch)| batch.len()).sum::<usize>();
    let _in_flight =
        telemetry::metrics().map(|metrics| metrics.transaction(operations, group.len()));
    let lock_span = round_trip_span(group, "lock", operations);
    let started = Instant::now();
    let locked = lock_group(context, group).instrument(lock_span).await;
    if let Some(metrics) = telemetry::metrics() {
        metrics.lock_wait(started.elapsed());
    }
    let (locked, mut loaded) = match locked {
        Ok(locked) => locked,
        Err(attempt) => return attempt,
    };
    let mut staged = Staged {
        schema_complete: context
            .schema_complete
            .load(std::sync::atomic::Ordering::Relaxed),
        ..Staged::default()
    };
    let mut answers: Vec<Vec<Answer>> = Vec::with_capacity(group.len());
    for (key, batch) in group {
        match apply_batch(&mut staged, &mut loaded, *key, batch) {
            Ok(batch_answers) => answers.push(batch_answers),
            Err(refusal) => {
                locked.rollback().await;
                return Attempt::Refused(refusal);
            }
        }
    }
    staged.sort_records();
    let commit_span = round_trip_span(group, "commit", operations);
    let started = Instant::now();
    let committed = staged.commit(locked).instrument(commit_span).await;
    if let Some(metrics) = telemetry::metrics() {
        metrics.commit(started.elapsed());
    }
    match committed {
        Ok(()) => {}
        Err(error) if refused_by_data(&error) => return Attempt::Refused(Refusal::Store(error)),
        Err(error) => after_failed_commit(context, group, &mut answers, &error).await,
    }
    Attempt::Answered(answers)
}

/// Links of a round trip's span to the other calls it served, at most: each costs two span
/// lookups and locks while the accounts are locked, and a group serves up to hundreds of calls
/// (the SDK would keep only 128 anyway). `operations` on the span says how many it served.
const ROUND_TRIP_LINKS: usize = 16;

/// A span of one round trip of the group's transaction: a child of its first operation's RPC,
/// linked to the next [`ROUND_TRIP_LINKS`] operations' (one transaction serves them all).
fn round_trip_span(group: &Group, name: &'static str, operations: usize) -> tracing::Span {
    let mut spans = group
        .iter()
        .flat_map(|(_, batch)| batch.iter().map(|(operation, _)| &operation.span));
    let parent = spans.next().and_then(tracing::Span::id);
    let span = tracing::info_span!(
        parent: parent,
        "round_trip",
        otel.name = name,
        accounts = group.len(),
        operations
    );
    if !span.is_disabled() {
        for other in spans.take(ROUND_TRIP_LINKS) {
            span.follows_from(other);
        }
    }
    span
}

/// Locks the group's accounts and loads what its operations need; when that fails, what the
/// attempt came to.
async fn lock_group(context: &Context, group: &Group) -> Result<(LockedBooks, Loaded), Attempt> {
    let mut target = lock_target(group);
    target.expiry_warning = Some(context.limits.expiry_warning);
    match LockedBooks::lock(
        &context.pool,
        &target,
        context.clock.now(),
        context.clock.as_ref(),
    )
    .await
    {
        Ok(Some(locked)) => {
            if locked.1.allowances_reread {
                if let Some(metrics) = telemetry::metrics() {
                    metrics.allowances_reread();
                }
            }
            Ok(locked)
        }
        Ok(None) => Err(Attempt::Answered(every_refused(group, |key| {
            ServiceError::account_not_found(key.account)
        }))),
        Err(error) if refused_by_data(&error) => Err(Attempt::Refused(Refusal::Store(error))),
        Err(error) => Err(Attempt::Answered(every_refused(group, |_| {
            error.clone().into()
        }))),
    }
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
            if operation.allowances && !target.allowances_for.contains(&key.account) {
                target.allowances_for.push(key.account);
            }
            // Each scope once: its usage is summed per row asked for.
            if let Some(scope) = &operation.spend_scope {
                let scoped = (key.account, scope.clone());
                if operation.scope_usage && !target.scope_usage.contains(&scoped) {
                    target.scope_usage.push(scoped.clone());
                }
                if !target.spend_scopes.contains(&scoped) {
                    target.spend_scopes.push(scoped);
                }
            }
            if operation.fingerprint.rpc == Rpc::Authorize {
                target
                    .authorize_keys
                    .push((key.account, operation.fingerprint.key.clone()));
            }
        }
    }
    target
}

/// Applies the operations of one account's batch to its book, in order, and stages the
/// account's changes; the answers, or the refusal of an operation that panicked.
fn apply_batch(
    staged: &mut Staged,
    loaded: &mut Loaded,
    key: AccountKey,
    batch: &[Pending],
) -> Result<Vec<Answer>, Refusal> {
    let Some(mut account) = loaded.accounts.remove(&key) else {
        return Ok(refused(batch, || {
            ServiceError::account_not_found(key.account)
        }));
    };
    let mut answers = Vec::with_capacity(batch.len());
    for (operation, _) in batch {
        answers.push(apply_operation(
            staged,
            loaded,
            &mut account,
            key,
            operation,
        )?);
    }
    let changes = account.book.into_changes();
    if !changes.is_empty() {
        staged.changes.push(AccountChanges {
            tenant_id: key.tenant,
            account_id: key.account,
            changes,
        });
    }
    Ok(answers)
}

/// One operation's answer: replayed from its committed record or from a duplicate earlier in
/// this transaction, refused when its key was already used, or applied to the book (and its
/// record staged).
fn apply_operation(
    staged: &mut Staged,
    loaded: &Loaded,
    account: &mut LoadedAccount,
    key: AccountKey,
    operation: &Operation,
) -> Result<Answer, Refusal> {
    let fingerprint = &operation.fingerprint;
    let record_key = (key.tenant, fingerprint.key.clone());
    if let Some(previous) = loaded.records.get(&record_key) {
        return Ok(Answer {
            result: fingerprint.replay(previous),
            ran: false,
        });
    }
    if let Some(previous) = staged.recorded.get(&record_key) {
        // A duplicate of an operation of this transaction: its answer stands only if the
        // transaction commits, so it is rechecked like the operation's own.
        return Ok(Answer {
            result: fingerprint.replay(previous),
            ran: true,
        });
    }
    if key_used_before(loaded, operation, key.account) {
        // The key made a hold or a refund whose idempotency record has been pruned since.
        return Ok(Answer {
            result: Err(ServiceError::IdempotencyKeyReused {
                fields: vec!["idempotency_key".to_owned()],
            }),
            ran: false,
        });
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        (operation.apply)(&mut account.book, &mut account.settlements)
    }))
    .map_err(|panic| Refusal::Panic(panic_message(&*panic)))?;
    // Input refused under the lock is not kept: nothing happened.
    if let Some(answer) = stored_answer(&result) {
        let mut record = fingerprint.record(key.tenant, Some(key.account), answer);
        if staged.schema_complete {
            refer_to_hold(&mut record, fingerprint.rpc, &account.book);
            fingerprint.lean(&mut record);
        }
        staged.record(record_key, record);
    }
    Ok(Answer { result, ran: true })
}

/// Whether the operation's key already made a refund, or a hold on its account.
fn key_used_before(loaded: &Loaded, operation: &Operation, account: AccountId) -> bool {
    let refunded = operation
        .refund_id
        .is_some_and(|refund_id| loaded.refunded.contains(&refund_id));
    let authorized = || {
        let keys = loaded.authorized.get(&account);
        keys.is_some_and(|keys| keys.contains(&operation.fingerprint.key))
    };
    refunded || operation.fingerprint.rpc == Rpc::Authorize && authorized()
}

/// What a panic carried, as text.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
        .unwrap_or_default()
}

impl Staged {
    /// Stages `record`, and remembers it under `key` for duplicates later in the transaction.
    fn record(&mut self, key: (TenantId, String), record: NewRecord) {
        self.recorded.insert(key, record.as_stored());
        self.records.push(record);
    }

    /// Inserted in key order, so two transactions sharing keys cannot deadlock on them.
    fn sort_records(&mut self) {
        self.records.sort_by(|first, second| {
            (first.tenant_id, &first.key).cmp(&(second.tenant_id, &second.key))
        });
    }

    /// Commits the staged writes, or rolls back when there are none.
    async fn commit(self, locked: LockedBooks) -> Result<(), StoreError> {
        if self.records.is_empty() && self.changes.is_empty() {
            locked.rollback().await;
            Ok(())
        } else {
            let hold_form = HoldForm::when_complete(self.schema_complete);
            locked.commit(&self.changes, &self.records, hold_form).await
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
