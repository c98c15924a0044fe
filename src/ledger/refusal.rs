//! The one refusal check of a new reservation, shared by Authorize, ExtendHold and Quote.

use super::book::AccountBook;
use super::decline::Decline;
use super::model::AccountStatus;
use super::spend_limit::SpendScope;
use crate::money::Credits;

/// Why a new hold would be refused ([`AccountBook::hold_refusal`]), in two halves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRefusal {
    /// The run may not start here: the model's entitlement is missing, else the account is not
    /// active, else a spend limit of the run's scope would be passed. Quote's `allowed` is its
    /// absence.
    pub run: Option<Decline>,
    /// The account cannot fund it: it is in debt, else fewer credits are available than asked.
    /// Quote's `affordable` is its absence.
    pub funding: Option<Decline>,
}

impl HoldRefusal {
    /// The decline Authorize answers: the first check that refuses.
    pub fn first(self) -> Option<Decline> {
        self.run.or(self.funding)
    }
}

impl AccountBook {
    /// Why a new reservation of `amount` for a run that needs `required_entitlement`, counted
    /// against the limits of `scope`, would be refused, each check in the order Authorize
    /// applies them: the entitlement, the account's status, the scope's limits, its debt, then
    /// its available credits. Pure: it reads the book as it stands, so
    /// callers bring it up to now first (an operation's `begin`, or [`sweep`](Self::sweep) on a
    /// snapshot). Authorize, ExtendHold and Quote all decide with it, so they cannot disagree.
    pub fn hold_refusal(
        &self,
        required_entitlement: Option<&str>,
        scope: Option<&SpendScope>,
        amount: Credits,
    ) -> HoldRefusal {
        let missing = required_entitlement.filter(|required| {
            !self
                .account
                .entitlements
                .iter()
                .any(|entitlement| entitlement == required)
        });
        let run = if let Some(entitlement) = missing {
            Some(Decline::EntitlementRequired {
                entitlement: entitlement.to_owned(),
            })
        } else if self.account.status != AccountStatus::Active {
            Some(Decline::AccountSuspended {
                status: self.account.status.as_str(),
            })
        } else {
            self.limit_refusal(scope, amount)
        };
        let funding = if self.account.debt.is_positive() {
            Some(Decline::AccountInDebt {
                debt: self.account.debt,
            })
        } else {
            let available = self.available();
            (available < amount).then_some(Decline::InsufficientCredits {
                required: amount,
                available,
            })
        };
        HoldRefusal { run, funding }
    }
}
