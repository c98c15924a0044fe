//! Refund: giving (part of) a settlement's charged credits back, to the account's debt first,
//! then to the grants they came from, or else to a new REFUND grant.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ids::GrantId;
use crate::ledger::book::AccountBook;
use crate::ledger::decline::Decline;
use crate::ledger::journal::{LedgerAccount, MovementKind, Refs};
use crate::ledger::model::{GrantSource, GrantState, RefundRecord, SettlementRecord};
use crate::money::Credits;

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
    /// Refunds (part of) a settlement: the account's debt is reduced first, then credits go
    /// back to the grants they came from (one part per grant, at its first take; the last part
    /// first); credits whose grant has expired, or that were charged as debt since repaid, come
    /// back as a new REFUND grant.
    pub fn refund(
        &mut self,
        settlement: &mut SettlementRecord,
        request: &RefundRequest,
    ) -> Result<RefundRecord, Decline> {
        self.begin();
        let amount = refund_amount(settlement, request)?;
        let debt_reduced = self.refund_to_debt(settlement, request, amount);
        let (returned_to, to_new_grant) =
            self.refund_to_parts(settlement, request, amount - debt_reduced);
        let new_grant_id = self.refund_to_new_grant(settlement, request, to_new_grant);
        settlement.refunded += amount;
        self.count_limit_refund(settlement.hold_id, amount, settlement.created_at);
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

    /// Reduces the account's debt by up to `amount`; returns by how much.
    fn refund_to_debt(
        &mut self,
        settlement: &SettlementRecord,
        request: &RefundRequest,
        amount: Credits,
    ) -> Credits {
        let debt_reduced = amount.min(self.account.debt);
        if debt_reduced.is_positive() {
            self.account.debt -= debt_reduced;
            self.account_changed = true;
            self.post(
                MovementKind::Refund,
                LedgerAccount::Revenue,
                LedgerAccount::Debt,
                debt_reduced,
                refund_refs(settlement, request, None),
            );
        }
        debt_reduced
    }

    /// Gives `amount` back to the settlement's parts, the last part first, each up to what it
    /// took and has not had back. Returns what went back to which grant, and what is left for a
    /// new grant: the share of parts whose grant has expired (or is not loaded), and what no
    /// part had left.
    fn refund_to_parts(
        &mut self,
        settlement: &mut SettlementRecord,
        request: &RefundRequest,
        amount: Credits,
    ) -> (Vec<(GrantId, Credits)>, Credits) {
        let refs = refund_refs(settlement, request, None);
        let mut left = amount;
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
                    Refs {
                        grant_id: Some(part.grant_id),
                        ..refs
                    },
                );
                returned_to.push((part.grant_id, take));
            } else {
                to_new_grant += take;
            }
        }
        to_new_grant += left;
        (returned_to, to_new_grant)
    }

    /// Makes a REFUND grant of `amount`, if it is positive; returns its id.
    fn refund_to_new_grant(
        &mut self,
        settlement: &SettlementRecord,
        request: &RefundRequest,
        amount: Credits,
    ) -> Option<GrantId> {
        if !amount.is_positive() {
            return None;
        }
        let grant_id = request.refund_grant_id;
        self.grants.insert(
            grant_id,
            GrantState {
                grant_id,
                source: GrantSource::Refund,
                priority: GrantSource::Refund.default_priority(),
                effective_at: self.now,
                expires_at: Some(request.refund_grant_expires_at),
                created_at: self.now,
                amount,
                remaining: amount,
                reserved: Credits::ZERO,
                external_ref: None,
                expiry_warned: false,
            },
        );
        self.changed_grants.insert(grant_id);
        self.post(
            MovementKind::Refund,
            LedgerAccount::Revenue,
            LedgerAccount::Available,
            amount,
            refund_refs(settlement, request, Some(grant_id)),
        );
        Some(grant_id)
    }
}

/// The credits to refund: those asked for (by default all still refundable), declined unless
/// positive and within what the settlement charged and has not refunded.
fn refund_amount(
    settlement: &SettlementRecord,
    request: &RefundRequest,
) -> Result<Credits, Decline> {
    let refundable = settlement.charged() - settlement.refunded;
    let amount = request.amount.unwrap_or(refundable);
    if amount > refundable || !amount.is_positive() {
        return Err(Decline::RefundExceedsCapture {
            requested: amount,
            refundable,
        });
    }
    Ok(amount)
}

/// The references of a refund's postings, on `grant_id` when it moves a grant's credits.
fn refund_refs(
    settlement: &SettlementRecord,
    request: &RefundRequest,
    grant_id: Option<GrantId>,
) -> Refs {
    Refs {
        grant_id,
        hold_id: Some(settlement.hold_id),
        settlement_id: Some(settlement.settlement_id),
        refund_id: Some(request.refund_id),
    }
}
