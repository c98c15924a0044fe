//! GetAccount lists up to 1,000 limits and says whether there are more.

use creditgate::proto::v1::{
    GetAccountRequest, GetAccountResponse, LimitPeriod, get_account_request,
};
use futures::StreamExt as _;

use crate::helpers::TestApp;
use crate::helpers::limits::{limit_request, member};

/// Most limits GetAccount lists.
const LISTED: usize = 1_000;
/// SetSpendLimit calls in flight at once.
const IN_FLIGHT: usize = 16;

async fn account_of(app: &TestApp, account_id: &str) -> GetAccountResponse {
    let lookup = Some(get_account_request::Lookup::AccountId(
        account_id.to_owned(),
    ));
    app.account_as(Some(&app.key))
        .get_account(GetAccountRequest { lookup })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_account_lists_a_thousand_limits_and_says_truncated_only_past_them() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let client = app.account_as(Some(&app.key));
    let set = |index: usize| {
        let mut client = client.clone();
        let request = limit_request(
            &account,
            &member(&format!("m{index:04}")),
            LimitPeriod::Day,
            "1",
        );
        async move { client.set_spend_limit(request).await.unwrap() }
    };
    futures::stream::iter(0..LISTED)
        .map(set)
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    let listed = account_of(&app, &account).await;
    assert_eq!(listed.spend_limits.len(), LISTED);
    assert!(!listed.spend_limits_truncated, "every limit is listed");
    let first = listed.spend_limits[0].scope.as_ref().unwrap();
    assert_eq!(first.scope_id, "m0000", "limits are listed by scope id");

    set(LISTED).await;
    let listed = account_of(&app, &account).await;
    assert_eq!(listed.spend_limits.len(), LISTED);
    assert!(listed.spend_limits_truncated);
    app.finish().await;
}
