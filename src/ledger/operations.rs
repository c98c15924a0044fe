//! Operations on holds and grants: Authorize, ExtendHold, Release, Grant. Settlement and
//! refund live in `settle`.

use super::book::AccountBook;
use super::decline::Decline;
use super::journal::{LedgerAccount, MovementKind, Refs};
use super::model::{GrantState, HoldState, HoldStatus};
use crate::ids::HoldId;
use crate::money::Credits;
use chrono::{DateTime, Utc};

impl AccountBook {
    /// Creates an active hold of `hold.amount`, reserving from grants in consumption order.
    pub fn authorize(&mut self, mut hold: HoldState) -> Result<(), Decline> {
        self.begin();
        let refusal = self.hold_refusal(
            hold.meta.required_entitlement.as_deref(),
            hold.meta.spend_scope.as_ref(),
            hold.amount,
        );
        if let Some(decline) = refusal.first() {
            return Err(decline);
        }
        hold.status = HoldStatus::Active;
        hold.allocations.clear();
        let (hold_id, amount) = (hold.hold_id, hold.amount);
        self.holds.insert(hold_id, hold);
        self.created_holds.insert(hold_id);
        self.reserve(hold_id, amount);
        self.finish();
        Ok(())
    }

    /// Raises a live hold to `new_amount` and/or moves its expiry.
    pub fn extend(
        &mut self,
        hold_id: HoldId,
        new_amount: Option<Credits>,
        new_expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), Decline> {
        self.begin();
        let hold = self
            .holds
            .get(&hold_id)
            .unwrap_or_else(|| panic!("hold {hold_id} must be loaded"));
        if hold.status != HoldStatus::Active {
            return Err(Decline::HoldNotActive {
                status: hold.status,
            });
        }
        let current = hold.amount;
        if let Some(requested) = new_amount {
            if requested < current {
                return Err(Decline::AmountBelowHold { requested, current });
            }
            let more = requested - current;
            if more.is_positive() {
                let scope = self
                    .holds
                    .get(&hold_id)
                    .and_then(|hold| hold.meta.spend_scope.as_ref());
                if let Some(decline) = self.hold_refusal(None, scope, more).first() {
                    return Err(decline);
                }
                self.reserve(hold_id, more);
                self.hold_mut(hold_id).amount = requested;
            }
        }
        if let Some(expires_at) = new_expires_at {
            self.hold_mut(hold_id).expires_at = expires_at;
        }
        self.finish();
        Ok(())
    }

    /// Gives a live hold back; returns what was released.
    pub fn release(&mut self, hold_id: HoldId) -> Result<Credits, Decline> {
        self.begin();
        let status = self.holds.get(&hold_id).map(|hold| hold.status);
        if status != Some(HoldStatus::Active) {
            return Err(Decline::HoldNotActive {
                status: status.unwrap_or(HoldStatus::Expired),
            });
        }
        let released = self.release_reservations(hold_id);
        let now = self.now;
        let hold = self.hold_mut(hold_id);
        hold.status = HoldStatus::Released;
        hold.resolved_at = Some(now);
        self.finish();
        Ok(released)
    }

    /// Adds a grant; its credits pay any debt first.
    pub fn grant(&mut self, grant: GrantState) {
        self.begin();
        let (grant_id, amount) = (grant.grant_id, grant.amount);
        self.grants.insert(grant_id, grant);
        self.changed_grants.insert(grant_id);
        let refs = Refs {
            grant_id: Some(grant_id),
            ..Refs::default()
        };
        self.post(
            MovementKind::Grant,
            LedgerAccount::Issued,
            LedgerAccount::Available,
            amount,
            refs,
        );
        self.finish();
    }
}
