//! Bench results: throughput, latency percentiles per RPC, errors by reason, as a table and as
//! one JSON line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::BenchSettings;

/// Latencies of one RPC, in microseconds.
pub type Samples = Vec<u32>;

/// What a bench run measured.
#[derive(Debug, Default)]
pub struct Report {
    /// Runs that finished (settled or released).
    pub runs: u64,
    /// Wall time of the load.
    pub elapsed: Duration,
    /// Latencies by RPC.
    pub samples: BTreeMap<&'static str, Samples>,
    /// Errors by "RPC: reason".
    pub errors: BTreeMap<String, u64>,
    /// Discrepancies `verify` found, when it ran.
    pub verify: Option<usize>,
    /// What the load wrote, when the database was open.
    pub footprint: Option<Footprint>,
}

/// Bytes the database wrote during the load: WAL (everything written in the cluster,
/// background work included), and growth of the tables with their indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// WAL bytes.
    pub wal_bytes: i64,
    /// Table and index bytes.
    pub table_bytes: i64,
}

impl Footprint {
    /// (WAL, table) bytes per finished run.
    pub fn per_run(&self, runs: u64) -> (f64, f64) {
        let runs = runs.max(1) as f64;
        (self.wal_bytes as f64 / runs, self.table_bytes as f64 / runs)
    }
}

/// p50, p99, p99.9 and max, in milliseconds.
pub(super) fn percentiles(samples: &mut [u32]) -> [f64; 4] {
    if samples.is_empty() {
        return [0.0; 4];
    }
    samples.sort_unstable();
    let at = |quantile: f64| {
        let rank = ((samples.len() as f64) * quantile).ceil() as usize;
        f64::from(samples[rank.clamp(1, samples.len()) - 1]) / 1_000.0
    };
    [at(0.5), at(0.99), at(0.999), at(1.0)]
}

impl Report {
    /// Finished runs per second.
    pub fn runs_per_second(&self) -> f64 {
        self.runs as f64 / self.elapsed.as_secs_f64()
    }

    fn latencies(&self) -> Vec<(&'static str, usize, [f64; 4])> {
        self.samples
            .iter()
            .map(|(rpc, samples)| {
                let mut sorted = samples.clone();
                (*rpc, samples.len(), percentiles(&mut sorted))
            })
            .collect()
    }

    /// The human-readable report.
    pub fn human(&self, settings: &BenchSettings) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "bench: {} workers, {} account(s), pricing {:?}{}, {:.1} s: {} runs, {:.0} runs/s",
            settings.workers,
            settings.accounts,
            settings.pricing,
            if settings.plans { ", with plans" } else { "" },
            self.elapsed.as_secs_f64(),
            self.runs,
            self.runs_per_second()
        );
        let _ = writeln!(
            text,
            "{:<10} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "rpc", "calls", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
        );
        for (rpc, calls, [p50, p99, p999, max]) in self.latencies() {
            let _ = writeln!(
                text,
                "{rpc:<10} {calls:>9} {p50:>9.2} {p99:>9.2} {p999:>9.2} {max:>9.2}"
            );
        }
        if self.errors.is_empty() {
            let _ = writeln!(text, "errors: none");
        }
        for (reason, count) in &self.errors {
            let _ = writeln!(text, "error {reason}: {count}");
        }
        if let Some(footprint) = self.footprint {
            let (wal, tables) = footprint.per_run(self.runs);
            let _ = writeln!(
                text,
                "written per run: {wal:.0} WAL bytes, {tables:.0} table and index bytes"
            );
        }
        match self.verify {
            Some(found) => {
                let _ = writeln!(text, "verify: {found} discrepancies");
            }
            None => {
                let _ = writeln!(text, "verify: skipped");
            }
        }
        text
    }

    /// One JSON line for scripts.
    pub fn json(&self, settings: &BenchSettings) -> String {
        let latencies: serde_json::Map<String, serde_json::Value> = self
            .latencies()
            .into_iter()
            .map(|(rpc, calls, [p50, p99, p999, max])| {
                (rpc.to_owned(), serde_json::json!({"calls": calls, "p50_ms": p50, "p99_ms": p99, "p999_ms": p999, "max_ms": max}))
            })
            .collect();
        serde_json::json!({
            "workers": settings.workers,
            "accounts": settings.accounts,
            "pricing": format!("{:?}", settings.pricing).to_lowercase(),
            "plans": settings.plans,
            "duration_s": self.elapsed.as_secs_f64(),
            "runs": self.runs,
            "runs_per_second": self.runs_per_second(),
            "latency": latencies,
            "errors": self.errors,
            "verify_discrepancies": self.verify,
            "wal_bytes_per_run": self.footprint.map(|footprint| footprint.per_run(self.runs).0),
            "table_bytes_per_run": self.footprint.map(|footprint| footprint.per_run(self.runs).1),
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut samples: Vec<u32> = (1..=1_000).map(|value| value * 1_000).collect();
        assert_eq!(percentiles(&mut samples), [500.0, 990.0, 999.0, 1_000.0]);
        assert_eq!(percentiles(&mut []), [0.0; 4]);
    }
}
