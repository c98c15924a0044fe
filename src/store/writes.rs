//! The writes of one locked transaction: one statement per table whatever the number of rows
//! or accounts (arrays through `unnest`), so the write round trip has a fixed, small number of
//! statements.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::write_columns::{
    AccountColumns, GrantColumns, GrantShares, HoldColumns, JournalColumns, NewHoldColumns,
    RefundColumns, SettlementColumns,
};
use super::write_sql::{
    INSERT_HOLDS, INSERT_JOURNAL, INSERT_REFUNDS, UPDATE_ACCOUNTS, UPDATE_HOLDS,
    UPSERT_ALLOCATIONS, UPSERT_GRANTS, UPSERT_PARTS, UPSERT_SETTLEMENTS,
};
use crate::ids::{AccountId, HoldId, SettlementId, TenantId};
use crate::ledger::Changes;

/// Owned parameters of every write.
#[derive(Debug, Default)]
pub struct Writes {
    now: DateTime<Utc>,
    accounts: AccountColumns,
    grants: GrantColumns,
    new_holds: NewHoldColumns,
    holds: HoldColumns,
    allocations: GrantShares<HoldId>,
    settlements: SettlementColumns,
    parts: GrantShares<SettlementId>,
    refunds: RefundColumns,
    journal: JournalColumns,
}

impl Writes {
    /// No writes yet, at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Writes {
            now,
            ..Writes::default()
        }
    }

    /// Adds the parameters of `changes` on account `account_id`.
    pub fn push(&mut self, tenant_id: TenantId, account_id: AccountId, changes: &Changes) {
        amounts_check(changes);
        let writes = self;
        if let Some(account) = &changes.account {
            writes.accounts.ids.push(account_id);
            writes.accounts.debts.push(account.debt.decimal());
        }
        let grants = &mut writes.grants;
        for grant in &changes.grants {
            grants.tenants.push(tenant_id);
            grants.accounts.push(account_id);
            grants.ids.push(grant.grant_id);
            grants.sources.push(grant.source.as_str());
            grants.priorities.push(grant.priority);
            grants.amounts.push(grant.amount.decimal());
            grants.remaining.push(grant.remaining.decimal());
            grants.reserved.push(grant.reserved.decimal());
            grants.effective_at.push(grant.effective_at);
            grants.expires_at.push(grant.expires_at);
            grants.external_refs.push(grant.external_ref.clone());
            grants.created_at.push(grant.created_at);
        }
        let new = &mut writes.new_holds;
        for hold in &changes.new_holds {
            new.tenants.push(tenant_id);
            new.accounts.push(account_id);
            let meta = &hold.meta;
            new.ids.push(hold.hold_id);
            new.statuses.push(hold.status.as_str());
            new.amounts.push(hold.amount.decimal());
            new.captured.push(hold.captured.decimal());
            new.expires_at.push(hold.expires_at);
            new.partial_captures.push(hold.partial_captures);
            new.late_settled.push(hold.late_settled);
            new.authorize_keys.push(meta.authorize_key.clone());
            new.catalog_versions.push(meta.catalog_version);
            new.quote_ids.push(meta.quote_id);
            new.quote_tokens.push(meta.quote_token.clone());
            let texts = [
                &meta.task_type,
                &meta.tool,
                &meta.model,
                &meta.project,
                &meta.run_id,
            ];
            for (column, text) in new.texts.iter_mut().zip(texts) {
                column.push(text.clone());
            }
            // Labels are bounded per hold (32), so the positions fit in an int4.
            let first = new.label_keys.len() + 1;
            for (key, value) in &meta.labels {
                new.label_keys.push(key.clone());
                new.label_values.push(value.clone());
            }
            new.label_first
                .push(i32::try_from(first).unwrap_or(i32::MAX));
            new.label_last
                .push(i32::try_from(new.label_keys.len()).unwrap_or(i32::MAX));
            new.created_at.push(hold.created_at);
            new.resolved_at.push(hold.resolved_at);
        }
        let holds = &mut writes.holds;
        for hold in &changes.holds {
            holds.ids.push(hold.hold_id);
            holds.statuses.push(hold.status.as_str());
            holds.amounts.push(hold.amount.decimal());
            holds.captured.push(hold.captured.decimal());
            holds.expires_at.push(hold.expires_at);
            holds.partial_captures.push(hold.partial_captures);
            holds.late_settled.push(hold.late_settled);
            holds.resolved_at.push(hold.resolved_at);
        }
        for hold in changes.new_holds.iter().chain(&changes.holds) {
            for (position, allocation) in (0_i32..).zip(&hold.allocations) {
                writes.allocations.push(
                    account_id,
                    hold.hold_id,
                    allocation.grant_id,
                    position,
                    allocation.reserved.decimal(),
                    allocation.captured.decimal(),
                );
            }
        }
        let settlements = &mut writes.settlements;
        for settlement in &changes.settlements {
            settlements.accounts.push(account_id);
            settlements.tenants.push(tenant_id);
            settlements.ids.push(settlement.settlement_id);
            settlements.hold_ids.push(settlement.hold_id);
            let amounts = [
                settlement.total,
                settlement.from_hold,
                settlement.from_balance,
                settlement.debt,
                settlement.written_off,
                settlement.released,
            ];
            for (column, amount) in settlements.amounts.iter_mut().zip(amounts) {
                column.push(amount.decimal());
            }
            settlements.late.push(settlement.late);
            settlements.partial.push(settlement.partial);
            settlements.refunded.push(settlement.refunded.decimal());
            settlements.created_at.push(settlement.created_at);
            settlements
                .line_items
                .push(serde_json::to_value(&settlement.line_items).unwrap_or_default());
            for (position, part) in (0_i32..).zip(&settlement.parts) {
                writes.parts.push(
                    account_id,
                    settlement.settlement_id,
                    part.grant_id,
                    position,
                    part.amount.decimal(),
                    part.refunded.decimal(),
                );
            }
        }
        let refunds = &mut writes.refunds;
        for refund in &changes.refunds {
            refunds.accounts.push(account_id);
            refunds.ids.push(refund.refund_id);
            refunds.settlement_ids.push(refund.settlement_id);
            refunds.hold_ids.push(refund.hold_id);
            refunds.amounts.push(refund.amount.decimal());
            refunds.debt_reduced.push(refund.debt_reduced.decimal());
            refunds.new_grant_ids.push(refund.new_grant_id);
            refunds.reasons.push(refund.reason.clone());
            refunds.created_at.push(refund.created_at);
        }
        let journal = &mut writes.journal;
        // Each account's postings are a transaction of their own (summing to zero), even when
        // several accounts share a database transaction.
        let transaction_id = Uuid::now_v7();
        for posting in &changes.postings {
            journal.transaction_ids.push(transaction_id);
            journal.tenants.push(tenant_id);
            journal.accounts.push(account_id);
            journal.ids.push(Uuid::now_v7());
            journal.ledgers.push(posting.ledger.as_str());
            journal.amounts.push(posting.amount.decimal());
            journal.kinds.push(posting.kind.as_str());
            journal.grant_ids.push(posting.grant_id);
            journal.hold_ids.push(posting.hold_id);
            journal.settlement_ids.push(posting.settlement_id);
            journal.refund_ids.push(posting.refund_id);
        }
    }

    /// The statements to send, with their parameters, skipping tables with nothing to write.
    pub fn statements(&self) -> Vec<(&'static str, Vec<&(dyn ToSql + Sync)>)> {
        let mut statements: Vec<(&'static str, Vec<&(dyn ToSql + Sync)>)> = Vec::new();
        if !self.accounts.ids.is_empty() {
            statements.push((
                UPDATE_ACCOUNTS,
                vec![&self.accounts.ids, &self.accounts.debts, &self.now],
            ));
        }
        let grants = &self.grants;
        if !grants.ids.is_empty() {
            statements.push((
                UPSERT_GRANTS,
                vec![
                    &grants.ids,
                    &grants.sources,
                    &grants.priorities,
                    &grants.amounts,
                    &grants.remaining,
                    &grants.reserved,
                    &grants.effective_at,
                    &grants.expires_at,
                    &grants.external_refs,
                    &grants.created_at,
                    &grants.tenants,
                    &grants.accounts,
                ],
            ));
        }
        let new = &self.new_holds;
        if !new.ids.is_empty() {
            let [task_types, tools, models, projects, run_ids] = &new.texts;
            statements.push((
                INSERT_HOLDS,
                vec![
                    &new.ids,
                    &new.statuses,
                    &new.amounts,
                    &new.captured,
                    &new.expires_at,
                    &new.partial_captures,
                    &new.late_settled,
                    &new.authorize_keys,
                    &new.catalog_versions,
                    &new.quote_ids,
                    task_types,
                    tools,
                    models,
                    projects,
                    run_ids,
                    &new.label_first,
                    &new.created_at,
                    &new.resolved_at,
                    &new.tenants,
                    &new.accounts,
                    &new.label_keys,
                    &new.label_values,
                    &new.label_last,
                    &new.quote_tokens,
                ],
            ));
        }
        let holds = &self.holds;
        if !holds.ids.is_empty() {
            statements.push((
                UPDATE_HOLDS,
                vec![
                    &holds.ids,
                    &holds.statuses,
                    &holds.amounts,
                    &holds.captured,
                    &holds.expires_at,
                    &holds.partial_captures,
                    &holds.late_settled,
                    &holds.resolved_at,
                ],
            ));
        }
        if !self.allocations.owners.is_empty() {
            statements.push((UPSERT_ALLOCATIONS, self.allocations.params()));
        }
        let settlements = &self.settlements;
        if !settlements.ids.is_empty() {
            let [total, from_hold, from_balance, debt, written_off, released] =
                &settlements.amounts;
            statements.push((
                UPSERT_SETTLEMENTS,
                vec![
                    &settlements.ids,
                    &settlements.hold_ids,
                    total,
                    from_hold,
                    from_balance,
                    debt,
                    written_off,
                    released,
                    &settlements.late,
                    &settlements.partial,
                    &settlements.refunded,
                    &settlements.created_at,
                    &settlements.line_items,
                    &settlements.accounts,
                    &settlements.tenants,
                ],
            ));
        }
        if !self.parts.owners.is_empty() {
            statements.push((UPSERT_PARTS, self.parts.params()));
        }
        let refunds = &self.refunds;
        if !refunds.ids.is_empty() {
            statements.push((
                INSERT_REFUNDS,
                vec![
                    &refunds.ids,
                    &refunds.settlement_ids,
                    &refunds.hold_ids,
                    &refunds.amounts,
                    &refunds.debt_reduced,
                    &refunds.new_grant_ids,
                    &refunds.reasons,
                    &refunds.created_at,
                    &refunds.accounts,
                ],
            ));
        }
        let journal = &self.journal;
        if !journal.ids.is_empty() {
            statements.push((
                INSERT_JOURNAL,
                vec![
                    &journal.ids,
                    &journal.ledgers,
                    &journal.amounts,
                    &journal.kinds,
                    &journal.grant_ids,
                    &journal.hold_ids,
                    &journal.settlement_ids,
                    &journal.refund_ids,
                    &journal.transaction_ids,
                    &journal.tenants,
                    &journal.accounts,
                    &self.now,
                ],
            ));
        }
        statements
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
