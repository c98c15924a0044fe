//! Monthly partitions of the growing tables (docs/SCALING.md §5): each has one partition per
//! month of `created_at` (UTC), made ahead of time by the servers' background work, and a
//! default partition that catches rows of a month not made yet, so that a write never fails
//! for want of one. Making a month whose rows the default caught moves them into it.
//!
//! One server at a time does it (a transaction-scoped advisory lock, skipped when taken), and
//! each step only creates what is missing, so replicas and restarts never make a month twice.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike as _, Months, NaiveDate, TimeZone as _, Utc};
use deadpool_postgres::Pool;
use tokio::sync::watch;
use tokio_postgres::Client;

use super::StoreError;
use crate::clock::Clock;

/// The tables partitioned by month, each with partitions named `{table}_YYYY_MM` and a default
/// partition `{table}_default`.
pub const MONTHLY: &[&str] = &["journal_entries"];

/// How many months past the current one have their partition made.
pub const MONTHS_AHEAD: u32 = 3;

/// Most months one maintenance run makes per table (a server that was down for longer makes
/// the rest on its next runs).
const MOST_MONTHS_PER_RUN: usize = 24;

/// Advisory lock key of partition maintenance ("cgparts" in ASCII).
pub const PARTITIONS_LOCK_KEY: i64 = 0x0063_6770_6172_7473;

/// How long maintenance waits for a table's lock: making a partition locks the table against
/// writes, so it gives up quickly behind a long transaction and tries again on its next run.
const LOCK_TIMEOUT: &str = "1s";

/// The upper bound of the newest range partition of `$1` (NULL when it has none). The bounds
/// are read back as Postgres writes them, in this session's time zone.
const NEWEST_BOUND: &str = "SELECT max((regexp_match(pg_get_expr(c.relpartbound, c.oid), \
     'TO \\(''([^'']+)''\\)'))[1]::timestamptz) \
     FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::text::regclass";

/// A month's partition to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthPartition {
    /// Its table's name.
    pub table: &'static str,
    /// The first day of its month.
    pub month: NaiveDate,
}

impl MonthPartition {
    /// Its name: `{table}_YYYY_MM`.
    pub fn name(&self) -> String {
        format!(
            "{}_{:04}_{:02}",
            self.table,
            self.month.year(),
            self.month.month()
        )
    }

    /// Its first instant.
    pub fn start(&self) -> DateTime<Utc> {
        midnight(self.month)
    }

    /// The first instant after it.
    pub fn end(&self) -> DateTime<Utc> {
        midnight(next_month(self.month))
    }
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN))
}

fn first_of_month(at: DateTime<Utc>) -> NaiveDate {
    let day = at.date_naive();
    NaiveDate::from_ymd_opt(day.year(), day.month(), 1).unwrap_or(day)
}

fn next_month(month: NaiveDate) -> NaiveDate {
    month.checked_add_months(Months::new(1)).unwrap_or(month)
}

/// The months of `table` to make at `now`: from the newest partition's end (or the current
/// month when there is none) through `months_ahead` months past the current one, at most
/// [`MOST_MONTHS_PER_RUN`]. A pure function of its inputs.
pub fn months_to_make(
    table: &'static str,
    covered_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    months_ahead: u32,
) -> Vec<MonthPartition> {
    let current = first_of_month(now);
    let last = current
        .checked_add_months(Months::new(months_ahead))
        .unwrap_or(current);
    // A bound that is not a month's start (none we make) counts from its month's start: the
    // month itself overlaps it and is skipped.
    let mut month = match covered_until {
        Some(until) if until == midnight(first_of_month(until)) => first_of_month(until),
        Some(until) => next_month(first_of_month(until)),
        None => current,
    };
    let mut months = Vec::new();
    while month <= last && months.len() < MOST_MONTHS_PER_RUN {
        months.push(MonthPartition { table, month });
        month = next_month(month);
    }
    months
}

/// What one maintenance run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintained {
    /// The partitions it made.
    pub made: Vec<String>,
    /// Rows it moved out of default partitions into the months made.
    pub moved: u64,
    /// Whether another server held the maintenance lock (this run did nothing).
    pub skipped: bool,
}

/// Makes the missing monthly partitions of every table in [`MONTHLY`] up to
/// [`MONTHS_AHEAD`] months past `now`, in one transaction.
pub async fn maintain(client: &mut Client, now: DateTime<Utc>) -> Result<Maintained, StoreError> {
    let transaction = client.transaction().await?;
    transaction
        .batch_execute(&format!(
            "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; SET LOCAL statement_timeout = 0; \
             SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO'"
        ))
        .await?;
    let locked: bool = transaction
        .query_one(
            "SELECT pg_try_advisory_xact_lock($1)",
            &[&PARTITIONS_LOCK_KEY],
        )
        .await?
        .get(0);
    if !locked {
        return Ok(Maintained {
            skipped: true,
            ..Maintained::default()
        });
    }
    let mut maintained = Maintained::default();
    for &table in MONTHLY {
        let covered_until: Option<DateTime<Utc>> =
            transaction.query_one(NEWEST_BOUND, &[&table]).await?.get(0);
        for month in months_to_make(table, covered_until, now, MONTHS_AHEAD) {
            maintained.moved += make(&transaction, &month).await?;
            maintained.made.push(month.name());
        }
    }
    transaction.commit().await?;
    if !maintained.made.is_empty() {
        tracing::info!(made = ?maintained.made, moved = maintained.moved, "made partitions");
    }
    Ok(maintained)
}

/// Makes one month's partition; returns how many rows it took from the default partition.
async fn make(
    transaction: &tokio_postgres::Transaction<'_>,
    month: &MonthPartition,
) -> Result<u64, StoreError> {
    let (table, name) = (month.table, month.name());
    let default = format!("{table}_default");
    let (start, end) = (month.start().to_rfc3339(), month.end().to_rfc3339());
    let caught: bool = transaction
        .query_one(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM {default} WHERE created_at >= $1 AND created_at < $2)"
            ),
            &[&month.start(), &month.end()],
        )
        .await?
        .get(0);
    let create = format!(
        "CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ('{start}') TO ('{end}')"
    );
    if !caught {
        transaction.batch_execute(&create).await?;
        return Ok(0);
    }
    // The default holds rows of this month: a partition cannot be made over them. Take the
    // default out, make the month and a new default, and route the caught rows again (an
    // INSERT, as the journal's rows cannot be deleted one by one).
    let caught_table = format!("{table}_caught");
    transaction
        .batch_execute(&format!(
            "ALTER TABLE {table} DETACH PARTITION {default}; \
             ALTER TABLE {default} RENAME TO {caught_table}; \
             {create}; \
             CREATE TABLE {default} PARTITION OF {table} DEFAULT"
        ))
        .await?;
    let moved = transaction
        .execute(
            &format!("INSERT INTO {table} SELECT * FROM {caught_table}"),
            &[],
        )
        .await?;
    transaction
        .batch_execute(&format!("DROP TABLE {caught_table}"))
        .await?;
    // Only this month's rows count as moved; the others went back to the new default.
    let stayed: i64 = transaction
        .query_one(&format!("SELECT count(*) FROM {default}"), &[])
        .await?
        .get(0);
    Ok(moved.saturating_sub(u64::try_from(stayed).unwrap_or(0)))
}

/// Maintains the partitions at start and every `interval` until `shutdown` flips. A failed run
/// (the database away, a lock not had in time) is logged and tried again next time: the
/// default partitions keep every write working meanwhile.
pub async fn run(
    pool: Pool,
    clock: Arc<dyn Clock>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let attempt = async {
            let mut client = pool.get().await?;
            maintain(&mut client, clock.now()).await
        };
        if let Err(error) = attempt.await {
            tracing::warn!(%error, "maintaining partitions; trying again later");
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn names(months: &[MonthPartition]) -> Vec<String> {
        months.iter().map(MonthPartition::name).collect()
    }

    #[test]
    fn a_table_covered_until_a_month_start_gets_the_months_from_there_through_three_ahead() {
        let months = months_to_make(
            "t",
            Some(at("2027-01-01T00:00:00Z")),
            at("2026-12-15T10:00:00Z"),
            3,
        );
        assert_eq!(names(&months), ["t_2027_01", "t_2027_02", "t_2027_03"]);
        assert_eq!(months[0].start(), at("2027-01-01T00:00:00Z"));
        assert_eq!(months[2].end(), at("2027-04-01T00:00:00Z"));
    }

    #[test]
    fn a_table_covered_far_enough_gets_nothing() {
        let months = months_to_make(
            "t",
            Some(at("2027-04-01T00:00:00Z")),
            at("2026-12-31T23:59:59Z"),
            3,
        );
        assert!(months.is_empty());
    }

    #[test]
    fn a_table_without_partitions_starts_at_the_current_month() {
        let months = months_to_make("t", None, at("2026-02-28T23:00:00Z"), 1);
        assert_eq!(names(&months), ["t_2026_02", "t_2026_03"]);
    }

    #[test]
    fn a_bound_inside_a_month_skips_that_month() {
        let months = months_to_make(
            "t",
            Some(at("2026-12-10T00:00:00Z")),
            at("2026-12-15T00:00:00Z"),
            1,
        );
        assert_eq!(names(&months), ["t_2027_01"]);
    }

    #[test]
    fn a_long_gap_is_made_a_bounded_number_of_months_at_a_time() {
        let months = months_to_make(
            "t",
            Some(at("2020-01-01T00:00:00Z")),
            at("2026-12-15T00:00:00Z"),
            3,
        );
        assert_eq!(months.len(), MOST_MONTHS_PER_RUN);
        assert_eq!(months[0].name(), "t_2020_01");
    }
}
