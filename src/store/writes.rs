//! The writes of one locked transaction: one statement per table whatever the number of rows
//! or accounts (arrays through `unnest`), so the write round trip has a fixed, small number of
//! statements.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;

use super::usage::months::month_floor;
use super::write_columns::{
    AccountColumns, AllocationColumns, AllowanceColumns, AllowanceGrantColumns, EventColumns,
    GrantColumns, HoldColumns, JournalColumns, LimitColumns, NewHoldColumns, NewLimitColumns,
    PartColumns, RefundColumns, RemovedLimitColumns, SettlementColumns, UsageColumns,
};
use super::write_sql::{
    DELETE_SPEND_LIMITS, INSERT_ALLOCATIONS, INSERT_ALLOWANCE_GRANTS, INSERT_EVENTS, INSERT_GRANTS,
    INSERT_HOLDS, INSERT_JOURNAL, INSERT_PARTS, INSERT_REFUNDS, INSERT_SETTLEMENTS,
    INSERT_SPEND_LIMITS, UPDATE_ACCOUNTS, UPDATE_HOLDS, UPDATE_SPEND_LIMITS, UPSERT_ALLOCATIONS,
    UPSERT_ALLOWANCES, UPSERT_GRANTS, UPSERT_PARTS, UPSERT_SETTLEMENTS, UPSERT_USAGE,
    UPSERT_USAGE_MONTHS,
};
use super::write_table::WriteRows;
use crate::ids::{AccountId, TenantId};
use crate::ledger::{Changes, HoldMeta};
use crate::pricing::quote_token::{QuoteOnHold, seal};

/// A statement to send, with its parameters.
pub type Statement<'a> = (&'static str, Vec<&'a (dyn ToSql + Sync)>);

/// How a new hold's row is written: for the servers before migrations 0026 and 0028, or
/// lean once no such server can be connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HoldForm {
    /// As servers before 0026 and 0028 read it: its Authorize key in its row besides its claim
    /// in `authorize_keys` (that key also refuses a key used on another account), and its quote
    /// token whole.
    #[default]
    Compatible,
    /// Its key only claimed, its quote token sealed (`quote_seal`,
    /// [`crate::pricing::quote_token::seal`]): every migration has run, so no such server is
    /// connected (contract migrations wait for them to go, and they refuse a newer schema).
    Lean,
}

impl HoldForm {
    /// The form when the schema is complete (every migration this server knows has run) or
    /// not.
    pub fn when_complete(schema_complete: bool) -> Self {
        if schema_complete {
            HoldForm::Lean
        } else {
            HoldForm::Compatible
        }
    }

    /// A new hold's quote in this form: its token whole, or its seal (a token that would not
    /// come back exactly from its seal stays whole).
    pub(super) fn quote_columns(
        self,
        account_id: AccountId,
        meta: &HoldMeta,
    ) -> (Option<String>, Option<Vec<u8>>) {
        let sealed = match (self, &meta.quote_token, meta.quote_id) {
            (HoldForm::Lean, Some(token), Some(quote_id)) => seal(
                token,
                &QuoteOnHold {
                    quote_id,
                    account_id,
                    catalog_version: meta.catalog_version,
                    tool: &meta.tool,
                    model: &meta.model,
                },
            ),
            _ => None,
        };
        match sealed {
            Some(sealed) => (None, Some(sealed)),
            None => (meta.quote_token.clone(), None),
        }
    }
}

/// Owned parameters of every write.
#[derive(Debug, Default)]
pub struct Writes {
    now: DateTime<Utc>,
    hold_form: HoldForm,
    accounts: AccountColumns,
    new_grants: GrantColumns,
    grants: GrantColumns,
    new_holds: NewHoldColumns,
    holds: HoldColumns,
    new_allocations: AllocationColumns,
    allocations: AllocationColumns,
    new_settlements: SettlementColumns,
    settlements: SettlementColumns,
    new_parts: PartColumns,
    parts: PartColumns,
    refunds: RefundColumns,
    allowances: AllowanceColumns,
    allowance_grants: AllowanceGrantColumns,
    new_limits: NewLimitColumns,
    limits: LimitColumns,
    removed_limits: RemovedLimitColumns,
    usage: UsageColumns,
    journal: JournalColumns,
    events: EventColumns,
}

impl Writes {
    /// No writes yet, at `now`, writing new holds in `hold_form`.
    pub fn new(now: DateTime<Utc>, hold_form: HoldForm) -> Self {
        Writes {
            now,
            hold_form,
            ..Writes::default()
        }
    }

    /// Adds the rows of `changes` on account `account_id`.
    pub fn push(&mut self, tenant_id: TenantId, account_id: AccountId, changes: &Changes) {
        amounts_check(changes);
        if let Some(account) = &changes.account {
            self.accounts.push(account_id, account);
        }
        for grant in &changes.grants {
            let grants = if changes.created_grants.contains(&grant.grant_id) {
                &mut self.new_grants
            } else {
                &mut self.grants
            };
            grants.push(tenant_id, account_id, grant);
        }
        for hold in &changes.new_holds {
            self.new_holds
                .push(tenant_id, account_id, hold, self.hold_form);
            self.new_allocations.push(account_id, hold, 0..);
        }
        for hold in &changes.holds {
            self.holds.push(hold);
            let stored = changes
                .stored_allocations
                .get(&hold.hold_id)
                .copied()
                .unwrap_or_default();
            self.allocations.push(account_id, hold, ..stored);
            self.new_allocations.push(account_id, hold, stored..);
        }
        for settlement in &changes.settlements {
            if changes
                .created_settlements
                .contains(&settlement.settlement_id)
            {
                self.new_settlements.push(tenant_id, account_id, settlement);
                self.new_parts.push(account_id, settlement);
            } else {
                self.settlements.push(tenant_id, account_id, settlement);
                self.parts.push(account_id, settlement);
            }
        }
        for refund in &changes.refunds {
            self.refunds.push(account_id, refund);
        }
        for allowance in &changes.allowances {
            self.allowances.push(tenant_id, account_id, allowance);
        }
        for granted in &changes.allowance_grants {
            self.allowance_grants.push(account_id, granted);
        }
        for limit in &changes.new_spend_limits {
            self.new_limits.push(tenant_id, account_id, limit);
        }
        for limit in &changes.spend_limits {
            self.limits.push(limit);
        }
        for spend_limit_id in &changes.removed_spend_limits {
            self.removed_limits.push(account_id, *spend_limit_id);
        }
        for (key, delta) in &changes.usage {
            self.usage.push(account_id, key, delta);
        }
        self.journal.push(tenant_id, account_id, &changes.postings);
        self.events.push(tenant_id, account_id, &changes.events);
    }

    /// The statements to send, with their parameters, skipping tables with nothing to write.
    pub fn statements(&self) -> Vec<Statement<'_>> {
        let tables: [(&'static str, &dyn WriteRows); 21] = [
            (UPDATE_ACCOUNTS.as_str(), &self.accounts),
            (INSERT_GRANTS.as_str(), &self.new_grants),
            (UPSERT_GRANTS.as_str(), &self.grants),
            (INSERT_HOLDS.as_str(), &self.new_holds),
            (UPDATE_HOLDS.as_str(), &self.holds),
            (INSERT_ALLOCATIONS.as_str(), &self.new_allocations),
            (UPSERT_ALLOCATIONS.as_str(), &self.allocations),
            (INSERT_SETTLEMENTS.as_str(), &self.new_settlements),
            (UPSERT_SETTLEMENTS.as_str(), &self.settlements),
            (INSERT_PARTS.as_str(), &self.new_parts),
            (UPSERT_PARTS.as_str(), &self.parts),
            (INSERT_REFUNDS.as_str(), &self.refunds),
            (UPSERT_ALLOWANCES.as_str(), &self.allowances),
            (INSERT_ALLOWANCE_GRANTS.as_str(), &self.allowance_grants),
            // Removed before upserted: a limit removed and set again in one transaction is a
            // new row with the old one's scope and period.
            (DELETE_SPEND_LIMITS.as_str(), &self.removed_limits),
            (INSERT_SPEND_LIMITS.as_str(), &self.new_limits),
            (UPDATE_SPEND_LIMITS.as_str(), &self.limits),
            (UPSERT_USAGE.as_str(), &self.usage),
            (INSERT_JOURNAL.as_str(), &self.journal),
            (INSERT_EVENTS.as_str(), &self.events),
            (UPSERT_USAGE_MONTHS.as_str(), &self.usage),
        ];
        let past_months = self.adds_to_past_months();
        tables
            .into_iter()
            .filter(|(_, rows)| !rows.is_empty())
            .filter(|(sql, _)| past_months || *sql != UPSERT_USAGE_MONTHS.as_str())
            .map(|(sql, rows)| (sql, rows.params(&self.now)))
            .collect()
    }

    /// Whether some usage is added to a day before the current month, which may be folded.
    fn adds_to_past_months(&self) -> bool {
        let month_start = month_floor(self.now.date_naive());
        self.usage.day.iter().any(|day| *day < month_start)
    }
}

fn amounts_check(changes: &Changes) {
    let total: Decimal = changes
        .postings
        .iter()
        .map(|posting| posting.amount.decimal())
        .sum();
    assert!(
        total.is_zero(),
        "a transaction's journal entries must sum to zero"
    );
}
