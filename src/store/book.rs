//! One account's book under its row lock, in two round trips: the first sends BEGIN, the
//! `FOR UPDATE` of the account row and every read the operation needs, pipelined; the second
//! sends every write and COMMIT, pipelined. Any error leaves the connection out of the pool,
//! so a half-finished transaction never returns to it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use futures::future::{BoxFuture, FutureExt as _, try_join_all};
use tokio_postgres::Row;
use uuid::Uuid;

use super::StoreError;
use super::idempotency::{
    INSERT_RECORDS, NewRecord, RecordColumns, SELECT_RECORDS, StoredRecord, stored_record,
};
use super::rows::{self, GRANT_COLUMNS, HOLD_COLUMNS, SETTLEMENT_COLUMNS};
use super::writes::Writes;
use crate::ledger::{AccountBook, Changes, SettlementRecord};

/// What to lock and load: the account, and everything the operations of one transaction
/// need (several operations of one account may share a transaction).
#[derive(Debug, Clone, Default)]
pub struct LockTarget {
    /// The tenant (every read is scoped by it).
    pub tenant_id: Uuid,
    /// The account whose row is locked.
    pub account_id: Uuid,
    /// Idempotency keys whose records are read.
    pub idempotency_keys: Vec<String>,
    /// Holds to load whatever their status.
    pub hold_ids: Vec<Uuid>,
    /// Settlements to load with their parts and grants.
    pub settlement_ids: Vec<Uuid>,
    /// Grant external references to load.
    pub external_refs: Vec<String>,
    /// Skip (return `None`) instead of waiting when another transaction holds the lock.
    pub skip_locked: bool,
}

/// What was loaded under the lock.
#[derive(Debug)]
pub struct Loaded {
    /// The account's book.
    pub book: AccountBook,
    /// Idempotency records found, by key.
    pub records: HashMap<String, StoredRecord>,
    /// The settlements asked for that belong to the account, by id.
    pub settlements: HashMap<Uuid, SettlementRecord>,
}

/// A transaction holding one account's row lock.
#[derive(Debug)]
pub struct LockedAccount {
    client: Option<Object>,
    /// When the read round trip (which took the lock) completed.
    locked_at: std::time::Instant,
    tenant_id: Uuid,
    account_id: Uuid,
    now: DateTime<Utc>,
}

type RowsFuture<'a> = BoxFuture<'a, Result<Vec<Row>, tokio_postgres::Error>>;

impl LockedAccount {
    /// Locks the account row and loads its book at `now`; `None` when the account does not
    /// exist for this tenant (or is locked and `skip_locked` was asked).
    pub async fn lock(
        pool: &Pool,
        target: &LockTarget,
        now: DateTime<Utc>,
    ) -> Result<Option<(LockedAccount, Loaded)>, StoreError> {
        let client = pool.get().await?;
        let account_sql = if target.skip_locked {
            "SELECT account_id, status, settle_policy, debt, entitlements FROM accounts WHERE account_id = $1 AND tenant_id = $2 FOR UPDATE SKIP LOCKED"
        } else {
            "SELECT account_id, status, settle_policy, debt, entitlements FROM accounts WHERE account_id = $1 AND tenant_id = $2 FOR UPDATE"
        };
        let grants_sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE account_id = $1 AND (remaining > 0 OR reserved > 0 \
             OR grant_id IN (SELECT grant_id FROM settlement_parts WHERE settlement_id = ANY($2)) \
             OR external_ref = ANY($3))"
        );
        let holds_filter =
            "account_id = $1 AND ((status = 'ACTIVE' AND expires_at <= $2) OR hold_id = ANY($3))";
        let holds_sql = format!("SELECT {HOLD_COLUMNS} FROM holds WHERE {holds_filter}");
        let allocations_sql = format!(
            "SELECT hold_id, grant_id, reserved, captured FROM hold_allocations \
             WHERE hold_id IN (SELECT hold_id FROM holds WHERE {holds_filter}) ORDER BY hold_id, position"
        );
        let settlement_sql = format!(
            "SELECT {SETTLEMENT_COLUMNS} FROM settlements WHERE settlement_id = ANY($1) AND account_id = $2"
        );
        let parts_sql = "SELECT settlement_id, grant_id, amount, refunded FROM settlement_parts \
             WHERE settlement_id = ANY($1) ORDER BY settlement_id, position";
        // Prepared (or taken from the connection's cache) before the lock is taken.
        let statements = try_join_all([
            client.prepare_cached(account_sql),
            client.prepare_cached(SELECT_RECORDS),
            client.prepare_cached(&grants_sql),
            client.prepare_cached(&holds_sql),
            client.prepare_cached(&allocations_sql),
            client.prepare_cached(&settlement_sql),
            client.prepare_cached(parts_sql),
        ])
        .await?;
        try_join_all(super::write_sql::ALL_STATEMENTS.map(|sql| client.prepare_cached(sql)))
            .await?;
        client.prepare_cached(INSERT_RECORDS).await?;
        let (account_id, tenant_id) = (target.account_id, target.tenant_id);
        let mut locked = LockedAccount {
            client: Some(client),
            locked_at: std::time::Instant::now(),
            tenant_id,
            account_id,
            now,
        };
        let client = locked.client()?;
        let no_rows = || async { Ok::<Vec<Row>, tokio_postgres::Error>(Vec::new()) }.boxed();
        let (keys, holds, settlements, references) = (
            &target.idempotency_keys,
            &target.hold_ids,
            &target.settlement_ids,
            &target.external_refs,
        );
        let mut reads: Vec<RowsFuture<'_>> = vec![
            async { client.simple_query("BEGIN").await.map(|_| Vec::new()) }.boxed(),
            async {
                client
                    .query(&statements[0], &[&account_id, &tenant_id])
                    .await
            }
            .boxed(),
            if keys.is_empty() {
                no_rows()
            } else {
                async { client.query(&statements[1], &[&tenant_id, keys]).await }.boxed()
            },
            async {
                client
                    .query(&statements[2], &[&account_id, settlements, references])
                    .await
            }
            .boxed(),
            async {
                client
                    .query(&statements[3], &[&account_id, &now, holds])
                    .await
            }
            .boxed(),
            async {
                client
                    .query(&statements[4], &[&account_id, &now, holds])
                    .await
            }
            .boxed(),
        ];
        if !settlements.is_empty() {
            reads.push(
                async {
                    client
                        .query(&statements[5], &[settlements, &account_id])
                        .await
                }
                .boxed(),
            );
            reads.push(async { client.query(&statements[6], &[settlements]).await }.boxed());
        }
        let results = try_join_all(reads).await?;
        locked.locked_at = std::time::Instant::now();
        let Some(account_row) = results[1].first() else {
            locked.rollback().await;
            return Ok(None);
        };
        let account = rows::account_state(account_row)?;
        let records = results[2]
            .iter()
            .map(|row| (row.get::<_, String>("idempotency_key"), stored_record(row)))
            .collect();
        let grants = results[3]
            .iter()
            .map(rows::grant)
            .collect::<Result<Vec<_>, _>>()?;
        let mut holds = results[4]
            .iter()
            .map(rows::hold)
            .collect::<Result<Vec<_>, _>>()?;
        rows::attach_allocations(&mut holds, &results[5]);
        let mut loaded_settlements: HashMap<Uuid, SettlementRecord> = results
            .get(6)
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        let settlement = rows::settlement(row);
                        (settlement.settlement_id, settlement)
                    })
                    .collect()
            })
            .unwrap_or_default();
        for row in results.get(7).map(Vec::as_slice).unwrap_or_default() {
            if let Some(settlement) =
                loaded_settlements.get_mut(&row.get::<_, Uuid>("settlement_id"))
            {
                settlement.parts.push(rows::settlement_part(row));
            }
        }
        let book = AccountBook::new(account, grants, holds, now);
        Ok(Some((
            locked,
            Loaded {
                book,
                records,
                settlements: loaded_settlements,
            },
        )))
    }

    fn client(&self) -> Result<&Object, StoreError> {
        self.client
            .as_ref()
            .ok_or_else(|| StoreError::Other("transaction already finished".to_owned()))
    }

    /// Writes `changes` and `record`, then commits, in one pipelined round trip.
    pub async fn commit(
        mut self,
        changes: &Changes,
        records: &[NewRecord],
    ) -> Result<(), StoreError> {
        let writes = Writes::new(self.tenant_id, self.account_id, self.now, changes);
        let record_columns = RecordColumns::new(self.tenant_id, records);
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
            account_id = %self.account_id,
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

impl Drop for LockedAccount {
    fn drop(&mut self) {
        // Unfinished (an error or a cancelled call): discard the connection so the server
        // rolls the transaction back and no open transaction returns to the pool.
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}
