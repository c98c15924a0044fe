//! Holds and settlements read without a lock: whose a hold or settlement is (to route an
//! operation to its account), and a hold with its settlements for GetHold.

use deadpool_postgres::GenericClient;

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

/// The account and pricing of a hold, scoped by tenant.
pub async fn hold_ref(
    client: &impl GenericClient,
    tenant_id: TenantId,
    hold_id: HoldId,
) -> Result<Option<HoldRef>, StoreError> {
    let row = client
        .query_opt(
            "SELECT account_id, catalog_version, tool, model FROM holds WHERE hold_id = $1 AND tenant_id = $2",
            &[&hold_id, &tenant_id],
        )
        .await?;
    Ok(row.map(|row| HoldRef {
        account_id: row.get(0),
        catalog_version: row.get(1),
        tool: row.get(2),
        model: row.get(3),
    }))
}

/// The account a settlement belongs to, scoped by tenant.
pub async fn settlement_account(
    client: &impl GenericClient,
    tenant_id: TenantId,
    settlement_id: SettlementId,
) -> Result<Option<(AccountId, HoldId)>, StoreError> {
    let row = client
        .query_opt(
            "SELECT account_id, hold_id FROM settlements WHERE settlement_id = $1 AND tenant_id = $2",
            &[&settlement_id, &tenant_id],
        )
        .await?;
    Ok(row.map(|row| (row.get(0), row.get(1))))
}

/// A hold by id, else by Authorize idempotency key, with its allocations and settlements. A
/// key is unique per account: reused on another account after its record was pruned, it names
/// the newest of its holds.
pub async fn find_hold(
    client: &impl GenericClient,
    tenant_id: TenantId,
    hold_id: Option<HoldId>,
    authorize_key: Option<&str>,
) -> Result<Option<(AccountId, HoldState, Vec<SettlementRecord>)>, StoreError> {
    let found = match (hold_id, authorize_key) {
        (Some(hold_id), _) => {
            let sql =
                format!("SELECT {HOLD_COLUMNS} FROM holds WHERE tenant_id = $1 AND hold_id = $2");
            client.query_opt(&sql, &[&tenant_id, &hold_id]).await?
        }
        (None, Some(key)) => {
            let sql = format!(
                "SELECT {HOLD_COLUMNS} FROM holds WHERE tenant_id = $1 \
                 AND (hold_id, account_id) IN (SELECT hold_id, account_id FROM authorize_keys \
                 WHERE authorize_key = $2 COLLATE \"C\") ORDER BY created_at DESC, hold_id LIMIT 1"
            );
            client.query_opt(&sql, &[&tenant_id, &key]).await?
        }
        (None, None) => None,
    };
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
