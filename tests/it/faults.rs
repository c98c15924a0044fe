//! Faults under concurrent load: the server killed with SIGKILL and restarted, Postgres
//! crashed and restarted, the server's connections terminated mid-transaction. Clients retry
//! unanswered calls with the same key; afterwards every answered operation is in the books
//! exactly once, balances follow from the answers, and `creditgate verify` is clean.

use std::time::Duration;

use crate::helpers::books::assert_exactly_once;
use crate::helpers::dedicated_cluster::DedicatedCluster;
use crate::helpers::fresh_database;
use crate::helpers::server_process::ServerProcess;
use crate::helpers::tenant_key;
use crate::helpers::workload::Workload;

/// 16 clients on 4 accounts, about 140 operations in all.
const LOAD: Workload = Workload {
    accounts: 4,
    tasks: 16,
    runs_per_task: 3,
};
/// The fault hits once this many operations were answered: well into the load, with most of
/// it still to come.
const FAULT_AFTER_ANSWERS: usize = 40;
/// Connections terminated mid-transaction before the terminating stops.
const TERMINATIONS: usize = 8;
/// Pause between two rounds of terminations, so that the server gets work done between them.
const TERMINATION_PACE: Duration = Duration::from_millis(10);

#[tokio::test]
async fn a_server_killed_mid_load_loses_and_doubles_nothing() {
    let database = fresh_database().await;
    let api_key = tenant_key(&database, "faults").await;
    let mut server = ServerProcess::start(&database.url()).await;
    let running = LOAD.start(server.address, &api_key).await;

    running.progress.wait_for_answers(FAULT_AFTER_ANSWERS).await;
    server.kill().await;
    server.restart().await;
    let progress = running.progress.clone();
    let outcome = running.finish().await;

    assert!(progress.retries() > 0, "the kill must have cut calls off");
    assert_eq!(progress.internal_errors(), Vec::<String>::new());
    assert_exactly_once(&outcome, &database).await;
    server.stop().await;
}

#[tokio::test]
async fn postgres_crashed_and_restarted_mid_load_loses_and_doubles_nothing() {
    // INTERNAL answers are retried with the same key here (their outcome is unknown), so the
    // books are checked all the same; `faults_contract` holds the server to UNAVAILABLE.
    let _internal_errors = crash_postgres_under_load().await;
}

/// Runs the load over `pg_ctl restart -m immediate` of a dedicated cluster and checks the
/// books; returns the INTERNAL answers the clients got meanwhile (the contract says a
/// database that cannot be reached is UNAVAILABLE).
pub(crate) async fn crash_postgres_under_load() -> Vec<String> {
    let (cluster, database) = DedicatedCluster::start().await;
    let api_key = tenant_key(&database, "faults").await;
    let server = ServerProcess::start(&database.url()).await;
    let running = LOAD.start(server.address, &api_key).await;

    running.progress.wait_for_answers(FAULT_AFTER_ANSWERS).await;
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart_immediately();
        cluster
    })
    .await
    .unwrap();
    let progress = running.progress.clone();
    let outcome = running.finish().await;

    assert!(progress.retries() > 0, "the crash must have failed calls");
    assert_exactly_once(&outcome, &database).await;
    server.stop().await;
    drop(cluster);
    progress.internal_errors()
}

#[tokio::test]
async fn connections_terminated_mid_transaction_lose_and_double_nothing() {
    let database = fresh_database().await;
    let api_key = tenant_key(&database, "faults").await;
    let server = ServerProcess::start(&database.url()).await;
    let running = LOAD.start(server.address, &api_key).await;
    let (admin, driver) = database
        .config
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(driver);

    running.progress.wait_for_answers(FAULT_AFTER_ANSWERS).await;
    let mut terminated = 0;
    while terminated < TERMINATIONS && !running.is_finished() {
        let killed: i64 = admin
            .query_one(
                "SELECT count(*) FROM (
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE datname = current_database() AND application_name LIKE 'creditgate/%'
                      AND xact_start IS NOT NULL AND pid <> pg_backend_pid()
                 ) AS terminated",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        terminated += usize::try_from(killed).unwrap();
        tokio::time::sleep(TERMINATION_PACE).await;
    }
    let progress = running.progress.clone();
    let outcome = running.finish().await;

    assert!(terminated > 0, "no connection was caught in a transaction");
    assert_eq!(progress.internal_errors(), Vec::<String>::new());
    assert_exactly_once(&outcome, &database).await;
    server.stop().await;
}
