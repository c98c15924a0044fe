//! What Quote cannot price, and what it says of an account: may it run, can it afford it.

use creditgate::proto::v1::{GrantSource, QuoteRequest, Usage};
use tonic::Code;

use super::{O3_PRO, SEED, account_entitled, quote, quote_for, quote_request, tokens};
use crate::helpers::TestApp;
use crate::helpers::status::expect_refused;

#[tokio::test]
async fn quote_refuses_what_it_cannot_price() {
    let app = TestApp::spawn().await;

    expect_refused(
        quote(&app, "acme/no-such-model", tokens(10_000, 0, 0)).await,
        Code::InvalidArgument,
        "UNKNOWN_MODEL",
    );
    expect_refused(
        quote_request(
            &app,
            QuoteRequest {
                tool: "no-such-tool".to_owned(),
                usage: Some(tokens(10_000, 0, 0)),
                ..QuoteRequest::default()
            },
        )
        .await,
        Code::InvalidArgument,
        "UNKNOWN_TOOL",
    );
    expect_refused(
        quote_request(
            &app,
            QuoteRequest {
                tool: "chat".to_owned(),
                model: O3_PRO.to_owned(),
                usage: Some(tokens(10_000, 0, 0)),
                ..QuoteRequest::default()
            },
        )
        .await,
        Code::InvalidArgument,
        "MODEL_NOT_ALLOWED",
    );
    // openai/o3-pro has no cached-read rate: never a free run.
    expect_refused(
        quote(&app, O3_PRO, tokens(10_000, 0, 5_000)).await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );
    // Empty usage, given or absent.
    expect_refused(
        quote(&app, SEED, Usage::default()).await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );
    expect_refused(
        quote_request(
            &app,
            QuoteRequest {
                model: SEED.to_owned(),
                ..QuoteRequest::default()
            },
        )
        .await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );
    // A multiplier listed twice, and one the catalog lacks.
    expect_refused(
        quote(
            &app,
            SEED,
            Usage {
                multipliers: vec!["batch".to_owned(), "batch".to_owned()],
                ..tokens(10_000, 0, 0)
            },
        )
        .await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );
    expect_refused(
        quote(
            &app,
            SEED,
            Usage {
                multipliers: vec!["rush".to_owned()],
                ..tokens(10_000, 0, 0)
            },
        )
        .await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );
    // Neither a tool nor a model.
    expect_refused(
        quote_request(
            &app,
            QuoteRequest {
                usage: Some(tokens(10_000, 0, 0)),
                ..QuoteRequest::default()
            },
        )
        .await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );

    app.finish().await;
}

#[tokio::test]
async fn quote_says_whether_the_account_may_run_and_afford_it() {
    let app = TestApp::spawn().await;

    // Entitled and enough credits.
    let pro = account_entitled(&app, &app.key, &["pro"]).await;
    app.grant(&pro, GrantSource::Purchase, "10").await;
    let answer = quote_for(&app, &pro, O3_PRO, tokens(10_000, 10_000, 0))
        .await
        .unwrap();
    assert_eq!(answer.total, "2.5");
    assert!(answer.allowed, "{answer:?}");
    assert!(answer.affordable, "{answer:?}");
    assert_eq!(answer.denial_reason, "");
    assert_eq!(answer.available, "10");

    // Entitled but short.
    let short = account_entitled(&app, &app.key, &["pro"]).await;
    app.grant(&short, GrantSource::Purchase, "2").await;
    let answer = quote_for(&app, &short, O3_PRO, tokens(10_000, 10_000, 0))
        .await
        .unwrap();
    assert!(answer.allowed, "{answer:?}");
    assert!(!answer.affordable, "{answer:?}");
    assert_eq!(answer.denial_reason, "INSUFFICIENT_CREDITS");
    assert_eq!(answer.available, "2");

    // Not entitled: not allowed, although affordable.
    let plain = app.account().await;
    app.grant(&plain, GrantSource::Purchase, "10").await;
    let answer = quote_for(&app, &plain, O3_PRO, tokens(10_000, 10_000, 0))
        .await
        .unwrap();
    assert!(!answer.allowed, "{answer:?}");
    assert!(answer.affordable, "{answer:?}");
    assert_eq!(answer.denial_reason, "ENTITLEMENT_REQUIRED");
    assert_eq!(answer.available, "10");
    // A model without an entitlement is fine for it.
    let answer = quote_for(&app, &plain, SEED, tokens(1_000, 2_000, 500_000))
        .await
        .unwrap();
    assert_eq!(answer.total, "0.073125");
    assert!(answer.allowed && answer.affordable, "{answer:?}");
    assert_eq!(answer.denial_reason, "");

    // Quoting reserves nothing.
    let balance = app.balance(&pro).await;
    assert_eq!(balance.available, "10");
    assert_eq!(balance.held, "0");

    // An unknown account is not found (another tenant's: see the security table).
    expect_refused(
        quote_for(
            &app,
            &uuid::Uuid::now_v7().to_string(),
            SEED,
            tokens(10_000, 0, 0),
        )
        .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );

    app.finish().await;
}
