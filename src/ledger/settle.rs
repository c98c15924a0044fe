//! Settlement and refund: the arithmetic of capturing a hold (from its reservations, then
//! further grants, then debt or write-off) and of giving charged credits back.

mod refund;

pub use refund::RefundRequest;

use super::book::AccountBook;
use super::decline::Decline;
use super::journal::{LedgerAccount, MovementKind, Refs};
use super::model::{HoldState, HoldStatus, SettlePolicy, SettlementPart, SettlementRecord};
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

/// What a hold allows a settlement, once [`AccountBook::check_settle`] has accepted it.
struct Settleable {
    /// The hold has expired: this is its one final, late settlement.
    late: bool,
    /// What the hold authorized and nothing captured yet.
    authorized_left: Credits,
}

/// How much of a settlement's total the grants covered so far, and from which.
struct Coverage {
    /// Not covered yet.
    left: Credits,
    /// Taken from the hold's reservations.
    from_hold: Credits,
    /// Taken from further spendable grants.
    from_balance: Credits,
    /// Grants taken from, in order of first take.
    parts: Vec<SettlementPart>,
}

impl AccountBook {
    /// Captures `total` for a hold: from its reservations first, then from further grants in
    /// consumption order, then as debt or written off per the account's policy. A final
    /// settlement releases what is left; a late one (hold expired) takes everything from the
    /// balance.
    pub fn settle(&mut self, request: &SettleRequest) -> Result<SettlementRecord, Decline> {
        self.begin();
        let Settleable {
            late,
            authorized_left,
        } = self.check_settle(request)?;
        let mut coverage = Coverage {
            left: request.total,
            from_hold: Credits::ZERO,
            from_balance: Credits::ZERO,
            parts: Vec::new(),
        };
        self.capture_reservations(request, &mut coverage);
        self.capture_from_balance(request, &mut coverage);
        let (debt, written_off) = owed_and_written_off(
            self.account.settle_policy,
            request.total,
            authorized_left,
            &coverage,
        );
        self.charge_uncovered(request, debt, written_off);
        let released = if request.partial {
            Credits::ZERO
        } else {
            self.release_reservations(request.hold_id)
        };
        self.close_hold(
            request,
            late,
            coverage.from_hold + coverage.from_balance + debt,
        );
        let record = SettlementRecord {
            settlement_id: request.settlement_id,
            hold_id: request.hold_id,
            total: request.total,
            from_hold: coverage.from_hold,
            from_balance: coverage.from_balance,
            debt,
            written_off,
            released,
            late,
            partial: request.partial,
            refunded: Credits::ZERO,
            parts: coverage.parts,
            line_items: request.line_items.clone(),
            created_at: self.now,
        };
        assert_eq!(
            record.from_hold + record.from_balance + record.debt + record.written_off,
            record.total,
            "settlement invariant: from_hold + from_balance + debt + written_off must equal total"
        );
        self.created_settlements.insert(record.settlement_id);
        self.settlements.push(record.clone());
        self.finish();
        Ok(record)
    }

    /// The loaded hold a settlement is for; the caller loads it before settling.
    fn settled_hold(&self, hold_id: HoldId) -> &HoldState {
        self.holds
            .get(&hold_id)
            .unwrap_or_else(|| panic!("hold {hold_id} must be loaded"))
    }

    /// Declines a settlement the hold no longer takes: one that is not active (bar the one final
    /// late settle of an expired hold), then a partial capture over the limit.
    fn check_settle(&self, request: &SettleRequest) -> Result<Settleable, Decline> {
        let hold = self.settled_hold(request.hold_id);
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
        Ok(Settleable {
            late,
            authorized_left,
        })
    }

    /// Captures from the hold's own reservations, in allocation order, as much as is left.
    fn capture_reservations(&mut self, request: &SettleRequest, coverage: &mut Coverage) {
        let hold_id = request.hold_id;
        let reservations: Vec<(GrantId, Credits)> = self
            .settled_hold(hold_id)
            .allocations
            .iter()
            .map(|allocation| (allocation.grant_id, allocation.reserved))
            .collect();
        for (grant_id, reserved) in reservations {
            let take = reserved.min(coverage.left);
            if !take.is_positive() {
                continue;
            }
            coverage.left -= take;
            coverage.from_hold += take;
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
                settlement_refs(request, Some(grant_id)),
            );
            add_part(&mut coverage.parts, grant_id, take);
        }
    }

    /// Captures what the reservations did not cover from further spendable grants, in
    /// consumption order.
    fn capture_from_balance(&mut self, request: &SettleRequest, coverage: &mut Coverage) {
        let drawn = self.draw_spendable(
            coverage.left,
            MovementKind::Capture,
            LedgerAccount::Revenue,
            Some(request.hold_id),
            Some(request.settlement_id),
        );
        for (grant_id, take) in drawn {
            coverage.left -= take;
            coverage.from_balance += take;
            add_part(&mut coverage.parts, grant_id, take);
        }
    }

    /// Books what no grant covered: the debt onto the account, then the write-off.
    fn charge_uncovered(&mut self, request: &SettleRequest, debt: Credits, written_off: Credits) {
        if debt.is_positive() {
            self.account.debt += debt;
            self.account_changed = true;
            self.post(
                MovementKind::Debt,
                LedgerAccount::Debt,
                LedgerAccount::Revenue,
                debt,
                settlement_refs(request, None),
            );
        }
        self.post(
            MovementKind::WriteOff,
            LedgerAccount::WrittenOff,
            LedgerAccount::Revenue,
            written_off,
            settlement_refs(request, None),
        );
    }

    /// Adds `captured` to the hold and moves it on: a partial capture counts one more, a late
    /// settle marks the expired hold late-settled, a final one settles it.
    fn close_hold(&mut self, request: &SettleRequest, late: bool, captured: Credits) {
        let now = self.now;
        let hold = self.hold_mut(request.hold_id);
        hold.captured += captured;
        if request.partial {
            hold.partial_captures += 1;
        } else if late {
            hold.late_settled = true;
        } else {
            hold.status = HoldStatus::Settled;
            hold.resolved_at = Some(now);
        }
    }
}

/// Splits what no grant covered into (debt, written off). Usage within what the hold
/// authorized is always owed; only usage above it follows the account's policy.
fn owed_and_written_off(
    policy: SettlePolicy,
    total: Credits,
    authorized_left: Credits,
    coverage: &Coverage,
) -> (Credits, Credits) {
    let uncovered = coverage.left;
    let covered = coverage.from_hold + coverage.from_balance;
    let within_hold = total.min(authorized_left);
    let uncovered_within_hold = if within_hold > covered {
        within_hold - covered
    } else {
        Credits::ZERO
    };
    match policy {
        SettlePolicy::Debt => (uncovered, Credits::ZERO),
        SettlePolicy::CapAtHold => (uncovered_within_hold, uncovered - uncovered_within_hold),
    }
}

/// The references of a settlement's postings, on `grant_id` when it moves a grant's credits.
fn settlement_refs(request: &SettleRequest, grant_id: Option<GrantId>) -> Refs {
    Refs {
        grant_id,
        hold_id: Some(request.hold_id),
        settlement_id: Some(request.settlement_id),
        refund_id: None,
    }
}

/// Adds a take to the part of its grant, or a new part at the end.
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
