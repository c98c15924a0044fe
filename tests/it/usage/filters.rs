//! ListUsage: each filter alone and combined lists exactly the runs it names, newest first, each
//! with what it was charged, refunded and still holds; the range includes its start and
//! excludes its end.

use chrono::Duration;
use creditgate::proto::v1::{Hold, HoldStatus, TaskType};

use crate::helpers::TestApp;
use crate::helpers::time::time;
use crate::helpers::usage::{
    Filters, History, IMAGE_MODEL, TEXT_MODEL, credits, decimal, newest_first, run,
};

fn ids(holds: &[&Hold]) -> Vec<String> {
    holds.iter().map(|hold| hold.hold_id.clone()).collect()
}

fn model(model: &str) -> Filters {
    Filters {
        model: model.to_owned(),
        ..Filters::default()
    }
}

fn project(project: &str) -> Filters {
    Filters {
        project: project.to_owned(),
        ..Filters::default()
    }
}

#[tokio::test]
async fn each_filter_alone_and_combined_lists_exactly_its_runs_newest_first() {
    let app = TestApp::spawn().await;
    let history = History::make(&app).await;
    let h = &history;
    let cases: Vec<(&str, Filters, Vec<&Hold>)> = vec![
        ("no filter", Filters::default(), h.newest_first()),
        (
            "chat",
            Filters::task_type(TaskType::Chat),
            vec![&h.chat_expired, &h.chat_refunded],
        ),
        (
            "image",
            Filters::task_type(TaskType::Image),
            vec![&h.image_settled_late, &h.image_released],
        ),
        (
            "tool",
            Filters::task_type(TaskType::Tool),
            vec![&h.tool_above_hold],
        ),
        ("other", Filters::task_type(TaskType::Other), vec![]),
        (
            "text model",
            model(TEXT_MODEL),
            vec![&h.tool_above_hold, &h.chat_expired, &h.chat_refunded],
        ),
        (
            "image model",
            model(IMAGE_MODEL),
            vec![&h.image_settled_late, &h.image_released],
        ),
        ("unknown model", model("acme/none"), vec![]),
        (
            "settled",
            Filters::status(HoldStatus::Settled),
            vec![&h.unnamed, &h.tool_above_hold, &h.chat_refunded],
        ),
        (
            "released",
            Filters::status(HoldStatus::Released),
            vec![&h.image_released],
        ),
        (
            "expired",
            Filters::status(HoldStatus::Expired),
            vec![&h.image_settled_late, &h.chat_expired],
        ),
        (
            "active",
            Filters::status(HoldStatus::Active),
            vec![&h.search_active],
        ),
        (
            "alpha",
            project("alpha"),
            vec![
                &h.tool_above_hold,
                &h.search_active,
                &h.image_settled_late,
                &h.chat_refunded,
            ],
        ),
        (
            "beta",
            project("beta"),
            vec![&h.chat_expired, &h.image_released],
        ),
        (
            "chat for beta",
            Filters {
                task_type: TaskType::Chat as i32,
                ..project("beta")
            },
            vec![&h.chat_expired],
        ),
        (
            "settled text runs for alpha",
            Filters {
                model: TEXT_MODEL.to_owned(),
                status: HoldStatus::Settled as i32,
                ..project("alpha")
            },
            vec![&h.tool_above_hold, &h.chat_refunded],
        ),
        (
            "expired images for alpha",
            Filters {
                task_type: TaskType::Image as i32,
                status: HoldStatus::Expired as i32,
                ..project("alpha")
            },
            vec![&h.image_settled_late],
        ),
        (
            "released chat",
            Filters {
                status: HoldStatus::Released as i32,
                ..Filters::task_type(TaskType::Chat)
            },
            vec![],
        ),
    ];
    for (name, filters, expected) in cases {
        let listed: Vec<String> = app
            .usage(&h.account_id, &filters)
            .await
            .into_iter()
            .map(|record| record.hold_id)
            .collect();
        assert_eq!(listed, ids(&expected), "{name}");
    }
    app.finish().await;
}

#[tokio::test]
async fn a_record_shows_what_its_run_was_charged_refunded_and_still_holds() {
    let app = TestApp::spawn().await;
    let history = History::make(&app).await;
    let h = &history;
    let records = app.usage(&h.account_id, &Filters::default()).await;
    // (status, credits, refunded, held), newest first.
    let expected = [
        (HoldStatus::Settled, "3", "0", "0"),
        (HoldStatus::Settled, "12", "0", "0"),
        (HoldStatus::Active, "3", "0", "7"),
        (HoldStatus::Expired, "4", "0", "0"),
        (HoldStatus::Expired, "0", "0", "0"),
        (HoldStatus::Released, "0", "0", "0"),
        (HoldStatus::Settled, "7", "2", "0"),
    ];
    let shown: Vec<_> = records
        .iter()
        .map(|record| {
            (
                record.status(),
                record.credits.as_str(),
                record.refunded.as_str(),
                record.held.as_str(),
            )
        })
        .collect();
    assert_eq!(shown, expected);
    for (record, hold) in records.iter().zip(h.newest_first()) {
        assert_eq!(record.run, hold.run, "the run as authorized");
        assert_eq!(record.created_at, hold.created_at, "authorized at");
        assert_eq!(
            record.resolved_at.is_none(),
            record.status() == HoldStatus::Active,
            "only an active run is unresolved: {record:?}"
        );
        assert_eq!(*record, app.expected_record(&record.hold_id).await);
    }
    // Expired runs were resolved when the clock passed their TTL, before anything later.
    let expired_at = time(records[4].resolved_at.as_ref().unwrap());
    assert!(expired_at >= time(h.chat_expired.expires_at.as_ref().unwrap()));
    assert!(expired_at <= time(h.search_active.created_at.as_ref().unwrap()));
    let held: rust_decimal::Decimal = records.iter().map(|record| decimal(&record.held)).sum();
    assert_eq!(credits(held), app.balance(&h.account_id).await.held);
    app.finish().await;
}

#[tokio::test]
async fn the_range_includes_its_start_and_excludes_its_end() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("100").await;
    let mut holds = Vec::new();
    for _ in 0..4 {
        holds.push(
            app.start_run(&account_id, "1", run(TaskType::Chat, "", ""))
                .await,
        );
        app.advance(Duration::minutes(1));
    }
    let at = |index: usize| time(holds[index].created_at.as_ref().unwrap());
    let micro = Duration::microseconds(1);
    let ids = |indexes: &[usize]| -> Vec<String> {
        indexes
            .iter()
            .map(|&index| holds[index].hold_id.clone())
            .collect()
    };
    let cases = [
        ((Some(at(1)), Some(at(3))), ids(&[2, 1])),
        ((Some(at(1) + micro), Some(at(3) + micro)), ids(&[3, 2])),
        ((Some(at(1)), Some(at(1) + micro)), ids(&[1])),
        ((Some(at(1) - micro), Some(at(1))), ids(&[])),
        ((Some(at(2)), None), ids(&[3, 2])),
        ((None, Some(at(1))), ids(&[0])),
        ((None, None), newest_first(&holds)),
    ];
    for ((start, end), expected) in cases {
        let listed: Vec<String> = app
            .usage(&account_id, &Filters::between(start, end))
            .await
            .into_iter()
            .map(|record| record.hold_id)
            .collect();
        assert_eq!(listed, expected, "from {start:?} to {end:?}");
    }
    app.finish().await;
}

#[tokio::test]
async fn a_run_past_its_ttl_is_listed_expired_before_any_sweep_as_get_hold_and_get_balance_show_it()
{
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("100").await;
    let hold = app
        .start_run_for(&account_id, "10", run(TaskType::Chat, "", ""), 60)
        .await;
    app.advance(Duration::minutes(2));
    assert_eq!(app.hold_status(&hold.hold_id).await, HoldStatus::Expired);
    assert_eq!(app.balance(&account_id).await.held, "0");
    let listed = app.usage(&account_id, &Filters::default()).await;
    assert_eq!(
        (listed[0].status(), listed[0].held.as_str()),
        (HoldStatus::Expired, "0"),
        "as GetHold and GetBalance show it"
    );
    let expired = app
        .usage(&account_id, &Filters::status(HoldStatus::Expired))
        .await;
    assert_eq!(expired.len(), 1, "listed as expired");
    let active = app
        .usage(&account_id, &Filters::status(HoldStatus::Active))
        .await;
    assert!(active.is_empty(), "not listed as active: {active:?}");
    app.finish().await;
}
