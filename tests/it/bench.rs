//! A short smoke run of `creditgate bench`, so the load tool cannot rot: it funds accounts, runs
//! the mix for a second, reports, and the books still balance.

use tokio::process::Command;

use crate::helpers::TestApp;

/// The report of a bench run that succeeded, made runs, met no error and found the books
/// balanced (fails the test otherwise).
pub fn clean_report(output: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(report["runs"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["verify_discrepancies"], 0, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_runs_a_short_mix_and_verifies_the_books() {
    let app = TestApp::spawn().await;
    let output = Command::new(env!("CARGO_BIN_EXE_creditgate"))
        .args([
            "bench",
            "--workers",
            "4",
            "--accounts",
            "2",
            "--duration-seconds",
            "1",
            "--connections",
            "1",
        ])
        .args(["--address", &app.address.to_string(), "--api-key", &app.key])
        .args(["--database-url", &app.database_url()])
        .output()
        .await
        .unwrap();
    let report = clean_report(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for rpc in ["Quote", "Authorize", "Settle"] {
        assert!(
            report["latency"][rpc]["calls"].as_u64().unwrap() > 0,
            "{rpc} missing: {report}"
        );
    }
    assert!(stdout.contains("runs/s"), "{stdout}");
    // A non-loopback target is refused before anything is sent.
    let refused = Command::new(env!("CARGO_BIN_EXE_creditgate"))
        .args([
            "bench",
            "--address",
            "192.0.2.1:50051",
            "--api-key",
            "x",
            "--no-verify",
        ])
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("loopback"));
    app.finish().await;
}

/// bench/history.sh end to end on a small history, so the script, its loader and
/// `creditgate bench-history` cannot rot: it starts its own server, loads the runs, times every
/// case, and its cross-checks agree (the summary counts the runs SQL counts; the export has as
/// many rows as the account has runs). The figures themselves mean nothing at this size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_bench_loads_measures_and_cross_checks_a_small_history() {
    let output = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/history.sh"))
        .envs([
            ("BIN", env!("CARGO_BIN_EXE_creditgate")),
            ("PORT", "0"),
            ("RUNS", "3000"),
            ("OTHER_ACCOUNTS", "10"),
            ("SAMPLES", "3"),
            ("WARM_UP", "1"),
            ("SUMMARY_CALLS", "3"),
            ("DEEP_PAGE", "20"),
            ("EXPORTS", "1"),
            ("REFERENCE_RUNS", "1"),
            ("LIMIT_SECONDS", "120"),
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench/history.sh failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for filter in [
        "none",
        "task_type=",
        "model=",
        "status=",
        "project=",
        "time range",
    ] {
        assert!(stdout.contains(filter), "no {filter} case: {stdout}");
    }
    assert!(
        stdout.contains("runs counted: summary 3000, SQL 3000: equal"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rows exported: 3000, in the database: 3000: equal"),
        "{stdout}"
    );
}
