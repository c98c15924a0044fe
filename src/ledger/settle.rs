//! Settlement and refund: the arithmetic of capturing a hold (from its reservations, then
//! further grants, then debt or write-off) and of giving charged credits back.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::book::AccountBook;
use super::decline::Decline;
use super::journal::{LedgerAccount, MovementKind, Refs};
use super::model::{
    GrantSource, GrantState, HoldStatus, RefundRecord, SettlePolicy, SettlementPart,
    SettlementRecord,
};
use crate::ids::{GrantId, HoldId, SettlementId};
use crate::money::Credits;

/// A settlement to apply.
#[derive(Debug, Clone)]
pub struct SettleRequest {
    /// New settlement id.
    pub settlement_id: SettlementId,
    /// The hold.
    pub hold_id: HoldId,
    /// Metered total.
    pub total: Credits,
    /// Keep the hold open.
    pub partial: bool,
    /// Most partial captures per hold.
    pub max_partial_captures: i32,
    /// The metered usage, priced (empty for an explicit amount).
    pub line_items: Vec<crate::money::LineItem>,
}

/// A refund to apply.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    /// New refund id.
    pub refund_id: Uuid,
    /// Credits to refund; `None` = all that is left.
    pub amount: Option<Credits>,
    /// Why.
    pub reason: String,
    /// Id for a REFUND grant, if one is needed.
    pub refund_grant_id: GrantId,
    /// Its expiry.
    pub refund_grant_expires_at: DateTime<Utc>,
}

impl AccountBook {
    /// Captures `total` for a hold: from its reservations first, then from further grants in
    /// consumption order, then as debt or written off per the account's policy. A final
    /// settlement releases what is left; a late one (hold expired) takes everything from the
    /// balance.
    pub fn settle(&mut self, request: &SettleRequest) -> Result<SettlementRecord, Decline> {
        self.begin();
        let hold_id = request.hold_id;
        let hold = self
            .holds
            .get(&hold_id)
            .unwrap_or_else(|| panic!("hold {hold_id} must be loaded"));
        // An expired hold takes one final late settle: a partial one would leave a lapsed hold
        // open to more captures with nothing reserved behind them.
        let late = match hold.status {
            HoldStatus::Active => false,
            HoldStatus::Expired if !hold.late_settled && !request.partial => true,
            status => return Err(Decline::HoldNotActive { status }),
        };
        // What the hold authorized and nothing captured yet: usage within it is always charged,
        // even when a late settle finds its reservation gone and the balance short.
        let authorized_left = if hold.amount > hold.captured {
            hold.amount - hold.captured
        } else {
            Credits::ZERO
        };
        if request.partial && hold.partial_captures >= request.max_partial_captures {
            return Err(Decline::PartialCaptureLimit {
                limit: request.max_partial_captures,
            });
        }
        let settlement_id = request.settlement_id;
        let refs = |grant_id| Refs {
            grant_id: Some(grant_id),
            hold_id: Some(hold_id),
            settlement_id: Some(settlement_id),
            refund_id: None,
        };
        let mut parts: Vec<SettlementPart> = Vec::new();
        let mut left = request.total;

        let reservations: Vec<(GrantId, Credits)> = hold
            .allocations
            .iter()
            .map(|allocation| (allocation.grant_id, allocation.reserved))
            .collect();
        let mut from_hold = Credits::ZERO;
        for (grant_id, reserved) in reservations {
            let take = reserved.min(left);
            if !take.is_positive() {
                continue;
            }
            left -= take;
            from_hold += take;
            let hold = self.hold_mut(hold_id);
            if let Some(allocation) = hold
                .allocations
                .iter_mut()
                .find(|allocation| allocation.grant_id == grant_id)
            {
                allocation.reserved -= take;
                allocation.captured += take;
            }
            self.grant_mut(grant_id).reserved -= take;
            self.post(
                MovementKind::Capture,
                LedgerAccount::Held,
                LedgerAccount::Revenue,
                take,
                refs(grant_id),
            );
            add_part(&mut parts, grant_id, take);
        }

        let mut from_balance = Credits::ZERO;
        let drawn = self.draw_spendable(
            left,
            MovementKind::Capture,
            LedgerAccount::Revenue,
            Some(hold_id),
            Some(settlement_id),
        );
        for (grant_id, take) in drawn {
            left -= take;
            from_balance += take;
            add_part(&mut parts, grant_id, take);
        }

        let uncovered = left;
        let covered = from_hold + from_balance;
        let within_hold = request.total.min(authorized_left);
        let uncovered_within_hold = if within_hold > covered {
            within_hold - covered
        } else {
            Credits::ZERO
        };
        let settlement_refs = Refs {
            hold_id: Some(hold_id),
            settlement_id: Some(settlement_id),
            ..Refs::default()
        };
        // Only usage above the hold follows the policy; what the hold authorized is owed.
        let (debt, written_off) = match self.account.settle_policy {
            SettlePolicy::Debt => (uncovered, Credits::ZERO),
            SettlePolicy::CapAtHold => (uncovered_within_hold, uncovered - uncovered_within_hold),
        };
        if debt.is_positive() {
            self.account.debt += debt;
            self.account_changed = true;
            self.post(
                MovementKind::Debt,
                LedgerAccount::Debt,
                LedgerAccount::Revenue,
                debt,
                settlement_refs,
            );
        }
        self.post(
            MovementKind::WriteOff,
            LedgerAccount::WrittenOff,
            LedgerAccount::Revenue,
            written_off,
            settlement_refs,
        );

        let released = if request.partial {
            Credits::ZERO
        } else {
            self.release_reservations(hold_id)
        };
        let now = self.now;
        let hold = self.hold_mut(hold_id);
        hold.captured += from_hold + from_balance + debt;
        if request.partial {
            hold.partial_captures += 1;
        } else if late {
            hold.late_settled = true;
        } else {
            hold.status = HoldStatus::Settled;
            hold.resolved_at = Some(now);
        }
        let record = SettlementRecord {
            settlement_id,
            hold_id,
            total: request.total,
            from_hold,
            from_balance,
            debt,
            written_off,
            released,
            late,
            partial: request.partial,
            refunded: Credits::ZERO,
            parts,
            line_items: request.line_items.clone(),
            created_at: now,
        };
        debug_assert_eq!(from_hold + from_balance + debt + written_off, request.total);
        self.settlements.push(record.clone());
        self.finish();
        Ok(record)
    }

    /// Refunds (part of) a settlement: the account's debt is reduced first, then credits go
    /// back to the grants they came from (one part per grant, at its first take; the last part
    /// first); credits whose grant has expired,
    /// or that were charged as debt since repaid, come back as a new REFUND grant.
    pub fn refund(
        &mut self,
        settlement: &mut SettlementRecord,
        request: &RefundRequest,
    ) -> Result<RefundRecord, Decline> {
        self.begin();
        let refundable = settlement.charged() - settlement.refunded;
        let amount = request.amount.unwrap_or(refundable);
        if amount > refundable || !amount.is_positive() {
            return Err(Decline::RefundExceedsCapture {
                requested: amount,
                refundable,
            });
        }
        let refs = |grant_id| Refs {
            grant_id,
            hold_id: Some(settlement.hold_id),
            settlement_id: Some(settlement.settlement_id),
            refund_id: Some(request.refund_id),
        };
        let debt_reduced = amount.min(self.account.debt);
        if debt_reduced.is_positive() {
            self.account.debt -= debt_reduced;
            self.account_changed = true;
            self.post(
                MovementKind::Refund,
                LedgerAccount::Revenue,
                LedgerAccount::Debt,
                debt_reduced,
                refs(None),
            );
        }
        let mut left = amount - debt_reduced;
        let mut returned_to = Vec::new();
        let mut to_new_grant = Credits::ZERO;
        for part in settlement.parts.iter_mut().rev() {
            let take = (part.amount - part.refunded).min(left);
            if !take.is_positive() {
                continue;
            }
            part.refunded += take;
            left -= take;
            let usable = self
                .grants
                .get(&part.grant_id)
                .is_some_and(|grant| !grant.expired_at(self.now));
            if usable {
                self.grant_mut(part.grant_id).remaining += take;
                self.post(
                    MovementKind::Refund,
                    LedgerAccount::Revenue,
                    LedgerAccount::Available,
                    take,
                    refs(Some(part.grant_id)),
                );
                returned_to.push((part.grant_id, take));
            } else {
                to_new_grant += take;
            }
        }
        to_new_grant += left;
        let new_grant_id = to_new_grant
            .is_positive()
            .then_some(request.refund_grant_id);
        if let Some(grant_id) = new_grant_id {
            self.grants.insert(
                grant_id,
                GrantState {
                    grant_id,
                    source: GrantSource::Refund,
                    priority: GrantSource::Refund.default_priority(),
                    effective_at: self.now,
                    expires_at: Some(request.refund_grant_expires_at),
                    created_at: self.now,
                    amount: to_new_grant,
                    remaining: to_new_grant,
                    reserved: Credits::ZERO,
                    external_ref: None,
                },
            );
            self.changed_grants.insert(grant_id);
            self.post(
                MovementKind::Refund,
                LedgerAccount::Revenue,
                LedgerAccount::Available,
                to_new_grant,
                refs(Some(grant_id)),
            );
        }
        settlement.refunded += amount;
        let record = RefundRecord {
            refund_id: request.refund_id,
            settlement_id: settlement.settlement_id,
            hold_id: settlement.hold_id,
            amount,
            debt_reduced,
            returned_to,
            new_grant_id,
            reason: request.reason.clone(),
            created_at: self.now,
        };
        self.settlements.push(settlement.clone());
        self.refunds.push(record.clone());
        self.finish();
        Ok(record)
    }
}

fn add_part(parts: &mut Vec<SettlementPart>, grant_id: GrantId, amount: Credits) {
    match parts.iter_mut().find(|part| part.grant_id == grant_id) {
        Some(part) => part.amount += amount,
        None => parts.push(SettlementPart {
            grant_id,
            amount,
            refunded: Credits::ZERO,
        }),
    }
}
