//! Billing: accounts, grants and balances.

use chrono::{DateTime, Duration, Utc};

use super::access::Caller;
use super::holds::Encoder;
use super::idempotency::Fingerprint;
use super::locked::{OpTarget, replay_after_conflict, run_operation};
use super::{Context, ServiceError};
use crate::ids::{AccountId, GrantId};
use crate::ledger::{
    Account, AccountBook, AccountStatus, AccountUpdate, AllowanceState, Balance, GrantSource,
    GrantState, Reason, SettlePolicy, SettlementRecord, SpendLimitState,
};
use crate::money::Credits;
use crate::store::accounts::{self, MAX_LISTED_LIMITS, SnapshotLimits};
use crate::store::idempotency::StoredAnswer;
use crate::store::{StoreError, idempotency};

/// A new account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// The tenant's id for it.
    pub external_id: String,
    /// ORGANIZATION or USER.
    pub kind: String,
    /// Above-hold policy.
    pub settle_policy: SettlePolicy,
    /// Entitlements.
    pub entitlements: Vec<String>,
    /// Low-balance threshold.
    pub low_balance_threshold: Option<Credits>,
}

/// A grant to add.
#[derive(Debug, Clone)]
pub struct GrantCommand {
    /// The account.
    pub account_id: AccountId,
    /// Source.
    pub source: GrantSource,
    /// Credits.
    pub amount: Credits,
    /// Priority, default by source.
    pub priority: Option<i32>,
    /// Starts counting (default now).
    pub effective_at: Option<DateTime<Utc>>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Payment reference, unique per account.
    pub external_ref: Option<String>,
}

/// What Grant answers: the grant and the debt it paid.
#[derive(Debug, Clone)]
pub struct GrantOutcome {
    /// The grant (the existing one when the external reference was used before).
    pub grant: GrantState,
    /// Debt it paid.
    pub debt_repaid: Credits,
}

async fn replay_if_recorded(
    context: &Context,
    caller: Caller,
    fingerprint: &Fingerprint,
) -> Result<Option<Vec<u8>>, ServiceError> {
    let client = context.pool.get().await.map_err(StoreError::from)?;
    match idempotency::find(&client, caller.tenant_id, &fingerprint.key).await? {
        Some(stored) => fingerprint.replay(&stored).map(Some),
        None => Ok(None),
    }
}

/// Creates an account.
pub async fn create_account(
    context: &Context,
    caller: Caller,
    account: NewAccount,
    fingerprint: Fingerprint,
    encode: impl FnOnce(&Account) -> Vec<u8>,
) -> Result<Vec<u8>, ServiceError> {
    if let Some(bytes) = replay_if_recorded(context, caller, &fingerprint).await? {
        return Ok(bytes);
    }
    let now = context.clock.now();
    let row = Account {
        account_id: AccountId::now_v7(),
        external_id: account.external_id,
        kind: account.kind,
        status: AccountStatus::Active,
        settle_policy: account.settle_policy,
        entitlements: account.entitlements,
        low_balance_threshold: account.low_balance_threshold,
        debt: Credits::ZERO,
        created_at: now,
        updated_at: now,
    };
    let bytes = encode(&row);
    let record = fingerprint.record(
        caller.tenant_id,
        Some(row.account_id),
        StoredAnswer::Response(bytes.clone()),
    );
    match accounts::insert_account(&context.pool, caller.tenant_id, &row, &record).await {
        Ok(()) => Ok(bytes),
        // A concurrent duplicate of this request may have won: answer as it did. Only when no
        // call with this key exists is the external id taken by another request.
        Err(StoreError::UniqueViolation { .. }) => {
            match replay_if_recorded(context, caller, &fingerprint).await? {
                Some(bytes) => Ok(bytes),
                None => Err(ServiceError::AlreadyExists {
                    what: format!("an account with external_id {:?}", row.external_id),
                }),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// An account with its plan as of now.
#[derive(Debug, Clone)]
pub struct AccountDetails {
    /// The account.
    pub account: Account,
    /// Its allowances (periods due now counted as granted).
    pub allowances: Vec<AllowanceState>,
    /// Its spend limits, rolled to now, due holds released.
    pub spend_limits: Vec<SpendLimitState>,
    /// Whether it has more limits than listed.
    pub spend_limits_truncated: bool,
    /// When this was read (the server clock).
    pub now: DateTime<Utc>,
}

/// An account by id or external id, with its allowances and spend limits.
pub async fn get_account(
    context: &Context,
    caller: Caller,
    account_id: Option<AccountId>,
    external_id: Option<&str>,
) -> Result<AccountDetails, ServiceError> {
    super::span::record_ids(account_id, None, None);
    let client = context.pool.get().await.map_err(StoreError::from)?;
    let account = accounts::find_account(&client, caller.tenant_id, account_id, external_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound {
            reason: Reason::AccountNotFound,
            what: match (account_id, external_id) {
                (Some(account_id), _) => format!("account {account_id}"),
                (None, Some(external_id)) => format!("account with external_id {external_id:?}"),
                (None, None) => "account".to_owned(),
            },
        })?;
    drop(client);
    let mut book = snapshot(context, caller, account.account_id, SnapshotLimits::All).await?;
    book.sweep();
    let mut spend_limits = book.spend_limits();
    let listed = usize::try_from(MAX_LISTED_LIMITS).unwrap_or(usize::MAX);
    let spend_limits_truncated = spend_limits.len() > listed;
    spend_limits.truncate(listed);
    // By name, as documented, whatever order the rows were read in.
    let mut allowances = book.allowances().to_vec();
    allowances.sort_by(|left, right| left.name.cmp(&right.name));
    Ok(AccountDetails {
        account,
        allowances,
        spend_limits,
        spend_limits_truncated,
        now: book.now(),
    })
}

/// Changes an account's settings.
pub async fn update_account(
    context: &Context,
    caller: Caller,
    account_id: AccountId,
    update: AccountUpdate,
    fingerprint: Fingerprint,
    encode: impl FnOnce(&Account) -> Vec<u8>,
) -> Result<Vec<u8>, ServiceError> {
    if let Some(bytes) = replay_if_recorded(context, caller, &fingerprint).await? {
        return Ok(bytes);
    }
    let mut bytes = Vec::new();
    let record = |row: &Account| {
        bytes = encode(row);
        fingerprint.record(
            caller.tenant_id,
            Some(account_id),
            StoredAnswer::Response(bytes.clone()),
        )
    };
    match accounts::update_account(&context.pool, caller.tenant_id, account_id, &update, record)
        .await
    {
        Ok(Some(_)) => Ok(bytes),
        Ok(None) => Err(ServiceError::account_not_found(account_id)),
        Err(StoreError::UniqueViolation { .. }) => {
            replay_after_conflict(context, caller.tenant_id, &fingerprint).await
        }
        Err(error) => Err(error.into()),
    }
}

/// Adds credits; they pay any debt first. A repeated external reference returns the
/// existing grant and adds nothing.
pub async fn grant(
    context: &Context,
    caller: Caller,
    command: GrantCommand,
    fingerprint: Fingerprint,
    encode: Encoder<GrantOutcome>,
) -> Result<Vec<u8>, ServiceError> {
    let target = OpTarget {
        external_ref: command.external_ref.clone(),
        ..OpTarget::new(caller.tenant_id, command.account_id)
    };
    let operate = move |book: &mut AccountBook, _: Option<&mut SettlementRecord>| {
        // A repeated reference answers from the book as of now (holds and grants past their
        // expiry expired), like every other operation.
        book.sweep();
        if let Some(existing) = command
            .external_ref
            .as_deref()
            .and_then(|reference| book.grant_by_external_ref(reference))
        {
            return Ok(GrantOutcome {
                grant: existing.clone(),
                debt_repaid: Credits::ZERO,
            });
        }
        let now = book.now();
        let effective_at = command.effective_at.unwrap_or(now);
        if command
            .expires_at
            .is_some_and(|expires_at| expires_at <= now.max(effective_at))
        {
            return Err(ServiceError::InvalidArgument {
                field: "expires_at",
                message: "must be in the future and after effective_at".to_owned(),
            });
        }
        let grant = GrantState {
            grant_id: GrantId::now_v7(),
            source: command.source,
            priority: command
                .priority
                .unwrap_or_else(|| command.source.default_priority()),
            effective_at,
            expires_at: command.expires_at,
            created_at: now,
            amount: command.amount,
            remaining: command.amount,
            reserved: Credits::ZERO,
            external_ref: command.external_ref.clone(),
            expiry_warned: false,
        };
        let debt_before = book.account().debt;
        let grant_id = grant.grant_id;
        book.grant(grant);
        let grant = book
            .grant_state(grant_id)
            .cloned()
            .ok_or_else(|| ServiceError::Internal(StoreError::Other("grant vanished".into())))?;
        Ok(GrantOutcome {
            grant,
            debt_repaid: debt_before - book.account().debt,
        })
    };
    run_operation(context, target, fingerprint, operate, encode).await
}

/// A consistent read of the account's book now, without its lock, with the spend limits
/// asked for.
pub async fn snapshot(
    context: &Context,
    caller: Caller,
    account_id: AccountId,
    limits: SnapshotLimits<'_>,
) -> Result<AccountBook, ServiceError> {
    super::span::record_ids(Some(account_id), None, None);
    accounts::snapshot_book(
        &context.pool,
        caller.tenant_id,
        account_id,
        context.clock.now(),
        limits,
    )
    .await?
    .ok_or_else(|| ServiceError::account_not_found(account_id))
}

/// The account's balance now, counting holds past their expiry as released.
pub async fn balance(
    context: &Context,
    caller: Caller,
    account_id: AccountId,
    expiring_within: Duration,
) -> Result<Balance, ServiceError> {
    Ok(
        snapshot(context, caller, account_id, SnapshotLimits::Scope(None))
            .await?
            .balance(expiring_within),
    )
}
