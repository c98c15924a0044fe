//! Usage history on the wire: ListUsage, ListLedger, GetUsageSummary and ExportUsage requests
//! parsed, their rows converted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use rust_decimal::Decimal;
use tonic::Status;

use super::{convert, parse};
use crate::ids::AccountId;
use crate::ledger::HoldStatus;
use crate::money::Credits;
use crate::proto::v1;
use crate::service::usage::{
    self as usage_service, DEFAULT_PAGE_SIZE, JournalRow, MAX_PAGE_SIZE, UsageFilter, UsageRow,
};
use crate::service::{Context, ServiceError, access::Caller};

/// The page size asked for: 0 = the default; 1 to [`MAX_PAGE_SIZE`].
fn page_size(value: i32) -> Result<i64, ServiceError> {
    match i64::from(value) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        size if (1..=MAX_PAGE_SIZE).contains(&size) => Ok(size),
        size => Err(ServiceError::InvalidArgument {
            field: "page_size",
            message: format!(
                "{size} is out of range: 1 to {MAX_PAGE_SIZE}, or 0 for {DEFAULT_PAGE_SIZE}"
            ),
        }),
    }
}

/// A range's bounds, each optional.
type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A created_at range: each bound optional, the start before the end.
fn range(
    start: Option<&prost_types::Timestamp>,
    end: Option<&prost_types::Timestamp>,
) -> Result<Range, ServiceError> {
    let start = start
        .map(|time| parse::time("start_time", time))
        .transpose()?;
    let end = end.map(|time| parse::time("end_time", time)).transpose()?;
    if let (Some(start), Some(end)) = (start, end)
        && start >= end
    {
        return Err(ServiceError::InvalidArgument {
            field: "end_time",
            message: format!(
                "{} is not after start_time {}: the range is [start_time, end_time)",
                end.to_rfc3339(),
                start.to_rfc3339()
            ),
        });
    }
    Ok((start, end))
}

/// The stored task type name of a filter ("" = any).
fn task_type(value: i32) -> Result<String, ServiceError> {
    match v1::TaskType::try_from(value) {
        Ok(v1::TaskType::Unspecified) => Ok(String::new()),
        Ok(task_type) => Ok(task_type.as_str_name().to_owned()),
        Err(_) => Err(ServiceError::InvalidArgument {
            field: "task_type",
            message: format!("unknown task type {value}"),
        }),
    }
}

/// The stored hold status name of a filter ("" = any).
fn status(value: i32) -> Result<String, ServiceError> {
    let status = match v1::HoldStatus::try_from(value) {
        Ok(v1::HoldStatus::Unspecified) => return Ok(String::new()),
        Ok(v1::HoldStatus::Active) => HoldStatus::Active,
        Ok(v1::HoldStatus::Settled) => HoldStatus::Settled,
        Ok(v1::HoldStatus::Released) => HoldStatus::Released,
        Ok(v1::HoldStatus::Expired) => HoldStatus::Expired,
        Err(_) => {
            return Err(ServiceError::InvalidArgument {
                field: "status",
                message: format!("unknown hold status {value}"),
            });
        }
    };
    Ok(status.as_str().to_owned())
}

/// The filter of a ListUsage or ExportUsage request.
fn filter(
    start: Option<&prost_types::Timestamp>,
    end: Option<&prost_types::Timestamp>,
    task_type_value: i32,
    model: &str,
    status_value: i32,
    project: &str,
) -> Result<UsageFilter, ServiceError> {
    let (start, end) = range(start, end)?;
    Ok(UsageFilter {
        start,
        end,
        task_type: task_type(task_type_value)?,
        model: parse::text("model", model)?,
        status: status(status_value)?,
        project: parse::text("project", project)?,
    })
}

fn credits(value: Decimal) -> String {
    Credits::from_decimal(value).to_string()
}

/// A run on the wire.
fn usage_record(row: &UsageRow) -> v1::UsageRecord {
    let task_type =
        v1::TaskType::from_str_name(&row.task_type).unwrap_or(v1::TaskType::Unspecified);
    v1::UsageRecord {
        hold_id: row.hold_id.to_string(),
        run: Some(v1::RunMetadata {
            task_type: task_type as i32,
            tool: row.tool.clone(),
            model: row.model.clone(),
            project: row.project.clone(),
            run_id: row.run_id.clone(),
            labels: row.labels.iter().cloned().collect(),
        }),
        status: convert::hold_status(row.status) as i32,
        credits: row.credits.to_string(),
        held: row.held.to_string(),
        created_at: Some(convert::timestamp(row.created_at)),
        resolved_at: convert::timestamp_opt(row.resolved_at),
        refunded: row.refunded.to_string(),
    }
}

/// A journal entry on the wire.
fn ledger_entry(row: &JournalRow) -> v1::LedgerEntry {
    let id = |id: Option<uuid::Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    let ledger_account = v1::LedgerAccount::from_str_name(&format!(
        "LEDGER_ACCOUNT_{}",
        row.ledger_account.as_str()
    ))
    .unwrap_or(v1::LedgerAccount::Unspecified);
    let kind = v1::MovementKind::from_str_name(&format!("MOVEMENT_KIND_{}", row.kind.as_str()))
        .unwrap_or(v1::MovementKind::Unspecified);
    v1::LedgerEntry {
        entry_id: row.entry_id.to_string(),
        transaction_id: row.transaction_id.to_string(),
        ledger_account: ledger_account as i32,
        amount: row.amount.to_string(),
        kind: kind as i32,
        hold_id: id(row.hold_id),
        grant_id: id(row.grant_id),
        settlement_id: id(row.settlement_id),
        refund_id: id(row.refund_id),
        created_at: Some(convert::timestamp(row.created_at)),
    }
}

/// ListUsage.
pub async fn list_usage(
    context: &Context,
    caller: Caller,
    message: &v1::ListUsageRequest,
) -> Result<v1::ListUsageResponse, ServiceError> {
    let account_id: AccountId = parse::id("account_id", &message.account_id)?;
    let size = page_size(message.page_size)?;
    let filter = filter(
        message.start_time.as_ref(),
        message.end_time.as_ref(),
        message.task_type,
        &message.model,
        message.status,
        &message.project,
    )?;
    let page = usage_service::list_usage(
        context,
        caller,
        account_id,
        &filter,
        &message.page_token,
        size,
    )
    .await?;
    Ok(v1::ListUsageResponse {
        runs: page.rows.iter().map(usage_record).collect(),
        next_page_token: page.next_page_token,
    })
}

/// ListLedger.
pub async fn list_ledger(
    context: &Context,
    caller: Caller,
    message: &v1::ListLedgerRequest,
) -> Result<v1::ListLedgerResponse, ServiceError> {
    let account_id: AccountId = parse::id("account_id", &message.account_id)?;
    let size = page_size(message.page_size)?;
    let (start, end) = range(message.start_time.as_ref(), message.end_time.as_ref())?;
    let page = usage_service::list_ledger(
        context,
        caller,
        account_id,
        start,
        end,
        &message.page_token,
        size,
    )
    .await?;
    Ok(v1::ListLedgerResponse {
        entries: page.rows.iter().map(ledger_entry).collect(),
        next_page_token: page.next_page_token,
    })
}

/// Runs and credits (net of refunds) of one group.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    runs: i64,
    net: Decimal,
}

/// GetUsageSummary.
pub async fn summary(
    context: &Context,
    caller: Caller,
    message: &v1::GetUsageSummaryRequest,
) -> Result<v1::GetUsageSummaryResponse, ServiceError> {
    let account_id: AccountId = parse::id("account_id", &message.account_id)?;
    let (start, end) = range(message.start_time.as_ref(), message.end_time.as_ref())?;
    let summary = usage_service::summary(context, caller, account_id, start, end).await?;
    let mut runs = 0_i64;
    let mut captured = Decimal::ZERO;
    let mut refunded = Decimal::ZERO;
    let mut last = None;
    let mut by_task: BTreeMap<i32, Tally> = BTreeMap::new();
    let mut by_model: BTreeMap<String, Tally> = BTreeMap::new();
    for totals in &summary.totals {
        runs += totals.runs;
        captured += totals.captured;
        refunded += totals.refunded;
        last = last.max(totals.last_run_at);
        let net = totals.captured - totals.refunded;
        let task =
            v1::TaskType::from_str_name(&totals.task_type).unwrap_or(v1::TaskType::Unspecified);
        for tally in [
            by_task.entry(task as i32).or_default(),
            by_model.entry(totals.model.clone()).or_default(),
        ] {
            tally.runs += totals.runs;
            tally.net += net;
        }
    }
    let mut tasks: Vec<(i32, Tally)> = by_task.into_iter().collect();
    // The most used: most runs, ties to the lower enum value (the map's order, kept by the
    // stable sort).
    tasks.sort_by_key(|(_, tally)| std::cmp::Reverse(tally.runs));
    // Runs without a task type do not make "unspecified" the most used: it means "none".
    let most_used = tasks
        .iter()
        .find(|(task, _)| *task != v1::TaskType::Unspecified as i32)
        .map_or(v1::TaskType::Unspecified as i32, |(task, _)| *task);
    // Listed by most runs, ties by name, like the models.
    let name = |task: i32| {
        v1::TaskType::try_from(task)
            .map(|task| task.as_str_name())
            .unwrap_or_default()
    };
    tasks.sort_by(|left, right| {
        right
            .1
            .runs
            .cmp(&left.1.runs)
            .then_with(|| name(left.0).cmp(name(right.0)))
    });
    let mut models: Vec<(String, Tally)> = by_model.into_iter().collect();
    models.sort_by_key(|(_, tally)| std::cmp::Reverse(tally.runs));
    let count = |runs: i64| u64::try_from(runs).unwrap_or(0);
    Ok(v1::GetUsageSummaryResponse {
        total_runs: count(runs),
        credits_spent: credits(captured - refunded),
        credits_refunded: credits(refunded),
        most_used_task_type: most_used,
        last_activity_at: convert::timestamp_opt(last),
        by_task_type: tasks
            .iter()
            .map(|(task, tally)| v1::TaskTypeUsage {
                task_type: *task,
                runs: count(tally.runs),
                credits: credits(tally.net),
            })
            .collect(),
        by_model: models
            .into_iter()
            .map(|(model, tally)| v1::ModelUsage {
                model,
                runs: count(tally.runs),
                credits: credits(tally.net),
            })
            .collect(),
    })
}

/// ExportUsage: the stream of CSV chunks, ending with the error that cut it short, if any.
pub async fn export(
    context: &Context,
    caller: Caller,
    message: &v1::ExportUsageRequest,
) -> Result<super::account::ResponseStream<v1::ExportUsageResponse>, ServiceError> {
    let account_id: AccountId = parse::id("account_id", &message.account_id)?;
    let filter = filter(
        message.start_time.as_ref(),
        message.end_time.as_ref(),
        message.task_type,
        &message.model,
        message.status,
        &message.project,
    )?;
    let export = usage_service::export(context, caller, account_id, filter).await?;
    let ended = export.end;
    let chunks = tokio_stream::wrappers::ReceiverStream::new(export.chunks)
        .map(|csv_chunk| Ok(v1::ExportUsageResponse { csv_chunk }));
    // After the last chunk: an export that did not end complete ends with its error.
    let end = futures::stream::once(async move {
        usage_service::ExportStream::failure(&ended).map(|error| Err(Status::from(error)))
    })
    .filter_map(futures::future::ready);
    Ok(Box::pin(chunks.chain(end)))
}
