//! GetUsageSummary over runs made on three UTC days by moving the server clock: for whole days,
//! partial days at both edges, part of one day, no bound and an empty range, the summary is
//! exactly what summing the runs ListUsage lists over the same range gives; refunds lower
//! credits_spent and show in credits_refunded; ties are broken by name in the breakdowns and
//! by the lower enum value for the most used task type. Months that have ended are folded into
//! monthly totals by the first summary over them, and stay exact when their runs are refunded
//! or resolved afterwards.

use chrono::{DateTime, Duration, Utc};
use creditgate::proto::v1::{
    GetUsageSummaryResponse, Hold, ModelUsage, RunMetadata, TaskType, TaskTypeUsage,
};

use crate::helpers::TestApp;
use crate::helpers::limits::{next_day, next_month};
use crate::helpers::money::refund;
use crate::helpers::time::{time, timestamp};
use crate::helpers::usage::{Filters, run, summary_of};

const FIRST_MODEL: &str = "acme/m1";
const SECOND_MODEL: &str = "acme/m2";

/// Makes a run of 10 at `at` on the server clock, settled for `charged` ("" leaves it open)
/// with `refunded` refunded ("" none).
async fn run_at(
    app: &TestApp,
    account_id: &str,
    at: DateTime<Utc>,
    run: RunMetadata,
    (charged, refunded): (&str, &str),
) -> Hold {
    app.advance_to(at);
    let hold = app.start_run_for(account_id, "10", run, 86_400).await;
    if !charged.is_empty() {
        let settled = app.settle(&hold.hold_id, charged, false).await.unwrap();
        if !refunded.is_empty() {
            let settlement_id = settled.settlement.unwrap().settlement_id;
            refund(app, &settlement_id, refunded).await.unwrap();
        }
    }
    hold
}

fn task(task_type: TaskType, runs: u64, credits: &str) -> TaskTypeUsage {
    TaskTypeUsage {
        task_type: task_type as i32,
        runs,
        credits: credits.to_owned(),
    }
}

fn model(model: &str, runs: u64, credits: &str) -> ModelUsage {
    ModelUsage {
        model: model.to_owned(),
        runs,
        credits: credits.to_owned(),
    }
}

#[tokio::test]
async fn a_summary_is_the_sum_of_the_listed_runs_over_any_range_across_utc_midnight() {
    let app = TestApp::spawn().await;
    // The midnight after next: three hours before it is always ahead of the clock.
    let midnight = next_day(app.now()) + Duration::days(1);
    let hours = |count: i64| midnight + Duration::hours(count);
    let account_id = app.funded_account("1000").await;
    let account = account_id.as_str();
    let chat = |model| run(TaskType::Chat, model, "");
    let image = |model| run(TaskType::Image, model, "");
    let first = run_at(&app, account, hours(-3), chat(FIRST_MODEL), ("5", "")).await;
    let second = run_at(&app, account, hours(-2), image(SECOND_MODEL), ("3", "1")).await;
    run_at(&app, account, hours(-1), chat(SECOND_MODEL), ("0", "")).await;
    run_at(&app, account, hours(1), chat(FIRST_MODEL), ("4", "")).await;
    let search = run(TaskType::Search, FIRST_MODEL, "");
    let open = run_at(&app, account, hours(2), search, ("", "")).await;
    let search = run(TaskType::Search, "", "");
    let refunded = run_at(&app, account, hours(3), search, ("2", "2")).await;
    let last = run_at(&app, account, hours(25), image(SECOND_MODEL), ("6", "")).await;
    let created = |hold: &Hold| time(hold.created_at.as_ref().unwrap());

    let ranges = [
        ("unbounded", None, None),
        ("two whole days", Some(hours(-24)), Some(hours(24))),
        ("one whole day", Some(midnight), Some(hours(24))),
        (
            "partial days at both edges",
            Some(hours(-2) - Duration::minutes(30)),
            Some(hours(26)),
        ),
        (
            "part of one day",
            Some(hours(1) + Duration::minutes(30)),
            Some(hours(2) + Duration::minutes(30)),
        ),
        (
            "from a run to a run",
            Some(created(&second)),
            Some(created(&refunded)),
        ),
        ("from the first run on", Some(created(&first)), None),
        ("up to the last run", None, Some(created(&last))),
        ("empty", Some(hours(24)), Some(created(&last))),
    ];
    for (name, start, end) in ranges {
        let filters = Filters::between(start, end);
        let listed = app.usage(account, &filters).await;
        let summary = app.usage_summary(account, &filters).await.unwrap();
        assert_eq!(summary, summary_of(&listed), "{name}");
    }

    let all = app
        .usage_summary(account, &Filters::default())
        .await
        .unwrap();
    assert_eq!(
        (
            all.total_runs,
            all.credits_spent.as_str(),
            all.credits_refunded.as_str()
        ),
        (7, "17", "3")
    );
    assert_eq!(all.most_used_task_type(), TaskType::Chat);
    assert_eq!(all.last_activity_at, Some(timestamp(created(&last))));
    assert_eq!(
        all.by_task_type,
        [
            task(TaskType::Chat, 3, "9"),
            task(TaskType::Image, 2, "8"),
            task(TaskType::Search, 2, "0"),
        ],
        "by runs, then name"
    );
    assert_eq!(
        all.by_model,
        [
            model(FIRST_MODEL, 3, "9"),
            model(SECOND_MODEL, 3, "8"),
            model("", 1, "0")
        ]
    );
    // Two chat, two image and two search runs: the tie goes to the lower task type.
    let edges = Filters::between(Some(hours(-2) - Duration::minutes(30)), Some(hours(26)));
    let edges = app.usage_summary(account, &edges).await.unwrap();
    assert_eq!(
        (edges.total_runs, edges.most_used_task_type()),
        (6, TaskType::Chat)
    );
    let day = Filters::between(Some(midnight), Some(hours(24)));
    let day = app.usage_summary(account, &day).await.unwrap();
    assert_eq!(
        (
            day.total_runs,
            day.credits_spent.as_str(),
            day.credits_refunded.as_str()
        ),
        (3, "4", "2")
    );
    assert_eq!(day.last_activity_at, Some(timestamp(created(&refunded))));
    let part = Filters::between(
        Some(created(&open)),
        Some(created(&open) + Duration::microseconds(1)),
    );
    assert_eq!(
        app.usage_summary(account, &part).await.unwrap().total_runs,
        1
    );

    let empty = Filters::between(Some(hours(24)), Some(created(&last)));
    let nothing = GetUsageSummaryResponse {
        credits_spent: "0".to_owned(),
        credits_refunded: "0".to_owned(),
        ..GetUsageSummaryResponse::default()
    };
    assert_eq!(app.usage_summary(account, &empty).await.unwrap(), nothing);
    let unused = app.account().await;
    assert_eq!(
        app.usage_summary(&unused, &Filters::default())
            .await
            .unwrap(),
        nothing
    );
    app.finish().await;
}

#[tokio::test]
async fn task_types_with_as_many_runs_are_listed_by_name() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("100").await;
    // By name OTHER, SEARCH, TOOL; by enum value SEARCH (4), TOOL (5), OTHER (6).
    for task_type in [TaskType::Tool, TaskType::Other, TaskType::Search] {
        let hold = app
            .start_run(&account_id, "1", run(task_type, "", ""))
            .await;
        app.settle(&hold.hold_id, "1", false).await.unwrap();
    }
    let summary = app
        .usage_summary(&account_id, &Filters::default())
        .await
        .unwrap();
    assert_eq!(
        summary.by_task_type,
        [
            task(TaskType::Other, 1, "1"),
            task(TaskType::Search, 1, "1"),
            task(TaskType::Tool, 1, "1"),
        ]
    );
    assert_eq!(
        summary.most_used_task_type(),
        TaskType::Search,
        "the lowest enum value"
    );
    app.finish().await;
}

/// Where the account's folded months end, if any are.
async fn folded_before(app: &TestApp, account_id: &str) -> Option<chrono::NaiveDate> {
    let client = app.pool.get().await.unwrap();
    let account: uuid::Uuid = account_id.parse().unwrap();
    client
        .query_opt(
            "SELECT folded_before FROM usage_folds WHERE account_id = $1",
            &[&account],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

#[tokio::test]
async fn summaries_over_folded_months_stay_the_sum_of_the_runs_after_refunds_and_late_expiry() {
    let app = TestApp::spawn().await;
    // Three months A, B, C from the month after next; the summaries are read in month D.
    let a = next_month(next_month(app.now()));
    let (b, c) = (next_month(a), next_month(next_month(a)));
    let d = next_month(c);
    let account_id = app.funded_account("1000").await;
    let account = account_id.as_str();
    let chat = |model| run(TaskType::Chat, model, "");
    let image = |model| run(TaskType::Image, model, "");
    run_at(
        &app,
        account,
        a + Duration::hours(12),
        chat(FIRST_MODEL),
        ("5", ""),
    )
    .await;
    app.advance_to(a + Duration::days(3));
    let refunded_later = app
        .start_run_for(account, "10", image(SECOND_MODEL), 86_400)
        .await;
    let settled = app
        .settle(&refunded_later.hold_id, "3", false)
        .await
        .unwrap();
    let settlement_id = settled.settlement.unwrap().settlement_id;
    run_at(
        &app,
        account,
        b + Duration::days(2),
        chat(SECOND_MODEL),
        ("2", "1"),
    )
    .await;
    run_at(
        &app,
        account,
        c + Duration::days(5),
        chat(FIRST_MODEL),
        ("4", ""),
    )
    .await;
    // Open at C's last hour, expired when C is folded but not yet resolved: nothing touches
    // the account until the sweep after the fold.
    app.advance_to(d - Duration::hours(1));
    let late = app
        .start_run_for(account, "10", image(FIRST_MODEL), 60)
        .await;
    app.advance_to(d + Duration::days(2));

    let ranges = [
        ("unbounded", None, None),
        ("the three months", Some(a), Some(d)),
        (
            "from a day of A to a day of C",
            Some(a + Duration::days(2)),
            Some(c + Duration::days(9)),
        ),
        (
            "part of A to D",
            Some(a + Duration::hours(30)),
            Some(d + Duration::days(3)),
        ),
        ("month B alone", Some(b), Some(c)),
    ];
    let check = |stage: &'static str| {
        let app = &app;
        async move {
            for (name, start, end) in ranges {
                let filters = Filters::between(start, end);
                let listed = app.usage(account, &filters).await;
                let summary = app.usage_summary(account, &filters).await.unwrap();
                assert_eq!(summary, summary_of(&listed), "{stage}: {name}");
            }
        }
    };
    assert_eq!(folded_before(&app, account).await, None);
    check("folding").await;
    // D began two days ago: A, B and C have ended more than a day ago.
    assert_eq!(folded_before(&app, account).await, Some(d.date_naive()));

    // A refund of a run of folded month A, and C's last run expired now.
    refund(&app, &settlement_id, "2").await.unwrap();
    app.sweep().await;
    run_at(
        &app,
        account,
        d + Duration::days(2) + Duration::hours(1),
        chat(FIRST_MODEL),
        ("1", ""),
    )
    .await;
    let expired = app
        .usage(account, &Filters::between(Some(c), Some(d)))
        .await;
    assert!(
        expired.iter().any(|row| row.hold_id == late.hold_id
            && row.status() != creditgate::proto::v1::HoldStatus::Active),
        "the late run expired"
    );
    check("after a refund and an expiry in folded months").await;

    let all = app
        .usage_summary(account, &Filters::between(Some(a), Some(d)))
        .await
        .unwrap();
    assert_eq!(
        (
            all.total_runs,
            all.credits_spent.as_str(),
            all.credits_refunded.as_str()
        ),
        (5, "11", "3")
    );
    app.finish().await;
}
