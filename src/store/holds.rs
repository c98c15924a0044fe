//! Holds and settlements read without a lock: whose a hold or settlement is (to route an
//! operation to its account), and a hold with its settlements for GetHold.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::StoreError;
use super::rows::{self, HOLD_COLUMNS, SETTLEMENT_COLUMNS};
use crate::ids::{AccountId, HoldId, SettlementId, TenantId};
use crate::ledger::{HoldState, SettlementRecord};

/// What is fixed about a hold from its Authorize on: whose it is and how it was priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRef {
    /// Its account.
    pub account_id: AccountId,
    /// Catalog version it was priced with (0 = explicit amount).
    pub catalog_version: i64,
    /// Tool of the run.
    pub tool: String,
    /// Model of the run.
    pub model: String,
}

/// `$n` and the statement's condition on the account named by the request (`named`), if
/// any: a statement that names the account reads one shard of a deployment sharded by account
/// (docs/SCALING.md §3.2).
fn on_named(named: Option<AccountId>, n: usize) -> String {
    named.map_or_else(String::new, |_| format!(" AND account_id = ${n}"))
}

/// The account and pricing of a hold, scoped by tenant, and by account when the request names
/// it (`named`).
pub async fn hold_ref(
    client: &impl GenericClient,
    tenant_id: TenantId,
    hold_id: HoldId,
    named: Option<AccountId>,
) -> Result<Option<HoldRef>, StoreError> {
    let sql = format!(
        "SELECT account_id, catalog_version, tool, model FROM holds \
         WHERE hold_id = $1 AND tenant_id = $2{}",
        on_named(named, 3)
    );
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&hold_id, &tenant_id];
    params.extend(named.as_ref().map(|named| named as &(dyn ToSql + Sync)));
    let row = client.query_opt(&sql, &params).await?;
    Ok(row.map(|row| HoldRef {
        account_id: row.get(0),
        catalog_version: row.get(1),
        tool: row.get(2),
        model: row.get(3),
    }))
}

/// The account a settlement belongs to, scoped by tenant, and by account when the request
/// names it (`named`).
pub async fn settlement_account(
    client: &impl GenericClient,
    tenant_id: TenantId,
    settlement_id: SettlementId,
    named: Option<AccountId>,
) -> Result<Option<(AccountId, HoldId)>, StoreError> {
    let sql = format!(
        "SELECT account_id, hold_id FROM settlements WHERE settlement_id = $1 AND tenant_id = $2{}",
        on_named(named, 3)
    );
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&settlement_id, &tenant_id];
    params.extend(named.as_ref().map(|named| named as &(dyn ToSql + Sync)));
    let row = client.query_opt(&sql, &params).await?;
    Ok(row.map(|row| (row.get(0), row.get(1))))
}

/// Which hold GetHold reads.
#[derive(Debug, Clone, Copy)]
pub struct HoldLookup<'a> {
    /// By id,
    pub hold_id: Option<HoldId>,
    /// else by the idempotency key of its Authorize.
    pub authorize_key: Option<&'a str>,
    /// On this account only, when the request names it.
    pub account_id: Option<AccountId>,
}

/// A hold by id, else by Authorize idempotency key, with its allocations and settlements. A
/// key is unique per account: reused on another account after its record was pruned, it names
/// the newest of its holds, unless the lookup names the account.
pub async fn find_hold(
    client: &impl GenericClient,
    tenant_id: TenantId,
    lookup: HoldLookup<'_>,
) -> Result<Option<(AccountId, HoldState, Vec<SettlementRecord>)>, StoreError> {
    let named = lookup.account_id;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant_id];
    let sql = match (&lookup.hold_id, &lookup.authorize_key) {
        (Some(hold_id), _) => {
            params.push(hold_id);
            format!(
                "SELECT {HOLD_COLUMNS} FROM holds WHERE tenant_id = $1 AND hold_id = $2{}",
                on_named(named, 3)
            )
        }
        (None, Some(key)) => {
            params.push(key);
            format!(
                "SELECT {HOLD_COLUMNS} FROM holds WHERE tenant_id = $1 \
                 AND (hold_id, account_id) IN (SELECT hold_id, account_id FROM authorize_keys \
                 WHERE authorize_key = $2 COLLATE \"C\"{}) ORDER BY created_at DESC, hold_id LIMIT 1",
                on_named(named, 3)
            )
        }
        (None, None) => return Ok(None),
    };
    params.extend(named.as_ref().map(|named| named as &(dyn ToSql + Sync)));
    let found = client.query_opt(&sql, &params).await?;
    let Some(row) = found else {
        return Ok(None);
    };
    let account_id: AccountId = row.get("account_id");
    let mut hold = rows::hold(&row)?;
    let allocations = client
        .query(
            "SELECT hold_id, grant_id, reserved, captured FROM hold_allocations WHERE hold_id = $1 ORDER BY position",
            &[&hold.hold_id],
        )
        .await?;
    rows::attach_allocations(std::slice::from_mut(&mut hold), &allocations);
    let settlements = client
        .query(
            &format!("SELECT {SETTLEMENT_COLUMNS} FROM settlements WHERE hold_id = $1 ORDER BY created_at, settlement_id"),
            &[&hold.hold_id],
        )
        .await?
        .iter()
        .map(rows::settlement)
        .collect();
    Ok(Some((account_id, hold, settlements)))
}
