//! Quote tokens through the rolling upgrade of 0027–0028: a hold keeps its token whole while a
//! server before 0027 (which reads it whole) may be connected, and sealed once 0028 has run.
//! Either way every answer shows the token, replays included.

use creditgate::proto::v1::{
    AuthorizeRequest, AuthorizeResponse, GrantSource, QuoteRequest, Usage, authorize_request,
};

use crate::helpers::TestApp;
use crate::helpers::money::key;

/// An Authorize on `account_id` by a fresh quote, and its answer, checked to show the quote.
async fn authorize_quoted(
    app: &TestApp,
    account_id: &str,
) -> (AuthorizeRequest, AuthorizeResponse) {
    let quoted = app
        .credit()
        .quote(QuoteRequest {
            model: "bytedance/seed-1.8".to_owned(),
            usage: Some(Usage {
                input_tokens: 1_000,
                ..Usage::default()
            }),
            account_id: account_id.to_owned(),
            ..QuoteRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let request = AuthorizeRequest {
        account_id: account_id.to_owned(),
        idempotency_key: key(),
        price: Some(authorize_request::Price::QuoteId(quoted.quote_id.clone())),
        ..AuthorizeRequest::default()
    };
    let answer = app.credit().authorize(request.clone()).await.unwrap();
    let answer = answer.into_inner();
    assert_eq!(answer.hold.as_ref().unwrap().quote_id, quoted.quote_id);
    (request, answer)
}

/// How hold `hold_id`'s row keeps its quote: the token whole, and the seal's length.
async fn kept(app: &TestApp, answer: &AuthorizeResponse) -> (Option<String>, Option<i32>) {
    let hold_id = &answer.hold.as_ref().unwrap().hold_id;
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT quote_token, octet_length(quote_seal) FROM holds WHERE hold_id = $1::text::uuid",
            &[hold_id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// The run's Authorize replayed, and its hold read: the same token.
async fn shown_whole(app: &TestApp, run: &(AuthorizeRequest, AuthorizeResponse)) {
    let (request, answer) = run;
    let replayed = app.credit().authorize(request.clone()).await.unwrap();
    assert_eq!(&replayed.into_inner(), answer);
    let hold = answer.hold.as_ref().unwrap();
    let read = app.get_hold(&hold.hold_id).await.hold.unwrap();
    assert_eq!(read.quote_id, hold.quote_id);
}

/// Before the contract: the token is kept whole, for older servers. Returns such a run of
/// `like`'s.
pub(super) async fn expanded(app: &TestApp, like: &str) -> (AuthorizeRequest, AuthorizeResponse) {
    app.grant(like, GrantSource::Purchase, "5").await;
    let run = authorize_quoted(app, like).await;
    let quote_id = run.1.hold.as_ref().unwrap().quote_id.clone();
    assert_eq!(kept(app, &run.1).await, (Some(quote_id), None));
    shown_whole(app, &run).await;
    run
}

/// After the contract: a server that starts now finds the schema complete and keeps new holds'
/// quotes sealed, in far fewer bytes; the hold kept whole before still shows and replays as it
/// did, and each server shows and replays the other's.
pub(super) async fn contracted(
    app: &TestApp,
    like: &str,
    before: &(AuthorizeRequest, AuthorizeResponse),
) {
    let replica = app.replica().await;
    let run = authorize_quoted(&replica, like).await;
    let (whole, sealed) = kept(app, &run.1).await;
    assert_eq!(whole, None);
    let token = run.1.hold.as_ref().unwrap().quote_id.len();
    assert!(sealed.is_some_and(|sealed| usize::try_from(sealed).unwrap() * 2 < token));
    for server in [app, &replica] {
        shown_whole(server, before).await;
        shown_whole(server, &run).await;
    }
    replica.stop().await;
}
