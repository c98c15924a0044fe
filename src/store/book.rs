//! Accounts' books under their row locks, in two round trips: the first sends BEGIN, the
//! `FOR UPDATE` of the account rows (in account id order, so two transactions locking
//! overlapping sets never deadlock) and every read the operations need, pipelined; the second
//! sends every write and COMMIT, pipelined. Any error leaves the connection out of the pool, so
//! a half-finished transaction never returns to it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use futures::future::{BoxFuture, FutureExt as _, try_join_all};
use tokio_postgres::Row;
use uuid::Uuid;

use super::StoreError;
use super::idempotency::{
    INSERT_RECORDS, NewRecord, RecordColumns, SELECT_RECORDS, StoredRecord, records_by_key,
};
use super::read_sql::{BEGIN, CLOCK, HOLDS_BY_KEY, REFUNDS_BY_ID, read_statements};
use super::rows;
use super::writes::Writes;
use crate::ids::{AccountId, AccountKey, HoldId, SettlementId, TenantId};
use crate::ledger::{AccountBook, Changes, SettlementRecord};

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
    /// Authorize keys (by tenant) whose holds, if any, are looked up.
    pub authorize_keys: Vec<(TenantId, String)>,
    /// Refund ids (derived from Refund keys) whose refunds, if any, are looked up.
    pub refund_ids: Vec<Uuid>,
    /// Skip an account (leave it out of the books) instead of waiting when another
    /// transaction holds its lock.
    pub skip_locked: bool,
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
    /// Authorize keys asked about that already made a hold.
    pub authorized: std::collections::HashSet<(TenantId, String)>,
    /// Refund ids asked about that a refund already has.
    pub refunded: std::collections::HashSet<Uuid>,
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
    locked_at: std::time::Instant,
    accounts: usize,
    now: DateTime<Utc>,
}

type RowsFuture<'a> = BoxFuture<'a, Result<Vec<Row>, tokio_postgres::Error>>;

impl LockedBooks {
    /// Locks the accounts' rows and loads their books; `None` when none of them exists for its
    /// tenant (or all were locked and `skip_locked` was asked).
    ///
    /// The books decide at the database's clock read once the locks are held, plus `shift`
    /// (see [`crate::clock::Clock::shift`]): not at a time taken before a lock wait, nor at one
    /// replica's clock, which may be skewed from another's. `due_by` (the caller's clock) only
    /// chooses which holds are loaded to be expired: one that falls due between the two times
    /// stays reserved until a later transaction expires it.
    pub async fn lock(
        pool: &Pool,
        target: &LockTarget,
        due_by: DateTime<Utc>,
        shift: chrono::Duration,
    ) -> Result<Option<(LockedBooks, Loaded)>, StoreError> {
        let now = due_by;
        let client = pool.get().await?;
        let sql = read_statements();
        // Prepared (or taken from the connection's cache) before the locks are taken.
        let statements = try_join_all([
            client.prepare_cached(&sql[usize::from(target.skip_locked)]),
            client.prepare_cached(SELECT_RECORDS),
            client.prepare_cached(&sql[2]),
            client.prepare_cached(&sql[3]),
            client.prepare_cached(&sql[4]),
            client.prepare_cached(&sql[5]),
            client.prepare_cached(&sql[6]),
        ])
        .await?;
        try_join_all(super::write_sql::all_statements().map(|sql| client.prepare_cached(sql)))
            .await?;
        client.prepare_cached(INSERT_RECORDS).await?;
        let by_key = client.prepare_cached(HOLDS_BY_KEY).await?;
        let clock_statement = client.prepare_cached(CLOCK).await?;
        let refunds_by_id = client.prepare_cached(REFUNDS_BY_ID).await?;
        let refund_ids = &target.refund_ids;
        let (authorize_tenants, authorize_keys): (Vec<TenantId>, Vec<String>) =
            target.authorize_keys.iter().cloned().unzip();
        let (authorize_tenants, authorize_keys) = (&authorize_tenants, &authorize_keys);
        let (tenants, account_ids): (Vec<TenantId>, Vec<AccountId>) = target
            .accounts
            .iter()
            .map(|key| (key.tenant, key.account))
            .unzip();
        let (key_tenants, keys): (Vec<TenantId>, Vec<String>) =
            target.idempotency_keys.iter().cloned().unzip();
        let mut locked = LockedBooks {
            client: Some(client),
            locked_at: std::time::Instant::now(),
            accounts: 0,
            now,
        };
        let client = locked.client()?;
        let no_rows = || async { Ok::<Vec<Row>, tokio_postgres::Error>(Vec::new()) }.boxed();
        let (holds, settlements, references) = (
            &target.hold_ids,
            &target.settlement_ids,
            &target.external_refs,
        );
        let (tenants, account_ids, key_tenants, keys) =
            (&tenants, &account_ids, &key_tenants, &keys);
        let mut reads: Vec<RowsFuture<'_>> = vec![
            async { client.simple_query(BEGIN).await.map(|_| Vec::new()) }.boxed(),
            async { client.query(&statements[0], &[tenants, account_ids]).await }.boxed(),
            // Holds by Authorize key before the records: a hold seen here whose record is not
            // seen below was made by a key whose record was pruned (a record committed with its
            // hold in between is seen below, as the statements read in order).
            if authorize_keys.is_empty() {
                no_rows()
            } else {
                async {
                    client
                        .query(&by_key, &[authorize_tenants, authorize_keys])
                        .await
                }
                .boxed()
            },
            async {
                client
                    .query(&statements[2], &[account_ids, settlements, references])
                    .await
            }
            .boxed(),
            async {
                client
                    .query(&statements[3], &[account_ids, &now, holds])
                    .await
            }
            .boxed(),
            async {
                client
                    .query(&statements[4], &[account_ids, &now, holds])
                    .await
            }
            .boxed(),
        ];
        // At index 6, before the settlements' reads (7 and 8, when asked).
        reads.push(if keys.is_empty() {
            no_rows()
        } else {
            async { client.query(&statements[1], &[key_tenants, keys]).await }.boxed()
        });
        if !settlements.is_empty() {
            reads.push(
                async {
                    client
                        .query(&statements[5], &[settlements, account_ids])
                        .await
                }
                .boxed(),
            );
            reads.push(async { client.query(&statements[6], &[settlements]).await }.boxed());
        }
        // A refund committed by another account's transaction between the records' read and
        // this one shows as a reused key, which is what its record would have said too.
        reads.push(if refund_ids.is_empty() {
            no_rows()
        } else {
            async { client.query(&refunds_by_id, &[refund_ids]).await }.boxed()
        });
        // Last, so it runs after the lock statement has taken the locks.
        reads.push(async { client.query(&clock_statement, &[]).await }.boxed());
        let mut results = try_join_all(reads).await?;
        locked.locked_at = std::time::Instant::now();
        let clock = results.pop().unwrap_or_default();
        let refunded = results
            .pop()
            .unwrap_or_default()
            .iter()
            .map(|row| row.get::<_, Uuid>(0))
            .collect();
        let now = clock
            .first()
            .map(|row| row.get::<_, DateTime<Utc>>(0) + shift)
            .ok_or_else(|| StoreError::Other("the database clock was not read".to_owned()))?;
        locked.now = now;
        if results[1].is_empty() {
            locked.rollback().await;
            return Ok(None);
        }
        locked.accounts = results[1].len();
        let mut states = Vec::with_capacity(results[1].len());
        for row in &results[1] {
            states.push((
                row.get::<_, TenantId>("tenant_id"),
                rows::account_state(row)?,
            ));
        }
        let records = records_by_key(&results[6]);
        let mut grants: HashMap<AccountId, Vec<_>> = HashMap::new();
        for row in &results[3] {
            grants
                .entry(row.get("account_id"))
                .or_default()
                .push(rows::grant(row)?);
        }
        let mut hold_list = results[4]
            .iter()
            .map(rows::hold)
            .collect::<Result<Vec<_>, _>>()?;
        rows::attach_allocations(&mut hold_list, &results[5]);
        let mut holds: HashMap<AccountId, Vec<_>> = HashMap::new();
        for (row, hold) in results[4].iter().zip(hold_list) {
            holds.entry(row.get("account_id")).or_default().push(hold);
        }
        let mut loaded_settlements: HashMap<SettlementId, (AccountId, SettlementRecord)> =
            HashMap::new();
        for row in results.get(7).map(Vec::as_slice).unwrap_or_default() {
            let settlement = rows::settlement(row);
            loaded_settlements.insert(
                settlement.settlement_id,
                (row.get("account_id"), settlement),
            );
        }
        for row in results.get(8).map(Vec::as_slice).unwrap_or_default() {
            if let Some((_, settlement)) =
                loaded_settlements.get_mut(&row.get::<_, SettlementId>("settlement_id"))
            {
                settlement.parts.push(rows::settlement_part(row));
            }
        }
        let mut settlements_by_account: HashMap<
            AccountId,
            HashMap<SettlementId, SettlementRecord>,
        > = HashMap::new();
        for (settlement_id, (account_id, settlement)) in loaded_settlements {
            settlements_by_account
                .entry(account_id)
                .or_default()
                .insert(settlement_id, settlement);
        }
        // Rows of accounts that were not locked (another tenant's id, a skipped lock) are
        // dropped here: only locked accounts get a book.
        let accounts = states
            .into_iter()
            .map(|(tenant_id, state)| {
                let account_id = state.account_id;
                let book = AccountBook::new(
                    state,
                    grants.remove(&account_id).unwrap_or_default(),
                    holds.remove(&account_id).unwrap_or_default(),
                    now,
                );
                let settlements = settlements_by_account
                    .remove(&account_id)
                    .unwrap_or_default();
                let key = AccountKey {
                    tenant: tenant_id,
                    account: account_id,
                };
                (key, LoadedAccount { book, settlements })
            })
            .collect();
        let authorized = results[2]
            .iter()
            .map(|row| (row.get::<_, TenantId>(0), row.get::<_, String>(1)))
            .collect();
        Ok(Some((
            locked,
            Loaded {
                accounts,
                records,
                authorized,
                refunded,
            },
        )))
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
    ) -> Result<(), StoreError> {
        let mut writes = Writes::new(self.now);
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
