//! The rows of one transaction's writes, one array per column, ready for `unnest`; every row
//! carries its account (and tenant where the table has one), as a transaction may write
//! several accounts.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::ids::{AccountId, GrantId, HoldId, SettlementId, TenantId};

/// Rows of a hold's allocations or a settlement's parts: (owner, grant, position, two amounts).
#[derive(Debug)]
pub(super) struct GrantShares<Owner> {
    pub(super) owners: Vec<Owner>,
    pub(super) grants: Vec<GrantId>,
    pub(super) positions: Vec<i32>,
    pub(super) first: Vec<Decimal>,
    pub(super) second: Vec<Decimal>,
    pub(super) accounts: Vec<AccountId>,
}

impl<Owner> Default for GrantShares<Owner> {
    fn default() -> Self {
        GrantShares {
            owners: Vec::new(),
            grants: Vec::new(),
            positions: Vec::new(),
            first: Vec::new(),
            second: Vec::new(),
            accounts: Vec::new(),
        }
    }
}

impl<Owner: ToSql + Sync> GrantShares<Owner> {
    pub(super) fn push(
        &mut self,
        account: AccountId,
        owner: Owner,
        grant: GrantId,
        position: i32,
        first: Decimal,
        second: Decimal,
    ) {
        self.accounts.push(account);
        self.owners.push(owner);
        self.grants.push(grant);
        self.positions.push(position);
        self.first.push(first);
        self.second.push(second);
    }

    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.owners,
            &self.grants,
            &self.positions,
            &self.first,
            &self.second,
            &self.accounts,
        ]
    }
}

#[derive(Debug, Default)]
pub(super) struct GrantColumns {
    pub(super) ids: Vec<GrantId>,
    pub(super) sources: Vec<&'static str>,
    pub(super) priorities: Vec<i32>,
    pub(super) amounts: Vec<Decimal>,
    pub(super) remaining: Vec<Decimal>,
    pub(super) reserved: Vec<Decimal>,
    pub(super) effective_at: Vec<DateTime<Utc>>,
    pub(super) expires_at: Vec<Option<DateTime<Utc>>>,
    pub(super) external_refs: Vec<Option<String>>,
    pub(super) created_at: Vec<DateTime<Utc>>,
    pub(super) tenants: Vec<TenantId>,
    pub(super) accounts: Vec<AccountId>,
}

/// New holds, one array per column; the labels of all of them travel as two flat arrays, each
/// hold naming its slice (1-based, inclusive; an empty slice when it has none).
#[derive(Debug, Default)]
pub(super) struct NewHoldColumns {
    pub(super) ids: Vec<HoldId>,
    pub(super) statuses: Vec<&'static str>,
    pub(super) amounts: Vec<Decimal>,
    pub(super) captured: Vec<Decimal>,
    pub(super) expires_at: Vec<DateTime<Utc>>,
    pub(super) partial_captures: Vec<i32>,
    pub(super) late_settled: Vec<bool>,
    pub(super) authorize_keys: Vec<String>,
    pub(super) catalog_versions: Vec<i64>,
    pub(super) quote_ids: Vec<Option<Uuid>>,
    pub(super) quote_tokens: Vec<Option<String>>,
    pub(super) texts: [Vec<String>; 5],
    pub(super) label_first: Vec<i32>,
    pub(super) label_last: Vec<i32>,
    pub(super) label_keys: Vec<String>,
    pub(super) label_values: Vec<String>,
    pub(super) created_at: Vec<DateTime<Utc>>,
    pub(super) resolved_at: Vec<Option<DateTime<Utc>>>,
    pub(super) tenants: Vec<TenantId>,
    pub(super) accounts: Vec<AccountId>,
}

#[derive(Debug, Default)]
pub(super) struct HoldColumns {
    pub(super) ids: Vec<HoldId>,
    pub(super) statuses: Vec<&'static str>,
    pub(super) amounts: Vec<Decimal>,
    pub(super) captured: Vec<Decimal>,
    pub(super) expires_at: Vec<DateTime<Utc>>,
    pub(super) partial_captures: Vec<i32>,
    pub(super) late_settled: Vec<bool>,
    pub(super) resolved_at: Vec<Option<DateTime<Utc>>>,
}

#[derive(Debug, Default)]
pub(super) struct SettlementColumns {
    pub(super) ids: Vec<SettlementId>,
    pub(super) hold_ids: Vec<HoldId>,
    pub(super) amounts: [Vec<Decimal>; 6],
    pub(super) late: Vec<bool>,
    pub(super) partial: Vec<bool>,
    pub(super) refunded: Vec<Decimal>,
    pub(super) created_at: Vec<DateTime<Utc>>,
    pub(super) line_items: Vec<serde_json::Value>,
    pub(super) accounts: Vec<AccountId>,
    pub(super) tenants: Vec<TenantId>,
}

#[derive(Debug, Default)]
pub(super) struct RefundColumns {
    pub(super) ids: Vec<Uuid>,
    pub(super) settlement_ids: Vec<SettlementId>,
    pub(super) hold_ids: Vec<HoldId>,
    pub(super) amounts: Vec<Decimal>,
    pub(super) debt_reduced: Vec<Decimal>,
    pub(super) new_grant_ids: Vec<Option<GrantId>>,
    pub(super) reasons: Vec<String>,
    pub(super) created_at: Vec<DateTime<Utc>>,
    pub(super) accounts: Vec<AccountId>,
}

#[derive(Debug, Default)]
pub(super) struct JournalColumns {
    pub(super) ids: Vec<Uuid>,
    pub(super) ledgers: Vec<&'static str>,
    pub(super) amounts: Vec<Decimal>,
    pub(super) kinds: Vec<&'static str>,
    pub(super) grant_ids: Vec<Option<GrantId>>,
    pub(super) hold_ids: Vec<Option<HoldId>>,
    pub(super) settlement_ids: Vec<Option<SettlementId>>,
    pub(super) refund_ids: Vec<Option<Uuid>>,
    pub(super) transaction_ids: Vec<Uuid>,
    pub(super) tenants: Vec<TenantId>,
    pub(super) accounts: Vec<AccountId>,
}

/// Accounts whose debt changed.
#[derive(Debug, Default)]
pub(super) struct AccountColumns {
    pub(super) ids: Vec<AccountId>,
    pub(super) debts: Vec<Decimal>,
}
