//! The reference: a second, deliberately plain implementation of docs/MONEY.md over in-memory
//! state (no journal, linear scans), that the server's answers are compared with.

mod reserve;
mod settle;

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
