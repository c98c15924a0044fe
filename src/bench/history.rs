//! `creditgate bench-history`: how fast one account's long usage history reads back.
//! bench/history.sh loads the history in bulk, then this measures, in one run and from one
//! connection, calls made one at a time: ListUsage's first, tenth and deepest page under each
//! filter, interleaved with GetBalance of the same account; GetUsageSummary over a range; and a
//! full ExportUsage, sampling the server's resident memory while it streams.

mod export;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use clap::Args;

use super::setup::{self, Clients};
use crate::proto::v1::{
    GetBalanceRequest, GetUsageSummaryRequest, HoldStatus, ListUsageRequest, TaskType,
};

pub use report::HistoryReport;

/// Most timed calls per case.
const MAX_SAMPLES: usize = 10_000;
/// Deepest page the walk may reach (each page is one call).
const MAX_DEEP_PAGE: usize = 10_000;
/// Longest a unary call may take before the run fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The task type, model, status and project the filtered cases ask for: values bench/history.sql
/// loads, each on a share of the runs (15 %, 12–16.5 %, 7 % and 30 %).
const FILTER_TASK_TYPE: TaskType = TaskType::Image;
const FILTER_MODEL: &str = "zai/glm-4.5-air";
const FILTER_STATUS: HoldStatus = HoldStatus::Released;
const FILTER_PROJECT: &str = "mobile";

/// Options of `creditgate bench-history`.
#[derive(Debug, Clone, Args)]
pub struct HistorySettings {
    /// The server to read from (loopback addresses only).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub address: String,
    /// API key with scope billing or reader (billing for --create-account).
    #[arg(long, env = "CREDITGATE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// File holding the API key (e.g. <data dir>/demo-api-key).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Create one funded account through the API, print its id and exit (the account the
    /// history is then loaded into).
    #[arg(long, conflicts_with = "account")]
    pub create_account: bool,
    /// The account whose history is read.
    #[arg(long, required_unless_present = "create_account")]
    pub account: Option<String>,
    /// Timed calls of each case, after the warm-up.
    #[arg(long, default_value_t = 400)]
    pub samples: usize,
    /// Untimed calls of each case before the timed ones.
    #[arg(long, default_value_t = 20)]
    pub warm_up: usize,
    /// Runs per ListUsage page.
    #[arg(long, default_value_t = 50)]
    pub page_size: i32,
    /// The deep page to time, reached by following next_page_token from the first (the last
    /// page instead when a filter has fewer).
    #[arg(long, default_value_t = 1_000)]
    pub deep_page: usize,
    /// The time-range filter of ListUsage: inclusive start (RFC 3339).
    #[arg(long)]
    pub range_from: Option<DateTime<Utc>>,
    /// The time-range filter of ListUsage: exclusive end (RFC 3339).
    #[arg(long)]
    pub range_to: Option<DateTime<Utc>>,
    /// GetUsageSummary's range: inclusive start (RFC 3339); absent = unbounded.
    #[arg(long)]
    pub summary_from: Option<DateTime<Utc>>,
    /// GetUsageSummary's range: exclusive end (RFC 3339); absent = unbounded.
    #[arg(long)]
    pub summary_to: Option<DateTime<Utc>>,
    /// Timed GetUsageSummary calls.
    #[arg(long, default_value_t = 50)]
    pub summary_calls: usize,
    /// Full ExportUsage calls (the fastest is reported, the memory growth over all of them).
    #[arg(long, default_value_t = 1)]
    pub exports: usize,
    /// The server's process id, to sample its VmRSS during the export (Linux /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
}

impl HistorySettings {
    fn validate(&self) -> anyhow::Result<()> {
        if !(1..=MAX_SAMPLES).contains(&self.samples)
            || self.warm_up > MAX_SAMPLES
            || !(1..=MAX_SAMPLES).contains(&self.summary_calls)
        {
            bail!("--samples and --summary-calls 1-{MAX_SAMPLES}, --warm-up 0-{MAX_SAMPLES}");
        }
        if !(1..=MAX_DEEP_PAGE).contains(&self.deep_page) || !(1..=500).contains(&self.page_size) {
            bail!("--deep-page 1-{MAX_DEEP_PAGE}, --page-size 1-500");
        }
        if !(1..=10).contains(&self.exports) {
            bail!("--exports 1-10");
        }
        if self.range_from.is_none() || self.range_to.is_none() {
            bail!("give --range-from and --range-to (the time-range filter of ListUsage)");
        }
        Ok(())
    }
}

/// A ListUsage filter, one per case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Every run.
    None,
    /// Runs of [`FILTER_TASK_TYPE`].
    TaskType,
    /// Runs of [`FILTER_MODEL`].
    Model,
    /// Runs whose hold is [`FILTER_STATUS`].
    Status,
    /// Runs of [`FILTER_PROJECT`].
    Project,
    /// Runs created within `--range-from` .. `--range-to`.
    TimeRange,
}

impl Filter {
    const ALL: [Filter; 6] = [
        Filter::None,
        Filter::TaskType,
        Filter::Model,
        Filter::Status,
        Filter::Project,
        Filter::TimeRange,
    ];

    /// The name in the report, with the value asked for.
    pub fn label(self) -> String {
        match self {
            Filter::None => "none".to_owned(),
            Filter::TaskType => format!("task_type={}", FILTER_TASK_TYPE.as_str_name()),
            Filter::Model => format!("model={FILTER_MODEL}"),
            Filter::Status => format!("status={}", FILTER_STATUS.as_str_name()),
            Filter::Project => format!("project={FILTER_PROJECT}"),
            Filter::TimeRange => "time range".to_owned(),
        }
    }

    /// The first page's request under this filter.
    fn request(self, settings: &HistorySettings, account_id: &str) -> ListUsageRequest {
        let mut request = ListUsageRequest {
            account_id: account_id.to_owned(),
            page_size: settings.page_size,
            ..ListUsageRequest::default()
        };
        match self {
            Filter::None => {}
            Filter::TaskType => request.task_type = FILTER_TASK_TYPE as i32,
            Filter::Model => FILTER_MODEL.clone_into(&mut request.model),
            Filter::Status => request.status = FILTER_STATUS as i32,
            Filter::Project => FILTER_PROJECT.clone_into(&mut request.project),
            Filter::TimeRange => {
                request.start_time = settings.range_from.map(timestamp);
                request.end_time = settings.range_to.map(timestamp);
            }
        }
        request
    }
}

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// What one timed call asks.
#[derive(Debug, Clone)]
enum Call {
    /// GetBalance of the account.
    Balance,
    /// ListUsage with this request (its filter and page token).
    List(ListUsageRequest),
}

/// One timed case: a call and the latencies it took.
#[derive(Debug)]
pub struct Case {
    /// The filter, for ListUsage cases.
    pub filter: Option<Filter>,
    /// The page number, for ListUsage cases.
    pub page: usize,
    /// Runs the page held (the last time it was read).
    pub rows: usize,
    /// Latencies in microseconds.
    pub samples: Vec<u32>,
    call: Call,
}

/// Runs `creditgate bench-history` and prints its report (human-readable, then one JSON line).
pub async fn bench_history(settings: HistorySettings) -> anyhow::Result<()> {
    let (address, key) = super::target(
        &settings.address,
        settings.api_key.as_deref(),
        settings.key_file.as_deref(),
    )?;
    let clients = Clients::connect(&[address], &key, 1).await?;
    if settings.create_account {
        let accounts = setup::fund_accounts(&clients, 1, false).await?;
        println!("{}", accounts.concat());
        return Ok(());
    }
    settings.validate()?;
    let account_id = settings.account.clone().unwrap_or_default();
    eprintln!("bench-history: walking the pages of each filter");
    let mut cases = vec![Case {
        filter: None,
        page: 0,
        rows: 0,
        samples: Vec::new(),
        call: Call::Balance,
    }];
    for filter in Filter::ALL {
        cases.extend(page_cases(&clients, &settings, &account_id, filter).await?);
    }
    eprintln!(
        "bench-history: {} rounds of {} cases",
        settings.warm_up + settings.samples,
        cases.len()
    );
    time_rounds(&clients, &settings, &account_id, &mut cases).await?;
    eprintln!("bench-history: GetUsageSummary");
    let summary = time_summary(&clients, &settings, &account_id).await?;
    eprintln!("bench-history: ExportUsage");
    let export = export::run(&clients, &account_id, settings.exports, settings.server_pid).await?;
    let report = HistoryReport {
        account_id,
        page_size: settings.page_size,
        cases,
        summary,
        export,
    };
    print!("{}", report.human());
    println!("{}", report.json());
    Ok(())
}

/// Follows next_page_token from the first page under `filter` down to the deep page (or the
/// last page with runs), and returns the first, tenth and deep pages as cases.
async fn page_cases(
    clients: &Clients,
    settings: &HistorySettings,
    account_id: &str,
    filter: Filter,
) -> anyhow::Result<Vec<Case>> {
    let first = filter.request(settings, account_id);
    let mut wanted = vec![(1, first.clone())];
    let mut response = list(clients, first.clone()).await?;
    let mut request = first;
    let mut page = 1;
    while page < settings.deep_page && !response.next_page_token.is_empty() {
        let mut following = request.clone();
        following.page_token = std::mem::take(&mut response.next_page_token);
        let next = list(clients, following.clone()).await?;
        if next.runs.is_empty() {
            break;
        }
        (page, request, response) = (page + 1, following, next);
        if page == 10 {
            wanted.push((page, request.clone()));
        }
    }
    if page != 1 && page != 10 {
        wanted.push((page, request));
    }
    Ok(wanted
        .into_iter()
        .map(|(page, request)| Case {
            filter: Some(filter),
            page,
            rows: 0,
            samples: Vec::new(),
            call: Call::List(request),
        })
        .collect())
}

async fn list(
    clients: &Clients,
    request: ListUsageRequest,
) -> anyhow::Result<crate::proto::v1::ListUsageResponse> {
    let mut request = tonic::Request::new(request);
    request.set_timeout(CALL_TIMEOUT);
    Ok(clients
        .account(0)
        .list_usage(request)
        .await
        .context("ListUsage")?
        .into_inner())
}

/// Calls every case once per round, in order, so each case meets the same conditions; the
/// rounds after the warm-up are timed.
async fn time_rounds(
    clients: &Clients,
    settings: &HistorySettings,
    account_id: &str,
    cases: &mut [Case],
) -> anyhow::Result<()> {
    let mut client = clients.account(0);
    for round in 0..settings.warm_up + settings.samples {
        for case in cases.iter_mut() {
            let started = Instant::now();
            match &case.call {
                Call::Balance => {
                    let mut request = tonic::Request::new(GetBalanceRequest {
                        account_id: account_id.to_owned(),
                        expiring_within_days: 0,
                    });
                    request.set_timeout(CALL_TIMEOUT);
                    client.get_balance(request).await.context("GetBalance")?;
                }
                Call::List(request) => {
                    let mut request = tonic::Request::new(request.clone());
                    request.set_timeout(CALL_TIMEOUT);
                    let response = client.list_usage(request).await.context("ListUsage")?;
                    case.rows = response.into_inner().runs.len();
                }
            }
            if round >= settings.warm_up {
                case.samples.push(micros(started.elapsed()));
            }
        }
    }
    Ok(())
}

fn micros(elapsed: Duration) -> u32 {
    u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX)
}

/// GetUsageSummary over the summary range: the latencies and the last answer's run count.
#[derive(Debug)]
pub struct SummaryFigures {
    /// Latencies in microseconds.
    pub samples: Vec<u32>,
    /// total_runs of the answer.
    pub total_runs: u64,
    /// credits_spent of the answer.
    pub credits_spent: String,
}

async fn time_summary(
    clients: &Clients,
    settings: &HistorySettings,
    account_id: &str,
) -> anyhow::Result<SummaryFigures> {
    let mut client = clients.account(0);
    let mut figures = SummaryFigures {
        samples: Vec::new(),
        total_runs: 0,
        credits_spent: String::new(),
    };
    for call in 0..settings.warm_up.min(5) + settings.summary_calls {
        let mut request = tonic::Request::new(GetUsageSummaryRequest {
            account_id: account_id.to_owned(),
            start_time: settings.summary_from.map(timestamp),
            end_time: settings.summary_to.map(timestamp),
        });
        request.set_timeout(CALL_TIMEOUT);
        let started = Instant::now();
        let response = client
            .get_usage_summary(request)
            .await
            .context("GetUsageSummary")?
            .into_inner();
        if call >= settings.warm_up.min(5) {
            figures.samples.push(micros(started.elapsed()));
        }
        figures.total_runs = response.total_runs;
        figures.credits_spent = response.credits_spent;
    }
    Ok(figures)
}
