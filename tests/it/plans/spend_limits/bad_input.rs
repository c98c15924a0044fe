//! Bad plan fields: INVALID_ARGUMENT naming the field, and nothing written.

use creditgate::proto::v1::{
    LimitPeriod, QuoteRequest, SetSpendLimitRequest, SpendScope, SpendScopeKind, Usage,
};

use crate::helpers::TestApp;
use crate::helpers::limits::{limit_request, member, scope, scoped_request};
use crate::helpers::snapshot::Snapshot;
use crate::helpers::status::assert_invalid_field;

/// A SetSpendLimit of alice's day limit with one field spoiled by `spoil`.
fn spoiled(
    account_id: &str,
    spoil: impl FnOnce(&mut SetSpendLimitRequest),
) -> SetSpendLimitRequest {
    let mut request = limit_request(account_id, &member("alice"), LimitPeriod::Day, "3");
    spoil(&mut request);
    request
}

#[tokio::test]
async fn set_spend_limit_refuses_bad_plan_fields_naming_them_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let account = app.funded_account("100").await;
    let alice = member("alice");
    app.scoped_hold(&account, &alice, "1", 0).await;
    let before = Snapshot::of(&app).await;
    let too_long = "x".repeat(256);
    let cases: Vec<(&str, SetSpendLimitRequest, &str, &str)> = vec![
        (
            "a negative limit",
            spoiled(&account, |request| request.limit = "-1".to_owned()),
            "INVALID_AMOUNT",
            "limit",
        ),
        (
            "no scope kind",
            spoiled(&account, |request| {
                request.scope = Some(scope(SpendScopeKind::Unspecified, "alice"));
            }),
            "INVALID_ARGUMENT",
            "scope",
        ),
        (
            "no scope",
            spoiled(&account, |request| request.scope = None),
            "INVALID_ARGUMENT",
            "scope",
        ),
        (
            "an empty scope id",
            spoiled(&account, |request| request.scope = Some(member(""))),
            "INVALID_ARGUMENT",
            "scope.scope_id",
        ),
        (
            "a scope id of 256 characters",
            spoiled(&account, |request| request.scope = Some(member(&too_long))),
            "INVALID_ARGUMENT",
            "scope.scope_id",
        ),
        (
            "no period",
            spoiled(&account, |request| {
                request.period = LimitPeriod::Unspecified as i32;
            }),
            "INVALID_ARGUMENT",
            "period",
        ),
    ];
    for (what, request, reason, field) in cases {
        let status = app.set_spend_limit(request).await.unwrap_err();
        assert_invalid_field(&status, reason, field);
        assert!(app.spend_limits(&account).await.is_empty(), "{what}");
    }
    Snapshot::of(&app)
        .await
        .assert_is(&before, "bad SetSpendLimit fields");
    // A scope id of the longest length accepted is taken.
    let longest = member(&too_long[..255]);
    app.limit(&account, &longest, LimitPeriod::Day, "3").await;
    app.finish().await;
}

#[tokio::test]
async fn a_spend_scope_without_an_id_or_without_an_account_is_invalid_argument() {
    let app = TestApp::spawn().await;
    let account = app.funded_account("100").await;
    let before = Snapshot::of(&app).await;
    let no_id = SpendScope {
        kind: SpendScopeKind::Member as i32,
        scope_id: String::new(),
    };
    let status = app
        .credit()
        .authorize(scoped_request(&account, &no_id, "1"))
        .await
        .unwrap_err();
    assert_invalid_field(&status, "INVALID_ARGUMENT", "spend_scope.scope_id");

    let status = app
        .credit()
        .quote(QuoteRequest {
            model: "xai/grok-3-fast".to_owned(),
            usage: Some(Usage {
                input_tokens: 1_000,
                ..Usage::default()
            }),
            spend_scope: Some(member("alice")),
            ..QuoteRequest::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&status, "INVALID_ARGUMENT", "spend_scope");
    Snapshot::of(&app)
        .await
        .assert_is(&before, "bad spend scopes");
    app.finish().await;
}
