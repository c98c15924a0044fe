//! Calendar periods: the days or months of an allowance (from an anchor date, in an IANA time
//! zone) and of a spend limit (UTC). Pure arithmetic on the time-zone database; no clock.
//!
//! A period starts at local midnight of its date. A monthly period restarts on the anchor's day
//! of month, or on the last day of a shorter month (an anchor on the 31st falls on 30 April and
//! 28 or 29 February), and keeps its anchor's day after that (31 March follows 28 February).
//! Where local midnight does not exist (a daylight-saving gap at midnight) the period starts at
//! the first instant of that local date; where it exists twice, at the first.

use chrono::{DateTime, Datelike, Days, LocalResult, Months, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// How often a period restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Each local day.
    Day,
    /// Each month, on the anchor's day of month.
    Month,
}

impl Every {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Every::Day => "DAY",
            Every::Month => "MONTH",
        }
    }

    /// The value stored as `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Every::Day, Every::Month]
            .into_iter()
            .find(|every| every.as_str() == name)
    }
}

/// A recurrence: periods of one length from an anchor date, in a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recurrence {
    /// How often.
    pub every: Every,
    /// The local date the first period starts on.
    pub anchor: NaiveDate,
    /// Where midnight is.
    pub zone: Tz,
}

/// One period: `start <= t < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Its number: 0 is the anchor's period.
    pub index: u32,
    /// Its first instant.
    pub start: DateTime<Utc>,
    /// The first instant of the next one.
    pub end: DateTime<Utc>,
}

/// Why a time zone or anchor date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// Not an IANA zone name.
    #[error("unknown time zone; expected an IANA name such as \"Europe/Berlin\" or \"UTC\"")]
    UnknownZone,
    /// Not a calendar date.
    #[error("not a date; expected YYYY-MM-DD")]
    BadDate,
}

/// Most periods counted from an anchor (about 11 million years of days): keeps every
/// computed date far inside what the date type holds.
const MAX_INDEX: u32 = 4_000_000_000;

/// The IANA zone named `text` (exact spelling, as in the database).
pub fn parse_zone(text: &str) -> Result<Tz, PeriodError> {
    text.parse::<Tz>().map_err(|_| PeriodError::UnknownZone)
}

/// A `YYYY-MM-DD` date between years 1 and 9999.
pub fn parse_date(text: &str) -> Result<NaiveDate, PeriodError> {
    let well_formed = text.len() == 10
        && text.bytes().enumerate().all(|(at, byte)| {
            matches!(at, 4 | 7) == (byte == b'-') && (byte == b'-' || byte.is_ascii_digit())
        });
    if !well_formed {
        return Err(PeriodError::BadDate);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|date| date.year() >= 1)
        .ok_or(PeriodError::BadDate)
}

impl Recurrence {
    /// The period that contains `at`; `None` before the first one starts.
    pub fn period_at(&self, at: DateTime<Utc>) -> Option<Period> {
        let local = at.with_timezone(&self.zone).date_naive();
        let guess = match self.every {
            Every::Day => local.signed_duration_since(self.anchor).num_days(),
            Every::Month => {
                let months =
                    |date: NaiveDate| i64::from(date.year()) * 12 + i64::from(date.month0());
                months(local) - months(self.anchor)
            }
        };
        // The local date can be one period ahead of the period's start (a start moved past
        // midnight by a gap); never behind.
        let mut index = u32::try_from(guess.max(0)).ok()?.min(MAX_INDEX);
        loop {
            let start = self.start_of(index)?;
            if start <= at {
                let end = self.start_of(index + 1)?;
                return (at < end).then_some(Period { index, start, end });
            }
            index = index.checked_sub(1)?;
        }
    }

    /// The first instant of period `index`.
    pub fn start_of(&self, index: u32) -> Option<DateTime<Utc>> {
        let date = match self.every {
            Every::Day => self.anchor.checked_add_days(Days::new(u64::from(index)))?,
            // Months are added to the anchor, never chained, so a short month does not pull
            // later periods off the anchor's day.
            Every::Month => self.anchor.checked_add_months(Months::new(index))?,
        };
        first_instant(self.zone, date)
    }
}

/// The first instant of local `date` in `zone`.
fn first_instant(zone: Tz, date: NaiveDate) -> Option<DateTime<Utc>> {
    let midnight = date.and_time(NaiveTime::MIN);
    match zone.from_local_datetime(&midnight) {
        LocalResult::Single(start) | LocalResult::Ambiguous(start, _) => {
            Some(start.with_timezone(&Utc))
        }
        // Midnight falls in a gap: the day starts when the gap ends. Gaps are whole minutes
        // and shorter than a day.
        LocalResult::None => (1..=24 * 60).find_map(|minute| {
            let later = midnight + chrono::Duration::minutes(minute);
            zone.from_local_datetime(&later)
                .earliest()
                .map(|start| start.with_timezone(&Utc))
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;

    fn date(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn monthly(anchor: &str, zone: &str) -> Recurrence {
        Recurrence {
            every: Every::Month,
            anchor: date(anchor),
            zone: parse_zone(zone).unwrap(),
        }
    }

    fn daily(anchor: &str, zone: &str) -> Recurrence {
        Recurrence {
            every: Every::Day,
            ..monthly(anchor, zone)
        }
    }

    #[test]
    fn a_monthly_anchor_on_the_31st_falls_on_the_last_day_of_shorter_months() {
        let plan = monthly("2025-01-31", "UTC");
        let starts: Vec<String> = (0..5)
            .map(|index| plan.start_of(index).unwrap().date_naive().to_string())
            .collect();
        assert_eq!(
            starts,
            [
                "2025-01-31",
                "2025-02-28",
                "2025-03-31",
                "2025-04-30",
                "2025-05-31"
            ]
        );
        let february = plan.period_at(utc("2025-03-15T00:00:00Z")).unwrap();
        assert_eq!(february.index, 1);
        assert_eq!(february.end, utc("2025-03-31T00:00:00Z"));
    }

    #[test]
    fn a_leap_day_anchor_keeps_its_day_in_leap_years_only() {
        let plan = monthly("2024-02-29", "UTC");
        assert_eq!(plan.start_of(12).unwrap(), utc("2025-02-28T00:00:00Z"));
        assert_eq!(plan.start_of(13).unwrap(), utc("2025-03-29T00:00:00Z"));
        assert_eq!(plan.start_of(48).unwrap(), utc("2028-02-29T00:00:00Z"));
    }

    #[test]
    fn days_across_daylight_saving_are_23_and_25_hours_long() {
        let plan = daily("2025-01-01", "America/New_York");
        let spring = plan.period_at(utc("2025-03-09T12:00:00Z")).unwrap();
        assert_eq!(spring.start, utc("2025-03-09T05:00:00Z"));
        assert_eq!(spring.end - spring.start, Duration::hours(23));
        let autumn = plan.period_at(utc("2025-11-02T12:00:00Z")).unwrap();
        assert_eq!(autumn.start, utc("2025-11-02T04:00:00Z"));
        assert_eq!(autumn.end - autumn.start, Duration::hours(25));
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_when_the_gap_ends() {
        // Chile moved its clocks from 00:00 to 01:00 on 2022-09-11.
        let plan = daily("2022-09-01", "America/Santiago");
        let day = plan.period_at(utc("2022-09-11T12:00:00Z")).unwrap();
        assert_eq!(day.start, utc("2022-09-11T04:00:00Z"));
        assert_eq!(day.end, utc("2022-09-12T03:00:00Z"));
        let before = plan.period_at(utc("2022-09-11T03:59:59Z")).unwrap();
        assert_eq!(before.end, day.start);
    }

    #[test]
    fn nothing_is_due_before_the_anchor() {
        let plan = daily("2025-06-01", "Europe/Berlin");
        assert_eq!(plan.period_at(utc("2025-05-31T21:59:59Z")), None);
        let first = plan.period_at(utc("2025-05-31T22:00:00Z")).unwrap();
        assert_eq!((first.index, first.start), (0, utc("2025-05-31T22:00:00Z")));
    }

    #[test]
    fn zones_and_dates_are_parsed_strictly() {
        assert_eq!(parse_zone("Mars/Olympus"), Err(PeriodError::UnknownZone));
        assert_eq!(parse_zone(""), Err(PeriodError::UnknownZone));
        assert!(parse_zone("Asia/Kolkata").is_ok());
        for bad in [
            "2025-02-30",
            "2025-2-01",
            "20250201",
            "0000-01-01",
            "2025-01-01T00",
            "+2025-01-01",
        ] {
            assert_eq!(parse_date(bad), Err(PeriodError::BadDate), "{bad}");
        }
        assert_eq!(date("9999-12-31").year(), 9999);
    }

    const ZONES: &[&str] = &[
        "UTC",
        "America/New_York",
        "America/Santiago",
        "Europe/Berlin",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
        "Pacific/Apia",
    ];

    proptest! {
        #[test]
        fn every_instant_after_the_anchor_is_in_exactly_one_period(
            zone in prop::sample::select(ZONES),
            by_month in any::<bool>(),
            anchor_day in 0_u64..20_000,
            after in 0_i64..400 * 24 * 3600,
        ) {
            let anchor = date("1990-01-01").checked_add_days(Days::new(anchor_day)).unwrap();
            let plan = Recurrence {
                every: if by_month { Every::Month } else { Every::Day },
                anchor,
                zone: parse_zone(zone).unwrap(),
            };
            let first = plan.start_of(0).unwrap();
            let at = first + Duration::seconds(after);
            let period = plan.period_at(at).unwrap();
            prop_assert!(period.start <= at && at < period.end);
            prop_assert_eq!(Some(period.start), plan.start_of(period.index));
            prop_assert_eq!(Some(period.end), plan.start_of(period.index + 1));
            // The previous instant is in this period or ends just before it.
            let before = plan.period_at(period.start - Duration::seconds(1));
            prop_assert_eq!(before.map(|p| p.end), (period.index > 0).then_some(period.start));
            let hours = (period.end - period.start).num_hours();
            if by_month {
                prop_assert!((27 * 24..=32 * 24).contains(&hours), "{hours}");
            } else {
                prop_assert!((22..=26).contains(&hours), "{hours}");
            }
        }
    }
}
