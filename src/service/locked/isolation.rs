//! Finding the one operation whose data made the database refuse a shared transaction (or
//! whose book panicked), so that one caller's bad data never fails another's operation: the
//! group is rerun in halves until the culprit fails alone, twice, and is answered on its own.

use super::transaction::{Answer, Attempt, attempt};
use super::{Group, RECHECK_TIMEOUT};
use crate::ids::{AccountId, TenantId};
use crate::service::combiner;
use crate::service::idempotency::{Fingerprint, answer_result, stored_answer};
use crate::service::{Context, ServiceError};
use crate::store::StoreError;
use crate::store::idempotency::{self, StoredAnswer};

/// Why a transaction was refused for what one of its operations carried.
#[derive(Debug)]
pub(super) enum Refusal {
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
pub(super) fn refused_by_data(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Refused { .. } | StoreError::UniqueViolation { .. }
    )
}

/// Groups still to run, each with whether it is a part of a refused one; the last runs next.
type ToRun = Vec<(Group, bool)>;

/// Runs the group's transaction; when the database refuses it for something an operation
/// carried, finds that operation by halving: each half runs in a transaction of its own, until
/// the operation that fails alone is answered with a non-retryable refusal and every other one
/// has committed. One caller's bad data never fails another's operation.
pub(super) async fn run_group(context: &Context, group: Group) {
    // (operations, isolating): an operation is declared the culprit only once it has failed
    // alone in a second transaction, so a refusal caused by a race (a unique key another
    // server committed meanwhile) is answered from what committed instead.
    let mut pending: ToRun = vec![(group, false)];
    while let Some((group, isolating)) = pending.pop() {
        match attempt(context, &group).await {
            Attempt::Answered(answers) => send_answers(group, answers),
            Attempt::Refused(refusal) => {
                if let Some(culprit) = rerun_parts(group, isolating, &refusal, &mut pending) {
                    answer_culprit(context, culprit, &refusal).await;
                }
            }
        }
    }
}

/// Sends each operation of `group` its answer.
fn send_answers(group: Group, answers: Vec<Vec<Answer>>) {
    for ((_, batch), answers) in group.into_iter().zip(answers) {
        for ((_, reply), answer) in batch.into_iter().zip(answers) {
            let _ = reply.send(answer.result);
        }
    }
}

/// A refused group goes back on `pending` to run again: in halves (the first half next), or
/// alone once more when it is one operation not yet isolated. An operation that already failed
/// alone is the culprit, returned.
fn rerun_parts(
    group: Group,
    isolating: bool,
    refusal: &Refusal,
    pending: &mut ToRun,
) -> Option<Group> {
    let operations: usize = group.iter().map(|(_, batch)| batch.len()).sum();
    tracing::warn!(
        operations,
        %refusal,
        "a transaction was refused for what an operation carried; rerunning its operations in \
         halves"
    );
    if operations > 1 {
        let (first, second) = combiner::halves(group, operations / 2);
        pending.push((second, true));
        pending.push((first, true));
        None
    } else if !isolating {
        pending.push((group, true));
        None
    } else {
        Some(group)
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
            let result = record_refusal(context, tenant_id, account_id, fingerprint, answer).await;
            let _ = reply.send(result);
        }
    }
}

/// Records the refusal under the operation's key, with a bounded wait; the answer that stands
/// for the key (another server's, when it committed the key meanwhile).
async fn record_refusal(
    context: &Context,
    tenant_id: TenantId,
    account_id: AccountId,
    fingerprint: &Fingerprint,
    answer: StoredAnswer,
) -> Result<Vec<u8>, ServiceError> {
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
    match tokio::time::timeout(RECHECK_TIMEOUT, stored).await {
        Ok(Ok(Some(committed))) => fingerprint.replay(&committed),
        Ok(Ok(None)) => answer_result(answer),
        Ok(Err(store_error)) => {
            tracing::error!(%store_error, "the refusal could not be recorded");
            answer_result(answer)
        }
        Err(_) => answer_result(answer),
    }
}
