//! SetAllowance's own fields refused: INVALID_ARGUMENT naming the field, and nothing written.

use creditgate::proto::v1::{AllowancePeriod, GrantSource, SetAllowanceRequest};

use super::{daily_free, monthly_subscription};
use crate::helpers::TestApp;
use crate::helpers::snapshot::Snapshot;
use crate::helpers::status::assert_invalid_field;

/// A request with one field wrong, and the reason and field the refusal must name.
struct Case {
    request: SetAllowanceRequest,
    reason: &'static str,
    field: &'static str,
}

fn cases(account_id: &str) -> Vec<Case> {
    let valid = || monthly_subscription(account_id, "100");
    let invalid = |field: &'static str, request: SetAllowanceRequest| Case {
        request,
        reason: "INVALID_ARGUMENT",
        field,
    };
    let amount = |amount: &str| Case {
        request: daily_free(account_id, amount),
        reason: "INVALID_AMOUNT",
        field: "amount",
    };
    let zone = |time_zone: &str| SetAllowanceRequest {
        time_zone: time_zone.to_owned(),
        ..valid()
    };
    let anchor = |anchor_date: &str| SetAllowanceRequest {
        anchor_date: anchor_date.to_owned(),
        ..valid()
    };
    let named = |name: String| SetAllowanceRequest { name, ..valid() };
    vec![
        invalid("time_zone", zone("Mars/Base")),
        invalid("anchor_date", anchor("2025-02-30")),
        invalid("anchor_date", anchor("20250101")),
        amount("0"),
        amount("-1"),
        invalid(
            "period",
            SetAllowanceRequest {
                period: AllowancePeriod::Unspecified as i32,
                ..valid()
            },
        ),
        invalid(
            "source",
            SetAllowanceRequest {
                source: GrantSource::Unspecified as i32,
                ..valid()
            },
        ),
        invalid("name", named(String::new())),
        invalid("name", named("n".repeat(256))),
    ]
}

#[tokio::test]
async fn bad_allowance_fields_are_invalid_argument_naming_the_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let account = app.funded_account("10").await;
    let before = Snapshot::of(&app).await;
    for case in cases(&account) {
        let shown = format!("{:?}", case.request);
        let status = app.set_allowance(case.request).await.unwrap_err();
        assert_invalid_field(&status, case.reason, case.field);
        assert!(
            !status.message().is_empty(),
            "{shown}: the refusal should say why"
        );
    }
    assert_eq!(app.allowances(&account).await, []);
    Snapshot::of(&app)
        .await
        .assert_is(&before, "refused allowances");
    let client = app.pool.get().await.unwrap();
    let stored: i64 = client
        .query_one("SELECT count(*) FROM allowances", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);

    // The longest name is accepted.
    let longest = SetAllowanceRequest {
        name: "n".repeat(255),
        ..monthly_subscription(&account, "100")
    };
    app.set_allowance(longest).await.unwrap();
    app.assert_balance(&account, "110", "0").await;
    app.finish().await;
}
