//! Periods on the calendar of a time zone: days start at local midnight, also around a
//! daylight-saving change, and a monthly anchor on the 31st falls on the last day of shorter
//! months. Expected instants come from the time-zone database directly, not from the server's
//! own period arithmetic.

use chrono::{DateTime, Datelike as _, Days, Duration, NaiveDate, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use creditgate::proto::v1::SetAllowanceRequest;

use super::{PAST, assert_available, daily_free, monthly_subscription, spend};
use crate::helpers::TestApp;
use crate::helpers::plans::period_grants;
use crate::helpers::time::time;

/// The first instant of `date` in `zone`, whose midnight must exist once (true of the zones
/// here: their clocks change at 02:00 or 03:00).
fn local_midnight(zone: Tz, date: NaiveDate) -> DateTime<Utc> {
    zone.from_local_datetime(&date.and_time(NaiveTime::MIN))
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// The first day at least two days after `after` that lasts `hours` hours in `zone`.
fn next_day_lasting(zone: Tz, after: DateTime<Utc>, hours: i64) -> NaiveDate {
    let today = after.with_timezone(&zone).date_naive();
    (2..800)
        .map(|days| today + Days::new(days))
        .find(|date| {
            let length = local_midnight(zone, *date + Days::new(1)) - local_midnight(zone, *date);
            length == Duration::hours(hours)
        })
        .unwrap_or_else(|| panic!("no {hours}-hour day in {zone} within two years"))
}

/// A daily allowance in `zone_name` over the eve of a day of `hours` hours, that day and the
/// next: each grant lasts from one local midnight to the next, a second on either side of a
/// midnight sees the grant of its own day, and the grants tile.
async fn days_around_a_clock_change_start_at_local_midnight(zone_name: &str, hours: i64) {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let zone: Tz = zone_name.parse().unwrap();
    let change = next_day_lasting(zone, app.now(), hours);
    let days = [change - Days::new(1), change, change + Days::new(1)];
    // The midnights that start and end those days.
    let midnights: Vec<DateTime<Utc>> = (0..4)
        .map(|at| local_midnight(zone, days[0] + Days::new(at)))
        .collect();
    app.advance_to(midnights[0] + Duration::hours(12));
    let request = SetAllowanceRequest {
        time_zone: zone_name.to_owned(),
        ..daily_free(&account, "5")
    };
    let allowance = app.set_allowance(request).await.unwrap();
    assert_eq!(
        allowance.anchor_date,
        days[0].to_string(),
        "today in the zone"
    );
    spend(&app, &account, "2").await;

    for boundary in 1..days.len() {
        let midnight = midnights[boundary];
        let reset = app.next_reset(&account, "free").await;
        assert_eq!(reset, Some(midnight), "day {}", days[boundary - 1]);
        app.advance_to(midnight - PAST);
        assert_available(&app, &account, "3", "3", "0").await;
        app.advance_to(midnight + PAST);
        assert_available(&app, &account, "5", "5", "0").await;
        spend(&app, &account, "2").await;
    }
    assert_eq!(midnights[2] - midnights[1], Duration::hours(hours));

    let periods: Vec<_> = period_grants(&app.database, &account)
        .await
        .into_iter()
        .map(|grant| (grant.period_start, grant.effective_at, grant.expires_at))
        .collect();
    let expected: Vec<_> = midnights
        .windows(2)
        .map(|day| (day[0], day[0], Some(day[1])))
        .collect();
    assert_eq!(periods, expected);
    app.finish().await;
}

#[tokio::test]
async fn a_day_allowance_in_new_york_tiles_the_23_hour_day_of_the_spring_change() {
    days_around_a_clock_change_start_at_local_midnight("America/New_York", 23).await;
}

#[tokio::test]
async fn a_day_allowance_in_berlin_tiles_the_25_hour_day_of_the_autumn_change() {
    days_around_a_clock_change_start_at_local_midnight("Europe/Berlin", 25).await;
}

#[tokio::test]
async fn a_monthly_allowance_anchored_on_the_31st_restarts_on_the_last_day_of_shorter_months() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let zone = chrono_tz::Europe::Berlin;
    let date = |year: i32, month: u32, day: u32| NaiveDate::from_ymd_opt(year, month, day).unwrap();
    let today = app.now().with_timezone(&zone).date_naive();
    // The next leap year whose January 31st is ahead (2028 from 2026); the year after it is not.
    let year = (today.year()..)
        .find(|year| NaiveDate::from_ymd_opt(*year, 2, 29).is_some() && date(*year, 1, 31) > today)
        .unwrap();
    app.advance_to(local_midnight(zone, date(year, 1, 15)));
    let request = SetAllowanceRequest {
        anchor_date: format!("{year}-01-31"),
        time_zone: zone.name().to_owned(),
        ..monthly_subscription(&account, "100")
    };
    let allowance = app.set_allowance(request).await.unwrap();
    assert_eq!(
        allowance.next_reset_at, None,
        "nothing is due before the anchor"
    );
    let first = local_midnight(zone, date(year, 1, 31));
    assert_eq!(allowance.effective_from.as_ref().map(time), Some(first));
    assert_available(&app, &account, "0", "0", "0").await;

    let next = year + 1;
    let periods = [
        (date(year, 1, 31), date(year, 2, 29)),
        (date(year, 2, 29), date(year, 3, 31)),
        (date(year, 3, 31), date(year, 4, 30)),
        (date(next, 1, 31), date(next, 2, 28)),
        (date(next, 2, 28), date(next, 3, 31)),
    ];
    let periods =
        periods.map(|(start, end)| (local_midnight(zone, start), local_midnight(zone, end)));
    for (start, end) in periods {
        app.advance_to(start + PAST);
        assert_eq!(
            app.next_reset(&account, "pro").await,
            Some(end),
            "from {start}"
        );
        assert_available(&app, &account, "100", "0", "100").await;
        spend(&app, &account, "1").await;
    }

    let granted: Vec<_> = period_grants(&app.database, &account)
        .await
        .into_iter()
        .map(|grant| (grant.effective_at, grant.expires_at.unwrap()))
        .collect();
    assert_eq!(granted, periods);
    app.finish().await;
}
