//! Bad requests to the usage reads: an unknown task type or status and an inverted or empty
//! range are INVALID_ARGUMENT naming the field, for every read that takes them. Bad account ids are checked with the other reads in
//! `money_guarantees::bad_input`, bad page sizes and tokens in `pagination`.

use chrono::Duration;
use creditgate::proto::v1::TaskType;

use crate::helpers::TestApp;
use crate::helpers::status::{assert_invalid_field, assert_refused, metadata};
use crate::helpers::usage::{Filters, UsageRead, run};

#[tokio::test]
async fn unknown_enum_values_and_inverted_ranges_are_invalid_argument_naming_the_field() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("10").await;
    app.start_run(&account_id, "1", run(TaskType::Chat, "", ""))
        .await;
    let now = app.now();
    let ranges = [
        (
            "inverted",
            Filters::between(Some(now), Some(now - Duration::seconds(1))),
        ),
        ("empty", Filters::between(Some(now), Some(now))),
    ];
    let enums = [
        (
            "task_type",
            Filters {
                task_type: 99,
                ..Filters::default()
            },
        ),
        (
            "status",
            Filters {
                status: 99,
                ..Filters::default()
            },
        ),
        (
            "status",
            Filters {
                status: -1,
                ..Filters::default()
            },
        ),
    ];
    for read in UsageRead::ALL {
        for (name, filters) in &ranges {
            let status = read.send(&app, &account_id, filters).await.unwrap_err();
            assert_refused(&status, tonic::Code::InvalidArgument, "INVALID_ARGUMENT");
            let field = metadata(&status).get("field").cloned().unwrap_or_default();
            assert!(
                ["start_time", "end_time"].contains(&field.as_str()),
                "{read:?} with an {name} range names {field:?}: {status:?}"
            );
        }
        if !read.filters_runs() {
            continue;
        }
        for (field, filters) in &enums {
            let status = read.send(&app, &account_id, filters).await.unwrap_err();
            assert_invalid_field(&status, "INVALID_ARGUMENT", field);
        }
    }
    app.finish().await;
}
