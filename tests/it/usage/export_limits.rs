//! An export is bounded: cancelling it stops its database read, and a server runs at most four
//! at once, refusing a fifth RESOURCE_EXHAUSTED until one of them ends.

use creditgate::proto::v1::ExportUsageResponse;
use tonic::codec::Streaming;
use tonic::{Code, Status};

use crate::helpers::TestApp;
use crate::helpers::usage::{Filters, within_notice_limit};

/// Runs of a large export: megabytes of CSV, far more than a stream's window and the server's
/// buffers hold, so an export nobody reads stays in progress.
const LARGE_EXPORT_RUNS: i32 = 3_000;
/// Bytes of labels on each of those runs.
const LABEL_BYTES: usize = 2_000;
/// Exports a server runs at once.
const CONCURRENT_EXPORTS: usize = 4;

/// An export of the whole account by a slow reader that has taken its first chunk and no more;
/// the refusal, if the server refused it.
async fn started_export(
    app: &TestApp,
    account_id: &str,
) -> Result<Streaming<ExportUsageResponse>, Status> {
    let mut stream = app
        .slow_reader()
        .await
        .export_usage(Filters::default().export(account_id))
        .await?
        .into_inner();
    let first = stream.message().await?.expect("a first chunk");
    assert!(first.csv_chunk.starts_with("hold_id,"), "the header first");
    Ok(stream)
}

/// An account with a large export.
async fn large_export(app: &TestApp) -> String {
    let account_id = app.funded_account("10").await;
    app.bulk_runs(&account_id, LARGE_EXPORT_RUNS, LABEL_BYTES)
        .await;
    account_id
}

/// Whether the database reads of exports end within the notice limit.
async fn reads_end(app: &TestApp) -> bool {
    within_notice_limit(|| async { (app.open_reads().await == 0).then_some(()) })
        .await
        .is_some()
}

#[tokio::test]
async fn a_cancelled_export_stops_its_database_read() {
    let app = TestApp::spawn().await;
    let account_id = large_export(&app).await;
    assert_eq!(app.open_reads().await, 0, "nothing reads before the export");
    let export = started_export(&app, &account_id).await.unwrap();
    let reading = within_notice_limit(|| async { (app.open_reads().await == 1).then_some(()) });
    assert!(
        reading.await.is_some(),
        "the export keeps its read open while its reader waits"
    );
    drop(export);
    assert!(
        reads_end(&app).await,
        "the export still reads the database after it was cancelled"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_fifth_export_at_once_is_resource_exhausted_until_one_is_cancelled() {
    let app = TestApp::spawn().await;
    let account_id = large_export(&app).await;
    let mut exports = Vec::new();
    for _ in 0..CONCURRENT_EXPORTS {
        exports.push(started_export(&app, &account_id).await.unwrap());
    }
    let refused = started_export(&app, &account_id)
        .await
        .expect_err("a fifth export at once is refused");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");

    drop(exports.pop());
    let fifth = within_notice_limit(|| async {
        match started_export(&app, &account_id).await {
            Ok(export) => Some(export),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                None
            }
        }
    })
    .await;
    assert!(
        fifth.is_some(),
        "no export accepted after one of four was cancelled"
    );
    drop(fifth);
    drop(exports);
    assert!(reads_end(&app).await, "cancelled exports still read");
    app.finish().await;
}
