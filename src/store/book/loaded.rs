//! The books built from the rows read under the locks.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::reads::ReadRows;
use super::{Loaded, LoadedAccount};
use crate::ids::{AccountId, AccountKey, SettlementId, TenantId};
use crate::ledger::{AccountBook, AccountState, GrantState, HoldState, SettlementRecord};
use crate::store::StoreError;
use crate::store::idempotency::records_by_key;
use crate::store::rows;

impl ReadRows {
    /// What was loaded, each book deciding at `now`.
    pub(super) fn into_loaded(self, now: DateTime<Utc>) -> Result<Loaded, StoreError> {
        let states = account_states(&self.accounts)?;
        let records = records_by_key(&self.records);
        let mut grants = grants_by_account(&self.grants)?;
        let mut holds = holds_by_account(&self.holds, &self.allocations)?;
        let mut settlements = settlements_by_account(&self.settlements, &self.parts);
        // Rows of accounts that were not locked (another tenant's id, a skipped lock) are
        // dropped here: only locked accounts get a book.
        let accounts = states
            .into_iter()
            .map(|(tenant, state)| {
                let account = state.account_id;
                let book = AccountBook::new(
                    state,
                    grants.remove(&account).unwrap_or_default(),
                    holds.remove(&account).unwrap_or_default(),
                    now,
                );
                let settlements = settlements.remove(&account).unwrap_or_default();
                let key = AccountKey { tenant, account };
                (key, LoadedAccount { book, settlements })
            })
            .collect();
        Ok(Loaded {
            accounts,
            records,
            authorized: authorized(&self.authorized),
            refunded: refunded(&self.refunded),
        })
    }
}

/// The locked accounts' states, with their tenants.
fn account_states(accounts: &[Row]) -> Result<Vec<(TenantId, AccountState)>, StoreError> {
    let mut states = Vec::with_capacity(accounts.len());
    for row in accounts {
        states.push((
            row.get::<_, TenantId>("tenant_id"),
            rows::account_state(row)?,
        ));
    }
    Ok(states)
}

fn grants_by_account(grants: &[Row]) -> Result<HashMap<AccountId, Vec<GrantState>>, StoreError> {
    let mut by_account: HashMap<AccountId, Vec<_>> = HashMap::new();
    for row in grants {
        by_account
            .entry(row.get("account_id"))
            .or_default()
            .push(rows::grant(row)?);
    }
    Ok(by_account)
}

/// The holds with their allocations, by account.
fn holds_by_account(
    holds: &[Row],
    allocations: &[Row],
) -> Result<HashMap<AccountId, Vec<HoldState>>, StoreError> {
    let mut hold_list = holds
        .iter()
        .map(rows::hold)
        .collect::<Result<Vec<_>, _>>()?;
    rows::attach_allocations(&mut hold_list, allocations);
    let mut by_account: HashMap<AccountId, Vec<_>> = HashMap::new();
    for (row, hold) in holds.iter().zip(hold_list) {
        by_account
            .entry(row.get("account_id"))
            .or_default()
            .push(hold);
    }
    Ok(by_account)
}

/// The settlements with their parts, by account.
fn settlements_by_account(
    settlements: &[Row],
    parts: &[Row],
) -> HashMap<AccountId, HashMap<SettlementId, SettlementRecord>> {
    let mut loaded: HashMap<SettlementId, (AccountId, SettlementRecord)> = HashMap::new();
    for row in settlements {
        let settlement = rows::settlement(row);
        loaded.insert(
            settlement.settlement_id,
            (row.get("account_id"), settlement),
        );
    }
    for row in parts {
        if let Some((_, settlement)) = loaded.get_mut(&row.get::<_, SettlementId>("settlement_id"))
        {
            settlement.parts.push(rows::settlement_part(row));
        }
    }
    let mut by_account: HashMap<AccountId, HashMap<_, _>> = HashMap::new();
    for (settlement_id, (account_id, settlement)) in loaded {
        by_account
            .entry(account_id)
            .or_default()
            .insert(settlement_id, settlement);
    }
    by_account
}

/// The Authorize keys that already made a hold.
fn authorized(rows: &[Row]) -> HashSet<(TenantId, String)> {
    rows.iter()
        .map(|row| (row.get::<_, TenantId>(0), row.get::<_, String>(1)))
        .collect()
}

/// The refund ids a refund already has.
fn refunded(rows: &[Row]) -> HashSet<Uuid> {
    rows.iter().map(|row| row.get::<_, Uuid>(0)).collect()
}
