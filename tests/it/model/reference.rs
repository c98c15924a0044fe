//! The reference: a second, deliberately plain implementation of docs/MONEY.md over in-memory
//! state (no journal, linear scans), that the server's answers are compared with.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

/// Time in seconds since the case began, on the model's clock.
pub type Seconds = i64;

/// Server default of a hold's time to live (`ttl_seconds = 0`).
pub const DEFAULT_TTL_SECONDS: Seconds = 900;
/// Server default of `--max-partial-captures`.
const MAX_PARTIAL_CAPTURES: u32 = 100;
/// Server default of `--refund-grant-days`, in seconds.
const REFUND_GRANT_SECONDS: Seconds = 30 * 86_400;
/// GetBalance's `expiring_soon` window when the request leaves it 0.
const EXPIRING_WINDOW_SECONDS: Seconds = 7 * 86_400;

/// Where a grant's credits come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    FreeDaily,
    Subscription,
    Purchase,
    Topup,
    Promo,
    Refund,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 6] = [
        Source::FreeDaily,
        Source::Subscription,
        Source::Purchase,
        Source::Topup,
        Source::Promo,
        Source::Refund,
    ];

    /// DESIGN §2: FREE_DAILY 10, SUBSCRIPTION 20, PROMO 30, PURCHASE/REFUND 40, TOPUP 50.
    fn default_priority(self) -> u32 {
        match self {
            Source::FreeDaily => 10,
            Source::Subscription => 20,
            Source::Promo => 30,
            Source::Purchase | Source::Refund => 40,
            Source::Topup => 50,
        }
    }
}

/// Above-hold policy of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Debt,
    CapAtHold,
}

/// Life of a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Settled,
    Released,
    Expired,
}

/// A state-dependent refusal (stored with the key) or an input error (not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub stored: bool,
}

const fn declined(reason: &'static str) -> Refusal {
    Refusal {
        reason,
        stored: true,
    }
}

const fn invalid(reason: &'static str) -> Refusal {
    Refusal {
        reason,
        stored: false,
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub policy: Policy,
    pub debt: Decimal,
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub account: usize,
    pub source: Source,
    pub priority: u32,
    pub expires_at: Option<Seconds>,
    pub amount: Decimal,
    pub remaining: Decimal,
    pub reserved: Decimal,
    pub external_ref: Option<String>,
}

impl Grant {
    fn expired(&self, now: Seconds) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }
}

#[derive(Debug, Clone)]
pub struct Allocation {
    pub grant: usize,
    pub reserved: Decimal,
}

#[derive(Debug, Clone)]
pub struct Hold {
    pub account: usize,
    pub status: Status,
    pub amount: Decimal,
    pub captured: Decimal,
    pub expires_at: Seconds,
    pub allocations: Vec<Allocation>,
    pub partial_captures: u32,
    pub late_settled: bool,
}

/// Credits one settlement took from one grant, in the order taken.
#[derive(Debug, Clone)]
pub struct Take {
    pub grant: usize,
    pub amount: Decimal,
    pub refunded: Decimal,
}

#[derive(Debug, Clone)]
pub struct Settlement {
    pub account: usize,
    pub takes: Vec<Take>,
    pub charged: Decimal,
    pub refunded: Decimal,
}

impl Settlement {
    pub fn refundable(&self) -> Decimal {
        self.charged - self.refunded
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantAnswer {
    pub grant: usize,
    pub available: Decimal,
    pub debt_repaid: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleAnswer {
    pub settlement: usize,
    pub from_hold: Decimal,
    pub from_balance: Decimal,
    pub debt: Decimal,
    pub written_off: Decimal,
    pub released: Decimal,
    pub late: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundAnswer {
    pub amount: Decimal,
    pub debt_reduced: Decimal,
    pub returned_to: Vec<(usize, Decimal)>,
    pub new_grant: Option<usize>,
}

/// Balance of one source: available, held, expiring soon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bucket {
    pub available: Decimal,
    pub held: Decimal,
    pub expiring_soon: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub available: Decimal,
    pub held: Decimal,
    pub debt: Decimal,
    pub buckets: BTreeMap<Source, Bucket>,
}

/// What a clock move changed.
#[derive(Debug, Clone)]
pub struct Advanced {
    /// Whether the outcome depends on when the server brings accounts up to now.
    pub order_matters: bool,
    /// Accounts whose holds expired, grants lapsed or debt was paid.
    pub changed_accounts: Vec<usize>,
}

/// Every account, grant, hold and settlement of one case, by creation index.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub now: Seconds,
    pub accounts: Vec<Account>,
    pub grants: Vec<Grant>,
    pub holds: Vec<Hold>,
    pub settlements: Vec<Settlement>,
}

impl Model {
    pub fn create_account(&mut self, policy: Policy) -> usize {
        self.accounts.push(Account {
            policy,
            debt: Decimal::ZERO,
        });
        self.accounts.len() - 1
    }

    /// Moves the clock; every account is brought up to the new time at once, as the sweeper
    /// would. Returns what the server, which does so lazily, may not have done yet.
    pub fn advance(&mut self, by: Seconds) -> Advanced {
        self.now += by;
        let before = self.clone();
        // Credits of an expiring hold pay debt now, but would expire unpaid if their grant
        // expired before the account was next touched: then when the server notices matters.
        let order_matters = self.holds.iter().any(|hold| {
            hold.status == Status::Active
                && hold.expires_at <= self.now
                && self.accounts[hold.account].debt > Decimal::ZERO
        });
        for account in 0..self.accounts.len() {
            self.begin(account);
        }
        let changed_accounts = (0..self.accounts.len())
            .filter(|&account| {
                let holds = self.holds.iter().zip(&before.holds);
                let grants = self.grants.iter().zip(&before.grants);
                self.accounts[account].debt != before.accounts[account].debt
                    || holds
                        .filter(|(hold, _)| hold.account == account)
                        .any(|(after, before)| after.status != before.status)
                    || grants
                        .filter(|(grant, _)| grant.account == account)
                        .any(|(after, before)| after.remaining != before.remaining)
            })
            .collect();
        Advanced {
            order_matters,
            changed_accounts,
        }
    }

    /// Grants in consumption order that may be spent now: lower priority, earliest expiry
    /// (never last), oldest.
    fn spendable(&self, account: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.grants.len())
            .filter(|&index| {
                let grant = &self.grants[index];
                grant.account == account
                    && !grant.expired(self.now)
                    && grant.remaining > Decimal::ZERO
            })
            .collect();
        order.sort_by_key(|&index| {
            let grant = &self.grants[index];
            (
                grant.priority,
                grant.expires_at.is_none(),
                grant.expires_at,
                index,
            )
        });
        order
    }

    pub fn available(&self, account: usize) -> Decimal {
        self.spendable(account)
            .iter()
            .map(|&index| self.grants[index].remaining)
            .sum()
    }

    /// Takes up to `amount` from spendable grants in consumption order.
    fn draw(&mut self, account: usize, amount: Decimal) -> Vec<(usize, Decimal)> {
        let mut left = amount;
        let mut drawn = Vec::new();
        for index in self.spendable(account) {
            if left <= Decimal::ZERO {
                break;
            }
            let grant = &mut self.grants[index];
            let take = grant.remaining.min(left);
            grant.remaining -= take;
            left -= take;
            drawn.push((index, take));
        }
        drawn
    }

    fn release_reservations(&mut self, hold: usize) -> Decimal {
        let mut released = Decimal::ZERO;
        for position in 0..self.holds[hold].allocations.len() {
            let allocation = &mut self.holds[hold].allocations[position];
            let amount = std::mem::take(&mut allocation.reserved);
            let grant = &mut self.grants[allocation.grant];
            grant.reserved -= amount;
            grant.remaining += amount;
            released += amount;
        }
        released
    }

    /// Brings an account up to now: due holds expire, expired grants lose what is left,
    /// spendable credits pay debt.
    fn begin(&mut self, account: usize) {
        for hold in 0..self.holds.len() {
            let due = self.holds[hold].account == account
                && self.holds[hold].status == Status::Active
                && self.holds[hold].expires_at <= self.now;
            if due {
                self.release_reservations(hold);
                self.holds[hold].status = Status::Expired;
            }
        }
        self.finish(account);
    }

    fn finish(&mut self, account: usize) {
        let now = self.now;
        for grant in self.grants.iter_mut() {
            if grant.account == account && grant.expired(now) {
                grant.remaining = Decimal::ZERO;
            }
        }
        let debt = self.accounts[account].debt;
        if debt > Decimal::ZERO {
            let repaid: Decimal = self.draw(account, debt).iter().map(|(_, take)| take).sum();
            self.accounts[account].debt -= repaid;
        }
    }

    fn reserve(&mut self, hold: usize, amount: Decimal) {
        let account = self.holds[hold].account;
        for (grant, take) in self.draw(account, amount) {
            self.grants[grant].reserved += take;
            let allocations = &mut self.holds[hold].allocations;
            match allocations
                .iter_mut()
                .find(|allocation| allocation.grant == grant)
            {
                Some(allocation) => allocation.reserved += take,
                None => allocations.push(Allocation {
                    grant,
                    reserved: take,
                }),
            }
        }
    }

    fn check_may_reserve(&self, account: usize, amount: Decimal) -> Result<(), Refusal> {
        if self.accounts[account].debt > Decimal::ZERO {
            return Err(declined("ACCOUNT_IN_DEBT"));
        }
        if self.available(account) < amount {
            return Err(declined("INSUFFICIENT_CREDITS"));
        }
        Ok(())
    }

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
        self.refund_with(settlement, amount, false)
    }

    /// Whether this refund comes out otherwise when a settlement's takes of one grant count as
    /// one, at the place of the first: how the server reads "last taken first" (see
    /// `Exclusion::RefundOrder`).
    pub fn refund_depends_on_merging(&self, settlement: usize, amount: Option<Decimal>) -> bool {
        let mut as_taken = self.clone();
        let mut merged = self.clone();
        let answers = (
            as_taken.refund_with(settlement, amount, false),
            merged.refund_with(settlement, amount, true),
        );
        let remaining = |model: &Model| -> Vec<Decimal> {
            model.grants.iter().map(|grant| grant.remaining).collect()
        };
        answers.0 != answers.1 || remaining(&as_taken) != remaining(&merged)
    }

    fn refund_with(
        &mut self,
        settlement: usize,
        amount: Option<Decimal>,
        merge_by_grant: bool,
    ) -> Result<RefundAnswer, Refusal> {
        if merge_by_grant {
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

    /// GetBalance as of now, without changing anything.
    pub fn balance(&self, account: usize) -> Balance {
        let mut view = self.clone();
        view.begin(account);
        let horizon = view.now + EXPIRING_WINDOW_SECONDS;
        let mut buckets: BTreeMap<Source, Bucket> = BTreeMap::new();
        for grant in view.grants.iter().filter(|grant| grant.account == account) {
            let bucket = buckets.entry(grant.source).or_default();
            bucket.held += grant.reserved;
            if !grant.expired(view.now) {
                bucket.available += grant.remaining;
                if grant
                    .expires_at
                    .is_some_and(|expires_at| expires_at <= horizon)
                {
                    bucket.expiring_soon += grant.remaining;
                }
            }
        }
        buckets.retain(|_, bucket| bucket.available > Decimal::ZERO || bucket.held > Decimal::ZERO);
        Balance {
            available: buckets.values().map(|bucket| bucket.available).sum(),
            held: buckets.values().map(|bucket| bucket.held).sum(),
            debt: view.accounts[account].debt,
            buckets,
        }
    }

    /// A hold as GetHold shows it now: past its expiry it reads EXPIRED.
    pub fn hold_status(&self, hold: usize) -> Status {
        let state = &self.holds[hold];
        if state.status == Status::Active && state.expires_at <= self.now {
            Status::Expired
        } else {
            state.status
        }
    }
}
