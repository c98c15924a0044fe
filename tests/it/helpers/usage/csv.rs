//! ExportUsage's CSV: its header, the row a listed run must have, and exported text read back
//! as rows with the `csv` crate.

use std::collections::BTreeMap;
use std::fmt;

use chrono::SecondsFormat;
use creditgate::proto::v1::{HoldStatus, TaskType, UsageRecord};

use super::time;

/// Most bytes a chunk of the export holds, unless one row is longer.
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;

/// The header row.
pub const CSV_HEADER: [&str; 13] = [
    "hold_id",
    "created_at",
    "resolved_at",
    "status",
    "task_type",
    "tool",
    "model",
    "project",
    "run_id",
    "credits",
    "refunded",
    "held",
    "labels",
];

/// The position of the labels among the fields.
const LABELS: usize = 12;

/// A time as the export writes it: RFC 3339 in UTC with microseconds.
fn csv_time(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp.map_or_else(String::new, |timestamp| {
        time(timestamp).to_rfc3339_opts(SecondsFormat::Micros, true)
    })
}

/// Labels as the export writes them, once read: a JSON object ("" when there are none).
fn csv_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        serde_json::to_string(labels).unwrap()
    }
}

/// The fields ExportUsage must write for a run ListUsage listed as `record`.
pub fn csv_row(record: &UsageRecord) -> Vec<String> {
    let run = record.run.clone().unwrap_or_default();
    let task_type = match run.task_type() {
        TaskType::Unspecified => String::new(),
        named => short_name(named.as_str_name(), "TASK_TYPE_"),
    };
    let status: HoldStatus = record.status();
    vec![
        record.hold_id.clone(),
        csv_time(record.created_at.as_ref()),
        csv_time(record.resolved_at.as_ref()),
        short_name(status.as_str_name(), "HOLD_STATUS_"),
        task_type,
        run.tool,
        run.model,
        run.project,
        run.run_id,
        record.credits.clone(),
        record.refunded.clone(),
        record.held.clone(),
        csv_labels(&run.labels),
    ]
}

fn short_name(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_lowercase()
}

/// The rows of exported text, header first, each as its fields. Asserts the text is exactly its
/// rows as the `csv` crate writes them with CRLF line ends (so every row ends with CRLF), and
/// every labels field is a JSON object of strings with its keys sorted; the labels come back
/// as [`csv_row`] writes them, so rows compare whole.
pub fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut written_again = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for record in reader.records() {
        let record = record.unwrap();
        written_again.write_record(&record).unwrap();
        let mut fields: Vec<String> = record.iter().map(str::to_owned).collect();
        if !rows.is_empty() && !fields[LABELS].is_empty() {
            let labels: InOrder = serde_json::from_str(&fields[LABELS])
                .unwrap_or_else(|error| panic!("labels {:?}: {error}", fields[LABELS]));
            let keys: Vec<&String> = labels.0.iter().map(|(key, _)| key).collect();
            assert!(
                keys.windows(2).all(|pair| pair[0] < pair[1]),
                "label keys not sorted: {keys:?}"
            );
            fields[LABELS] = csv_labels(&labels.0.into_iter().collect());
        }
        rows.push(fields);
    }
    let written_again = String::from_utf8(written_again.into_inner().unwrap()).unwrap();
    if written_again != text {
        let at = written_again
            .bytes()
            .zip(text.bytes())
            .position(|(again, sent)| again != sent)
            .unwrap_or(written_again.len().min(text.len()));
        let around = |text: &str| {
            String::from_utf8_lossy(
                &text.as_bytes()[at.saturating_sub(60)..(at + 20).min(text.len())],
            )
            .into_owned()
        };
        panic!(
            "not the rows written as RFC 4180 with CRLF line ends, from byte {at}: {:?} where {:?} was expected",
            around(text),
            around(&written_again)
        );
    }
    rows
}

/// A JSON object of strings, its keys in the order written.
struct InOrder(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for InOrder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = InOrder;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an object of strings")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<InOrder, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(InOrder(pairs))
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}
