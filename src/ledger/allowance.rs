//! Allowances: `N credits every DAY | MONTH`, each period's credits one grant that expires
//! when the period ends (no rollover). A period's grant is made the first time the account's
//! book is opened in that period (no cron), at most once: the rule remembers the last period it
//! granted, under the account lock. Idle periods are not back-filled; only the current one is
//! granted.

use chrono::{DateTime, Utc};

use super::book::AccountBook;
use super::journal::{LedgerAccount, MovementKind, Refs};
use super::model::{GrantSource, GrantState};
use super::period::{Period, Recurrence};
use crate::ids::{AllowanceId, GrantId};
use crate::money::Credits;

/// A recurring grant rule, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowanceState {
    /// The rule.
    pub allowance_id: AllowanceId,
    /// Its name, unique per account.
    pub name: String,
    /// The source of its grants (their consumption priority follows it).
    pub source: GrantSource,
    /// Credits per period.
    pub amount: Credits,
    /// Its periods.
    pub recurrence: Recurrence,
    /// False pauses it: no new period is granted.
    pub enabled: bool,
    /// Periods that start before this belong to the rule it replaced (or to no rule).
    pub effective_from: DateTime<Utc>,
    /// Start of the last period it granted.
    pub granted_period: Option<DateTime<Utc>>,
    /// End of the last period it (or a rule it replaced) granted: no later rule of this name
    /// grants a period starting before it.
    pub granted_until: Option<DateTime<Utc>>,
    /// When it was first set.
    pub created_at: DateTime<Utc>,
}

/// The grant an allowance made for one period: the row that makes a period granted once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowanceGrant {
    /// The rule.
    pub allowance_id: AllowanceId,
    /// The period's first instant.
    pub period_start: DateTime<Utc>,
    /// The grant made.
    pub grant_id: GrantId,
}

impl AllowanceState {
    /// The period to grant at `now`, if one is owed: the rule is enabled, the current period
    /// starts at or after `effective_from` and after every period granted under the name.
    pub fn due_period(&self, now: DateTime<Utc>) -> Option<Period> {
        if !self.enabled {
            return None;
        }
        let period = self.recurrence.period_at(now)?;
        let granted = self
            .granted_period
            .is_some_and(|granted| granted >= period.start);
        let after_granted = self.granted_until.is_none_or(|until| period.start >= until);
        (period.start >= self.effective_from && !granted && after_granted).then_some(period)
    }

    /// The earliest time the rule may owe a period: a period is owed only once it has started,
    /// and it must start at or after both when the rule takes effect and the end of the last
    /// period granted under its name ([`due_period`](Self::due_period)). `None` while paused.
    pub fn due_from(&self) -> Option<DateTime<Utc>> {
        self.enabled.then(|| {
            self.granted_until
                .map_or(self.effective_from, |until| until.max(self.effective_from))
        })
    }

    /// When a rule set at `now` over `previous` (the rule of the same name, if any) starts
    /// granting: after the last period granted under the name, if any (a replacement set while
    /// its predecessor's period is under way, and granted, takes effect from the next one); else
    /// with the period under way (or its first, when its anchor is ahead). So no time is
    /// granted twice, a period once granted is never changed, and nothing granted is skipped.
    pub fn effective_from_when_set(
        previous: Option<&AllowanceState>,
        recurrence: &Recurrence,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        if let Some(until) = previous.and_then(|previous| previous.granted_until) {
            return until;
        }
        recurrence
            .period_at(now)
            .map(|period| period.start)
            .or_else(|| recurrence.start_of(0))
            .unwrap_or(now)
    }

    /// The grant for `period`, made at `now`: its credits count from the period's start and
    /// expire at its end.
    fn grant_for(&self, period: &Period, grant_id: GrantId, now: DateTime<Utc>) -> GrantState {
        GrantState {
            grant_id,
            source: self.source,
            priority: self.source.default_priority(),
            effective_at: period.start,
            expires_at: Some(period.end),
            created_at: now,
            amount: self.amount,
            remaining: self.amount,
            reserved: Credits::ZERO,
            external_ref: None,
            expiry_warned: false,
        }
    }
}

/// A SetAllowance: the rule named `name`, created or replacing the one of that name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowanceRule {
    /// The id a new rule gets (a replaced one keeps its own).
    pub new_id: AllowanceId,
    /// Its name, unique per account.
    pub name: String,
    /// The source of its grants.
    pub source: GrantSource,
    /// Credits per period.
    pub amount: Credits,
    /// Its periods.
    pub recurrence: Recurrence,
    /// False pauses it.
    pub enabled: bool,
}

impl AccountBook {
    /// Creates the rule, or replaces the one of the same name; returns it as stored. The
    /// current period is granted first under the old rule (if it is owed one), so a replacement
    /// takes effect from the next period; a new rule (or a paused one resumed, if nothing was
    /// granted for the period under way) grants the current period at once.
    pub fn set_allowance(&mut self, rule: &AllowanceRule) -> AllowanceState {
        debug_assert!(
            self.allowances_complete,
            "a rule is set only on a book with all the account's rules"
        );
        self.begin();
        let now = self.now;
        let index = self
            .allowances
            .iter()
            .position(|allowance| allowance.name == rule.name);
        let previous = index.map(|index| &self.allowances[index]);
        let effective_from =
            AllowanceState::effective_from_when_set(previous, &rule.recurrence, now);
        let state = AllowanceState {
            allowance_id: previous.map_or(rule.new_id, |previous| previous.allowance_id),
            name: rule.name.clone(),
            source: rule.source,
            amount: rule.amount,
            recurrence: rule.recurrence,
            enabled: rule.enabled,
            effective_from,
            granted_period: previous.and_then(|previous| previous.granted_period),
            granted_until: previous.and_then(|previous| previous.granted_until),
            created_at: previous.map_or(now, |previous| previous.created_at),
        };
        self.changed_allowances.insert(state.allowance_id);
        match index {
            Some(index) => self.allowances[index] = state.clone(),
            None => self.allowances.push(state.clone()),
        }
        self.grant_due_periods();
        self.finish();
        self.allowances
            .iter()
            .find(|allowance| allowance.allowance_id == state.allowance_id)
            .cloned()
            .unwrap_or(state)
    }

    /// The book with the account's allowances, granted on the next operation.
    pub fn with_allowances(mut self, allowances: Vec<AllowanceState>) -> Self {
        self.allowances = allowances;
        self.allowances_complete = true;
        self
    }

    /// The book with those of the account's allowances that may owe a period at its `now`
    /// (every rule whose [`AllowanceState::due_from`] has come): enough to grant what is owed,
    /// not to set a rule.
    pub fn with_due_allowances(mut self, allowances: Vec<AllowanceState>) -> Self {
        self.allowances = allowances;
        self
    }

    /// The account's allowances.
    pub fn allowances(&self) -> &[AllowanceState] {
        &self.allowances
    }

    /// Grants every period owed at the book's `now`, posted like any grant.
    pub(super) fn grant_due_periods(&mut self) {
        let now = self.now;
        let due: Vec<(usize, Period)> = self
            .allowances
            .iter()
            .enumerate()
            .filter_map(|(index, allowance)| allowance.due_period(now).map(|due| (index, due)))
            .collect();
        for (index, period) in due {
            let grant_id = GrantId::now_v7();
            let allowance = &mut self.allowances[index];
            let grant = allowance.grant_for(&period, grant_id, now);
            allowance.granted_period = Some(period.start);
            allowance.granted_until = Some(period.end);
            self.changed_allowances.insert(allowance.allowance_id);
            self.allowance_grants.push(AllowanceGrant {
                allowance_id: allowance.allowance_id,
                period_start: period.start,
                grant_id,
            });
            let amount = grant.amount;
            self.grants.insert(grant_id, grant);
            self.changed_grants.insert(grant_id);
            self.post(
                MovementKind::Grant,
                LedgerAccount::Issued,
                LedgerAccount::Available,
                amount,
                Refs {
                    grant_id: Some(grant_id),
                    ..Refs::default()
                },
            );
        }
    }
}
