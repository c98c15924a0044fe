//! The journal's monthly partitions: a migrated database has the months through three ahead
//! and a default; maintenance makes the later months once (one server at a time), moving any
//! rows the default caught into their month; the journal stays append-only on every
//! partition; ListLedger reads across months in order and prunes the months outside its range.

use chrono::{DateTime, Datelike as _, Duration, TimeZone as _, Utc};
use creditgate::proto::v1::GrantSource;
use creditgate::store::partitions::{self, MONTHS_AHEAD, Maintained};
use serde_json::Value;

use crate::helpers::TestApp;
use crate::helpers::usage::{Listing, Pager};

/// The journal's partitions by name, each with its row count.
async fn journal_partitions(app: &TestApp) -> Vec<(String, i64)> {
    let client = app.pool.get().await.unwrap();
    let names: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'journal_entries'::regclass ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut counted = Vec::new();
    for name in names {
        let rows: i64 = client
            .query_one(&format!("SELECT count(*) FROM {name}"), &[])
            .await
            .unwrap()
            .get(0);
        counted.push((name, rows));
    }
    counted
}

fn rows_of(partitions: &[(String, i64)], name: &str) -> Option<i64> {
    partitions
        .iter()
        .find(|(partition, _)| partition == name)
        .map(|(_, rows)| *rows)
}

fn month_name(at: DateTime<Utc>) -> String {
    format!("journal_entries_{:04}_{:02}", at.year(), at.month())
}

fn first_of_month(at: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
        .unwrap()
}

/// A grant and a run settled in full: its journal rows are written at the server's time.
async fn a_run(app: &TestApp, account_id: &str) {
    app.grant(account_id, GrantSource::Purchase, "10").await;
    let hold = app.hold(account_id, "4").await;
    app.settle(&hold.hold_id, "3", false).await.unwrap();
}

async fn maintain(app: &TestApp) -> Maintained {
    let mut client = app.pool.get().await.unwrap();
    partitions::maintain(&mut client, app.now()).await.unwrap()
}

#[tokio::test]
async fn months_are_made_ahead_once_and_rows_the_default_caught_move_into_their_month() {
    let app = TestApp::spawn().await;
    let now = app.now();
    // As migrated: the legacy partition takes everything before the month after next, then
    // come three months and the default.
    let made = journal_partitions(&app).await;
    for ahead in 2..=4 {
        let month = first_of_month(now)
            .checked_add_months(chrono::Months::new(ahead))
            .unwrap();
        assert_eq!(rows_of(&made, &month_name(month)), Some(0), "{made:?}");
    }
    assert_eq!(rows_of(&made, "journal_entries_default"), Some(0));
    assert_eq!(
        maintain(&app).await,
        Maintained::default(),
        "nothing is missing"
    );

    let account_id = app.account().await;
    a_run(&app, &account_id).await;
    let this_month = rows_of(&journal_partitions(&app).await, "journal_entries_legacy").unwrap();
    assert!(
        this_month > 0,
        "this month's rows go to the legacy partition"
    );

    // Half a year on, before any server made that month: the default catches the rows.
    app.advance(Duration::days(190));
    a_run(&app, &account_id).await;
    let later = app.now();
    let caught = rows_of(&journal_partitions(&app).await, "journal_entries_default").unwrap();
    assert!(caught > 0);

    // Another server holds the maintenance lock: this one leaves it to that one.
    let holder = app.pool.get().await.unwrap();
    holder
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&partitions::PARTITIONS_LOCK_KEY],
        )
        .await
        .unwrap();
    assert!(maintain(&app).await.skipped);
    holder
        .execute(
            "SELECT pg_advisory_unlock($1)",
            &[&partitions::PARTITIONS_LOCK_KEY],
        )
        .await
        .unwrap();
    drop(holder);

    let maintained = maintain(&app).await;
    assert!(!maintained.skipped);
    assert_eq!(maintained.moved, u64::try_from(caught).unwrap());
    let last = first_of_month(later)
        .checked_add_months(chrono::Months::new(MONTHS_AHEAD))
        .unwrap();
    assert_eq!(maintained.made.last(), Some(&month_name(last)));
    let after = journal_partitions(&app).await;
    assert_eq!(rows_of(&after, "journal_entries_default"), Some(0));
    assert_eq!(rows_of(&after, &month_name(later)), Some(caught));
    assert_eq!(
        maintain(&app).await,
        Maintained::default(),
        "a month is made once"
    );

    // ListLedger reads both months, in order.
    let client = app.pool.get().await.unwrap();
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM journal_entries WHERE account_id = $1::text::uuid",
            &[&account_id],
        )
        .await
        .unwrap()
        .get(0);
    let listed = Pager::new(&app, Listing::Ledger, &account_id).walk(7).await;
    assert_eq!(i64::try_from(listed.len()).unwrap(), stored);
    assert_eq!(stored, this_month + caught);

    // Append-only on every partition, through the table or not.
    for statement in [
        "UPDATE journal_entries SET amount = 0".to_owned(),
        "DELETE FROM journal_entries".to_owned(),
        format!("DELETE FROM {}", month_name(later)),
        "DELETE FROM journal_entries_legacy".to_owned(),
    ] {
        assert_eq!(
            client.execute(&statement, &[]).await.unwrap(),
            0,
            "{statement}"
        );
    }
    drop(client);
    app.finish().await;
}

/// The relations a plan reads.
fn relations(plan: &Value, found: &mut Vec<String>) {
    if let Some(relation) = plan["Relation Name"].as_str() {
        found.push(relation.to_owned());
    }
    for child in plan["Plans"].as_array().into_iter().flatten() {
        relations(child, found);
    }
}

#[tokio::test]
async fn list_ledger_reads_only_the_months_of_its_range_even_in_a_generic_plan() {
    let app = TestApp::spawn().await;
    let client = app.pool.get().await.unwrap();
    // A month with a partition of its own (the legacy one takes the next month too).
    let next = first_of_month(app.now())
        .checked_add_months(chrono::Months::new(3))
        .unwrap();
    let (start, end) = (next + Duration::days(2), next + Duration::days(9));
    client
        .batch_execute(&format!(
            "PREPARE ledger AS {}",
            creditgate::store::usage::LEDGER_SQL
        ))
        .await
        .unwrap();
    let arguments = format!(
        "'{}', '{}', '{}', '{}', '{}', 10",
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        end.to_rfc3339(),
        start.to_rfc3339(),
        uuid::Uuid::nil()
    );
    for mode in ["force_custom_plan", "force_generic_plan"] {
        client
            .batch_execute(&format!("SET plan_cache_mode = {mode}"))
            .await
            .unwrap();
        let explained = client
            .query_one(
                &format!("EXPLAIN (FORMAT JSON) EXECUTE ledger({arguments})"),
                &[],
            )
            .await
            .unwrap();
        let plan: Value = explained.get(0);
        let mut read = Vec::new();
        relations(&plan[0]["Plan"], &mut read);
        assert_eq!(read, [month_name(next)], "{mode}: {plan:#}");
    }
    drop(client);
    app.finish().await;
}
