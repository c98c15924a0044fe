//! Accounts' books under their row locks, in two round trips: the first sends BEGIN, the
//! `FOR UPDATE` of the account rows (in account id order, so two transactions locking
//! overlapping sets never deadlock) and every read the operations need, pipelined; the second
//! sends every write and COMMIT, pipelined. Any error leaves the connection out of the pool, so
//! a half-finished transaction never returns to it.

mod loaded;
mod reads;

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use futures::future::{BoxFuture, FutureExt as _, try_join_all};
use uuid::Uuid;

use self::reads::{ReadRows, ReadStatements};
use super::StoreError;
use super::idempotency::{INSERT_RECORDS, NewRecord, RecordColumns, StoredRecord};
use super::writes::{HoldForm, Writes};
use crate::clock::Clock;
use crate::ids::{AccountId, AccountKey, HoldId, SettlementId, TenantId};
use crate::ledger::{AccountBook, Changes, SettlementRecord, SpendScope};

/// Most spend limits an account may have: setting one counts the account's limits up to this
/// many, under its lock.
pub const MAX_SPEND_LIMITS: usize = 100_000;

/// The reads of a locked transaction that run with generic plans, by name: each must look up
/// keys by its shape alone, whatever the statistics were when it was planned (a plan test
/// explains each, planned on empty tables).
pub fn generic_plan_reads() -> [(&'static str, &'static str); 6] {
    use super::read_sql::{ALLOCATIONS, ALLOWANCES, GRANTS, HOLDS, LIMIT_COUNTS, SPEND_LIMITS};
    [
        ("grants", GRANTS.as_str()),
        ("holds", HOLDS.as_str()),
        ("allocations", ALLOCATIONS.as_str()),
        ("allowances", ALLOWANCES.as_str()),
        ("spend limits", SPEND_LIMITS.as_str()),
        ("limit counts", LIMIT_COUNTS.as_str()),
    ]
}

/// What to lock and load: the accounts, and everything the operations of one transaction
/// need (several operations, of one account or of several, may share a transaction).
#[derive(Debug, Clone, Default)]
pub struct LockTarget {
    /// The accounts whose rows are locked, with their tenants (every read is scoped by them).
    pub accounts: Vec<AccountKey>,
    /// Idempotency records to read, by tenant and key.
    pub idempotency_keys: Vec<(TenantId, String)>,
    /// Holds to load whatever their status.
    pub hold_ids: Vec<HoldId>,
    /// Settlements to load with their parts and grants.
    pub settlement_ids: Vec<SettlementId>,
    /// Grant external references to load.
    pub external_refs: Vec<String>,
    /// Authorize keys (by account) whose holds, if any, are looked up.
    pub authorize_keys: Vec<(AccountId, String)>,
    /// Refund ids (derived from Refund keys) whose refunds, if any, are looked up.
    pub refund_ids: Vec<Uuid>,
    /// Scopes whose spend limits are loaded (besides those of the holds loaded).
    pub spend_scopes: Vec<(AccountId, SpendScope)>,
    /// Scopes whose history is read, for limits to be set on them.
    pub scope_usage: Vec<(AccountId, SpendScope)>,
    /// Accounts whose allowance rules are read whatever their due time, for one to be set
    /// (else only those of accounts whose rules may be due are).
    pub allowances_for: Vec<AccountId>,
    /// Skip an account (leave it out of the books) instead of waiting when another
    /// transaction holds its lock.
    pub skip_locked: bool,
    /// How long before a grant expires its books warn (CREDITS_EXPIRING); `None`: never.
    pub expiry_warning: Option<chrono::Duration>,
}

/// One locked account's state.
#[derive(Debug)]
pub struct LoadedAccount {
    /// The account's book.
    pub book: AccountBook,
    /// The settlements asked for that belong to the account, by id.
    pub settlements: HashMap<SettlementId, SettlementRecord>,
}

/// What was loaded under the locks.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The locked accounts, by tenant and id; an account asked for that does not exist for
    /// its tenant (or was skipped) is missing.
    pub accounts: HashMap<AccountKey, LoadedAccount>,
    /// Idempotency records found, by tenant and key.
    pub records: HashMap<(TenantId, String), StoredRecord>,
    /// Authorize keys asked about that already made a hold on their account.
    pub authorized: HashMap<AccountId, HashSet<String>>,
    /// Refund ids asked about that a refund already has.
    pub refunded: HashSet<Uuid>,
    /// Whether the allowances were read a second time, as the books decide past the time the
    /// first read was for.
    pub allowances_reread: bool,
}

/// The changes of one account in a transaction.
#[derive(Debug)]
pub struct AccountChanges {
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The account.
    pub account_id: AccountId,
    /// What changed.
    pub changes: Changes,
}

/// A transaction holding the row locks of one or more accounts.
#[derive(Debug)]
pub struct LockedBooks {
    client: Option<Object>,
    /// When the read round trip (which took the locks) completed.
    locked_at: Instant,
    accounts: usize,
    now: DateTime<Utc>,
}

impl LockedBooks {
    /// Locks the accounts' rows and loads their books; `None` when none of them exists for its
    /// tenant (or all were locked and `skip_locked` was asked).
    ///
    /// The books decide at the database's clock read once the locks are held, plus the shift
    /// of `clock` read then too (see [`Clock::shift`]): not at a time taken before a lock wait,
    /// nor at one replica's clock, which may be skewed from another's. `due_by` (the caller's
    /// clock) chooses which holds are loaded to be expired (one that falls due between the two
    /// times stays reserved until a later transaction expires it) and bounds the allowances
    /// read (those that fall due after it are read again before the books decide).
    pub async fn lock(
        pool: &Pool,
        target: &LockTarget,
        due_by: DateTime<Utc>,
        clock: &dyn Clock,
    ) -> Result<Option<(LockedBooks, Loaded)>, StoreError> {
        let client = pool.get().await?;
        let statements = ReadStatements::prepare(&client, target.skip_locked).await?;
        // From here on an error drops the connection with its transaction (see `Drop`).
        let mut locked = LockedBooks {
            client: Some(client),
            locked_at: Instant::now(),
            accounts: 0,
            now: due_by,
        };
        let mut rows = ReadRows::read(locked.client()?, &statements, target, due_by).await?;
        locked.locked_at = Instant::now();
        // A shift read before the wait would let a test that moves the clock meanwhile see this
        // transaction decide before one that committed ahead of it.
        locked.now = rows.database_now(clock.shift())?;
        if rows.accounts.is_empty() {
            locked.rollback().await;
            return Ok(None);
        }
        rows.read_late_allowances(locked.client()?, &statements, locked.now)
            .await?;
        locked.accounts = rows.accounts.len();
        let loaded = rows.into_loaded(locked.now, target)?;
        Ok(Some((locked, loaded)))
    }

    fn client(&self) -> Result<&Object, StoreError> {
        self.client
            .as_ref()
            .ok_or_else(|| StoreError::Other("transaction already finished".to_owned()))
    }

    /// Writes every account's changes and the records, then commits, in one pipelined
    /// round trip.
    pub async fn commit(
        mut self,
        changes: &[AccountChanges],
        records: &[NewRecord],
        hold_form: HoldForm,
    ) -> Result<(), StoreError> {
        let mut writes = Writes::new(self.now, hold_form);
        for account in changes {
            writes.push(account.tenant_id, account.account_id, &account.changes);
        }
        let record_columns = RecordColumns::new(records);
        let client = self.client()?;
        let write_list = writes.statements();
        let mut statements = Vec::new();
        for (sql, _) in &write_list {
            statements.push(client.prepare_cached(sql).await?);
        }
        let record_statement = client.prepare_cached(INSERT_RECORDS).await?;
        let mut pipeline: Vec<BoxFuture<'_, Result<(), tokio_postgres::Error>>> = Vec::new();
        for (statement, (_, params)) in statements.iter().zip(&write_list) {
            pipeline.push(
                client
                    .execute(statement, params)
                    .map(|result| result.map(|_| ()))
                    .boxed(),
            );
        }
        if !record_columns.is_empty() {
            let params = record_columns.as_params();
            let statement = &record_statement;
            pipeline
                .push(async move { client.execute(statement, &params).await.map(|_| ()) }.boxed());
        }
        pipeline.push(async { client.simple_query("COMMIT").await.map(|_| ()) }.boxed());
        let statement_count = pipeline.len();
        try_join_all(pipeline).await?;
        // The lock was taken inside the read round trip and released by COMMIT in this one.
        tracing::debug!(
            accounts = self.accounts,
            statements = statement_count,
            after_reads_us = self.locked_at.elapsed().as_micros(),
            "committed under the account lock"
        );
        // Success: the connection is clean and goes back to the pool.
        self.client.take();
        Ok(())
    }

    /// Ends the transaction without writing.
    pub async fn rollback(mut self) {
        if let Some(client) = &self.client {
            if client.simple_query("ROLLBACK").await.is_ok() {
                self.client.take();
            }
        }
    }
}

impl Drop for LockedBooks {
    fn drop(&mut self) {
        // Unfinished (an error or a cancelled call): discard the connection so the server
        // rolls the transaction back and no open transaction returns to the pool.
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}
