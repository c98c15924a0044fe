//! [`AccountBook`]: one account's loaded state and the operations on it. Every operation
//! first expires due holds, then acts, then posts breakage of expired grants and pays debt from
//! any spendable credits, so the state it leaves is always normalized. What an operation
//! changed is in [`super::changes`].

use std::collections::{BTreeMap, BTreeSet};

use super::allowance::{AllowanceGrant, AllowanceState};
use super::events::{LoadedBalance, stored_available};
use super::journal::{LedgerAccount, MovementKind, Posting, Refs, movement};
use super::model::{
    AccountState, AllocationState, GrantState, HoldState, HoldStatus, RefundRecord,
    SettlementRecord,
};
use super::scope_limits::ScopeLimits;
use crate::ids::{AllowanceId, GrantId, HoldId, SettlementId};
use crate::money::Credits;
use chrono::{DateTime, Utc};

/// One account's state under the lock, and the changes made to it.
#[derive(Debug, Clone)]
pub struct AccountBook {
    pub(super) account: AccountState,
    pub(super) grants: BTreeMap<GrantId, GrantState>,
    pub(super) holds: BTreeMap<HoldId, HoldState>,
    pub(super) now: DateTime<Utc>,
    pub(super) account_changed: bool,
    pub(super) changed_grants: BTreeSet<GrantId>,
    pub(super) changed_holds: BTreeSet<HoldId>,
    pub(super) created_holds: BTreeSet<HoldId>,
    /// How many allocations each loaded hold had (later ones are new rows).
    pub(super) stored_allocations: BTreeMap<HoldId, usize>,
    /// Settlements made by this book (the others in `settlements` were loaded).
    pub(super) created_settlements: BTreeSet<SettlementId>,
    pub(super) postings: Vec<Posting>,
    pub(super) settlements: Vec<SettlementRecord>,
    pub(super) refunds: Vec<RefundRecord>,
    pub(super) allowances: Vec<AllowanceState>,
    pub(super) changed_allowances: BTreeSet<AllowanceId>,
    pub(super) allowance_grants: Vec<AllowanceGrant>,
    /// Whether `allowances` holds all the account's rules, not only those due (a locked
    /// transaction reads all only to set one).
    pub(super) allowances_complete: bool,
    pub(super) limits: ScopeLimits,
    /// Each loaded hold's status and capture as loaded (usage rollups count what changed).
    pub(super) loaded_holds: BTreeMap<HoldId, (HoldStatus, Credits)>,
    /// The balance, threshold and grants as loaded (events compare them with the end state).
    pub(super) loaded: LoadedBalance,
    /// How long before a grant expires CREDITS_EXPIRING fires; `None`: never (previews).
    pub(super) expiry_warning: Option<chrono::Duration>,
    /// Grants warned of their expiry by this book.
    pub(super) warned: Vec<GrantId>,
}

impl AccountBook {
    /// A book over loaded state at `now` (the server clock).
    pub fn new(
        account: AccountState,
        grants: Vec<GrantState>,
        holds: Vec<HoldState>,
        now: DateTime<Utc>,
    ) -> Self {
        let limits = ScopeLimits::with_holds(&holds);
        let loaded_holds = holds
            .iter()
            .map(|hold| (hold.hold_id, (hold.status, hold.captured)))
            .collect();
        let stored_allocations = holds
            .iter()
            .map(|hold| (hold.hold_id, hold.allocations.len()))
            .collect();
        let loaded = LoadedBalance {
            available: stored_available(&grants, now),
            threshold: account.low_balance_threshold,
            grant_ids: grants.iter().map(|grant| grant.grant_id).collect(),
        };
        AccountBook {
            account,
            grants: grants
                .into_iter()
                .map(|grant| (grant.grant_id, grant))
                .collect(),
            holds: holds.into_iter().map(|hold| (hold.hold_id, hold)).collect(),
            now,
            account_changed: false,
            changed_grants: BTreeSet::new(),
            changed_holds: BTreeSet::new(),
            created_holds: BTreeSet::new(),
            stored_allocations,
            created_settlements: BTreeSet::new(),
            postings: Vec::new(),
            settlements: Vec::new(),
            refunds: Vec::new(),
            allowances: Vec::new(),
            changed_allowances: BTreeSet::new(),
            allowance_grants: Vec::new(),
            allowances_complete: false,
            limits,
            loaded_holds,
            loaded,
            expiry_warning: None,
            warned: Vec::new(),
        }
    }

    /// Warns of grants expiring within `horizon` (CREDITS_EXPIRING), once per grant.
    pub fn with_expiry_warning(mut self, horizon: chrono::Duration) -> Self {
        self.expiry_warning = Some(horizon);
        self
    }

    /// The account.
    pub fn account(&self) -> &AccountState {
        &self.account
    }

    /// The time operations run at.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The loaded grant with this external reference.
    pub fn grant_by_external_ref(&self, external_ref: &str) -> Option<&GrantState> {
        self.grants
            .values()
            .find(|grant| grant.external_ref.as_deref() == Some(external_ref))
    }

    /// A loaded hold.
    pub fn hold(&self, hold_id: HoldId) -> Option<&HoldState> {
        self.holds.get(&hold_id)
    }

    /// A loaded grant.
    pub fn grant_state(&self, grant_id: GrantId) -> Option<&GrantState> {
        self.grants.get(&grant_id)
    }

    /// Loaded grants spendable now, in consumption order.
    pub(super) fn spendable_in_burn_order(&self) -> Vec<GrantId> {
        let mut spendable: Vec<&GrantState> = self
            .grants
            .values()
            .filter(|grant| grant.spendable_at(self.now) && grant.remaining.is_positive())
            .collect();
        spendable.sort_by_key(|grant| grant.burn_key());
        spendable.into_iter().map(|grant| grant.grant_id).collect()
    }

    /// Spendable credits now.
    pub fn available(&self) -> Credits {
        self.spendable_in_burn_order()
            .iter()
            .filter_map(|grant_id| self.grants.get(grant_id))
            .map(|grant| grant.remaining)
            .sum()
    }

    pub(super) fn post(
        &mut self,
        kind: MovementKind,
        from: LedgerAccount,
        to: LedgerAccount,
        amount: Credits,
        refs: Refs,
    ) {
        if amount.is_positive() {
            self.postings.extend(movement(kind, from, to, amount, refs));
        }
    }

    pub(super) fn grant_mut(&mut self, grant_id: GrantId) -> &mut GrantState {
        self.changed_grants.insert(grant_id);
        self.grants.get_mut(&grant_id).unwrap_or_else(|| {
            panic!("grant {grant_id} of an allocation must be loaded with its hold")
        })
    }

    pub(super) fn hold_mut(&mut self, hold_id: HoldId) -> &mut HoldState {
        self.changed_holds.insert(hold_id);
        self.holds
            .get_mut(&hold_id)
            .unwrap_or_else(|| panic!("hold {hold_id} must be loaded before it is changed"))
    }

    /// Brings the loaded state up to `now` before an operation decides anything: due holds
    /// expire, expired grants post their breakage and spendable credits pay debt. So no
    /// decision (e.g. "in debt") rests on state the clock has already changed.
    pub(super) fn begin(&mut self) {
        self.expire_due_holds();
        self.grant_due_periods();
        self.finish();
    }

    /// Expires every active hold past its expiry, returning its reservations.
    pub fn expire_due_holds(&mut self) {
        let due: Vec<HoldId> = self
            .holds
            .values()
            .filter(|hold| hold.is_due(self.now))
            .map(|hold| hold.hold_id)
            .collect();
        for hold_id in due {
            self.release_reservations(hold_id);
            let now = self.now;
            let hold = self.hold_mut(hold_id);
            hold.status = HoldStatus::Expired;
            hold.resolved_at = Some(now);
        }
    }

    /// Returns every reservation of a hold to its grant; returns what was given back.
    /// Allocations already fully captured are skipped: their grant may be spent and unloaded.
    pub(super) fn release_reservations(&mut self, hold_id: HoldId) -> Credits {
        let returned: Vec<(GrantId, Credits)> = self
            .hold_mut(hold_id)
            .allocations
            .iter_mut()
            .filter(|allocation| allocation.reserved.is_positive())
            .map(|allocation| {
                let amount = allocation.reserved;
                allocation.reserved = Credits::ZERO;
                (allocation.grant_id, amount)
            })
            .collect();
        for (grant_id, amount) in &returned {
            let grant = self.grant_mut(*grant_id);
            grant.reserved -= *amount;
            grant.remaining += *amount;
            let refs = Refs {
                grant_id: Some(*grant_id),
                hold_id: Some(hold_id),
                ..Refs::default()
            };
            self.post(
                MovementKind::Release,
                LedgerAccount::Held,
                LedgerAccount::Available,
                *amount,
                refs,
            );
        }
        returned.iter().map(|(_, amount)| *amount).sum()
    }

    /// Reserves `amount` for `hold_id` from spendable grants in consumption order; the caller
    /// has checked it is available.
    pub(super) fn reserve(&mut self, hold_id: HoldId, amount: Credits) {
        let drawn = self.draw_spendable(
            amount,
            MovementKind::Hold,
            LedgerAccount::Held,
            Some(hold_id),
            None,
        );
        let drawn_total: Credits = drawn.iter().map(|(_, take)| *take).sum();
        assert_eq!(
            drawn_total, amount,
            "reserve was called without enough available credits"
        );
        for (grant_id, take) in drawn {
            self.grant_mut(grant_id).reserved += take;
            let hold = self.hold_mut(hold_id);
            match hold
                .allocations
                .iter_mut()
                .find(|allocation| allocation.grant_id == grant_id)
            {
                Some(allocation) => allocation.reserved += take,
                None => hold.allocations.push(AllocationState {
                    grant_id,
                    reserved: take,
                    captured: Credits::ZERO,
                }),
            }
        }
    }

    /// Takes up to `amount` from spendable grants in consumption order, posting each take from
    /// the grant's available credits to `to`; returns what it took from which grant.
    pub(super) fn draw_spendable(
        &mut self,
        amount: Credits,
        kind: MovementKind,
        to: LedgerAccount,
        hold_id: Option<HoldId>,
        settlement_id: Option<SettlementId>,
    ) -> Vec<(GrantId, Credits)> {
        let mut left = amount;
        let mut drawn = Vec::new();
        for grant_id in self.spendable_in_burn_order() {
            if !left.is_positive() {
                break;
            }
            let grant = self.grant_mut(grant_id);
            let take = grant.remaining.min(left);
            grant.remaining -= take;
            left -= take;
            let refs = Refs {
                grant_id: Some(grant_id),
                hold_id,
                settlement_id,
                refund_id: None,
            };
            self.post(kind, LedgerAccount::Available, to, take, refs);
            drawn.push((grant_id, take));
        }
        drawn
    }

    /// Housekeeping only: expire due holds and grants, pay debt. For the background sweeper,
    /// and for answers that change nothing else (a Grant repeating an `external_ref`).
    pub fn sweep(&mut self) {
        self.begin();
    }

    /// Posts breakage of expired grants and pays debt from spendable credits.
    pub(super) fn finish(&mut self) {
        let expired: Vec<GrantId> = self
            .grants
            .values()
            .filter(|grant| grant.expired_at(self.now) && grant.remaining.is_positive())
            .map(|grant| grant.grant_id)
            .collect();
        self.warn_expiring();
        for grant_id in expired {
            let grant = self.grant_mut(grant_id);
            let amount = grant.remaining;
            grant.remaining = Credits::ZERO;
            let refs = Refs {
                grant_id: Some(grant_id),
                ..Refs::default()
            };
            self.post(
                MovementKind::Expiry,
                LedgerAccount::Available,
                LedgerAccount::Expired,
                amount,
                refs,
            );
        }
        if self.account.debt.is_positive() {
            let debt = self.account.debt;
            let drawn = self.draw_spendable(
                debt,
                MovementKind::DebtRepayment,
                LedgerAccount::Debt,
                None,
                None,
            );
            let repaid: Credits = drawn.iter().map(|(_, take)| *take).sum();
            if repaid.is_positive() {
                self.account.debt -= repaid;
                self.account_changed = true;
            }
        }
    }
}
