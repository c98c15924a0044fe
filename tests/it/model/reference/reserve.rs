//! The reference's Grant, Authorize and ExtendHold: credits coming in and being reserved.

use rust_decimal::Decimal;

use super::{Grant, GrantAnswer, Hold, Model, Refusal, Seconds, Source, Status, declined, invalid};

impl Model {
    /// Grant: a repeated `external_ref` returns the grant it made; new credits pay debt first.
    pub fn grant(
        &mut self,
        account: usize,
        source: Source,
        amount: Decimal,
        expires_at: Option<Seconds>,
        priority: Option<u32>,
        external_ref: Option<String>,
    ) -> Result<GrantAnswer, Refusal> {
        self.begin(account);
        let existing = external_ref.as_ref().and_then(|reference| {
            self.grants.iter().position(|grant| {
                grant.account == account && grant.external_ref.as_ref() == Some(reference)
            })
        });
        if let Some(grant) = existing {
            return Ok(GrantAnswer {
                grant,
                available: self.available(account),
                debt_repaid: Decimal::ZERO,
            });
        }
        if expires_at.is_some_and(|expires_at| expires_at <= self.now) {
            return Err(invalid("INVALID_ARGUMENT"));
        }
        self.grants.push(Grant {
            account,
            source,
            priority: priority.unwrap_or_else(|| source.default_priority()),
            expires_at,
            amount,
            remaining: amount,
            reserved: Decimal::ZERO,
            external_ref,
        });
        let debt_before = self.accounts[account].debt;
        self.finish(account);
        Ok(GrantAnswer {
            grant: self.grants.len() - 1,
            available: self.available(account),
            debt_repaid: debt_before - self.accounts[account].debt,
        })
    }

    /// Authorize: reserves `amount` in consumption order; returns the hold.
    pub fn authorize(
        &mut self,
        account: usize,
        amount: Decimal,
        ttl: Seconds,
    ) -> Result<usize, Refusal> {
        self.begin(account);
        self.check_may_reserve(account, amount)?;
        self.holds.push(Hold {
            account,
            status: Status::Active,
            amount,
            captured: Decimal::ZERO,
            expires_at: self.now + ttl,
            allocations: Vec::new(),
            partial_captures: 0,
            late_settled: false,
        });
        let hold = self.holds.len() - 1;
        self.reserve(hold, amount);
        self.finish(account);
        Ok(hold)
    }

    /// ExtendHold: raises a live hold to `amount` and/or sets its expiry to now + `ttl`.
    pub fn extend(
        &mut self,
        hold: usize,
        amount: Option<Decimal>,
        ttl: Option<Seconds>,
    ) -> Result<(), Refusal> {
        if amount.is_none() && ttl.is_none() {
            return Err(invalid("INVALID_ARGUMENT"));
        }
        let account = self.holds[hold].account;
        self.begin(account);
        if self.holds[hold].status != Status::Active {
            return Err(declined("HOLD_NOT_ACTIVE"));
        }
        if let Some(amount) = amount {
            let current = self.holds[hold].amount;
            if amount < current {
                return Err(declined("INVALID_AMOUNT"));
            }
            if amount > current {
                self.check_may_reserve(account, amount - current)?;
                self.reserve(hold, amount - current);
                self.holds[hold].amount = amount;
            }
        }
        if let Some(ttl) = ttl {
            self.holds[hold].expires_at = self.now + ttl;
        }
        self.finish(account);
        Ok(())
    }
}
