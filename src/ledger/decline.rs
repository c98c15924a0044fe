//! Declines: state-dependent refusals decided under the account lock. They are stored with
//! the idempotency record, so a retry gets the same answer even after the state changed.

use super::model::HoldStatus;
use super::reason::Reason;
use super::spend_limit::LimitReached;
use crate::money::Credits;

/// Why an operation was refused by the account's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Decline {
    /// Not enough spendable credits.
    #[error("insufficient credits: {required} required, {available} available")]
    InsufficientCredits {
        /// What was asked for.
        required: Credits,
        /// What was spendable.
        available: Credits,
    },
    /// The account owes credits; new holds wait until it is paid.
    #[error("the account is in debt by {debt}; grant credits to pay it first")]
    AccountInDebt {
        /// What it owes.
        debt: Credits,
    },
    /// The account is suspended or closed.
    #[error("the account is {status} and cannot start runs")]
    AccountSuspended {
        /// Its status name.
        status: &'static str,
    },
    /// The hold is no longer active.
    #[error("the hold is {}, not ACTIVE", status.as_str())]
    HoldNotActive {
        /// Its status.
        status: HoldStatus,
    },
    /// More refunded than was charged.
    #[error("refund of {requested} exceeds what is left to refund ({refundable})")]
    RefundExceedsCapture {
        /// What was asked for.
        requested: Credits,
        /// What is left.
        refundable: Credits,
    },
    /// Too many partial captures on one hold.
    #[error("the hold already has {limit} partial captures; settle it with partial = false")]
    PartialCaptureLimit {
        /// The limit.
        limit: i32,
    },
    /// The model needs an entitlement the account lacks.
    #[error("the model requires entitlement {entitlement:?}, which the account lacks")]
    EntitlementRequired {
        /// The entitlement.
        entitlement: String,
    },
    /// ExtendHold would lower the hold.
    #[error(
        "new hold amount {requested} is below the current amount {current}; ExtendHold only raises a hold"
    )]
    AmountBelowHold {
        /// What was asked for.
        requested: Credits,
        /// The hold's amount.
        current: Credits,
    },
    /// A spend limit of the hold's scope would be passed.
    #[error(
        "the {} spend limit of {} {:?} is {}: {} spent and {} reserved this period",
        .0.period.as_str(), .0.scope.kind.as_str(), .0.scope.id, .0.limit, .0.spent, .0.reserved
    )]
    SpendLimitReached(LimitReached),
}

impl Decline {
    /// The ErrorInfo reason.
    pub fn reason(&self) -> Reason {
        match self {
            Decline::InsufficientCredits { .. } => Reason::InsufficientCredits,
            Decline::AccountInDebt { .. } => Reason::AccountInDebt,
            Decline::AccountSuspended { .. } => Reason::AccountSuspended,
            Decline::HoldNotActive { .. } => Reason::HoldNotActive,
            Decline::RefundExceedsCapture { .. } => Reason::RefundExceedsCapture,
            Decline::PartialCaptureLimit { .. } => Reason::PartialCaptureLimit,
            Decline::AmountBelowHold { .. } => Reason::InvalidAmount,
            Decline::EntitlementRequired { .. } => Reason::EntitlementRequired,
            Decline::SpendLimitReached(_) => Reason::SpendLimitReached,
        }
    }

    /// ErrorInfo metadata: the figures behind the decline.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let pairs: Vec<(&str, String)> = match self {
            Decline::InsufficientCredits {
                required,
                available,
            } => {
                vec![
                    ("required", required.to_string()),
                    ("available", available.to_string()),
                ]
            }
            Decline::AccountInDebt { debt } => vec![("debt", debt.to_string())],
            Decline::AccountSuspended { status } => vec![("status", (*status).to_owned())],
            Decline::HoldNotActive { status } => vec![("status", status.as_str().to_owned())],
            Decline::RefundExceedsCapture {
                requested,
                refundable,
            } => {
                vec![
                    ("requested", requested.to_string()),
                    ("refundable", refundable.to_string()),
                ]
            }
            Decline::PartialCaptureLimit { limit } => vec![("limit", limit.to_string())],
            Decline::EntitlementRequired { entitlement } => vec![("required", entitlement.clone())],
            Decline::AmountBelowHold { requested, current } => {
                vec![
                    ("requested", requested.to_string()),
                    ("current", current.to_string()),
                ]
            }
            Decline::SpendLimitReached(reached) => vec![
                ("scope", reached.scope.kind.as_str().to_owned()),
                ("scope_id", reached.scope.id.clone()),
                ("period", reached.period.as_str().to_owned()),
                ("limit", reached.limit.to_string()),
                ("spent", reached.spent.to_string()),
                ("reserved", reached.reserved.to_string()),
            ],
        };
        pairs
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect()
    }
}
