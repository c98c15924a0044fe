//! What a limit refuses: the hold that would pass it, with the figures behind the refusal, and
//! nothing of another scope; Quote answers as Authorize would.

use creditgate::proto::v1::{
    LimitPeriod, QuoteRequest, QuoteResponse, SpendScope, SpendScopeKind, Usage,
};

use crate::helpers::TestApp;
use crate::helpers::limits::{assert_limit_reached, figures, member, scope};

/// Quotes a small grok-3-fast run for `account_id`, counted against `spend_scope`.
async fn quote_for(app: &TestApp, account_id: &str, spend_scope: &SpendScope) -> QuoteResponse {
    app.credit()
        .quote(QuoteRequest {
            model: "xai/grok-3-fast".to_owned(),
            usage: Some(Usage {
                input_tokens: 1_000,
                ..Usage::default()
            }),
            account_id: account_id.to_owned(),
            spend_scope: Some(spend_scope.clone()),
            ..QuoteRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_member_limit_refuses_the_hold_that_would_pass_it_and_no_other_scope() {
    let app = TestApp::spawn().await;
    let account = app.funded_account("1000").await;
    let (alice, bob) = (member("alice"), member("bob"));
    let set = app.limit(&account, &alice, LimitPeriod::Day, "3").await;
    assert_eq!(figures(&set), ("3", "0", "0"));
    assert_eq!(set.scope.as_ref(), Some(&alice));

    let mut holds = Vec::new();
    for reserved in ["1", "2", "3"] {
        holds.push(app.scoped_hold(&account, &alice, "1", 0).await);
        app.assert_limit(&account, &alice, LimitPeriod::Day, ("3", "0", reserved))
            .await;
    }
    let fetched = app.get_hold(&holds[0].hold_id).await.hold.unwrap();
    assert_eq!(fetched.spend_scope.as_ref(), Some(&alice));

    let refused = app
        .scoped_authorize(&account, &alice, "1")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &alice, LimitPeriod::Day, ("3", "0", "3"));
    app.assert_limit(&account, &alice, LimitPeriod::Day, ("3", "0", "3"))
        .await;
    // Bob has no limit, and a hold without a scope counts against none.
    app.scoped_hold(&account, &bob, "1", 0).await;
    app.hold(&account, "1").await;
    app.assert_balance(&account, "995", "5").await;
    assert_eq!(app.spend_limits(&account).await.len(), 1);

    let quoted = quote_for(&app, &account, &alice).await;
    assert_eq!(
        (
            quoted.allowed,
            quoted.affordable,
            quoted.denial_reason.as_str()
        ),
        (false, true, "SPEND_LIMIT_REACHED")
    );
    let quoted = quote_for(&app, &account, &bob).await;
    assert_eq!(
        (
            quoted.allowed,
            quoted.affordable,
            quoted.denial_reason.as_str()
        ),
        (true, true, "")
    );

    // A capture moves the credit from reserved to spent: the next credit is still refused.
    app.settle(&holds[0].hold_id, "1", false).await.unwrap();
    app.assert_limit(&account, &alice, LimitPeriod::Day, ("3", "1", "2"))
        .await;
    let refused = app
        .scoped_authorize(&account, &alice, "1")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &alice, LimitPeriod::Day, ("3", "1", "2"));
    app.finish().await;
}

#[tokio::test]
async fn a_limit_of_zero_refuses_every_hold_and_scopes_of_other_kinds_are_apart() {
    let app = TestApp::spawn().await;
    let account = app.funded_account("1000").await;
    let member_x = member("x");
    let project_x = scope(SpendScopeKind::Project, "x");
    let key_x = scope(SpendScopeKind::ApiKey, "x");
    app.limit(&account, &member_x, LimitPeriod::Day, "0").await;

    let refused = app
        .scoped_authorize(&account, &member_x, "0.000000001")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &member_x, LimitPeriod::Day, ("0", "0", "0"));
    app.scoped_hold(&account, &project_x, "5", 0).await;
    app.scoped_hold(&account, &key_x, "5", 0).await;
    app.assert_limit(&account, &member_x, LimitPeriod::Day, ("0", "0", "0"))
        .await;

    // The project's own limit counts the project's hold, not the member's or the key's.
    let set = app
        .limit(&account, &project_x, LimitPeriod::Total, "5")
        .await;
    assert_eq!(figures(&set), ("5", "0", "5"));
    let refused = app
        .scoped_authorize(&account, &project_x, "0.000000001")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &project_x, LimitPeriod::Total, ("5", "0", "5"));
    let refused = app
        .scoped_authorize(&account, &member_x, "1")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &member_x, LimitPeriod::Day, ("0", "0", "0"));
    app.scoped_hold(&account, &key_x, "5", 0).await;
    assert_eq!(app.spend_limits(&account).await.len(), 2);
    app.assert_balance(&account, "985", "15").await;
    app.finish().await;
}
