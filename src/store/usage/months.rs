//! Monthly usage totals, so that a summary over a year reads a dozen months per task type and
//! model instead of every day's rollup rows. A month is folded (its days summed into
//! `usage_months`) by the first summary that spans it once it has ended, and kept current
//! afterwards by the write path (migrations/0014_usage_months.sql).

use chrono::{DateTime, Datelike as _, Duration, Months, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;

use crate::ids::AccountId;
use crate::ledger::FIRST_DAY;
use crate::store::StoreError;

/// How long after its end a month may be folded: longer than any two servers' clocks differ,
/// so no transaction that still takes the month for the current one writes to it after it is
/// folded.
pub const FOLD_AFTER: Duration = Duration::days(1);

/// Longest a fold waits for the account's lock; past it the summary reads the days instead and
/// a later summary folds.
const FOLD_LOCK_WAIT: &str = "200ms";

const FOLDED_BEFORE: &str = "SELECT folded_before FROM usage_folds WHERE account_id = $1";

const LOCK_ACCOUNT: &str = "SELECT 1 FROM accounts WHERE account_id = $1 FOR UPDATE";

/// The days of `[$2, $3)` summed per month, task type and model; no such month has totals yet
/// (months are folded in order, and $2 is where the last fold stopped).
const FOLD: &str = "INSERT INTO usage_months (account_id, month, task_type, model, runs, captured, refunded, last_run_at) \
     SELECT account_id, date_trunc('month', day::timestamp)::date, task_type, model, sum(runs), sum(captured), \
     sum(refunded), max(last_run_at) FROM usage_rollups WHERE account_id = $1 AND day >= $2 AND day < $3 \
     GROUP BY 1, 2, 3, 4";

const SET_FOLDED_BEFORE: &str = "INSERT INTO usage_folds (account_id, folded_before) VALUES ($1, $2) \
     ON CONFLICT (account_id) DO UPDATE SET folded_before = EXCLUDED.folded_before";

/// The first day of `day`'s month.
pub fn month_floor(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// The first day of the first month that starts on or after `day`.
pub fn month_ceil(day: NaiveDate) -> NaiveDate {
    let floor = month_floor(day);
    if floor == day {
        day
    } else {
        floor
            .checked_add_months(Months::new(1))
            .unwrap_or(NaiveDate::MAX)
    }
}

/// Months are folded up to (not including) this day at `now`.
pub fn foldable_before(now: DateTime<Utc>) -> NaiveDate {
    month_floor((now - FOLD_AFTER).date_naive())
}

/// The whole months of the days `[first, end)` that a summary reads from `usage_months`
/// (`[start, stop)`, folded before `folded_before`), as the days of the range that are left
/// to the daily rows are `[first, start)` and `[stop, end)`. Empty (`start == stop`) when the
/// range spans no folded month.
pub fn folded_months(
    (first, end): (NaiveDate, NaiveDate),
    folded_before: NaiveDate,
) -> (NaiveDate, NaiveDate) {
    let start = month_ceil(first).min(end).max(first);
    let stop = month_floor(end).min(folded_before).max(start);
    (start, stop)
}

/// Where the account's folded months end ([`FIRST_DAY`] when none are: before any day a run
/// can have).
pub async fn folded_before(
    client: &impl GenericClient,
    account_id: AccountId,
) -> Result<NaiveDate, StoreError> {
    let statement = client.prepare_cached(FOLDED_BEFORE).await?;
    Ok(client
        .query_opt(&statement, &[&account_id])
        .await?
        .map_or(FIRST_DAY, |row| row.get(0)))
}

/// Folds the account's months before `target` that are not yet, under the account's lock (the
/// lock every write of its rollups holds); returns where its folded months end. When the lock
/// is busy for longer than [`FOLD_LOCK_WAIT`] nothing is folded.
pub async fn fold(
    client: &mut deadpool_postgres::Client,
    account_id: AccountId,
    target: NaiveDate,
) -> Result<NaiveDate, StoreError> {
    let transaction = client.transaction().await?;
    transaction
        .batch_execute(&format!("SET LOCAL lock_timeout = '{FOLD_LOCK_WAIT}'"))
        .await?;
    match transaction.execute(LOCK_ACCOUNT, &[&account_id]).await {
        Ok(_) => {}
        Err(error) if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            transaction.rollback().await?;
            return folded_before(client, account_id).await;
        }
        Err(error) => return Err(error.into()),
    }
    let folded = folded_before(&transaction, account_id).await?;
    if folded >= target {
        transaction.commit().await?;
        return Ok(folded);
    }
    transaction
        .execute(FOLD, &[&account_id, &folded, &target])
        .await?;
    transaction
        .execute(SET_FOLDED_BEFORE, &[&account_id, &target])
        .await?;
    transaction.commit().await?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap_or_default()
    }

    #[test]
    fn months_round_to_their_first_day() {
        assert_eq!(month_floor(day("2026-02-28")), day("2026-02-01"));
        assert_eq!(month_ceil(day("2026-02-01")), day("2026-02-01"));
        assert_eq!(month_ceil(day("2026-02-02")), day("2026-03-01"));
        assert_eq!(month_ceil(day("2026-12-31")), day("2027-01-01"));
    }

    #[test]
    fn a_month_is_foldable_a_day_after_it_ends() {
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap_or_default();
        assert_eq!(
            foldable_before(at("2026-12-01T23:59:59Z")),
            day("2026-11-01")
        );
        assert_eq!(
            foldable_before(at("2026-12-02T00:00:00Z")),
            day("2026-12-01")
        );
    }

    #[test]
    fn folded_months_are_the_whole_months_of_the_range_before_the_fold() {
        let range = (day("2025-11-30"), day("2026-11-30"));
        assert_eq!(
            folded_months(range, day("2026-11-01")),
            (day("2025-12-01"), day("2026-11-01"))
        );
        assert_eq!(
            folded_months(range, day("2026-03-01")),
            (day("2025-12-01"), day("2026-03-01"))
        );
        // Nothing folded, or folded only before the range: no months.
        assert_eq!(
            folded_months(range, FIRST_DAY),
            (day("2025-12-01"), day("2025-12-01"))
        );
        assert_eq!(
            folded_months(range, day("2025-06-01")),
            (day("2025-12-01"), day("2025-12-01"))
        );
        // Within one month.
        let inside = (day("2026-03-03"), day("2026-03-20"));
        assert_eq!(
            folded_months(inside, day("2026-11-01")),
            (day("2026-03-20"), day("2026-03-20"))
        );
        // Whole months exactly.
        let whole = (day("2026-01-01"), day("2026-03-01"));
        assert_eq!(
            folded_months(whole, day("2026-11-01")),
            (day("2026-01-01"), day("2026-03-01"))
        );
    }
}
