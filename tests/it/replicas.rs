//! Three servers on one database, each with its own pool and its own sweeps, loaded together by
//! a `creditgate bench` process (every account called through every server, with allowances
//! and member limits) while their shared clock crosses midnight: the day's allowances fall due
//! on every account at once and the holds left to expire fall due while all three sweep. Each
//! expiry, each period's grant and each event happens once, and `verify` agrees. (The servers
//! run in the test process so that one clock can move all three; the bench is a process.)

use std::time::Duration as StdDuration;

use chrono::Duration;
use creditgate::proto::v1::AuthorizeResponse;
use tokio::process::Command;

use crate::bench::clean_report;
use crate::helpers::TestApp;
use crate::helpers::limits::next_day;
use crate::helpers::money::{allowance_request, authorize_request, key};
use crate::helpers::plans::periods_granted_twice;

/// Accounts of the holds left to expire.
const ACCOUNTS: usize = 4;
/// Bound on waiting for the bench to reach its load.
const LOAD_WAIT: StdDuration = StdDuration::from_secs(60);

/// Rows `sql` finds (each a problem), as text.
async fn problems(app: &TestApp, sql: &str) -> Vec<String> {
    let client = app.pool.get().await.unwrap();
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_under_the_bench_expire_grant_and_tell_each_thing_once() {
    let app = TestApp::spawn().await;
    let replicas = [
        app.replica_with_clock(app.clock.clone()).await,
        app.replica_with_clock(app.clock.clone()).await,
    ];
    let servers = [&app, &replicas[0], &replicas[1]];
    let midnight = next_day(app.now()) + Duration::days(1);
    app.advance_to(midnight - Duration::minutes(5));

    // Accounts with a daily allowance and a hold through each server, due a minute from now.
    let mut holds = Vec::new();
    for index in 0..ACCOUNTS {
        let account = app.account().await;
        app.set_allowance(allowance_request(&account, &key(), "free", "100"))
            .await
            .unwrap();
        for server in servers {
            let mut request = authorize_request(&account, &key(), "1");
            request.ttl_seconds = 60;
            let hold: AuthorizeResponse = server
                .credit()
                .authorize(request)
                .await
                .unwrap()
                .into_inner();
            holds.push(hold.hold.unwrap().hold_id);
        }
        assert_eq!(holds.len(), (index + 1) * servers.len());
    }

    let bench = Command::new(env!("CARGO_BIN_EXE_creditgate"))
        .args(["bench", "--workers", "12", "--accounts", "6"])
        .args(["--duration-seconds", "4", "--connections", "1", "--plans"])
        .args(["--address", &app.address.to_string()])
        .args(["--also-address", &replicas[0].address.to_string()])
        .args(["--also-address", &replicas[1].address.to_string()])
        .args(["--api-key", &app.key, "--database-url", &app.database_url()])
        .kill_on_drop(true)
        .output();
    let bench = tokio::spawn(bench);

    // Once the bench's runs are under way, the clock crosses midnight and all three sweep.
    let client = app.pool.get().await.unwrap();
    let started = std::time::Instant::now();
    loop {
        let settled: i64 = client
            .query_one("SELECT count(*) FROM settlements", &[])
            .await
            .unwrap()
            .get(0);
        if settled >= 20 {
            break;
        }
        assert!(started.elapsed() < LOAD_WAIT, "the bench made no runs");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    app.advance(Duration::minutes(6));
    tokio::join!(app.sweep(), replicas[0].sweep(), replicas[1].sweep());

    clean_report(&bench.await.unwrap().unwrap());

    // Every hold left to expire expired, once, whichever server came first.
    let ours = holds
        .iter()
        .map(|hold| format!("'{hold}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let not_expired = problems(
        &app,
        &format!(
            "SELECT hold_id::text FROM holds WHERE hold_id IN ({ours}) AND status <> 'EXPIRED'"
        ),
    )
    .await;
    assert_eq!(not_expired, Vec::<String>::new());
    let released_twice = problems(
        &app,
        "SELECT hold_id::text FROM journal_entries WHERE ledger_account = 'HELD' AND amount < 0 \
         GROUP BY hold_id HAVING count(DISTINCT transaction_id) > 1",
    )
    .await;
    assert_eq!(released_twice, Vec::<String>::new(), "holds released twice");
    let expiry_events: Vec<String> = problems(
        &app,
        &format!(
            "SELECT attributes->>'hold_id' FROM events WHERE event_type = 'HOLD_EXPIRED' \
             AND attributes->>'hold_id' IN ({ours}) ORDER BY 1"
        ),
    )
    .await;
    let mut expected = holds.clone();
    expected.sort();
    assert_eq!(expiry_events, expected, "one HOLD_EXPIRED per hold");

    // Every allowance was granted once a day: the day before midnight at SetAllowance, the
    // new day by whichever server touched the account first after it.
    assert_eq!(periods_granted_twice(&app.database).await, []);
    let not_renewed = problems(
        &app,
        &format!(
            "SELECT a.allowance_id::text FROM allowances a \
             LEFT JOIN allowance_grants g ON g.allowance_id = a.allowance_id \
             AND g.period_start = '{}' GROUP BY 1 HAVING count(g.grant_id) <> 1",
            midnight.to_rfc3339()
        ),
    )
    .await;
    assert_eq!(
        not_renewed,
        Vec::<String>::new(),
        "allowances without the new day's grant"
    );

    // No event twice.
    let told_twice = problems(
        &app,
        "SELECT event_type || ' ' || coalesce(attributes->>'hold_id', attributes->>'grant_id') \
         FROM events WHERE event_type IN ('HOLD_EXPIRED', 'GRANT_ADDED') \
         GROUP BY event_type, coalesce(attributes->>'hold_id', attributes->>'grant_id') \
         HAVING count(*) > 1 \
         UNION ALL SELECT event_id::text FROM events GROUP BY event_id HAVING count(*) > 1",
    )
    .await;
    assert_eq!(told_twice, Vec::<String>::new(), "events told twice");

    for replica in replicas {
        replica.stop().await;
    }
    app.finish().await;
}
