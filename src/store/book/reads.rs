//! The read round trip of a locked transaction: its statements, prepared before the locks are
//! taken, and the one pipelined trip that sends BEGIN, takes the locks and reads everything
//! the operations need, each statement's rows returned under its own name.

use chrono::{DateTime, Utc};
use deadpool_postgres::ClientWrapper;
use futures::future::try_join_all;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Error, Row, Statement};

use super::LockTarget;
use crate::ids::{AccountId, TenantId};
use crate::ledger::SpendScope;
use crate::store::StoreError;
use crate::store::idempotency::{INSERT_RECORDS, SELECT_RECORDS};
use crate::store::read_sql::{
    ALLOCATIONS, ALLOWANCES, ALLOWANCES_OF, BEGIN, CLOCK, CUSTOM_PLANS, GENERIC_PLANS, GRANTS,
    HOLDS, HOLDS_BY_KEY, LIMIT_COUNTS, LOCK_ACCOUNTS, LOCK_ACCOUNTS_SKIP_LOCKED, PARTS,
    REFUNDS_BY_ID, SCOPE_RESERVED, SETTLEMENTS, SPEND_LIMITS,
};
use crate::store::write_sql::all_statements;

/// `pipeline!(first; Rows { a, b, … }, field: value, …)` awaits the futures named `first`, `a`,
/// `b`, … together and gathers their outputs (but `first`'s) into `Rows`, with the other fields
/// given, returning the first error from the enclosing function. Each query is sent when its future is first polled, and they are polled
/// in the order written: the statements run in that order, in one round trip.
macro_rules! pipeline {
    ($first:ident; $rows:ident { $($query:ident),+ $(,)? } $(, $field:ident $(: $value:expr)?)* $(,)?) => {{
        let (_, $($query,)+) = futures::try_join!($first, $($query),+)?;
        $rows { $($query,)+ $($field $(: $value)?),* }
    }};
}

/// The read round trip's statements.
#[derive(Debug)]
pub(super) struct ReadStatements {
    lock: Statement,
    records: Statement,
    grants: Statement,
    holds: Statement,
    allocations: Statement,
    settlements: Statement,
    parts: Statement,
    holds_by_key: Statement,
    clock: Statement,
    refunds_by_id: Statement,
    allowances: Statement,
    allowances_of: Statement,
    spend_limits: Statement,
    scope_reserved: Statement,
    limit_counts: Statement,
}

impl ReadStatements {
    /// Prepares (or takes from the connection's cache) the reads, and the writes a commit may
    /// send, so that none is prepared under the locks.
    pub(super) async fn prepare(client: &ClientWrapper, skip_locked: bool) -> Result<Self, Error> {
        let lock = if skip_locked {
            LOCK_ACCOUNTS_SKIP_LOCKED.as_str()
        } else {
            LOCK_ACCOUNTS
        };
        let (lock, records, grants, holds, allocations, settlements, parts) = futures::try_join!(
            client.prepare_cached(lock),
            client.prepare_cached(SELECT_RECORDS.as_str()),
            client.prepare_cached(&GRANTS),
            client.prepare_cached(&HOLDS),
            client.prepare_cached(&ALLOCATIONS),
            client.prepare_cached(&SETTLEMENTS),
            client.prepare_cached(PARTS),
        )?;
        try_join_all(all_statements().map(|sql| client.prepare_cached(sql))).await?;
        client.prepare_cached(INSERT_RECORDS).await?;
        Ok(ReadStatements {
            lock,
            records,
            grants,
            holds,
            allocations,
            settlements,
            parts,
            holds_by_key: client.prepare_cached(HOLDS_BY_KEY).await?,
            clock: client.prepare_cached(CLOCK).await?,
            refunds_by_id: client.prepare_cached(REFUNDS_BY_ID).await?,
            allowances: client.prepare_cached(&ALLOWANCES).await?,
            allowances_of: client.prepare_cached(&ALLOWANCES_OF).await?,
            spend_limits: client.prepare_cached(&SPEND_LIMITS).await?,
            scope_reserved: client.prepare_cached(SCOPE_RESERVED).await?,
            limit_counts: client.prepare_cached(&LIMIT_COUNTS).await?,
        })
    }
}

/// The rows of the read round trip, by statement.
#[derive(Debug)]
pub(super) struct ReadRows {
    /// The locked account rows.
    pub(super) accounts: Vec<Row>,
    /// Holds already made by the Authorize keys asked about: `account_id, authorize_key`.
    pub(super) authorized: Vec<Row>,
    pub(super) grants: Vec<Row>,
    pub(super) holds: Vec<Row>,
    pub(super) allocations: Vec<Row>,
    /// Idempotency records.
    pub(super) records: Vec<Row>,
    pub(super) settlements: Vec<Row>,
    pub(super) parts: Vec<Row>,
    /// Refunds already made with the ids asked about: `refund_id`.
    pub(super) refunded: Vec<Row>,
    /// The allowances that may owe a period by `allowances_by`, and all those of the accounts
    /// whose rules were asked for; all the locked accounts' once `allowances_by` has passed.
    pub(super) allowances: Vec<Row>,
    /// The time `allowances` were read for.
    allowances_by: DateTime<Utc>,
    /// Whether `allowances` holds every rule of every locked account.
    pub(super) allowances_all: bool,
    pub(super) spend_limits: Vec<Row>,
    /// Scopes' reservations: `account_id, scope_kind, scope_id, amount`.
    pub(super) scope_reserved: Vec<Row>,
    /// Accounts' numbers of limits: `account_id, count`.
    pub(super) limit_counts: Vec<Row>,
    clock: Vec<Row>,
}

impl ReadRows {
    /// Sends BEGIN, the lock and every read in one pipelined round trip; `due_by` chooses the
    /// holds loaded to be expired.
    ///
    /// The statements run in the order `pipeline!` names them. Holds by Authorize key before
    /// the records: a hold seen there whose record is not seen was made by a key whose record
    /// was pruned (a record committed with its hold in between is seen, as the statements read
    /// in order). A refund committed by another account's transaction between the records'
    /// read and the refunds' shows as a reused key, which is what its record would have said
    /// too. The reads of the locked accounts' own rows after the others, with generic plans
    /// ([`GENERIC_PLANS`]). The clock last, so that it is read after the lock statement has
    /// taken the locks.
    pub(super) async fn read(
        client: &Client,
        statements: &ReadStatements,
        target: &LockTarget,
        due_by: DateTime<Utc>,
    ) -> Result<Self, Error> {
        let keys = TargetKeys::new(target);
        let (account_ids, settlement_ids) = (&keys.account_ids, &target.settlement_ids);
        let holds_wanted: [&(dyn ToSql + Sync); 3] = [account_ids, &due_by, &target.hold_ids];
        let s = statements;
        let begin = client.simple_query(BEGIN);
        let accounts = rows(client, &s.lock, [&keys.tenants, account_ids]);
        let authorized = rows_if(
            !keys.authorize_keys.is_empty(),
            client,
            &s.holds_by_key,
            [&keys.authorize_accounts, &keys.authorize_keys],
        );
        let records = rows_if(
            !keys.keys.is_empty(),
            client,
            &s.records,
            [&keys.key_tenants, &keys.keys],
        );
        let wanted = !settlement_ids.is_empty();
        let settlements = rows_if(
            wanted,
            client,
            &s.settlements,
            [settlement_ids, account_ids],
        );
        let parts = rows_if(wanted, client, &s.parts, [settlement_ids]);
        let refunded = rows_if(
            !target.refund_ids.is_empty(),
            client,
            &s.refunds_by_id,
            [&target.refund_ids],
        );
        let (scopes, usage) = (&keys.scopes, &keys.usage);
        let usage_wanted = !usage.accounts.is_empty();
        let usage_params: [&(dyn ToSql + Sync); 3] = [&usage.accounts, &usage.kinds, &usage.ids];
        let scope_reserved = rows_if(usage_wanted, client, &s.scope_reserved, usage_params);
        let grants = after(
            client.simple_query(GENERIC_PLANS),
            rows(
                client,
                &s.grants,
                [account_ids, settlement_ids, &target.external_refs],
            ),
        );
        let holds = rows(client, &s.holds, holds_wanted);
        let allocations = rows(client, &s.allocations, holds_wanted);
        let allowances_by = due_by + ALLOWANCES_READ_AHEAD;
        let allowances = rows(
            client,
            &s.allowances,
            [account_ids, &allowances_by, &target.allowances_for],
        );
        let spend_limits = rows(
            client,
            &s.spend_limits,
            [
                account_ids,
                &due_by,
                &target.hold_ids,
                &scopes.accounts,
                &scopes.kinds,
                &scopes.ids,
            ],
        );
        let limit_counts = rows_if(usage_wanted, client, &s.limit_counts, [&usage.accounts]);
        let clock = before(
            rows(client, &s.clock, []),
            client.simple_query(CUSTOM_PLANS),
        );
        Ok(pipeline!(begin; ReadRows {
            accounts, authorized, records, settlements, parts, refunded, scope_reserved, grants,
            holds, allocations, allowances, spend_limits, limit_counts, clock,
        }, allowances_by, allowances_all: false))
    }

    /// Reads all the locked accounts' allowances again, in one more round trip, when the books
    /// decide (at `now`, the database's clock) past the time they were read for: a rule may
    /// have fallen due in between. Never, unless the locks took minutes or this server's clock
    /// lags the database's by as much.
    pub(super) async fn read_late_allowances(
        &mut self,
        client: &Client,
        statements: &ReadStatements,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if now <= self.allowances_by {
            return Ok(());
        }
        let accounts: Vec<AccountId> = self
            .accounts
            .iter()
            .map(|row| row.get("account_id"))
            .collect();
        self.allowances = client
            .query(&statements.allowances_of, &[&accounts])
            .await?;
        self.allowances_all = true;
        Ok(())
    }

    /// The database's clock read under the locks, plus `shift`.
    pub(super) fn database_now(
        &self,
        shift: chrono::Duration,
    ) -> Result<DateTime<Utc>, StoreError> {
        self.clock
            .first()
            .map(|row| row.get::<_, DateTime<Utc>>(0) + shift)
            .ok_or_else(|| StoreError::Other("the database clock was not read".to_owned()))
    }
}

/// How far past the caller's clock the allowances are read for: the books decide at the
/// database's clock read after the locks (and a replica's clock may lag it), and an account
/// that falls due between the two costs one more round trip.
const ALLOWANCES_READ_AHEAD: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The target's keys as parameter columns.
struct TargetKeys {
    tenants: Vec<TenantId>,
    account_ids: Vec<AccountId>,
    key_tenants: Vec<TenantId>,
    keys: Vec<String>,
    authorize_accounts: Vec<AccountId>,
    authorize_keys: Vec<String>,
    scopes: ScopeColumns,
    usage: ScopeColumns,
}

/// Scopes of accounts as parameter columns.
#[derive(Default)]
struct ScopeColumns {
    accounts: Vec<AccountId>,
    kinds: Vec<&'static str>,
    ids: Vec<String>,
}

impl ScopeColumns {
    fn new(scopes: &[(AccountId, SpendScope)]) -> Self {
        let mut columns = ScopeColumns::default();
        for (account_id, scope) in scopes {
            columns.accounts.push(*account_id);
            columns.kinds.push(scope.kind.as_str());
            columns.ids.push(scope.id.clone());
        }
        columns
    }
}

impl TargetKeys {
    fn new(target: &LockTarget) -> Self {
        let (tenants, account_ids) = target
            .accounts
            .iter()
            .map(|key| (key.tenant, key.account))
            .unzip();
        let (key_tenants, keys) = target.idempotency_keys.iter().cloned().unzip();
        let (authorize_accounts, authorize_keys) = target.authorize_keys.iter().cloned().unzip();
        TargetKeys {
            tenants,
            account_ids,
            key_tenants,
            keys,
            authorize_accounts,
            authorize_keys,
            scopes: ScopeColumns::new(&target.spend_scopes),
            usage: ScopeColumns::new(&target.scope_usage),
        }
    }
}

/// `statement`'s rows; sent when first polled.
async fn rows<const N: usize>(
    client: &Client,
    statement: &Statement,
    params: [&(dyn ToSql + Sync); N],
) -> Result<Vec<Row>, Error> {
    client.query(statement, &params).await
}

/// `query`'s rows, sent right after `set` in the same round trip (polled together, in order).
async fn after<S>(
    set: impl Future<Output = Result<S, Error>>,
    query: impl Future<Output = Result<Vec<Row>, Error>>,
) -> Result<Vec<Row>, Error> {
    let (_, rows) = futures::try_join!(set, query)?;
    Ok(rows)
}

/// `query`'s rows, with `set` sent right after it in the same round trip.
async fn before<S>(
    query: impl Future<Output = Result<Vec<Row>, Error>>,
    set: impl Future<Output = Result<S, Error>>,
) -> Result<Vec<Row>, Error> {
    let (rows, _) = futures::try_join!(query, set)?;
    Ok(rows)
}

/// `statement`'s rows when `wanted`; none, without sending it, otherwise.
async fn rows_if<const N: usize>(
    wanted: bool,
    client: &Client,
    statement: &Statement,
    params: [&(dyn ToSql + Sync); N],
) -> Result<Vec<Row>, Error> {
    if wanted {
        rows(client, statement, params).await
    } else {
        Ok(Vec::new())
    }
}
