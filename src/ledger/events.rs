//! Events: what a transaction's changes to one book are worth telling, derived from the book as
//! loaded and as left (the journal, the holds and grants), so no operation can forget one and
//! an event exists exactly when its change is written.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use super::book::AccountBook;
use super::journal::MovementKind;
use super::model::{GrantState, HoldStatus};
use crate::ids::{GrantId, SettlementId};
use crate::money::Credits;

/// The kinds of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// Available credits fell below the account's low-balance threshold.
    BalanceLow,
    /// A grant with credits left expires within the warning horizon.
    CreditsExpiring,
    /// A grant's unspent credits expired.
    CreditsExpired,
    /// A hold reached its expiry without Settle or Release.
    HoldExpired,
    /// A settlement left the account owing credits.
    DebtIncurred,
    /// A grant added credits.
    GrantAdded,
}

impl EventType {
    /// Every type, in wire order.
    pub const ALL: [EventType; 6] = [
        EventType::BalanceLow,
        EventType::CreditsExpiring,
        EventType::CreditsExpired,
        EventType::HoldExpired,
        EventType::DebtIncurred,
        EventType::GrantAdded,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::BalanceLow => "BALANCE_LOW",
            EventType::CreditsExpiring => "CREDITS_EXPIRING",
            EventType::CreditsExpired => "CREDITS_EXPIRED",
            EventType::HoldExpired => "HOLD_EXPIRED",
            EventType::DebtIncurred => "DEBT_INCURRED",
            EventType::GrantAdded => "GRANT_ADDED",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// An event before it has an id and a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDraft {
    /// What happened.
    pub event_type: EventType,
    /// What a consumer needs without another call.
    pub attributes: BTreeMap<&'static str, String>,
}

/// The book as loaded, for the events that compare before and after.
#[derive(Debug, Clone, Default)]
pub(super) struct LoadedBalance {
    /// Credits of the grants in effect as loaded, expired ones whose breakage was not yet
    /// posted included: the balance the last transaction left.
    pub(super) available: Credits,
    /// The account's threshold as loaded.
    pub(super) threshold: Option<Credits>,
    /// The grants loaded.
    pub(super) grant_ids: std::collections::BTreeSet<GrantId>,
}

/// The balance stored grants hold at `now`: those in effect, expired ones whose breakage is
/// not posted yet included (BALANCE_LOW compares it as loaded and as left).
pub(super) fn stored_available<'a>(
    grants: impl IntoIterator<Item = &'a GrantState>,
    now: DateTime<Utc>,
) -> Credits {
    grants
        .into_iter()
        .filter(|grant| grant.effective_at <= now)
        .map(|grant| grant.remaining)
        .sum()
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn grant_attributes(grant: &GrantState) -> BTreeMap<&'static str, String> {
    let mut attributes = BTreeMap::from([
        ("grant_id", grant.grant_id.to_string()),
        ("source", grant.source.as_str().to_owned()),
        ("priority", grant.priority.to_string()),
    ]);
    if let Some(expires_at) = grant.expires_at {
        attributes.insert("expires_at", time(expires_at));
    }
    if let Some(external_ref) = &grant.external_ref {
        attributes.insert("external_ref", external_ref.clone());
    }
    attributes
}

impl AccountBook {
    /// The balance the loaded rows say, at the book's time.
    pub(super) fn stored_available(&self) -> Credits {
        stored_available(self.grants.values(), self.now)
    }

    /// Marks the live grants expiring within the warning horizon (and not yet expired) as
    /// warned; [`Self::events`] tells of each once.
    pub(super) fn warn_expiring(&mut self) {
        let Some(horizon) = self.expiry_warning else {
            return;
        };
        let now = self.now;
        let due: Vec<GrantId> = self
            .grants
            .values()
            .filter(|grant| {
                !grant.expiry_warned
                    && (grant.remaining.is_positive() || grant.reserved.is_positive())
                    && grant
                        .expires_at
                        .is_some_and(|at| at > now && at <= now + horizon)
            })
            .map(|grant| grant.grant_id)
            .collect();
        for grant_id in due {
            self.grant_mut(grant_id).expiry_warned = true;
            self.warned.push(grant_id);
        }
    }

    /// The events of what this book changed, in a fixed order: grants added, holds expired,
    /// credits expired, credits expiring, debt incurred, then the balance falling low.
    pub(super) fn events(&self) -> Vec<EventDraft> {
        let available = self.stored_available();
        let mut events = Vec::new();
        let mut event = |event_type, attributes| {
            events.push(EventDraft {
                event_type,
                attributes,
            });
        };
        for grant in self
            .changed_grants
            .iter()
            .filter(|id| !self.loaded.grant_ids.contains(id))
            .filter_map(|id| self.grants.get(id))
        {
            let mut attributes = grant_attributes(grant);
            attributes.insert("amount", grant.amount.to_string());
            attributes.insert("effective_at", time(grant.effective_at));
            attributes.insert("available", available.to_string());
            event(EventType::GrantAdded, attributes);
        }
        for hold in self
            .changed_holds
            .iter()
            .filter_map(|id| self.holds.get(id))
        {
            let was_expired = self
                .loaded_holds
                .get(&hold.hold_id)
                .is_some_and(|(status, _)| *status == HoldStatus::Expired);
            if hold.status == HoldStatus::Expired && !was_expired {
                let mut attributes = BTreeMap::from([
                    ("hold_id", hold.hold_id.to_string()),
                    ("amount", hold.amount.to_string()),
                    ("captured", hold.captured.to_string()),
                    ("expires_at", time(hold.expires_at)),
                ]);
                for (name, value) in [
                    ("task_type", &hold.meta.task_type),
                    ("model", &hold.meta.model),
                    ("project", &hold.meta.project),
                    ("run_id", &hold.meta.run_id),
                ] {
                    if !value.is_empty() {
                        attributes.insert(name, value.clone());
                    }
                }
                event(EventType::HoldExpired, attributes);
            }
        }
        let mut expired: BTreeMap<GrantId, Credits> = BTreeMap::new();
        let mut debts: BTreeMap<SettlementId, (Credits, Option<String>)> = BTreeMap::new();
        for posting in self
            .postings
            .iter()
            .filter(|posting| posting.amount.is_positive())
        {
            match (posting.kind, posting.grant_id, posting.settlement_id) {
                (MovementKind::Expiry, Some(grant_id), _) => {
                    *expired.entry(grant_id).or_default() += posting.amount;
                }
                (MovementKind::Debt, _, Some(settlement_id)) => {
                    let entry = debts
                        .entry(settlement_id)
                        .or_insert((Credits::ZERO, posting.hold_id.map(|id| id.to_string())));
                    entry.0 += posting.amount;
                }
                _ => {}
            }
        }
        for (grant_id, amount) in expired {
            if let Some(grant) = self.grants.get(&grant_id) {
                let mut attributes = grant_attributes(grant);
                attributes.insert("amount", amount.to_string());
                attributes.insert("available", available.to_string());
                event(EventType::CreditsExpired, attributes);
            }
        }
        for grant in self.warned.iter().filter_map(|id| self.grants.get(id)) {
            let mut attributes = grant_attributes(grant);
            attributes.insert("amount", (grant.remaining + grant.reserved).to_string());
            attributes.insert("held", grant.reserved.to_string());
            event(EventType::CreditsExpiring, attributes);
        }
        for (settlement_id, (amount, hold_id)) in debts {
            let mut attributes = BTreeMap::from([
                ("settlement_id", settlement_id.to_string()),
                ("amount", amount.to_string()),
                ("debt", self.account.debt.to_string()),
            ]);
            if let Some(hold_id) = hold_id {
                attributes.insert("hold_id", hold_id);
            }
            event(EventType::DebtIncurred, attributes);
        }
        let low = |available: Credits, threshold: Option<Credits>| {
            threshold.is_some_and(|threshold| available < threshold)
        };
        let threshold = self.account.low_balance_threshold;
        if low(available, threshold) && !low(self.loaded.available, self.loaded.threshold) {
            event(
                EventType::BalanceLow,
                BTreeMap::from([
                    ("available", available.to_string()),
                    (
                        "threshold",
                        threshold.map(|t| t.to_string()).unwrap_or_default(),
                    ),
                    ("debt", self.account.debt.to_string()),
                ]),
            );
        }
        events
    }
}
