//! Settle by usage: priced with the hold's catalog version, rounded once, charged above the hold.

use creditgate::proto::v1::{
    GetHoldRequest, GrantSource, HoldStatus, ImageUsage, QuoteRequest, Usage, get_hold_request,
};
use tonic::Code;

use super::{
    GROK, SEED, authorize_quote, authorize_usage, get_catalog_on, item, publish, quote,
    quote_request, rounded_sum, settle_usage, token_item, tokens, with_token_rates,
};
use crate::helpers::TestApp;
use crate::helpers::money::key;
use crate::helpers::status::expect_refused;

#[tokio::test]
async fn settle_prices_usage_with_the_holds_catalog_version() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "100").await;

    // Two holds priced under version 1: by usage and by quote.
    let by_usage = authorize_usage(&app, &account, &key(), GROK, tokens(10_000, 10_000, 0))
        .await
        .unwrap()
        .hold
        .unwrap();
    assert_eq!(by_usage.amount, "0.75");
    assert_eq!(by_usage.catalog_version, 1);
    let quoted = quote(&app, GROK, tokens(10_000, 10_000, 0)).await.unwrap();
    assert_eq!(quoted.total, "0.75");
    let by_quote = authorize_quote(&app, &account, &key(), &quoted.quote_id)
        .await
        .unwrap()
        .hold
        .unwrap();
    assert_eq!(by_quote.amount, "0.75");
    assert_eq!(by_quote.catalog_version, 1);
    assert_eq!(by_quote.quote_id, quoted.quote_id);

    // Version 2: the same model costs 10× more.
    let v1 = get_catalog_on(&app, 0).await.unwrap();
    assert_eq!(v1.version, 1);
    let mut v2 = with_token_rates(v1, GROK, "1.25", "6.25", "0.3125");
    v2.description = "grok 10x".to_owned();
    let published = publish(&app, &app.key, &key(), v2, None).await.unwrap();
    assert_eq!(published.catalog.unwrap().version, 2);

    // Metered usage on the old holds is priced at version 1.
    let settled = settle_usage(&app, &by_usage.hold_id, tokens(10_000, 5_000, 0))
        .await
        .unwrap()
        .settlement
        .unwrap();
    assert_eq!(
        settled.line_items,
        vec![
            token_item("input_tokens", GROK, "1", "0.125", "0.125"),
            token_item("output_tokens", GROK, "0.5", "0.625", "0.3125"),
        ]
    );
    assert_eq!(settled.total, "0.4375");
    assert_eq!(settled.from_hold, "0.4375");
    assert_eq!(settled.released, "0.3125");
    assert_eq!(settled.catalog_version, 1);

    let settled = settle_usage(&app, &by_quote.hold_id, tokens(10_000, 10_000, 0))
        .await
        .unwrap()
        .settlement
        .unwrap();
    assert_eq!(
        settled.line_items,
        vec![
            token_item("input_tokens", GROK, "1", "0.125", "0.125"),
            token_item("output_tokens", GROK, "1", "0.625", "0.625"),
        ]
    );
    assert_eq!(settled.total, "0.75");
    assert_eq!(settled.from_hold, "0.75");
    assert_eq!(settled.released, "0");
    assert_eq!(settled.catalog_version, 1);

    // New quotes and holds use version 2; version 1 can still be quoted on request.
    let now_priced = quote(&app, GROK, tokens(10_000, 10_000, 0)).await.unwrap();
    assert_eq!(now_priced.catalog_version, 2);
    assert_eq!(now_priced.total, "7.5");
    assert_eq!(
        now_priced.line_items,
        vec![
            token_item("input_tokens", GROK, "1", "1.25", "1.25"),
            token_item("output_tokens", GROK, "1", "6.25", "6.25"),
        ]
    );
    // New runs are priced only at the version in effect: quoting at the old one is refused.
    let old_version = quote_request(
        &app,
        QuoteRequest {
            model: GROK.to_owned(),
            usage: Some(tokens(10_000, 10_000, 0)),
            catalog_version: 1,
            ..QuoteRequest::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(old_version.code(), tonic::Code::InvalidArgument);

    let new_hold = authorize_usage(&app, &account, &key(), GROK, tokens(10_000, 10_000, 0))
        .await
        .unwrap()
        .hold
        .unwrap();
    assert_eq!(new_hold.amount, "7.5");
    assert_eq!(new_hold.catalog_version, 2);
    let settled = settle_usage(&app, &new_hold.hold_id, tokens(10_000, 10_000, 0))
        .await
        .unwrap()
        .settlement
        .unwrap();
    assert_eq!(settled.total, "7.5");
    assert_eq!(settled.catalog_version, 2);

    // 100 − 0.4375 − 0.75 − 7.5
    let balance = app.balance(&account).await;
    assert_eq!(balance.available, "91.3125");
    assert_eq!(balance.held, "0");

    app.finish().await;
}

#[tokio::test]
async fn settle_by_usage_rounds_once_and_charges_above_the_hold() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "10").await;

    // Estimate: 100 × 0.00625 + 10 × 0.05 = 1.125.
    let hold = authorize_usage(&app, &account, &key(), SEED, tokens(1_000_000, 100_000, 0))
        .await
        .unwrap()
        .hold
        .unwrap();
    assert_eq!(hold.amount, "1.125");

    // Metered: more than estimated, at the batch rate. The multiplier line has 10 places:
    // (0.625001875 + 2) × 0.5 = 1.3125009375 → half-even to 9 places (7 is odd): 1.312500938.
    let metered = Usage {
        multipliers: vec!["batch".to_owned()],
        ..tokens(1_000_003, 400_000, 0)
    };
    let response = settle_usage(&app, &hold.hold_id, metered).await.unwrap();
    let settlement = response.settlement.unwrap();
    assert_eq!(
        settlement.line_items,
        vec![
            token_item("input_tokens", SEED, "100.0003", "0.00625", "0.625001875"),
            token_item("output_tokens", SEED, "40", "0.05", "2"),
            item(
                "multiplier",
                "batch × 0.5",
                "2.625001875",
                "credits",
                "-0.5",
                "-1.3125009375"
            ),
        ]
    );
    assert_eq!(settlement.total, "1.312500938");
    assert_eq!(settlement.total, rounded_sum(&settlement.line_items));
    // Above the hold: the rest comes from the balance.
    assert_eq!(settlement.from_hold, "1.125");
    assert_eq!(settlement.from_balance, "0.187500938");
    assert_eq!(settlement.debt, "0");
    assert_eq!(settlement.written_off, "0");
    assert_eq!(settlement.released, "0");
    assert_eq!(settlement.catalog_version, 1);
    assert!(!settlement.late);
    let settled_hold = response.hold.unwrap();
    assert_eq!(settled_hold.status(), HoldStatus::Settled);
    assert_eq!(settled_hold.captured, "1.312500938");

    // GetHold shows the same settlement with its line items.
    let view = app
        .credit()
        .get_hold(GetHoldRequest {
            lookup: Some(get_hold_request::Lookup::HoldId(hold.hold_id.clone())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.settlements, vec![settlement]);

    // 10 − 1.312500938
    let balance = app.balance(&account).await;
    assert_eq!(balance.available, "8.687499062");
    assert_eq!(balance.held, "0");

    // A tie that rounds down to even: 0.625000625 × 0.5 = 0.3125003125 → 0.312500312.
    let hold = authorize_usage(&app, &account, &key(), SEED, tokens(1_000_000, 0, 0))
        .await
        .unwrap()
        .hold
        .unwrap();
    assert_eq!(hold.amount, "0.625");
    let metered = Usage {
        multipliers: vec!["batch".to_owned()],
        ..tokens(1_000_001, 0, 0)
    };
    let settlement = settle_usage(&app, &hold.hold_id, metered)
        .await
        .unwrap()
        .settlement
        .unwrap();
    assert_eq!(
        settlement.line_items,
        vec![
            token_item("input_tokens", SEED, "100.0001", "0.00625", "0.625000625"),
            item(
                "multiplier",
                "batch × 0.5",
                "0.625000625",
                "credits",
                "-0.5",
                "-0.3125003125"
            ),
        ]
    );
    assert_eq!(settlement.total, "0.312500312");
    assert_eq!(settlement.total, rounded_sum(&settlement.line_items));
    assert_eq!(settlement.from_hold, "0.312500312");
    assert_eq!(settlement.from_balance, "0");
    assert_eq!(settlement.released, "0.312499688");

    // Metered usage the model cannot price is refused and leaves the hold alone.
    let hold = authorize_usage(&app, &account, &key(), GROK, tokens(10_000, 0, 0))
        .await
        .unwrap()
        .hold
        .unwrap();
    assert_eq!(hold.amount, "0.125");
    let mut with_image = tokens(10_000, 0, 0);
    with_image.images.push(ImageUsage {
        count: 1,
        size: "1024x1024".to_owned(),
        ..ImageUsage::default()
    });
    expect_refused(
        settle_usage(&app, &hold.hold_id, with_image).await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );
    // 8.687499062 − 0.312500312 − 0.125 (held)
    let balance = app.balance(&account).await;
    assert_eq!(balance.available, "8.24999875");
    assert_eq!(balance.held, "0.125");

    app.finish().await;
}
