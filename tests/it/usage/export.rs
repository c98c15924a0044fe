//! ExportUsage's CSV: the rows ListUsage lists for the same filters, oldest first, with text
//! that needs quoting (commas, quotes, line breaks, non-ASCII) intact; the header alone when no
//! run matches; chunks that end at row boundaries and hold at most 64 KiB unless one row is
//! longer; and the command line printing the same CSV.

use std::collections::BTreeMap;

use creditgate::proto::v1::{GrantSource, Hold, HoldStatus, RunMetadata, TaskType};
use tokio::process::Command;

use crate::helpers::TestApp;
use crate::helpers::money::{create_account_request, key};
use crate::helpers::time::time;
use crate::helpers::usage::{
    CSV_HEADER, Filters, History, MAX_CHUNK_BYTES, TEXT_MODEL, csv_row, csv_rows, labels, run,
};

/// The header row as the export writes it.
fn header_line() -> String {
    format!("{}\r\n", CSV_HEADER.join(","))
}

/// The rows the export must write for `filters`: the header, then the runs ListUsage lists,
/// oldest first.
async fn expected_rows(app: &TestApp, account_id: &str, filters: &Filters) -> Vec<Vec<String>> {
    let mut listed = app.usage(account_id, filters).await;
    listed.reverse();
    let mut rows = vec![CSV_HEADER.map(str::to_owned).to_vec()];
    rows.extend(listed.iter().map(csv_row));
    rows
}

/// A run whose every free-text field needs quoting in CSV, or is not ASCII.
fn quoted_run() -> RunMetadata {
    RunMetadata {
        tool: "search, \"web\"".to_owned(),
        project: "p,\"q\",r".to_owned(),
        run_id: "run,\"1\" ünïcødé 🙂".to_owned(),
        labels: labels(&[
            ("note", "a, \"b\", c"),
            ("ключ", "значение ✓"),
            ("emoji 🙂", "\"\""),
            ("", "empty key"),
            ("json", "{\"not\": \"nested\"}"),
        ]),
        ..run(TaskType::Chat, TEXT_MODEL, "")
    }
}

/// Line breaks in a run id and a label, written to the database: the API refuses control
/// characters in run metadata, but the export must still write such text as one field.
async fn store_line_breaks(app: &TestApp, hold_id: &str) {
    let client = app.pool.get().await.unwrap();
    let hold: uuid::Uuid = hold_id.parse().unwrap();
    let updated = client
        .execute(
            "UPDATE holds SET run_id = E'first line\\r\\nsecond line', \
             label_keys = ARRAY['lines'], label_values = ARRAY[E'one\\ntwo\\r\\nthree'] \
             WHERE hold_id = $1",
            &[&hold],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1);
}

#[tokio::test]
async fn an_export_is_the_listed_runs_oldest_first_with_every_field_intact() {
    let app = TestApp::spawn().await;
    let history = History::make(&app).await;
    let account_id = history.account_id.as_str();
    let quoted = app.start_run(account_id, "1", quoted_run()).await;
    let broken = app
        .start_run(account_id, "1", run(TaskType::Other, "", ""))
        .await;
    store_line_breaks(&app, &broken.hold_id).await;
    let created = |hold: &Hold| time(hold.created_at.as_ref().unwrap());
    let cases = [
        Filters::default(),
        Filters::task_type(TaskType::Chat),
        Filters::status(HoldStatus::Expired),
        Filters {
            project: "alpha".to_owned(),
            ..Filters::default()
        },
        Filters::between(Some(created(&history.chat_expired)), Some(created(&quoted))),
    ];
    for filters in cases {
        let text = app
            .export_chunks(filters.export(account_id))
            .await
            .unwrap()
            .concat();
        assert!(
            text.starts_with(&header_line()),
            "header first: {filters:?}"
        );
        let expected = expected_rows(&app, account_id, &filters).await;
        assert_eq!(csv_rows(&text), expected, "{filters:?}");
    }

    let text = app
        .export_chunks(Filters::default().export(account_id))
        .await
        .unwrap()
        .concat();
    let rows = csv_rows(&text);
    assert_eq!(rows.len(), 1 + 9);
    let row_of = |hold_id: &str| rows.iter().find(|row| row[0] == hold_id).unwrap().clone();
    let sent = quoted_run();
    let row = row_of(&quoted.hold_id);
    assert_eq!(
        (&row[5], &row[7], &row[8]),
        (&sent.tool, &sent.project, &sent.run_id)
    );
    let written: BTreeMap<String, String> = serde_json::from_str(&row[12]).unwrap();
    assert_eq!(written, sent.labels);
    let row = row_of(&broken.hold_id);
    assert_eq!(row[8], "first line\r\nsecond line");
    assert_eq!(row[12], r#"{"lines":"one\ntwo\r\nthree"}"#);
    app.finish().await;
}

#[tokio::test]
async fn an_export_of_no_runs_is_the_header_alone() {
    let app = TestApp::spawn().await;
    let empty = app.account().await;
    let chunks = app
        .export_chunks(Filters::default().export(&empty))
        .await
        .unwrap();
    assert_eq!(chunks.concat(), header_line());
    let account_id = app.funded_account("10").await;
    app.start_run(&account_id, "1", run(TaskType::Chat, "", ""))
        .await;
    let none = Filters::task_type(TaskType::Image);
    let chunks = app.export_chunks(none.export(&account_id)).await.unwrap();
    assert_eq!(chunks.concat(), header_line());
    app.finish().await;
}

/// The longest labels a run may carry: 32 keys and values of 1,024 bytes, a row longer than a
/// chunk.
fn longest_labels() -> BTreeMap<String, String> {
    (0..32)
        .map(|index| {
            (
                format!("{index:02}{}", "k".repeat(1_022)),
                "v".repeat(1_024),
            )
        })
        .collect()
}

#[tokio::test]
async fn chunks_end_at_row_boundaries_and_hold_at_most_64_kib_unless_one_row_is_longer() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("10").await;
    app.bulk_runs(&account_id, 300, 2_000).await;
    let longest = RunMetadata {
        labels: longest_labels(),
        ..RunMetadata::default()
    };
    app.start_run(&account_id, "1", longest).await;

    let chunks = app
        .export_chunks(Filters::default().export(&account_id))
        .await
        .unwrap();
    assert!(chunks.len() > 4, "{} chunks", chunks.len());
    let mut rows = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        // Each chunk alone is whole rows, each ending with CRLF.
        let chunk_rows = csv_rows(chunk);
        assert!(
            chunk.len() <= MAX_CHUNK_BYTES || chunk_rows.len() == 1,
            "chunk {index}: {} bytes in {} rows",
            chunk.len(),
            chunk_rows.len()
        );
        rows.extend(chunk_rows);
    }
    assert!(chunks[0].starts_with(&header_line()));
    assert_eq!(rows, csv_rows(&chunks.concat()));
    assert_eq!(
        rows,
        expected_rows(&app, &account_id, &Filters::default()).await
    );
    assert_eq!(rows.len(), 1 + 301);
    let last = chunks.last().unwrap();
    assert!(
        last.len() > MAX_CHUNK_BYTES,
        "the longest row: {} bytes",
        last.len()
    );
    app.finish().await;
}

async fn creditgate(database_url: &str, args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_creditgate"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "creditgate {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test]
async fn the_command_line_prints_the_csv_of_the_export() {
    let app = TestApp::spawn().await;
    let request = create_account_request(&key(), "customer-42");
    let account_id = app.create_account_as(&app.key, request).await;
    app.grant(&account_id, GrantSource::Purchase, "100").await;
    let first = app.start_run(&account_id, "1", quoted_run()).await;
    app.settle(&first.hold_id, "1", false).await.unwrap();
    let second = app
        .start_run(&account_id, "2", run(TaskType::Image, "", ""))
        .await;
    app.start_run(&account_id, "3", run(TaskType::Search, "", ""))
        .await;
    let url = app.database_url();

    let exported = app
        .export_chunks(Filters::default().export(&account_id))
        .await
        .unwrap()
        .concat();
    for account in [account_id.as_str(), "customer-42"] {
        let args = ["usage", "export", "--tenant", "test", "--account", account];
        let printed = creditgate(&url, &args).await;
        assert_eq!(
            String::from_utf8(printed.stdout).unwrap(),
            exported,
            "--account {account}"
        );
    }

    let from = time(second.created_at.as_ref().unwrap());
    let to = from + chrono::Duration::microseconds(1);
    let range = Filters::between(Some(from), Some(to));
    let exported = app
        .export_chunks(range.export(&account_id))
        .await
        .unwrap()
        .concat();
    assert_eq!(
        csv_rows(&exported).len(),
        2,
        "the header and the second run"
    );
    let rfc3339 =
        |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (from, to) = (rfc3339(from), rfc3339(to));
    let args = [
        "usage",
        "export",
        "--tenant",
        "test",
        "--account",
        &account_id,
        "--from",
        &from,
        "--to",
        &to,
    ];
    let printed = creditgate(&url, &args).await;
    assert_eq!(String::from_utf8(printed.stdout).unwrap(), exported);
    app.finish().await;
}
