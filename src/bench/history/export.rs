//! A full ExportUsage of the account, timed and counted, with the server's VmRSS sampled every
//! 100 ms from just before the call until the last chunk.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::sync::oneshot;

use super::super::setup::Clients;
use crate::proto::v1::ExportUsageRequest;

/// How often the server's resident memory is read during an export.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);
/// Longest one export may take before the run fails.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(600);
/// How every export starts (the CSV header's first columns).
const HEADER_START: &str = "hold_id,created_at,";

/// What the exports measured.
#[derive(Debug)]
pub struct ExportFigures {
    /// Data rows of each export (the header excluded).
    pub rows: u64,
    /// CSV bytes of each export.
    pub bytes: u64,
    /// Chunks of each export.
    pub chunks: u64,
    /// The fastest export's wall time, from the call to its last chunk.
    pub fastest: Duration,
    /// Every export's wall time, in order.
    pub elapsed: Vec<Duration>,
    /// The server's VmRSS just before the first export, in KiB (when sampled).
    pub rss_before_kib: Option<u64>,
    /// The most it reached during any export, in KiB (when sampled).
    pub rss_max_kib: Option<u64>,
}

impl ExportFigures {
    /// Rows per second of the fastest export.
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.fastest.as_secs_f64().max(1e-9)
    }

    /// The most VmRSS grew over its value before the first export, in KiB.
    pub fn rss_growth_kib(&self) -> Option<u64> {
        Some(self.rss_max_kib?.saturating_sub(self.rss_before_kib?))
    }
}

/// Runs `count` exports of every run of the account, one after the other; each must return the
/// same rows.
pub async fn run(
    clients: &Clients,
    account_id: &str,
    count: usize,
    server_pid: Option<u32>,
) -> anyhow::Result<ExportFigures> {
    let rss_before_kib = server_pid.map(resident_kib).transpose()?;
    let (stop, stopped) = oneshot::channel();
    let sampler = server_pid.map(|pid| tokio::spawn(sample_rss(pid, stopped)));
    let mut elapsed = Vec::with_capacity(count);
    let mut counted: Option<Counted> = None;
    for _ in 0..count {
        let started = Instant::now();
        let this = export_once(clients, account_id).await?;
        elapsed.push(started.elapsed());
        if counted
            .as_ref()
            .is_some_and(|before| before.rows != this.rows)
        {
            bail!("two exports of the same runs gave different row counts");
        }
        counted = Some(this);
    }
    let _ = stop.send(());
    let rss_max_kib = match sampler {
        Some(task) => Some(task.await.context("the memory sampler failed")??),
        None => None,
    };
    let counted = counted.context("no export ran")?;
    Ok(ExportFigures {
        rows: counted.rows,
        bytes: counted.bytes,
        chunks: counted.chunks,
        fastest: elapsed.iter().min().copied().unwrap_or_default(),
        elapsed,
        rss_before_kib,
        rss_max_kib: rss_max_kib.max(rss_before_kib),
    })
}

/// Rows, bytes and chunks of one export.
#[derive(Debug, Default)]
struct Counted {
    rows: u64,
    bytes: u64,
    chunks: u64,
}

async fn export_once(clients: &Clients, account_id: &str) -> anyhow::Result<Counted> {
    let mut request = tonic::Request::new(ExportUsageRequest {
        account_id: account_id.to_owned(),
        ..ExportUsageRequest::default()
    });
    request.set_timeout(EXPORT_TIMEOUT);
    let mut stream = clients
        .account(0)
        .export_usage(request)
        .await
        .context("ExportUsage")?
        .into_inner();
    let mut counted = Counted::default();
    let mut lines = LineCounter::default();
    while let Some(chunk) = stream.message().await.context("ExportUsage stream")? {
        if counted.chunks == 0 && !chunk.csv_chunk.starts_with(HEADER_START) {
            bail!("the export does not start with the CSV header");
        }
        counted.chunks += 1;
        counted.bytes += chunk.csv_chunk.len() as u64;
        lines.add(chunk.csv_chunk.as_bytes());
    }
    counted.rows = lines.records.saturating_sub(1);
    Ok(counted)
}

/// Counts CSV records (line ends outside quoted fields) over consecutive chunks.
#[derive(Debug, Default)]
struct LineCounter {
    records: u64,
    quoted: bool,
}

impl LineCounter {
    fn add(&mut self, bytes: &[u8]) {
        for byte in bytes {
            match byte {
                b'"' => self.quoted = !self.quoted,
                b'\n' if !self.quoted => self.records += 1,
                _ => {}
            }
        }
    }
}

/// Reads VmRSS every [`RSS_SAMPLE_INTERVAL`] until told to stop; returns the largest value.
async fn sample_rss(pid: u32, mut stop: oneshot::Receiver<()>) -> anyhow::Result<u64> {
    let mut most = 0;
    let mut interval = tokio::time::interval(RSS_SAMPLE_INTERVAL);
    loop {
        tokio::select! {
            _ = interval.tick() => most = most.max(resident_kib(pid)?),
            _ = &mut stop => return Ok(most.max(resident_kib(pid)?)),
        }
    }
}

/// The process's resident set size in KiB, from /proc/<pid>/status.
fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_inside_quotes_are_not_records() {
        let mut counter = LineCounter::default();
        counter.add(b"hold_id,labels\r\na,\"{\"\"k\"\":\"\"x\r\n");
        counter.add(b"y\"\"}\"\r\nb,\r\n");
        assert_eq!(counter.records, 3);
    }

    #[test]
    fn this_process_has_a_resident_size() {
        assert!(resident_kib(std::process::id()).is_ok_and(|kib| kib > 0));
    }
}
