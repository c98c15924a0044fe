//! The books built from the rows read under the locks.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::reads::ReadRows;
use super::{Loaded, LoadedAccount, LockTarget};
use crate::ids::{AccountId, AccountKey, SettlementId, TenantId};
use rust_decimal::Decimal;

use crate::ledger::{
    AccountBook, AccountState, GrantState, HoldState, ScopeUsage, SettlementRecord, SpendScope,
};
use crate::money::Credits;
use crate::store::StoreError;
use crate::store::idempotency::records_by_key;
use crate::store::rows;

impl ReadRows {
    /// What was loaded, each book deciding at `now`.
    pub(super) fn into_loaded(
        self,
        now: DateTime<Utc>,
        target: &LockTarget,
    ) -> Result<Loaded, StoreError> {
        let usage_asked = &target.scope_usage;
        let states = account_states(&self.accounts)?;
        let records = records_by_key(&self.records);
        let mut grants = grants_by_account(&self.grants)?;
        let mut holds = holds_by_account(&self.holds, &self.allocations)?;
        let mut settlements = settlements_by_account(&self.settlements, &self.parts);
        let mut allowances = by_account(&self.allowances, rows::allowance)?;
        let mut limits = by_account(&self.spend_limits, rows::spend_limit)?;
        let mut usage = self.usage_by_account(usage_asked);
        // Rows of accounts that were not locked (another tenant's id, a skipped lock) are
        // dropped here: only locked accounts get a book.
        let accounts = states
            .into_iter()
            .map(|(tenant, state)| {
                let account = state.account_id;
                let mut book = AccountBook::new(
                    state,
                    grants.remove(&account).unwrap_or_default(),
                    holds.remove(&account).unwrap_or_default(),
                    now,
                )
                .with_spend_limits(
                    limits.remove(&account).unwrap_or_default(),
                    usage.remove(&account).unwrap_or_default(),
                );
                let rules = allowances.remove(&account).unwrap_or_default();
                book = if self.allowances_all || target.allowances_for.contains(&account) {
                    book.with_allowances(rules)
                } else {
                    book.with_due_allowances(rules)
                };
                if let Some(horizon) = target.expiry_warning {
                    book = book.with_expiry_warning(horizon);
                }
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
            allowances_reread: self.allowances_all,
        })
    }
}

impl ReadRows {
    /// The history of each scope asked about, by account (zero for a scope without any).
    fn usage_by_account(
        &self,
        asked: &[(AccountId, SpendScope)],
    ) -> HashMap<AccountId, Vec<ScopeUsage>> {
        let key = |row: &Row| -> (AccountId, String, String) {
            (row.get(0), row.get::<_, String>(1), row.get::<_, String>(2))
        };
        let counts: HashMap<AccountId, i64> = self
            .limit_counts
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let mut by_account: HashMap<AccountId, Vec<ScopeUsage>> = HashMap::new();
        for (account_id, scope) in asked {
            let asked_key = (
                *account_id,
                scope.kind.as_str().to_owned(),
                scope.id.clone(),
            );
            let amount = |row: &Row| Credits::from_decimal(row.get::<_, Decimal>("amount"));
            let reserved = self
                .scope_reserved
                .iter()
                .filter(|row| key(row) == asked_key)
                .map(amount)
                .sum();
            let account_limits = counts.get(account_id).copied().unwrap_or_default();
            by_account.entry(*account_id).or_default().push(ScopeUsage {
                scope: scope.clone(),
                reserved,
                account_limits: usize::try_from(account_limits).unwrap_or(usize::MAX),
            });
        }
        by_account
    }
}

/// Rows carrying `account_id`, mapped, by account.
fn by_account<T>(
    rows: &[Row],
    map: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<HashMap<AccountId, Vec<T>>, StoreError> {
    let mut by_account: HashMap<AccountId, Vec<T>> = HashMap::new();
    for row in rows {
        by_account
            .entry(row.get("account_id"))
            .or_default()
            .push(map(row)?);
    }
    Ok(by_account)
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
    by_account(grants, rows::grant)
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

/// The Authorize keys that already made a hold, by account.
fn authorized(rows: &[Row]) -> HashMap<AccountId, HashSet<String>> {
    let mut by_account: HashMap<AccountId, HashSet<String>> = HashMap::new();
    for row in rows {
        by_account.entry(row.get(0)).or_default().insert(row.get(1));
    }
    by_account
}

/// The refund ids a refund already has.
fn refunded(rows: &[Row]) -> HashSet<Uuid> {
    rows.iter().map(|row| row.get::<_, Uuid>(0)).collect()
}
