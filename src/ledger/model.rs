//! The state of one account as the domain sees it: grants (buckets), holds and their
//! allocations, settlements and refunds.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ids::{AccountId, GrantId, HoldId, SettlementId};
use crate::money::Credits;

macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),* }

        impl $name {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }

            /// Parses a stored name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($text => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

stored_enum!(
    /// Whether an account may start runs.
    AccountStatus {
        /// Normal.
        Active => "ACTIVE",
        /// New holds are refused; settlements and grants still apply.
        Suspended => "SUSPENDED",
        /// Like suspended, for good.
        Closed => "CLOSED",
    }
);

stored_enum!(
    /// What happens to above-hold usage no grant covers.
    SettlePolicy {
        /// It becomes debt, paid by the next credits.
        Debt => "DEBT",
        /// It is written off.
        CapAtHold => "CAP_AT_HOLD",
    }
);

stored_enum!(
    /// Where a grant's credits came from.
    GrantSource {
        /// Free daily credits.
        FreeDaily => "FREE_DAILY",
        /// A subscription's allowance.
        Subscription => "SUBSCRIPTION",
        /// A purchase.
        Purchase => "PURCHASE",
        /// A top-up.
        Topup => "TOPUP",
        /// A promotion.
        Promo => "PROMO",
        /// Credits refunded after their grant expired.
        Refund => "REFUND",
    }
);

impl GrantSource {
    /// Default consumption priority (lower is spent first): free → subscription → promo →
    /// purchase/refund → top-up.
    pub fn default_priority(self) -> i32 {
        match self {
            GrantSource::FreeDaily => 10,
            GrantSource::Subscription => 20,
            GrantSource::Promo => 30,
            GrantSource::Purchase | GrantSource::Refund => 40,
            GrantSource::Topup => 50,
        }
    }
}

stored_enum!(
    /// Life of a hold: ACTIVE → SETTLED | RELEASED | EXPIRED, each exactly once.
    HoldStatus {
        /// Reserving credits.
        Active => "ACTIVE",
        /// Captured by a final settlement.
        Settled => "SETTLED",
        /// Given back.
        Released => "RELEASED",
        /// Its TTL passed; credits returned.
        Expired => "EXPIRED",
    }
);

/// The account row: the lock every balance change takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    /// The account.
    pub account_id: AccountId,
    /// Whether it may start runs.
    pub status: AccountStatus,
    /// Above-hold policy.
    pub settle_policy: SettlePolicy,
    /// What it owes (≥ 0).
    pub debt: Credits,
    /// Entitlements (e.g. `pro`) that gate models.
    pub entitlements: Vec<String>,
    /// Available credits below which BALANCE_LOW fires; `None`: never.
    pub low_balance_threshold: Option<Credits>,
}

/// A grant (bucket) of credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantState {
    /// The grant.
    pub grant_id: GrantId,
    /// Where it came from.
    pub source: GrantSource,
    /// Consumption priority, lower first.
    pub priority: i32,
    /// When it starts counting.
    pub effective_at: DateTime<Utc>,
    /// When its unused credits expire; `None` never.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was made (the FIFO tie-break).
    pub created_at: DateTime<Utc>,
    /// Credits granted.
    pub amount: Credits,
    /// Credits neither reserved nor spent.
    pub remaining: Credits,
    /// Credits reserved by live holds.
    pub reserved: Credits,
    /// The payment reference, unique per account.
    pub external_ref: Option<String>,
    /// Whether CREDITS_EXPIRING has fired for it.
    pub expiry_warned: bool,
}

impl GrantState {
    /// Whether its credits may be spent or reserved at `now`.
    pub fn spendable_at(&self, now: DateTime<Utc>) -> bool {
        self.effective_at <= now && !self.expired_at(now)
    }

    /// Whether it has expired at `now`.
    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }

    /// Consumption order key: priority, then earliest expiry (never-expiring last), then oldest.
    pub fn burn_key(&self) -> (i32, bool, Option<DateTime<Utc>>, DateTime<Utc>, GrantId) {
        (
            self.priority,
            self.expires_at.is_none(),
            self.expires_at,
            self.created_at,
            self.grant_id,
        )
    }
}

/// Credits of one grant reserved by one hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationState {
    /// The grant.
    pub grant_id: GrantId,
    /// Still reserved.
    pub reserved: Credits,
    /// Captured from this reservation so far.
    pub captured: Credits,
}

/// What a hold carries besides money: the run it pays for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HoldMeta {
    /// The Authorize idempotency key (for GetHold by key).
    pub authorize_key: String,
    /// Catalog version it was priced with (0 = explicit amount).
    pub catalog_version: i64,
    /// Quote it was made from.
    pub quote_id: Option<Uuid>,
    /// The quote id Authorize was given (a signed token carrying the quote).
    pub quote_token: Option<String>,
    /// Task type name.
    pub task_type: String,
    /// Tool id.
    pub tool: String,
    /// Model id.
    pub model: String,
    /// Project.
    pub project: String,
    /// Caller's run id.
    pub run_id: String,
    /// Labels, sorted by key.
    pub labels: Vec<(String, String)>,
    /// Entitlement the priced model requires (checked at Authorize; not stored).
    pub required_entitlement: Option<String>,
    /// Member, API key or project whose spend limits it counts against.
    pub spend_scope: Option<super::SpendScope>,
}

/// A hold and its allocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldState {
    /// The hold.
    pub hold_id: HoldId,
    /// Where it is in its life.
    pub status: HoldStatus,
    /// Credits authorized (raised by ExtendHold).
    pub amount: Credits,
    /// Credits charged by its settlements (from the hold, from the balance and as debt).
    pub captured: Credits,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Reservations, in consumption order.
    pub allocations: Vec<AllocationState>,
    /// Partial captures so far.
    pub partial_captures: i32,
    /// Whether a final settlement arrived after it expired.
    pub late_settled: bool,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it left ACTIVE.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The run it pays for.
    pub meta: HoldMeta,
}

impl HoldState {
    /// Credits it still reserves.
    pub fn outstanding(&self) -> Credits {
        self.allocations
            .iter()
            .map(|allocation| allocation.reserved)
            .sum()
    }

    /// Whether it is active but past its expiry at `now` (to be expired before anything else).
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status == HoldStatus::Active && self.expires_at <= now
    }
}

/// Credits one settlement took from one grant, and how much of that was refunded since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementPart {
    /// The grant.
    pub grant_id: GrantId,
    /// Taken.
    pub amount: Credits,
    /// Refunded since.
    pub refunded: Credits,
}

/// A capture of a hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRecord {
    /// The settlement.
    pub settlement_id: SettlementId,
    /// Its hold.
    pub hold_id: HoldId,
    /// Metered total.
    pub total: Credits,
    /// Taken from the hold's reservations.
    pub from_hold: Credits,
    /// Taken from further grants.
    pub from_balance: Credits,
    /// Uncovered, owed.
    pub debt: Credits,
    /// Uncovered, written off.
    pub written_off: Credits,
    /// Reservations given back (final settlements).
    pub released: Credits,
    /// Arrived after the hold expired.
    pub late: bool,
    /// Kept the hold open.
    pub partial: bool,
    /// Refunded so far.
    pub refunded: Credits,
    /// Grants it took from, in order.
    pub parts: Vec<SettlementPart>,
    /// What was metered, priced (empty for an explicit amount).
    pub line_items: Vec<crate::money::LineItem>,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl SettlementRecord {
    /// What was charged and so may be refunded: the total less what was written off.
    pub fn charged(&self) -> Credits {
        self.from_hold + self.from_balance + self.debt
    }
}

/// A refund of (part of) a settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    /// The refund.
    pub refund_id: Uuid,
    /// The settlement refunded.
    pub settlement_id: SettlementId,
    /// Its hold.
    pub hold_id: HoldId,
    /// Credits refunded.
    pub amount: Credits,
    /// Of which reduced the account's debt.
    pub debt_reduced: Credits,
    /// Of which went back to the grants they came from.
    pub returned_to: Vec<(GrantId, Credits)>,
    /// A REFUND grant made for credits whose grant had expired.
    pub new_grant_id: Option<GrantId>,
    /// Why.
    pub reason: String,
    /// When.
    pub created_at: DateTime<Utc>,
}
