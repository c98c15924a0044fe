//! The double-entry journal: every movement is a pair of postings that sum to zero.
//! Per-account ledgers: available (per grant), held (per hold and grant), debt. Platform-side
//! ledgers (issued, revenue, expired, written off) have no balance rows: their totals are sums.

use uuid::Uuid;

use crate::ids::{GrantId, HoldId, SettlementId};
use crate::money::Credits;

/// A ledger account a posting lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerAccount {
    /// Spendable credits of one grant.
    Available,
    /// Credits of one grant reserved by one hold.
    Held,
    /// Credits charged for runs.
    Revenue,
    /// Credits that expired unused (breakage).
    Expired,
    /// Above-hold usage nobody pays for (policy CAP_AT_HOLD).
    WrittenOff,
    /// Credits granted into existence.
    Issued,
    /// What the account owes; negative balance means debt.
    Debt,
}

/// Why credits moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MovementKind {
    /// A grant added credits.
    Grant,
    /// A hold reserved credits.
    Hold,
    /// A settlement charged credits.
    Capture,
    /// A hold gave credits back.
    Release,
    /// Credits expired.
    Expiry,
    /// A refund gave charged credits back.
    Refund,
    /// Usage no credits covered became debt.
    Debt,
    /// Usage no credits covered was written off.
    WriteOff,
    /// Credits paid off debt.
    DebtRepayment,
}

macro_rules! names {
    ($type:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $type {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }

            /// Parses a stored name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

names!(LedgerAccount {
    Available => "AVAILABLE", Held => "HELD", Revenue => "REVENUE", Expired => "EXPIRED",
    WrittenOff => "WRITTEN_OFF", Issued => "ISSUED", Debt => "DEBT",
});

names!(MovementKind {
    Grant => "GRANT", Hold => "HOLD", Capture => "CAPTURE", Release => "RELEASE", Expiry => "EXPIRY",
    Refund => "REFUND", Debt => "DEBT", WriteOff => "WRITE_OFF", DebtRepayment => "DEBT_REPAYMENT",
});

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// Where it lands.
    pub ledger: LedgerAccount,
    /// Signed amount: positive adds to the ledger, negative takes from it.
    pub amount: Credits,
    /// Why.
    pub kind: MovementKind,
    /// The grant (for available and held).
    pub grant_id: Option<GrantId>,
    /// The hold involved.
    pub hold_id: Option<HoldId>,
    /// The settlement involved.
    pub settlement_id: Option<SettlementId>,
    /// The refund involved.
    pub refund_id: Option<Uuid>,
}

/// References carried by both postings of a movement.
#[derive(Debug, Clone, Copy, Default)]
pub struct Refs {
    /// The grant.
    pub grant_id: Option<GrantId>,
    /// The hold.
    pub hold_id: Option<HoldId>,
    /// The settlement.
    pub settlement_id: Option<SettlementId>,
    /// The refund.
    pub refund_id: Option<Uuid>,
}

/// The two postings moving `amount` from `from` to `to`.
pub fn movement(
    kind: MovementKind,
    from: LedgerAccount,
    to: LedgerAccount,
    amount: Credits,
    refs: Refs,
) -> [Posting; 2] {
    let posting = |ledger, amount| Posting {
        ledger,
        amount,
        kind,
        grant_id: refs.grant_id,
        hold_id: refs.hold_id,
        settlement_id: refs.settlement_id,
        refund_id: refs.refund_id,
    };
    [posting(from, -amount), posting(to, amount)]
}
