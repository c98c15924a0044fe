//! Usage history through the gRPC surface: runs with their metadata, the filters ListUsage and
//! ExportUsage share, every page of ListUsage and ListLedger, what a run's record must say, and
//! what summing listed runs gives.

mod csv;
mod export;
mod history;

use std::collections::BTreeMap;
use std::str::FromStr as _;

use chrono::{DateTime, Utc};
use creditgate::proto::v1::{
    AuthorizeRequest, ExportUsageRequest, GetUsageSummaryRequest, GetUsageSummaryResponse, Hold,
    HoldStatus, LedgerEntry, ListLedgerRequest, ListUsageRequest, ModelUsage, RunMetadata,
    TaskType, TaskTypeUsage, UsageRecord,
};
use rust_decimal::Decimal;
use tonic::Status;

pub use self::csv::{CSV_HEADER, MAX_CHUNK_BYTES, csv_row, csv_rows};
pub use self::export::within_notice_limit;
pub use self::history::{History, IMAGE_MODEL, TEXT_MODEL};
use super::TestApp;
use super::money::{authorize_request, key};
use super::time::{time, timestamp};

/// Most pages a walk reads before it takes the listing for a loop.
const MAX_PAGES: usize = 2_000;

/// A run of `task_type` on `model` for `project`, without tool, run id or labels.
pub fn run(task_type: TaskType, model: &str, project: &str) -> RunMetadata {
    RunMetadata {
        task_type: task_type as i32,
        model: model.to_owned(),
        project: project.to_owned(),
        ..RunMetadata::default()
    }
}

/// Labels from `(key, value)` pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

/// A decimal string of credits as the wire writes it: plain, no trailing zeros.
pub fn credits(value: Decimal) -> String {
    value.normalize().to_string()
}

/// A decimal string of credits as a number.
pub fn decimal(credits: &str) -> Decimal {
    Decimal::from_str(credits).unwrap_or_else(|_| panic!("{credits:?} is no decimal"))
}

/// The filters of ListUsage and ExportUsage (ListLedger and GetUsageSummary take only the
/// range); the default lists everything. Enums are raw numbers, so unknown values can be sent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filters {
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub task_type: i32,
    pub model: String,
    pub status: i32,
    pub project: String,
}

impl Filters {
    /// Runs created from `start` (inclusive) to `end` (exclusive); `None` is unbounded.
    pub fn between(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Filters {
        Filters {
            start_time: start,
            end_time: end,
            ..Filters::default()
        }
    }

    /// Only runs of `task_type`.
    pub fn task_type(task_type: TaskType) -> Filters {
        Filters {
            task_type: task_type as i32,
            ..Filters::default()
        }
    }

    /// Only runs whose hold has `status`.
    pub fn status(status: HoldStatus) -> Filters {
        Filters {
            status: status as i32,
            ..Filters::default()
        }
    }

    pub fn list(&self, account_id: &str, page_size: i32, page_token: &str) -> ListUsageRequest {
        ListUsageRequest {
            account_id: account_id.to_owned(),
            page_size,
            page_token: page_token.to_owned(),
            start_time: self.start_time.map(timestamp),
            end_time: self.end_time.map(timestamp),
            task_type: self.task_type,
            model: self.model.clone(),
            status: self.status,
            project: self.project.clone(),
        }
    }

    pub fn export(&self, account_id: &str) -> ExportUsageRequest {
        ExportUsageRequest {
            account_id: account_id.to_owned(),
            start_time: self.start_time.map(timestamp),
            end_time: self.end_time.map(timestamp),
            task_type: self.task_type,
            model: self.model.clone(),
            status: self.status,
            project: self.project.clone(),
        }
    }

    /// The ListLedger request over this range (the other filters are the runs', not the
    /// journal's).
    pub fn ledger(&self, account_id: &str, page_size: i32, page_token: &str) -> ListLedgerRequest {
        ListLedgerRequest {
            account_id: account_id.to_owned(),
            page_size,
            page_token: page_token.to_owned(),
            start_time: self.start_time.map(timestamp),
            end_time: self.end_time.map(timestamp),
        }
    }

    /// The GetUsageSummary request over this range.
    pub fn summary(&self, account_id: &str) -> GetUsageSummaryRequest {
        GetUsageSummaryRequest {
            account_id: account_id.to_owned(),
            start_time: self.start_time.map(timestamp),
            end_time: self.end_time.map(timestamp),
        }
    }
}

/// The two paged listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// ListUsage: runs, newest first.
    Usage,
    /// ListLedger: journal entries, oldest first.
    Ledger,
}

/// One page: the ids on it (hold ids or entry ids), in order, and the token to the next.
#[derive(Clone, Debug)]
pub struct Page {
    pub ids: Vec<String>,
    pub next_page_token: String,
}

/// Pages through one listing of one account with one caller's key.
pub struct Pager<'a> {
    pub app: &'a TestApp,
    pub listing: Listing,
    pub api_key: String,
    pub account_id: String,
    pub filters: Filters,
}

impl<'a> Pager<'a> {
    /// `listing` of `account_id` with every filter at its default, by the app's key.
    pub fn new(app: &'a TestApp, listing: Listing, account_id: &str) -> Pager<'a> {
        Pager {
            app,
            listing,
            api_key: app.key.clone(),
            account_id: account_id.to_owned(),
            filters: Filters::default(),
        }
    }

    /// The page of `page_size` after `page_token`.
    pub async fn page(&self, page_size: i32, page_token: &str) -> Result<Page, Status> {
        let mut client = self.app.account_as(Some(&self.api_key));
        match self.listing {
            Listing::Usage => {
                let request = self.filters.list(&self.account_id, page_size, page_token);
                let page = client.list_usage(request).await?.into_inner();
                Ok(Page {
                    ids: page.runs.into_iter().map(|run| run.hold_id).collect(),
                    next_page_token: page.next_page_token,
                })
            }
            Listing::Ledger => {
                let request = self.filters.ledger(&self.account_id, page_size, page_token);
                let page = client.list_ledger(request).await?.into_inner();
                Ok(Page {
                    ids: page
                        .entries
                        .into_iter()
                        .map(|entry| entry.entry_id)
                        .collect(),
                    next_page_token: page.next_page_token,
                })
            }
        }
    }

    /// Every id, page by page, asserting each page holds at most `page_size` (50 for 0) and
    /// that a short page is the last.
    pub async fn walk(&self, page_size: i32) -> Vec<String> {
        let mut ids = Vec::new();
        let mut token = String::new();
        for _ in 0..MAX_PAGES {
            let page = self.page(page_size, &token).await.unwrap();
            assert_page_fits(&page, page_size);
            ids.extend(page.ids);
            if page.next_page_token.is_empty() {
                return ids;
            }
            token = page.next_page_token;
        }
        panic!("more than {MAX_PAGES} pages of {page_size}");
    }
}

/// Asserts `page` holds at most `page_size` ids (50 for 0), and has no next page when short.
#[track_caller]
pub fn assert_page_fits(page: &Page, page_size: i32) {
    let most = if page_size == 0 {
        50
    } else {
        usize::try_from(page_size).unwrap()
    };
    assert!(
        page.ids.len() <= most,
        "{} ids on a page of {most}",
        page.ids.len()
    );
    if page.ids.len() < most {
        assert_eq!(
            page.next_page_token, "",
            "a page shorter than its size is the last"
        );
    }
}

/// Ids sorted as ListUsage lists them: newest first by (created_at, id).
pub fn newest_first(holds: &[Hold]) -> Vec<String> {
    let mut ordered: Vec<(DateTime<Utc>, &str)> = holds
        .iter()
        .map(|hold| {
            (
                time(hold.created_at.as_ref().unwrap()),
                hold.hold_id.as_str(),
            )
        })
        .collect();
    ordered.sort_unstable();
    ordered.reverse();
    ordered.into_iter().map(|(_, id)| id.to_owned()).collect()
}

/// Ids of `ids` found more than once.
pub fn repeated(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    ids.iter()
        .filter(|id| !seen.insert(id.as_str()))
        .cloned()
        .collect()
}

impl TestApp {
    /// A run: a hold of `amount` for `run`, with the default TTL.
    pub async fn start_run(&self, account_id: &str, amount: &str, run: RunMetadata) -> Hold {
        self.start_run_for(account_id, amount, run, 0).await
    }

    /// A run whose hold expires after `ttl_seconds` on the server clock (0: the default).
    pub async fn start_run_for(
        &self,
        account_id: &str,
        amount: &str,
        run: RunMetadata,
        ttl_seconds: u32,
    ) -> Hold {
        let request = AuthorizeRequest {
            ttl_seconds,
            run: Some(run),
            ..authorize_request(account_id, &key(), amount)
        };
        self.credit()
            .authorize(request)
            .await
            .unwrap()
            .into_inner()
            .hold
            .unwrap()
    }

    /// Every run ListUsage lists for `filters`, newest first, in pages of 500.
    pub async fn usage(&self, account_id: &str, filters: &Filters) -> Vec<UsageRecord> {
        let mut client = self.account_as(Some(&self.key));
        let mut records = Vec::new();
        let mut token = String::new();
        for _ in 0..MAX_PAGES {
            let page = client
                .list_usage(filters.list(account_id, 500, &token))
                .await
                .unwrap()
                .into_inner();
            records.extend(page.runs);
            if page.next_page_token.is_empty() {
                return records;
            }
            token = page.next_page_token;
        }
        panic!("more than {MAX_PAGES} pages");
    }

    /// Every journal entry ListLedger lists for the account in `filters`' range, oldest first,
    /// in pages of `page_size`.
    pub async fn ledger(
        &self,
        account_id: &str,
        filters: &Filters,
        page_size: i32,
    ) -> Vec<LedgerEntry> {
        let mut client = self.account_as(Some(&self.key));
        let mut entries = Vec::new();
        let mut token = String::new();
        for _ in 0..MAX_PAGES {
            let page = client
                .list_ledger(filters.ledger(account_id, page_size, &token))
                .await
                .unwrap()
                .into_inner();
            let ids: Vec<String> = page
                .entries
                .iter()
                .map(|entry| entry.entry_id.clone())
                .collect();
            assert_page_fits(
                &Page {
                    ids,
                    next_page_token: page.next_page_token.clone(),
                },
                page_size,
            );
            entries.extend(page.entries);
            if page.next_page_token.is_empty() {
                return entries;
            }
            token = page.next_page_token;
        }
        panic!("more than {MAX_PAGES} pages");
    }

    /// GetUsageSummary over `filters`' range.
    pub async fn usage_summary(
        &self,
        account_id: &str,
        filters: &Filters,
    ) -> Result<GetUsageSummaryResponse, Status> {
        self.account_as(Some(&self.key))
            .get_usage_summary(filters.summary(account_id))
            .await
            .map(tonic::Response::into_inner)
    }

    /// The record ListUsage must show for a hold, from what GetHold says of it and its
    /// settlements.
    pub async fn expected_record(&self, hold_id: &str) -> UsageRecord {
        let found = self.get_hold(hold_id).await;
        let hold = found.hold.unwrap();
        let refunded: Decimal = found
            .settlements
            .iter()
            .map(|settlement| decimal(&settlement.refunded))
            .sum();
        let captured = decimal(&hold.captured);
        let held = if hold.status() == HoldStatus::Active {
            (decimal(&hold.amount) - captured).max(Decimal::ZERO)
        } else {
            Decimal::ZERO
        };
        UsageRecord {
            hold_id: hold.hold_id,
            run: hold.run,
            status: hold.status,
            credits: credits(captured),
            held: credits(held),
            created_at: hold.created_at,
            resolved_at: hold.resolved_at,
            refunded: credits(refunded),
        }
    }
}

/// What GetUsageSummary must answer for the runs `records`: their sums, the task type with
/// the most runs (ties to the lower enum value), the latest run, and the breakdowns sorted by
/// runs descending, then name.
pub fn summary_of(records: &[UsageRecord]) -> GetUsageSummaryResponse {
    let mut by_task_type: BTreeMap<i32, (u64, Decimal)> = BTreeMap::new();
    let mut by_model: BTreeMap<String, (u64, Decimal)> = BTreeMap::new();
    let (mut spent, mut refunded) = (Decimal::ZERO, Decimal::ZERO);
    for record in records {
        let run = record.run.clone().unwrap_or_default();
        let net = decimal(&record.credits) - decimal(&record.refunded);
        spent += net;
        refunded += decimal(&record.refunded);
        for (runs, total) in [
            by_task_type.entry(run.task_type).or_default(),
            by_model.entry(run.model).or_default(),
        ] {
            *runs += 1;
            *total += net;
        }
    }
    let most_used_task_type = by_task_type
        .iter()
        .max_by(|(low, (low_runs, _)), (high, (high_runs, _))| {
            low_runs.cmp(high_runs).then(high.cmp(low))
        })
        .map_or(TaskType::Unspecified as i32, |(task_type, _)| *task_type);
    let mut by_task_type: Vec<TaskTypeUsage> = by_task_type
        .into_iter()
        .map(|(task_type, (runs, net))| TaskTypeUsage {
            task_type,
            runs,
            credits: credits(net),
        })
        .collect();
    by_task_type.sort_by_key(|usage| {
        (
            std::cmp::Reverse(usage.runs),
            usage.task_type().as_str_name(),
        )
    });
    let mut by_model: Vec<ModelUsage> = by_model
        .into_iter()
        .map(|(model, (runs, net))| ModelUsage {
            model,
            runs,
            credits: credits(net),
        })
        .collect();
    by_model.sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.model.cmp(&b.model)));
    GetUsageSummaryResponse {
        total_runs: u64::try_from(records.len()).unwrap(),
        credits_spent: credits(spent),
        most_used_task_type,
        last_activity_at: records
            .iter()
            .filter_map(|record| record.created_at.as_ref().map(time))
            .max()
            .map(timestamp),
        by_task_type,
        by_model,
        credits_refunded: credits(refunded),
    }
}

/// The four reads of usage history, for the behaviours they share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageRead {
    ListLedger,
    ListUsage,
    GetUsageSummary,
    ExportUsage,
}

impl UsageRead {
    pub const ALL: [UsageRead; 4] = [
        UsageRead::ListLedger,
        UsageRead::ListUsage,
        UsageRead::GetUsageSummary,
        UsageRead::ExportUsage,
    ];

    /// Whether it filters runs by task type, model, status and project besides the range.
    pub fn filters_runs(self) -> bool {
        matches!(self, UsageRead::ListUsage | UsageRead::ExportUsage)
    }

    /// Sends it for `account_id` and `filters` with the app's key; an export is read to its
    /// end, so a refusal sent in the stream counts too.
    pub async fn send(
        self,
        app: &TestApp,
        account_id: &str,
        filters: &Filters,
    ) -> Result<(), Status> {
        let mut client = app.account_as(Some(&app.key));
        match self {
            UsageRead::ListLedger => {
                let request = filters.ledger(account_id, 0, "");
                client.list_ledger(request).await.map(drop)
            }
            UsageRead::ListUsage => {
                let request = filters.list(account_id, 0, "");
                client.list_usage(request).await.map(drop)
            }
            UsageRead::GetUsageSummary => {
                let request = filters.summary(account_id);
                client.get_usage_summary(request).await.map(drop)
            }
            UsageRead::ExportUsage => app
                .export_chunks(filters.export(account_id))
                .await
                .map(drop),
        }
    }
}
