//! The reference's Settle, Release and Refund: where charged credits come from and go back to.

use rust_decimal::Decimal;

use super::{Grant, MAX_PARTIAL_CAPTURES, REFUND_GRANT_SECONDS, declined, invalid};
use super::{Model, Policy, RefundAnswer, Refusal, SettleAnswer, Settlement, Source, Status, Take};

impl Model {
    /// Settle: from the hold's reservations, then further grants, then debt or write-off.
    pub fn settle(
        &mut self,
        hold: usize,
        total: Decimal,
        partial: bool,
    ) -> Result<SettleAnswer, Refusal> {
        let account = self.holds[hold].account;
        self.begin(account);
        let state = &self.holds[hold];
        let late = match state.status {
            Status::Active => false,
            Status::Expired if !state.late_settled && !partial => true,
            _ => return Err(declined("HOLD_NOT_ACTIVE")),
        };
        if partial && state.partial_captures >= MAX_PARTIAL_CAPTURES {
            return Err(declined("PARTIAL_CAPTURE_LIMIT"));
        }
        let authorized_left = (state.amount - state.captured).max(Decimal::ZERO);
        let mut takes: Vec<Take> = Vec::new();
        let mut left = total;
        let mut from_hold = Decimal::ZERO;
        for position in 0..self.holds[hold].allocations.len() {
            let allocation = &mut self.holds[hold].allocations[position];
            let take = allocation.reserved.min(left);
            if take <= Decimal::ZERO {
                continue;
            }
            allocation.reserved -= take;
            self.grants[allocation.grant].reserved -= take;
            left -= take;
            from_hold += take;
            takes.push(Take {
                grant: allocation.grant,
                amount: take,
                refunded: Decimal::ZERO,
            });
        }
        let mut from_balance = Decimal::ZERO;
        for (grant, take) in self.draw(account, left) {
            left -= take;
            from_balance += take;
            takes.push(Take {
                grant,
                amount: take,
                refunded: Decimal::ZERO,
            });
        }
        // Usage within what the hold authorized is owed under either policy; only usage above
        // it is written off under CAP_AT_HOLD.
        let uncovered_within_hold =
            (total.min(authorized_left) - from_hold - from_balance).max(Decimal::ZERO);
        let (debt, written_off) = match self.accounts[account].policy {
            Policy::Debt => (left, Decimal::ZERO),
            Policy::CapAtHold => (uncovered_within_hold, left - uncovered_within_hold),
        };
        self.accounts[account].debt += debt;
        let released = if partial {
            Decimal::ZERO
        } else {
            self.release_reservations(hold)
        };
        let state = &mut self.holds[hold];
        state.captured += from_hold + from_balance + debt;
        if partial {
            state.partial_captures += 1;
        } else if late {
            state.late_settled = true;
        } else {
            state.status = Status::Settled;
        }
        self.settlements.push(Settlement {
            account,
            takes,
            charged: from_hold + from_balance + debt,
            refunded: Decimal::ZERO,
        });
        self.finish(account);
        Ok(SettleAnswer {
            settlement: self.settlements.len() - 1,
            from_hold,
            from_balance,
            debt,
            written_off,
            released,
            late,
        })
    }

    /// Release: every reservation of an active hold goes back to its grant.
    pub fn release(&mut self, hold: usize) -> Result<Decimal, Refusal> {
        let account = self.holds[hold].account;
        self.begin(account);
        if self.holds[hold].status != Status::Active {
            return Err(declined("HOLD_NOT_ACTIVE"));
        }
        let released = self.release_reservations(hold);
        self.holds[hold].status = Status::Released;
        self.finish(account);
        Ok(released)
    }

    /// Refund: debt first, then back to the grants taken from, last taken first; credits of a
    /// grant expired since (or charged as debt since repaid) make a new REFUND grant.
    pub fn refund(
        &mut self,
        settlement: usize,
        amount: Option<Decimal>,
    ) -> Result<RefundAnswer, Refusal> {
        self.refund_with(settlement, amount)
    }

    /// MONEY.md: a settlement's takes of one grant are one part, at the place of the first
    /// take; the last part is refunded first.
    fn refund_with(
        &mut self,
        settlement: usize,
        amount: Option<Decimal>,
    ) -> Result<RefundAnswer, Refusal> {
        {
            let mut merged: Vec<Take> = Vec::new();
            for take in &self.settlements[settlement].takes {
                match merged.iter_mut().find(|kept| kept.grant == take.grant) {
                    Some(kept) => {
                        kept.amount += take.amount;
                        kept.refunded += take.refunded;
                    }
                    None => merged.push(take.clone()),
                }
            }
            self.settlements[settlement].takes = merged;
        }
        if amount.is_some_and(|amount| amount <= Decimal::ZERO) {
            return Err(invalid("INVALID_AMOUNT"));
        }
        let account = self.settlements[settlement].account;
        self.begin(account);
        let refundable = self.settlements[settlement].refundable();
        let amount = amount.unwrap_or(refundable);
        if amount > refundable || amount <= Decimal::ZERO {
            return Err(declined("REFUND_EXCEEDS_CAPTURE"));
        }
        let debt_reduced = amount.min(self.accounts[account].debt);
        self.accounts[account].debt -= debt_reduced;
        let mut left = amount - debt_reduced;
        let mut returned_to: Vec<(usize, Decimal)> = Vec::new();
        let mut to_new_grant = Decimal::ZERO;
        let now = self.now;
        for position in (0..self.settlements[settlement].takes.len()).rev() {
            let take = &mut self.settlements[settlement].takes[position];
            let back = (take.amount - take.refunded).min(left);
            if back <= Decimal::ZERO {
                continue;
            }
            take.refunded += back;
            left -= back;
            let grant = &mut self.grants[take.grant];
            if grant.expired(now) {
                to_new_grant += back;
            } else {
                grant.remaining += back;
                match returned_to
                    .iter_mut()
                    .find(|(index, _)| *index == take.grant)
                {
                    Some((_, sum)) => *sum += back,
                    None => returned_to.push((take.grant, back)),
                }
            }
        }
        to_new_grant += left;
        let new_grant = (to_new_grant > Decimal::ZERO).then(|| {
            self.grants.push(Grant {
                account,
                source: Source::Refund,
                priority: Source::Refund.default_priority(),
                expires_at: Some(now + REFUND_GRANT_SECONDS),
                amount: to_new_grant,
                remaining: to_new_grant,
                reserved: Decimal::ZERO,
                external_ref: None,
            });
            self.grants.len() - 1
        });
        self.settlements[settlement].refunded += amount;
        self.finish(account);
        Ok(RefundAnswer {
            amount,
            debt_reduced,
            returned_to,
            new_grant,
        })
    }
}
