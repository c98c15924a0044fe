//! The figures of `creditgate bench-history`, as a table and as one JSON line.

use std::fmt::Write as _;

use super::export::ExportFigures;
use super::{Case, SummaryFigures};
use crate::bench::report::percentiles;

/// What a history run measured.
#[derive(Debug)]
pub struct HistoryReport {
    /// The account read.
    pub account_id: String,
    /// Runs per ListUsage page.
    pub page_size: i32,
    /// GetBalance first, then the ListUsage pages.
    pub cases: Vec<Case>,
    /// GetUsageSummary.
    pub summary: SummaryFigures,
    /// ExportUsage.
    pub export: ExportFigures,
}

/// Calls, p50, p99 and max in milliseconds.
fn latency(samples: &[u32]) -> (usize, f64, f64, f64) {
    let mut sorted = samples.to_vec();
    let [p50, p99, _, max] = percentiles(&mut sorted);
    (samples.len(), p50, p99, max)
}

impl Case {
    fn name(&self) -> String {
        match self.filter {
            None => "GetBalance".to_owned(),
            Some(filter) => format!("ListUsage {} page {}", filter.label(), self.page),
        }
    }
}

impl HistoryReport {
    /// The human-readable report.
    pub fn human(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "bench-history: account {}, {} runs per page",
            self.account_id, self.page_size
        );
        let _ = writeln!(
            text,
            "{:<52} {:>6} {:>6} {:>9} {:>9} {:>9}",
            "case", "rows", "calls", "p50 ms", "p99 ms", "max ms"
        );
        for case in &self.cases {
            let (calls, p50, p99, max) = latency(&case.samples);
            let rows = case.filter.map_or(String::new(), |_| case.rows.to_string());
            let _ = writeln!(
                text,
                "{:<52} {rows:>6} {calls:>6} {p50:>9.2} {p99:>9.2} {max:>9.2}",
                case.name(),
            );
        }
        let (calls, p50, p99, max) = latency(&self.summary.samples);
        let _ = writeln!(
            text,
            "{:<52} {:>6} {calls:>6} {p50:>9.2} {p99:>9.2} {max:>9.2}",
            format!("GetUsageSummary ({} runs)", self.summary.total_runs),
            "",
        );
        let export = &self.export;
        let _ = writeln!(
            text,
            "ExportUsage: {} rows, {:.1} MiB in {} chunks, fastest {:.2} s ({:.0} rows/s), server VmRSS {} → {} KiB",
            export.rows,
            export.bytes as f64 / 1_048_576.0,
            export.chunks,
            export.fastest.as_secs_f64(),
            export.rows_per_second(),
            export
                .rss_before_kib
                .map_or("-".to_owned(), |kib| kib.to_string()),
            export
                .rss_max_kib
                .map_or("-".to_owned(), |kib| kib.to_string()),
        );
        text
    }

    /// One JSON line for scripts.
    pub fn json(&self) -> String {
        let figures = |samples: &[u32]| {
            let (calls, p50, p99, max) = latency(samples);
            serde_json::json!({"calls": calls, "p50_ms": p50, "p99_ms": p99, "max_ms": max})
        };
        let list: Vec<serde_json::Value> = self
            .cases
            .iter()
            .filter_map(|case| {
                let filter = case.filter?;
                let mut value = figures(&case.samples);
                value["filter"] = filter.label().into();
                value["page"] = case.page.into();
                value["rows"] = case.rows.into();
                Some(value)
            })
            .collect();
        let balance = self
            .cases
            .iter()
            .find(|case| case.filter.is_none())
            .map(|case| figures(&case.samples));
        let mut summary = figures(&self.summary.samples);
        summary["total_runs"] = self.summary.total_runs.into();
        summary["credits_spent"] = self.summary.credits_spent.clone().into();
        let export = &self.export;
        serde_json::json!({
            "account_id": self.account_id,
            "page_size": self.page_size,
            "get_balance": balance,
            "list_usage": list,
            "summary": summary,
            "export": {
                "rows": export.rows,
                "bytes": export.bytes,
                "chunks": export.chunks,
                "seconds": export.elapsed.iter().map(|elapsed| elapsed.as_secs_f64()).collect::<Vec<_>>(),
                "fastest_s": export.fastest.as_secs_f64(),
                "rows_per_second": export.rows_per_second(),
                "rss_before_kib": export.rss_before_kib,
                "rss_max_kib": export.rss_max_kib,
                "rss_growth_kib": export.rss_growth_kib(),
            },
        })
        .to_string()
    }
}
