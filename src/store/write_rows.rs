//! The rows each change adds to the write statements' column tables.

use uuid::Uuid;

use super::write_columns::{
    AccountColumns, AllocationColumns, AllowanceColumns, AllowanceGrantColumns, EventColumns,
    GrantColumns, HoldColumns, JournalColumns, LimitColumns, NewHoldColumns, NewLimitColumns,
    PartColumns, RefundColumns, RemovedLimitColumns, SettlementColumns, UsageColumns,
};
use super::writes::HoldForm;
use crate::ids::{AccountId, SpendLimitId, TenantId};
use crate::ledger::{
    AccountState, AllowanceGrant, AllowanceState, EventDraft, GrantState, HoldState, Posting,
    RefundRecord, SettlementRecord, SpendLimitState, UsageDelta, UsageKey,
};
use crate::money::LineItem;

impl AccountColumns {
    /// The account's new debt.
    pub(super) fn push(&mut self, account_id: AccountId, account: &AccountState) {
        self.account_id.push(account_id);
        self.debt.push(account.debt.decimal());
    }
}

impl GrantColumns {
    /// A grant created or changed.
    pub(super) fn push(&mut self, tenant_id: TenantId, account_id: AccountId, grant: &GrantState) {
        self.tenant_id.push(tenant_id);
        self.account_id.push(account_id);
        self.grant_id.push(grant.grant_id);
        self.source.push(grant.source.as_str());
        self.priority.push(grant.priority);
        self.amount.push(grant.amount.decimal());
        self.remaining.push(grant.remaining.decimal());
        self.reserved.push(grant.reserved.decimal());
        self.effective_at.push(grant.effective_at);
        self.expires_at.push(grant.expires_at);
        self.external_ref.push(grant.external_ref.clone());
        self.created_at.push(grant.created_at);
        self.expiry_warned.push(grant.expiry_warned);
    }
}

impl NewHoldColumns {
    /// A new hold, with its labels and the claim of its Authorize key, in `form`.
    pub(super) fn push(
        &mut self,
        tenant_id: TenantId,
        account_id: AccountId,
        hold: &HoldState,
        form: HoldForm,
    ) {
        self.tenant_id.push(tenant_id);
        self.account_id.push(account_id);
        self.hold_id.push(hold.hold_id);
        self.status.push(hold.status.as_str());
        self.amount.push(hold.amount.decimal());
        self.captured.push(hold.captured.decimal());
        self.expires_at.push(hold.expires_at);
        self.partial_captures.push(hold.partial_captures);
        self.late_settled.push(hold.late_settled);
        let meta = &hold.meta;
        self.claimed_key.push(meta.authorize_key.clone());
        self.authorize_key
            .push((form == HoldForm::Compatible).then(|| meta.authorize_key.clone()));
        self.catalog_version.push(meta.catalog_version);
        self.quote_id.push(meta.quote_id);
        let (token, sealed) = form.quote_columns(account_id, meta);
        self.quote_token.push(token);
        self.quote_seal.push(sealed);
        self.task_type.push(meta.task_type.clone());
        self.tool.push(meta.tool.clone());
        self.model.push(meta.model.clone());
        self.project.push(meta.project.clone());
        self.run_id.push(meta.run_id.clone());
        self.push_labels(&meta.labels);
        let scope = meta.spend_scope.as_ref();
        self.spend_scope_kind
            .push(scope.map(|scope| scope.kind.as_str()));
        self.spend_scope_id
            .push(scope.map(|scope| scope.id.clone()));
        self.created_at.push(hold.created_at);
        self.resolved_at.push(hold.resolved_at);
    }

    /// A hold's labels, appended to the shared arrays, and its slice of them.
    fn push_labels(&mut self, labels: &[(String, String)]) {
        // Labels are bounded per hold (32), so the positions fit in an int4.
        let first = self.label_keys.len() + 1;
        for (key, value) in labels {
            self.label_keys.push(key.clone());
            self.label_values.push(value.clone());
        }
        self.label_first
            .push(i32::try_from(first).unwrap_or(i32::MAX));
        self.label_last
            .push(i32::try_from(self.label_keys.len()).unwrap_or(i32::MAX));
    }
}

impl HoldColumns {
    /// An existing hold's new state.
    pub(super) fn push(&mut self, hold: &HoldState) {
        self.hold_id.push(hold.hold_id);
        self.status.push(hold.status.as_str());
        self.amount.push(hold.amount.decimal());
        self.captured.push(hold.captured.decimal());
        self.expires_at.push(hold.expires_at);
        self.partial_captures.push(hold.partial_captures);
        self.late_settled.push(hold.late_settled);
        self.resolved_at.push(hold.resolved_at);
    }
}

impl AllocationColumns {
    /// A hold's allocations at `positions`, in position order.
    pub(super) fn push(
        &mut self,
        account_id: AccountId,
        hold: &HoldState,
        positions: impl std::ops::RangeBounds<usize>,
    ) {
        let allocations = (0_i32..).zip(&hold.allocations);
        for (position, allocation) in allocations.filter(|(position, _)| {
            usize::try_from(*position).is_ok_and(|position| positions.contains(&position))
        }) {
            self.account_id.push(account_id);
            self.hold_id.push(hold.hold_id);
            self.grant_id.push(allocation.grant_id);
            self.position.push(position);
            self.reserved.push(allocation.reserved.decimal());
            self.captured.push(allocation.captured.decimal());
        }
    }
}

impl SettlementColumns {
    /// A settlement created or refunded from (its parts go to [`PartColumns`]).
    pub(super) fn push(
        &mut self,
        tenant_id: TenantId,
        account_id: AccountId,
        settlement: &SettlementRecord,
    ) {
        self.account_id.push(account_id);
        self.tenant_id.push(tenant_id);
        self.settlement_id.push(settlement.settlement_id);
        self.hold_id.push(settlement.hold_id);
        self.total.push(settlement.total.decimal());
        self.from_hold.push(settlement.from_hold.decimal());
        self.from_balance.push(settlement.from_balance.decimal());
        self.debt.push(settlement.debt.decimal());
        self.written_off.push(settlement.written_off.decimal());
        self.released.push(settlement.released.decimal());
        self.late.push(settlement.late);
        self.partial.push(settlement.partial);
        self.refunded.push(settlement.refunded.decimal());
        self.created_at.push(settlement.created_at);
        self.line_items
            .push(stored_line_items(&settlement.line_items));
    }
}

/// A settlement's line items as stored: each an array of its fields in declaration order (what
/// `LineItem`'s derived deserializer reads, as it reads the objects stored before), so the
/// field names are not repeated in every row.
fn stored_line_items(items: &[LineItem]) -> serde_json::Value {
    let string = |text: String| serde_json::Value::String(text);
    serde_json::Value::Array(
        items
            .iter()
            .map(|item| {
                serde_json::Value::Array(vec![
                    string(item.kind.clone()),
                    string(item.description.clone()),
                    string(item.quantity.to_string()),
                    string(item.unit.clone()),
                    string(item.rate.to_string()),
                    string(item.amount.to_string()),
                ])
            })
            .collect(),
    )
}

impl PartColumns {
    /// A settlement's parts, in position order.
    pub(super) fn push(&mut self, account_id: AccountId, settlement: &SettlementRecord) {
        for (position, part) in (0_i32..).zip(&settlement.parts) {
            self.account_id.push(account_id);
            self.settlement_id.push(settlement.settlement_id);
            self.grant_id.push(part.grant_id);
            self.position.push(position);
            self.amount.push(part.amount.decimal());
            self.refunded.push(part.refunded.decimal());
        }
    }
}

impl RefundColumns {
    /// A refund created.
    pub(super) fn push(&mut self, account_id: AccountId, refund: &RefundRecord) {
        self.account_id.push(account_id);
        self.refund_id.push(refund.refund_id);
        self.settlement_id.push(refund.settlement_id);
        self.hold_id.push(refund.hold_id);
        self.amount.push(refund.amount.decimal());
        self.debt_reduced.push(refund.debt_reduced.decimal());
        self.new_grant_id.push(refund.new_grant_id);
        self.reason.push(refund.reason.clone());
        self.created_at.push(refund.created_at);
    }
}

impl AllowanceColumns {
    /// An allowance set, or that granted a period.
    pub(super) fn push(
        &mut self,
        tenant_id: TenantId,
        account_id: AccountId,
        allowance: &AllowanceState,
    ) {
        self.tenant_id.push(tenant_id);
        self.account_id.push(account_id);
        self.allowance_id.push(allowance.allowance_id);
        self.name.push(allowance.name.clone());
        self.source.push(allowance.source.as_str());
        self.amount.push(allowance.amount.decimal());
        self.period.push(allowance.recurrence.every.as_str());
        self.anchor_date.push(allowance.recurrence.anchor);
        self.time_zone.push(allowance.recurrence.zone.name());
        self.enabled.push(allowance.enabled);
        self.effective_from.push(allowance.effective_from);
        self.granted_period.push(allowance.granted_period);
        self.granted_until.push(allowance.granted_until);
        self.created_at.push(allowance.created_at);
    }
}

impl AllowanceGrantColumns {
    /// A period an allowance granted.
    pub(super) fn push(&mut self, account_id: AccountId, granted: &AllowanceGrant) {
        self.account_id.push(account_id);
        self.allowance_id.push(granted.allowance_id);
        self.period_start.push(granted.period_start);
        self.grant_id.push(granted.grant_id);
    }
}

impl NewLimitColumns {
    /// A limit created.
    pub(super) fn push(
        &mut self,
        tenant_id: TenantId,
        account_id: AccountId,
        limit: &SpendLimitState,
    ) {
        self.tenant_id.push(tenant_id);
        self.account_id.push(account_id);
        self.spend_limit_id.push(limit.spend_limit_id);
        self.scope_kind.push(limit.scope.kind.as_str());
        self.scope_id.push(limit.scope.id.clone());
        self.period.push(limit.period.as_str());
        self.limit_amount.push(limit.limit.decimal());
        self.spent.push(limit.spent.decimal());
        self.reserved.push(limit.reserved.decimal());
        self.period_start.push(limit.period_start);
        self.counted_from.push(limit.counted_from);
    }
}

impl LimitColumns {
    /// An existing limit's new figures.
    pub(super) fn push(&mut self, limit: &SpendLimitState) {
        self.spend_limit_id.push(limit.spend_limit_id);
        self.limit_amount.push(limit.limit.decimal());
        self.spent.push(limit.spent.decimal());
        self.reserved.push(limit.reserved.decimal());
        self.period_start.push(limit.period_start);
    }
}

impl RemovedLimitColumns {
    /// A limit removed.
    pub(super) fn push(&mut self, account_id: AccountId, spend_limit_id: SpendLimitId) {
        self.account_id.push(account_id);
        self.spend_limit_id.push(spend_limit_id);
    }
}

impl JournalColumns {
    /// An account's postings: a transaction of their own (summing to zero), even when several
    /// accounts share a database transaction.
    pub(super) fn push(
        &mut self,
        tenant_id: TenantId,
        account_id: AccountId,
        postings: &[Posting],
    ) {
        let transaction_id = Uuid::now_v7();
        for posting in postings {
            self.transaction_id.push(transaction_id);
            self.tenant_id.push(tenant_id);
            self.account_id.push(account_id);
            self.entry_id.push(Uuid::now_v7());
            self.ledger_account.push(posting.ledger.as_str());
            self.amount.push(posting.amount.decimal());
            self.kind.push(posting.kind.as_str());
            self.grant_id.push(posting.grant_id);
            self.hold_id.push(posting.hold_id);
            self.settlement_id.push(posting.settlement_id);
            self.refund_id.push(posting.refund_id);
        }
    }
}

impl UsageColumns {
    /// What `delta` adds to the account's runs of `key`, merged into the row already added for
    /// the same account and key (an upsert may not touch one row twice).
    pub(super) fn push(&mut self, account_id: AccountId, key: &UsageKey, delta: &UsageDelta) {
        let same = (0..self.account_id.len()).find(|&row| {
            self.account_id[row] == account_id
                && self.day[row] == key.day
                && self.task_type[row] == key.task_type
                && self.model[row] == key.model
        });
        match same {
            Some(row) => {
                self.runs[row] += delta.runs;
                self.captured[row] += delta.captured.decimal();
                self.refunded[row] += delta.refunded.decimal();
                self.last_run_at[row] = self.last_run_at[row].max(delta.last_run_at);
            }
            None => {
                self.account_id.push(account_id);
                self.day.push(key.day);
                self.task_type.push(key.task_type.clone());
                self.model.push(key.model.clone());
                self.runs.push(delta.runs);
                self.captured.push(delta.captured.decimal());
                self.refunded.push(delta.refunded.decimal());
                self.last_run_at.push(delta.last_run_at);
            }
        }
    }
}

impl EventColumns {
    /// An account's events, numbered after those already pushed.
    pub(super) fn push(
        &mut self,
        tenant_id: TenantId,
        account_id: AccountId,
        events: &[EventDraft],
    ) {
        for event in events {
            // A transaction holds a bounded number of operations, each a few events.
            let seq = i32::try_from(self.seq.len()).unwrap_or(i32::MAX);
            self.seq.push(seq);
            self.event_id.push(Uuid::now_v7());
            self.tenant_id.push(tenant_id);
            self.account_id.push(account_id);
            self.event_type.push(event.event_type.as_str());
            self.attributes.push(serde_json::Value::Object(
                event
                    .attributes
                    .iter()
                    .map(|(name, value)| {
                        ((*name).to_owned(), serde_json::Value::String(value.clone()))
                    })
                    .collect(),
            ));
        }
    }
}

#[cfg(test)]
mod tests;
