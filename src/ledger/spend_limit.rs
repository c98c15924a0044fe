//! Spend limits: a cap per period on what one member, API key or project of an account may
//! spend. Periods are UTC: a day from midnight UTC, a month from the 1st, or the whole life of
//! the limit (TOTAL).
//!
//! The counters follow a hold through its life, under the account lock: a hold reserves its
//! amount against every limit of its scope when it is authorized (refused if the limit's spent
//! plus reserved plus the amount would pass it); a capture moves the hold's reservation to spent
//! (all of what was captured, above-hold usage too); a release or expiry returns it; a refund of a
//! capture made in the current period takes it back off spent. A new period starts spent at zero;
//! reservations of holds still active carry over, so a limit is never passed by holds that
//! straddle a period boundary.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::period::{Every, Recurrence};

use crate::ids::SpendLimitId;
use crate::money::Credits;

/// What a limit caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeKind {
    /// An organisation member.
    Member,
    /// An API key.
    ApiKey,
    /// A project.
    Project,
}

impl ScopeKind {
    /// Its name in ErrorInfo metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Member => "MEMBER",
            ScopeKind::ApiKey => "API_KEY",
            ScopeKind::Project => "PROJECT",
        }
    }

    /// The kind named `name` (as [`as_str`](Self::as_str) spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        [ScopeKind::Member, ScopeKind::ApiKey, ScopeKind::Project]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// One member, key or project.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpendScope {
    /// What kind.
    pub kind: ScopeKind,
    /// The platform's id for it (1–255 characters).
    pub id: String,
}

/// How often a limit resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitPeriod {
    /// Each UTC day.
    Day,
    /// Each UTC month.
    Month,
    /// Never.
    Total,
}

impl LimitPeriod {
    /// Its name in ErrorInfo metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitPeriod::Day => "DAY",
            LimitPeriod::Month => "MONTH",
            LimitPeriod::Total => "TOTAL",
        }
    }

    /// The period named `name` (as [`as_str`](Self::as_str) spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        [LimitPeriod::Day, LimitPeriod::Month, LimitPeriod::Total]
            .into_iter()
            .find(|period| period.as_str() == name)
    }

    /// The first instant of the period that contains `at`: the allowances' calendar
    /// ([`Recurrence`]) in UTC, counted from [`FIRST_DAY`], where TOTAL starts.
    pub fn start_at(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let every = match self {
            LimitPeriod::Day => Every::Day,
            LimitPeriod::Month => Every::Month,
            LimitPeriod::Total => return first_instant(),
        };
        let calendar = Recurrence {
            every,
            anchor: FIRST_DAY,
            zone: Tz::UTC,
        };
        calendar
            .period_at(at)
            .map_or_else(first_instant, |period| period.start)
    }
}

/// The first day the API accepts (year 1), where a TOTAL period starts: unlike the earliest
/// time the date type holds, a time the database stores.
pub const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(1, 1, 1) {
    Some(day) => day,
    None => NaiveDate::MIN,
};

/// Midnight UTC of [`FIRST_DAY`].
pub fn first_instant() -> DateTime<Utc> {
    FIRST_DAY.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// A limit and its counters for the current period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendLimitState {
    /// The limit.
    pub spend_limit_id: SpendLimitId,
    /// What it caps.
    pub scope: SpendScope,
    /// How often it resets.
    pub period: LimitPeriod,
    /// Most credits per period.
    pub limit: Credits,
    /// Captured in the current period.
    pub spent: Credits,
    /// Reserved by active holds of the scope.
    pub reserved: Credits,
    /// Start of the period `spent` counts.
    pub period_start: DateTime<Utc>,
    /// When the limit was set: captures before it are not counted.
    pub counted_from: DateTime<Utc>,
}

/// A hold refused by a limit, with the figures behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitReached {
    /// The scope.
    pub scope: SpendScope,
    /// The period.
    pub period: LimitPeriod,
    /// The limit.
    pub limit: Credits,
    /// Spent this period.
    pub spent: Credits,
    /// Reserved by active holds.
    pub reserved: Credits,
}

impl SpendLimitState {
    /// A limit set at `now`, with nothing spent or reserved yet.
    pub fn new(
        spend_limit_id: SpendLimitId,
        scope: SpendScope,
        period: LimitPeriod,
        limit: Credits,
        now: DateTime<Utc>,
    ) -> Self {
        SpendLimitState {
            spend_limit_id,
            scope,
            period,
            limit,
            spent: Credits::ZERO,
            reserved: Credits::ZERO,
            period_start: period.start_at(now),
            counted_from: now,
        }
    }

    /// Starts the period under way at `now`: spent back to zero, reservations kept.
    pub fn roll(&mut self, now: DateTime<Utc>) {
        let start = self.period.start_at(now);
        if start > self.period_start {
            self.period_start = start;
            self.spent = Credits::ZERO;
        }
    }

    /// Whether a hold of `amount` fits (call [`roll`](Self::roll) first).
    pub fn check(&self, amount: Credits) -> Result<(), LimitReached> {
        if self.spent + self.reserved + amount <= self.limit {
            return Ok(());
        }
        Err(LimitReached {
            scope: self.scope.clone(),
            period: self.period,
            limit: self.limit,
            spent: self.spent,
            reserved: self.reserved,
        })
    }

    /// A hold of `amount` was authorized (or raised by `amount`).
    pub fn reserve(&mut self, amount: Credits) {
        self.reserved += amount;
    }

    /// A capture: the hold's `reservation` leaves reserved, and what was `captured` (which may
    /// be more or less) becomes spent.
    pub fn capture(&mut self, reservation: Credits, captured: Credits) {
        self.reserved = (self.reserved - reservation).max(Credits::ZERO);
        self.spent += captured;
    }

    /// A release or expiry: the hold's `reservation` is given back.
    pub fn release(&mut self, reservation: Credits) {
        self.reserved = (self.reserved - reservation).max(Credits::ZERO);
    }

    /// A refund of `amount` of a capture made at `captured_at`: taken off spent when that capture
    /// counted in the current period (an earlier period's spend is closed, and a capture made
    /// before the limit was set never counted).
    pub fn refund(&mut self, amount: Credits, captured_at: DateTime<Utc>) {
        if captured_at >= self.period_start && captured_at >= self.counted_from {
            self.spent = (self.spent - amount).max(Credits::ZERO);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn alice_limit(period: LimitPeriod, limit: Credits, now: DateTime<Utc>) -> SpendLimitState {
        SpendLimitState::new(
            SpendLimitId::from_uuid(uuid::Uuid::nil()),
            member(),
            period,
            limit,
            now,
        )
    }

    fn member() -> SpendScope {
        SpendScope {
            kind: ScopeKind::Member,
            id: "alice".to_owned(),
        }
    }

    #[test]
    fn periods_start_at_utc_midnight_and_the_first_of_the_month() {
        let now = at("2025-02-28T23:59:59Z");
        assert_eq!(LimitPeriod::Day.start_at(now), at("2025-02-28T00:00:00Z"));
        assert_eq!(LimitPeriod::Month.start_at(now), at("2025-02-01T00:00:00Z"));
        assert_eq!(LimitPeriod::Total.start_at(now), first_instant());
    }

    #[test]
    fn a_fourth_credit_passes_a_limit_of_three() {
        let now = at("2025-03-10T12:00:00Z");
        let mut limit = alice_limit(LimitPeriod::Day, Credits::whole(3), now);
        for _ in 0..3 {
            limit.check(Credits::whole(1)).unwrap();
            limit.reserve(Credits::whole(1));
        }
        let refused = limit.check(Credits::whole(1)).unwrap_err();
        assert_eq!(
            (refused.spent, refused.reserved),
            (Credits::ZERO, Credits::whole(3))
        );
        limit.capture(Credits::whole(1), Credits::whole(1));
        limit.release(Credits::whole(1));
        assert!(
            limit.check(Credits::whole(1)).is_ok(),
            "a released credit is free again"
        );
        assert!(
            limit.check(Credits::whole(2)).is_err(),
            "a captured one is not"
        );
    }

    #[test]
    fn the_decline_names_the_scope_period_and_figures() {
        let now = at("2025-03-10T12:00:00Z");
        let mut limit = alice_limit(LimitPeriod::Day, Credits::whole(3), now);
        limit.reserve(Credits::whole(3));
        let decline =
            super::super::Decline::SpendLimitReached(limit.check(Credits::whole(1)).unwrap_err());
        assert_eq!(decline.reason().as_str(), "SPEND_LIMIT_REACHED");
        assert_eq!(
            decline.to_string(),
            "the DAY spend limit of MEMBER \"alice\" is 3: 0 spent and 3 reserved this period"
        );
        let metadata: Vec<(String, String)> = decline.metadata();
        let keys: Vec<&str> = metadata.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            ["scope", "scope_id", "period", "limit", "spent", "reserved"]
        );
        assert_eq!(metadata[1].1, "alice");
    }

    #[test]
    fn a_new_day_clears_spent_and_keeps_reservations_of_holds_still_running() {
        let now = at("2025-03-10T23:00:00Z");
        let mut limit = alice_limit(LimitPeriod::Day, Credits::whole(3), now);
        limit.reserve(Credits::whole(2));
        limit.capture(Credits::whole(1), Credits::whole(1));
        limit.roll(now + Duration::hours(2));
        assert_eq!(limit.period_start, at("2025-03-11T00:00:00Z"));
        assert_eq!(
            (limit.spent, limit.reserved),
            (Credits::ZERO, Credits::whole(1))
        );
        assert!(limit.check(Credits::whole(3)).is_err());
    }

    #[test]
    fn above_hold_usage_counts_and_a_refund_counts_only_in_its_own_period() {
        let now = at("2025-03-10T12:00:00Z");
        let mut limit = alice_limit(LimitPeriod::Month, Credits::whole(10), now);
        limit.reserve(Credits::whole(2));
        limit.capture(Credits::whole(2), Credits::whole(5));
        assert_eq!(
            (limit.spent, limit.reserved),
            (Credits::whole(5), Credits::ZERO)
        );
        limit.refund(Credits::whole(1), now);
        assert_eq!(limit.spent, Credits::whole(4));
        limit.roll(at("2025-04-01T00:00:00Z"));
        limit.refund(Credits::whole(1), now);
        assert_eq!(
            limit.spent,
            Credits::ZERO,
            "March's refund does not lift April's spend"
        );
    }

    proptest! {
        /// Holds checked before they reserve, and captures no larger than their holds, never
        /// take spent plus reserved past the limit, across period boundaries.
        #[test]
        fn checked_holds_never_pass_the_limit(
            steps in prop::collection::vec((0_u8..4, 1_i64..5, 0_i64..8 * 3600), 1..200),
        ) {
            let mut now = at("2025-03-10T20:00:00Z");
            let mut limit = SpendLimitState::new(SpendLimitId::from_uuid(uuid::Uuid::nil()), member(), LimitPeriod::Day, Credits::whole(7), now);
            let mut holds: Vec<Credits> = Vec::new();
            for (action, amount, later) in steps {
                now += Duration::seconds(later);
                limit.roll(now);
                let amount = Credits::whole(amount);
                match action {
                    0 | 1 => {
                        if limit.check(amount).is_ok() {
                            limit.reserve(amount);
                            holds.push(amount);
                        }
                    }
                    2 => if let Some(hold) = holds.pop() {
                        limit.capture(hold, hold.min(amount));
                    },
                    _ => if let Some(hold) = holds.pop() {
                        limit.release(hold);
                    },
                }
                prop_assert_eq!(limit.reserved, holds.iter().copied().sum::<Credits>());
                prop_assert!(limit.spent + limit.reserved <= limit.limit);
            }
        }
    }
}
