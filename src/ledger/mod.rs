//! The money domain, pure: no I/O, no proto, no SQL. An [`AccountBook`] holds one account's
//! loaded state (grants, holds, debt) and applies operations to it, recording every movement as
//! balanced journal postings; the store loads it under the account lock and persists what
//! changed.

mod account;
mod allowance;
mod balance;
mod book;
mod changes;
mod decline;
mod events;
mod journal;
mod model;
mod operations;
mod period;
mod reason;
mod refusal;
mod scope_limits;
mod settle;
mod spend_limit;
mod usage;

pub use account::{Account, AccountUpdate};
pub use allowance::{AllowanceGrant, AllowanceRule, AllowanceState};
pub use balance::{Balance, BucketBalance};
pub use book::AccountBook;
pub use changes::Changes;
pub use decline::Decline;
pub use events::{EventDraft, EventType};
pub use journal::{LedgerAccount, MovementKind, Posting};
pub use model::{
    AccountState, AccountStatus, AllocationState, GrantSource, GrantState, HoldMeta, HoldState,
    HoldStatus, RefundRecord, SettlePolicy, SettlementPart, SettlementRecord,
};
pub use period::{Every, Period, PeriodError, Recurrence, parse_date, parse_zone};
pub use reason::Reason;
pub use refusal::HoldRefusal;
pub use scope_limits::{LimitChange, ScopeUsage};
pub use settle::{RefundRequest, SettleRequest};
pub use spend_limit::{
    FIRST_DAY, LimitPeriod, LimitReached, ScopeKind, SpendLimitState, SpendScope,
};
pub use usage::{UsageDelta, UsageKey};
#[cfg(test)]
mod tests;
