//! Pricing through the gRPC surface: Quote (hand-computed totals, errors, eligibility),
//! Authorize by quote or usage, the price lock across catalog versions, Settle by usage, and
//! CatalogService (publish, idempotency, future versions, reads, model listing). Every amount is
//! checked as the exact decimal string.

use std::str::FromStr as _;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use creditgate::auth::{Scope, ScopeSet};
use creditgate::clock::Clock as _;
use creditgate::proto::v1::{
    AccountKind, AuthorizeRequest, AuthorizeResponse, Catalog, CreateAccountRequest, Entitlements,
    GetCatalogRequest, GetHoldRequest, GrantSource, HoldStatus, ImageUsage, LineItem,
    ListModelsRequest, Modality, PublishCatalogRequest, PublishCatalogResponse, QuoteRequest,
    QuoteResponse, RunMetadata, SettleRequest, SettleResponse, UpdateAccountRequest, Usage,
    VideoResolution, authorize_request, get_hold_request, settle_request,
};
use creditgate::service::tenants;
use rust_decimal::{Decimal, RoundingStrategy};
use tonic::{Code, Status};

use crate::helpers::money::key;
use crate::helpers::{TestApp, reason};

// ---------------------------------------------------------------------------------------------
// Private fixtures
// ---------------------------------------------------------------------------------------------

const O3_PRO: &str = "openai/o3-pro";
const FLASH_LITE: &str = "google/gemini-2.5-flash-lite-preview-09-2025";
const FLASH: &str = "google/gemini-2.5-flash-preview-09-2025";
const SEED: &str = "bytedance/seed-1.8";
const GROK: &str = "xai/grok-3-fast";

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap(),
    }
}

fn time(timestamp: &prost_types::Timestamp) -> DateTime<Utc> {
    Utc.timestamp_opt(timestamp.seconds, u32::try_from(timestamp.nanos).unwrap())
        .single()
        .unwrap()
}

/// Token usage.
fn tokens(input: u64, output: u64, cached_read: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cached_read_tokens: cached_read,
        ..Usage::default()
    }
}

/// A line item as the wire shows it.
fn item(
    kind: &str,
    description: &str,
    quantity: &str,
    unit: &str,
    rate: &str,
    amount: &str,
) -> LineItem {
    LineItem {
        kind: kind.to_owned(),
        description: description.to_owned(),
        quantity: quantity.to_owned(),
        unit: unit.to_owned(),
        rate: rate.to_owned(),
        amount: amount.to_owned(),
    }
}

/// A token line item of `model` ("10k tokens" unit).
fn token_item(kind: &str, model: &str, quantity: &str, rate: &str, amount: &str) -> LineItem {
    let what = match kind {
        "input_tokens" => "input tokens",
        "output_tokens" => "output tokens",
        "cached_read_tokens" => "cached-read tokens",
        "reasoning_tokens" => "reasoning tokens",
        other => panic!("not a token kind: {other}"),
    };
    item(
        kind,
        &format!("{model} {what}"),
        quantity,
        "10k tokens",
        rate,
        amount,
    )
}

/// The sum of line item amounts, rounded once half-even to 9 places, as the wire writes it.
fn rounded_sum(items: &[LineItem]) -> String {
    let exact: Decimal = items
        .iter()
        .map(|item| Decimal::from_str(&item.amount).unwrap())
        .sum();
    exact
        .round_dp_with_strategy(9, RoundingStrategy::MidpointNearestEven)
        .normalize()
        .to_string()
}

/// Asserts a refusal with `code` and ErrorInfo `expected`; returns the status.
fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    expected: &str,
) -> Status {
    let status = result.expect_err("the call should have been refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(&status).as_deref(), Some(expected), "{status:?}");
    status
}

async fn quote_request(app: &TestApp, request: QuoteRequest) -> Result<QuoteResponse, Status> {
    app.credit()
        .quote(request)
        .await
        .map(tonic::Response::into_inner)
}

/// Quotes `usage` on `model` (no tool, no account, active catalog).
async fn quote(app: &TestApp, model: &str, usage: Usage) -> Result<QuoteResponse, Status> {
    quote_request(
        app,
        QuoteRequest {
            model: model.to_owned(),
            usage: Some(usage),
            ..QuoteRequest::default()
        },
    )
    .await
}

/// Quotes `usage` on `model` for `account_id`.
async fn quote_for(
    app: &TestApp,
    account_id: &str,
    model: &str,
    usage: Usage,
) -> Result<QuoteResponse, Status> {
    quote_request(
        app,
        QuoteRequest {
            model: model.to_owned(),
            usage: Some(usage),
            account_id: account_id.to_owned(),
            ..QuoteRequest::default()
        },
    )
    .await
}

/// Creates an account with `entitlements`; returns its id.
async fn account_entitled(app: &TestApp, entitlements: &[&str]) -> String {
    app.account_as(Some(&app.key))
        .create_account(CreateAccountRequest {
            idempotency_key: key(),
            external_id: key(),
            kind: AccountKind::Organization as i32,
            entitlements: entitlements
                .iter()
                .map(|entitlement| (*entitlement).to_owned())
                .collect(),
            ..CreateAccountRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .account_id
}

/// A model-only run.
fn run_on(model: &str) -> RunMetadata {
    RunMetadata {
        model: model.to_owned(),
        ..RunMetadata::default()
    }
}

async fn authorize_price(
    app: &TestApp,
    account_id: &str,
    idempotency_key: &str,
    price: authorize_request::Price,
    run: Option<RunMetadata>,
) -> Result<AuthorizeResponse, Status> {
    app.credit()
        .authorize(AuthorizeRequest {
            account_id: account_id.to_owned(),
            idempotency_key: idempotency_key.to_owned(),
            price: Some(price),
            run,
            ..AuthorizeRequest::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Authorize by quote id.
async fn authorize_quote(
    app: &TestApp,
    account_id: &str,
    idempotency_key: &str,
    quote_id: &str,
) -> Result<AuthorizeResponse, Status> {
    authorize_price(
        app,
        account_id,
        idempotency_key,
        authorize_request::Price::QuoteId(quote_id.to_owned()),
        None,
    )
    .await
}

/// Authorize by a usage estimate on `model`.
async fn authorize_usage(
    app: &TestApp,
    account_id: &str,
    idempotency_key: &str,
    model: &str,
    usage: Usage,
) -> Result<AuthorizeResponse, Status> {
    authorize_price(
        app,
        account_id,
        idempotency_key,
        authorize_request::Price::Usage(usage),
        Some(run_on(model)),
    )
    .await
}

/// Final Settle by metered usage, fresh key.
async fn settle_usage(
    app: &TestApp,
    hold_id: &str,
    usage: Usage,
) -> Result<SettleResponse, Status> {
    app.credit()
        .settle(SettleRequest {
            hold_id: hold_id.to_owned(),
            idempotency_key: key(),
            charge: Some(settle_request::Charge::Usage(usage)),
            partial: false,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn get_catalog_on(app: &TestApp, version: u64) -> Result<Catalog, Status> {
    app.catalog_as(Some(&app.key))
        .get_catalog(GetCatalogRequest { version })
        .await
        .map(|response| response.into_inner().catalog.unwrap())
}

async fn publish(
    app: &TestApp,
    api_key: &str,
    idempotency_key: &str,
    catalog: Catalog,
    effective_at: Option<DateTime<Utc>>,
) -> Result<PublishCatalogResponse, Status> {
    app.catalog_as(Some(api_key))
        .publish_catalog(PublishCatalogRequest {
            idempotency_key: idempotency_key.to_owned(),
            catalog: Some(catalog),
            effective_at: effective_at.map(timestamp),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Every model id of a listing, paging with `page_size`; also returns the number of pages.
async fn list_all_models(
    app: &TestApp,
    page_size: i32,
    modality: Modality,
) -> (Vec<String>, usize) {
    let mut client = app.catalog_as(Some(&app.key));
    let mut ids = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_models(ListModelsRequest {
                version: 0,
                page_size,
                page_token: page_token.clone(),
                modality: modality as i32,
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(
            page.models.len() <= usize::try_from(page_size).unwrap(),
            "page {pages} has {} models",
            page.models.len()
        );
        ids.extend(page.models.into_iter().map(|model| model.model_id));
        if page.next_page_token.is_empty() {
            return (ids, pages);
        }
        assert!(pages < 100, "ListModels does not end");
        page_token = page.next_page_token;
    }
}

/// `catalog` with every token rate of `model` replaced.
fn with_token_rates(
    mut catalog: Catalog,
    model: &str,
    input: &str,
    output: &str,
    cached: &str,
) -> Catalog {
    let entry = catalog
        .models
        .iter_mut()
        .find(|entry| entry.model_id == model)
        .unwrap();
    let rates = entry.token_rates.as_mut().unwrap();
    rates.input_per_10k = input.to_owned();
    rates.output_per_10k = output.to_owned();
    rates.cached_read_per_10k = cached.to_owned();
    catalog
}

// ---------------------------------------------------------------------------------------------
// 1. Quote totals
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn quote_matches_hand_computation() {
    let app = TestApp::spawn().await;

    let before = app.clock.now();
    let o3 = quote(&app, O3_PRO, tokens(10_000, 10_000, 0))
        .await
        .unwrap();
    let after = app.clock.now();
    assert_eq!(o3.total, "2.5");
    assert_eq!(
        o3.line_items,
        vec![
            token_item("input_tokens", O3_PRO, "1", "0.5", "0.5"),
            token_item("output_tokens", O3_PRO, "1", "2", "2"),
        ]
    );
    assert_eq!(o3.catalog_version, 1);
    assert!(
        !o3.quote_id.is_empty() && o3.quote_id.len() <= 1_024,
        "{o3:?}"
    );
    let expires_at = time(o3.expires_at.as_ref().unwrap());
    assert!(
        expires_at >= before + Duration::minutes(10) && expires_at <= after + Duration::minutes(10),
        "expires_at {expires_at} is not now + 10 minutes ({before} .. {after})"
    );
    // Without an account, eligibility is not evaluated.
    assert!(!o3.allowed && !o3.affordable, "{o3:?}");
    assert_eq!(o3.denial_reason, "");
    assert_eq!(o3.available, "");

    let lite = quote(&app, FLASH_LITE, tokens(0, 0, 12_345)).await.unwrap();
    assert_eq!(lite.total, "0.000308625");
    assert_eq!(
        lite.line_items,
        vec![token_item(
            "cached_read_tokens",
            FLASH_LITE,
            "1.2345",
            "0.00025",
            "0.000308625"
        )]
    );
    assert_eq!(lite.catalog_version, 1);

    let seed = quote(&app, SEED, tokens(1_000, 2_000, 500_000))
        .await
        .unwrap();
    assert_eq!(seed.total, "0.073125");
    assert_eq!(
        seed.line_items,
        vec![
            token_item("input_tokens", SEED, "0.1", "0.00625", "0.000625"),
            token_item("output_tokens", SEED, "0.2", "0.05", "0.01"),
            token_item("cached_read_tokens", SEED, "50", "0.00125", "0.0625"),
        ]
    );
    assert_eq!(seed.catalog_version, 1);

    // Every quote has its own id.
    assert_ne!(o3.quote_id, lite.quote_id);
    assert_ne!(lite.quote_id, seed.quote_id);

    // A tool: its fee, its default model, a surcharge, then the batch multiplier on the subtotal.
    let research = quote_request(
        &app,
        QuoteRequest {
            tool: "web-research".to_owned(),
            usage: Some(Usage {
                searches: 2,
                multipliers: vec!["batch".to_owned()],
                ..tokens(10_000, 10_000, 0)
            }),
            ..QuoteRequest::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        research.line_items,
        vec![
            item(
                "tool_execution",
                "web-research execution",
                "1",
                "execution",
                "0.1",
                "0.1"
            ),
            token_item("input_tokens", FLASH, "1", "0.0075", "0.0075"),
            token_item("output_tokens", FLASH, "1", "0.0625", "0.0625"),
            item(
                "web_search",
                "web_search surcharge",
                "2",
                "search",
                "0.25",
                "0.5"
            ),
            item(
                "multiplier",
                "batch × 0.5",
                "0.67",
                "credits",
                "-0.5",
                "-0.335"
            ),
        ]
    );
    assert_eq!(research.total, "0.335");

    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn quote_prices_images_video_and_megapixels() {
    let app = TestApp::spawn().await;

    // A tool's default model, an explicit quality tier, and a size with no quality named
    // (the first tier listed for it: "standard").
    let images = quote_request(
        &app,
        QuoteRequest {
            tool: "image-studio".to_owned(),
            usage: Some(Usage {
                images: vec![
                    ImageUsage {
                        count: 2,
                        size: "1024x1536".to_owned(),
                        quality: "hd".to_owned(),
                        ..ImageUsage::default()
                    },
                    ImageUsage {
                        count: 3,
                        size: "1024x1024".to_owned(),
                        ..ImageUsage::default()
                    },
                ],
                ..Usage::default()
            }),
            ..QuoteRequest::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        images.line_items,
        vec![
            item(
                "tool_execution",
                "image-studio execution",
                "1",
                "execution",
                "0.5",
                "0.5"
            ),
            item(
                "image",
                "openai/gpt-image-1 image 1024x1536 hd",
                "2",
                "image",
                "31",
                "62"
            ),
            item(
                "image",
                "openai/gpt-image-1 image 1024x1024 standard",
                "3",
                "image",
                "8",
                "24"
            ),
        ]
    );
    assert_eq!(images.total, "86.5");

    // A size the model has no tier for, priced per megapixel.
    let flux = quote(
        &app,
        "black-forest-labs/flux-1.1-pro",
        Usage {
            images: vec![ImageUsage {
                count: 2,
                megapixels: "1.25".to_owned(),
                ..ImageUsage::default()
            }],
            ..Usage::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        flux.line_items,
        vec![item(
            "image",
            "black-forest-labs/flux-1.1-pro image 1.25 megapixels",
            "2.5",
            "megapixel",
            "4",
            "10"
        )]
    );
    assert_eq!(flux.total, "10");
    // gpt-image-1 has no per-megapixel rate: refused, never free.
    assert_refused(
        quote(
            &app,
            "openai/gpt-image-1",
            Usage {
                images: vec![ImageUsage {
                    count: 1,
                    megapixels: "1".to_owned(),
                    ..ImageUsage::default()
                }],
                ..Usage::default()
            },
        )
        .await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );

    // Video seconds by resolution, with the tool's fee.
    let video = quote_request(
        &app,
        QuoteRequest {
            tool: "video-studio".to_owned(),
            model: "kling/kling-2.1".to_owned(),
            usage: Some(Usage {
                video_seconds: "7.5".to_owned(),
                resolution: VideoResolution::VideoResolution1080p as i32,
                ..Usage::default()
            }),
            ..QuoteRequest::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        video.line_items,
        vec![
            item(
                "tool_execution",
                "video-studio execution",
                "1",
                "execution",
                "1",
                "1"
            ),
            item(
                "video",
                "kling/kling-2.1 video 1080p",
                "7.5",
                "second",
                "11",
                "82.5"
            ),
        ]
    );
    assert_eq!(video.total, "83.5");
    // Video without a resolution is refused.
    assert_refused(
        quote(
            &app,
            "kling/kling-2.1",
            Usage {
                video_seconds: "5".to_owned(),
                ..Usage::default()
            },
        )
        .await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Quote errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn quote_refuses_what_it_cannot_price() {
    let app = TestApp::spawn().await;

    assert_refused(
        quote(&app, "acme/no-such-model", tokens(10_000, 0, 0)).await,
        Code::InvalidArgument,
        "UNKNOWN_MODEL",
    );
    assert_refused(
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
    assert_refused(
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
    assert_refused(
        quote(&app, O3_PRO, tokens(10_000, 0, 5_000)).await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );
    // Empty usage, given or absent.
    assert_refused(
        quote(&app, SEED, Usage::default()).await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );
    assert_refused(
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
    assert_refused(
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
    assert_refused(
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
    assert_refused(
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

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Quote with an account
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn quote_says_whether_the_account_may_run_and_afford_it() {
    let app = TestApp::spawn().await;

    // Entitled and enough credits.
    let pro = account_entitled(&app, &["pro"]).await;
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
    let short = account_entitled(&app, &["pro"]).await;
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

    // Another tenant's account is not found, like one that does not exist.
    let other_key = {
        let client = app.pool.get().await.unwrap();
        let tenant = tenants::create_tenant(&client, "other").await.unwrap();
        tenants::create_key(&client, tenant.tenant_id, ScopeSet::all())
            .await
            .unwrap()
            .secret
    };
    let foreign = app
        .account_as(Some(&other_key))
        .create_account(CreateAccountRequest {
            idempotency_key: key(),
            external_id: key(),
            kind: AccountKind::Organization as i32,
            entitlements: vec!["pro".into()],
            ..CreateAccountRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .account_id;
    assert_refused(
        quote_for(&app, &foreign, SEED, tokens(10_000, 0, 0)).await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    assert_refused(
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

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. Authorize by quote
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_quote_id_works_on_any_replica_for_its_tenant_only_and_unchanged() {
    let app = TestApp::spawn().await;
    let pro = account_entitled(&app, &["pro"]).await;
    app.grant(&pro, GrantSource::Purchase, "10").await;
    let quoted = quote_for(&app, &pro, O3_PRO, tokens(10_000, 10_000, 0))
        .await
        .unwrap();

    // Nothing is looked up: another replica accepts the quote at once.
    let replica = app.replica().await;
    let authorized = authorize_quote(&replica, &pro, &key(), &quoted.quote_id)
        .await
        .unwrap();
    let hold = authorized.hold.unwrap();
    assert_eq!((hold.amount.as_str(), hold.catalog_version), ("2.5", 1));
    assert_eq!(hold.quote_id, quoted.quote_id);

    // Altered, made up or over-long ids are refused, and nothing is held for them.
    let mut altered = quoted.quote_id.clone().into_bytes();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for bad in [altered, uuid::Uuid::now_v7().to_string(), "x".to_owned()] {
        assert_refused(
            authorize_quote(&app, &pro, &key(), &bad).await,
            Code::NotFound,
            "QUOTE_NOT_FOUND",
        );
    }
    assert_refused(
        authorize_quote(&app, &pro, &key(), &"A".repeat(1_025)).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );

    // Another tenant cannot use it, even on an account of its own.
    let other_key = {
        let client = app.pool.get().await.unwrap();
        let tenant = tenants::create_tenant(&client, "other").await.unwrap();
        tenants::create_key(&client, tenant.tenant_id, ScopeSet::all())
            .await
            .unwrap()
            .secret
    };
    let foreign = app
        .account_as(Some(&other_key))
        .create_account(CreateAccountRequest {
            idempotency_key: key(),
            external_id: key(),
            kind: AccountKind::Organization as i32,
            ..CreateAccountRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .account_id;
    let unscoped = quote(&app, SEED, tokens(10_000, 0, 0)).await.unwrap();
    assert_refused(
        app.credit_as(Some(&other_key))
            .authorize(AuthorizeRequest {
                account_id: foreign,
                idempotency_key: key(),
                price: Some(authorize_request::Price::QuoteId(unscoped.quote_id)),
                ..AuthorizeRequest::default()
            })
            .await,
        Code::NotFound,
        "QUOTE_NOT_FOUND",
    );

    assert_eq!(app.balance(&pro).await.held, "2.5");
    app.assert_books_balance().await;
    replica.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn authorize_by_quote_holds_the_quote_until_it_expires() {
    let app = TestApp::spawn().await;
    let pro = account_entitled(&app, &["pro"]).await;
    app.grant(&pro, GrantSource::Purchase, "10").await;

    let first = quote_for(&app, &pro, O3_PRO, tokens(10_000, 10_000, 0))
        .await
        .unwrap();
    let first_key = key();
    let authorized = authorize_quote(&app, &pro, &first_key, &first.quote_id)
        .await
        .unwrap();
    let hold = authorized.hold.clone().unwrap();
    assert_eq!(hold.amount, "2.5");
    assert_eq!(hold.catalog_version, 1);
    assert_eq!(hold.quote_id, first.quote_id);
    assert_eq!(hold.status(), HoldStatus::Active);
    assert_eq!(hold.run.as_ref().unwrap().model, O3_PRO);
    assert_eq!(authorized.available, "7.5");

    // A quote used after its expiry is refused...
    let second = quote_for(&app, &pro, O3_PRO, tokens(10_000, 10_000, 0))
        .await
        .unwrap();
    app.advance(Duration::minutes(11));
    assert_refused(
        authorize_quote(&app, &pro, &key(), &second.quote_id).await,
        Code::FailedPrecondition,
        "QUOTE_EXPIRED",
    );
    // ...but the retry of an Authorize that succeeded before the expiry gets its hold back.
    let replayed = authorize_quote(&app, &pro, &first_key, &first.quote_id)
        .await
        .unwrap();
    assert_eq!(replayed, authorized);
    let balance = app.balance(&pro).await;
    assert_eq!(balance.available, "7.5");
    assert_eq!(balance.held, "2.5");

    assert_refused(
        authorize_quote(&app, &pro, &key(), &uuid::Uuid::now_v7().to_string()).await,
        Code::NotFound,
        "QUOTE_NOT_FOUND",
    );

    // A "pro" model on an account without the entitlement, by quote and by usage.
    let plain = app.account().await;
    app.grant(&plain, GrantSource::Purchase, "10").await;
    let unscoped = quote(&app, O3_PRO, tokens(10_000, 10_000, 0))
        .await
        .unwrap();
    let by_quote_key = key();
    assert_refused(
        authorize_quote(&app, &plain, &by_quote_key, &unscoped.quote_id).await,
        Code::PermissionDenied,
        "ENTITLEMENT_REQUIRED",
    );
    let by_usage_key = key();
    assert_refused(
        authorize_usage(
            &app,
            &plain,
            &by_usage_key,
            O3_PRO,
            tokens(10_000, 10_000, 0),
        )
        .await,
        Code::PermissionDenied,
        "ENTITLEMENT_REQUIRED",
    );
    // The account gets the entitlement; the declined calls stay declined on retry.
    app.account_as(Some(&app.key))
        .update_account(UpdateAccountRequest {
            account_id: plain.clone(),
            idempotency_key: key(),
            entitlements: Some(Entitlements {
                values: vec!["pro".to_owned()],
            }),
            ..UpdateAccountRequest::default()
        })
        .await
        .unwrap();
    assert_refused(
        authorize_quote(&app, &plain, &by_quote_key, &unscoped.quote_id).await,
        Code::PermissionDenied,
        "ENTITLEMENT_REQUIRED",
    );
    assert_refused(
        authorize_usage(
            &app,
            &plain,
            &by_usage_key,
            O3_PRO,
            tokens(10_000, 10_000, 0),
        )
        .await,
        Code::PermissionDenied,
        "ENTITLEMENT_REQUIRED",
    );
    // A new call is now allowed.
    let fresh = authorize_quote(&app, &plain, &key(), &unscoped.quote_id)
        .await
        .unwrap();
    assert_eq!(fresh.hold.unwrap().amount, "2.5");
    assert_eq!(fresh.available, "7.5");

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Authorize by usage
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn authorize_by_usage_prices_with_the_active_catalog() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "10").await;

    // 2 × 0.125 + 0.4 × 0.625 + 0.8 × 0.03125 = 0.525
    let estimate = tokens(20_000, 4_000, 8_000);
    let quoted = quote(&app, GROK, estimate.clone()).await.unwrap();
    assert_eq!(quoted.total, "0.525");
    let authorized = authorize_usage(&app, &account, &key(), GROK, estimate)
        .await
        .unwrap();
    let hold = authorized.hold.unwrap();
    assert_eq!(hold.amount, "0.525");
    assert_eq!(hold.catalog_version, 1);
    assert_eq!(hold.quote_id, "");
    assert_eq!(hold.run.as_ref().unwrap().model, GROK);
    assert_eq!(authorized.available, "9.475");

    // A tool alone: its default model, fee, surcharge and the batch multiplier.
    let research = Usage {
        searches: 2,
        multipliers: vec!["batch".to_owned()],
        ..tokens(10_000, 10_000, 0)
    };
    let authorized = authorize_price(
        &app,
        &account,
        &key(),
        authorize_request::Price::Usage(research),
        Some(RunMetadata {
            tool: "web-research".to_owned(),
            ..RunMetadata::default()
        }),
    )
    .await
    .unwrap();
    let hold = authorized.hold.unwrap();
    assert_eq!(hold.amount, "0.335");
    assert_eq!(hold.catalog_version, 1);
    let run = hold.run.unwrap();
    assert_eq!(run.tool, "web-research");
    assert_eq!(run.model, FLASH);
    assert_eq!(authorized.available, "9.14");

    // What cannot be priced holds nothing.
    assert_refused(
        authorize_price(
            &app,
            &account,
            &key(),
            authorize_request::Price::Usage(tokens(10_000, 0, 0)),
            None,
        )
        .await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );
    assert_refused(
        authorize_usage(
            &app,
            &account,
            &key(),
            "acme/no-such-model",
            tokens(10_000, 0, 0),
        )
        .await,
        Code::InvalidArgument,
        "UNKNOWN_MODEL",
    );
    let balance = app.balance(&account).await;
    assert_eq!(balance.available, "9.14");
    assert_eq!(balance.held, "0.86");

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 6. Price lock
// ---------------------------------------------------------------------------------------------

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

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 7. Settle by usage
// ---------------------------------------------------------------------------------------------

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
    assert_refused(
        settle_usage(&app, &hold.hold_id, with_image).await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );
    // 8.687499062 − 0.312500312 − 0.125 (held)
    let balance = app.balance(&account).await;
    assert_eq!(balance.available, "8.24999875");
    assert_eq!(balance.held, "0.125");

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 8. CatalogService
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn catalog_service_publishes_versions_and_lists_models() {
    let app = TestApp::spawn().await;
    let v1 = get_catalog_on(&app, 0).await.unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.models.len(), 28);
    assert_eq!(get_catalog_on(&app, 1).await.unwrap(), v1);

    // Publishing needs `admin`; a billing key can read but not publish.
    let billing = app.key_with(&[Scope::Billing]).await;
    assert_refused(
        publish(&app, &billing, &key(), v1.clone(), None).await,
        Code::PermissionDenied,
        "SCOPE_MISSING",
    );
    let read = app
        .catalog_as(Some(&billing))
        .get_catalog(GetCatalogRequest { version: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.catalog.unwrap().version, 1);

    // Invalid catalogs publish nothing.
    let negative = with_token_rates(v1.clone(), SEED, "-1", "0.05", "0.00125");
    let status = publish(&app, &app.key, &key(), negative, None)
        .await
        .expect_err("a negative rate is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let mut unknown_model = v1.clone();
    unknown_model.tools[0]
        .allowed_models
        .push("acme/no-such-model".to_owned());
    let status = publish(&app, &app.key, &key(), unknown_model, None)
        .await
        .expect_err("a tool naming an unknown model is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        get_catalog_on(&app, 2).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(get_catalog_on(&app, 0).await.unwrap().version, 1);

    // Publishing is idempotent by key.
    let mut v2 = with_token_rates(v1.clone(), SEED, "0.0625", "0.5", "0.0125");
    v2.description = "seed 10x".to_owned();
    let publish_key = key();
    let first = publish(&app, &app.key, &publish_key, v2.clone(), None)
        .await
        .unwrap();
    let published = first.catalog.clone().unwrap();
    assert_eq!(published.version, 2);
    assert_eq!(published.description, "seed 10x");
    assert_eq!(published.models, v2.models);
    assert_eq!(published.tools, v2.tools);
    assert_eq!(published.multipliers, v2.multipliers);
    assert_eq!(published.surcharges, v2.surcharges);
    let again = publish(&app, &app.key, &publish_key, v2.clone(), None)
        .await
        .unwrap();
    assert_eq!(again, first);
    let mut different = v2.clone();
    different.description = "something else".to_owned();
    assert_refused(
        publish(&app, &app.key, &publish_key, different, None).await,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );
    let active = get_catalog_on(&app, 0).await.unwrap();
    assert_eq!(active.version, 2);
    assert_eq!(active.models, v2.models);
    assert_eq!(
        quote(&app, SEED, tokens(10_000, 0, 0)).await.unwrap().total,
        "0.0625"
    );

    // A version with a future effective_at is not active until then.
    let effective_at = app.clock.now() + Duration::hours(1);
    let mut v3 = with_token_rates(v1.clone(), SEED, "0.625", "5", "0.125");
    v3.description = "seed 100x, next hour".to_owned();
    let scheduled = publish(&app, &app.key, &key(), v3.clone(), Some(effective_at))
        .await
        .unwrap()
        .catalog
        .unwrap();
    assert_eq!(scheduled.version, 3);
    assert_eq!(time(scheduled.effective_at.as_ref().unwrap()), effective_at);
    assert_eq!(get_catalog_on(&app, 0).await.unwrap().version, 2);
    let quoted = quote(&app, SEED, tokens(10_000, 0, 0)).await.unwrap();
    assert_eq!(quoted.catalog_version, 2);
    assert_eq!(quoted.total, "0.0625");
    // Readable by version before it is in effect.
    let stored = get_catalog_on(&app, 3).await.unwrap();
    assert_eq!(stored.models, v3.models);
    assert_eq!(time(stored.effective_at.as_ref().unwrap()), effective_at);
    // A replica (fresh active-version cache) whose clock is past effective_at sees version 3.
    let replica = app.replica().await;
    replica.advance(Duration::hours(2));
    assert_eq!(get_catalog_on(&replica, 0).await.unwrap().version, 3);
    let quoted = quote(&replica, SEED, tokens(10_000, 0, 0)).await.unwrap();
    assert_eq!(quoted.catalog_version, 3);
    assert_eq!(quoted.total, "0.625");
    replica.stop().await;

    // Older versions stay readable; an unknown version is NOT_FOUND.
    assert_eq!(get_catalog_on(&app, 1).await.unwrap(), v1);
    assert_eq!(
        get_catalog_on(&app, 99).await.unwrap_err().code(),
        Code::NotFound
    );
    let status = app
        .catalog_as(Some(&app.key))
        .list_models(ListModelsRequest {
            version: 99,
            ..ListModelsRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // ListModels pages through every model of the active version, ordered by id.
    let mut expected: Vec<String> = active
        .models
        .iter()
        .map(|model| model.model_id.clone())
        .collect();
    expected.sort();
    let (ids, pages) = list_all_models(&app, 10, Modality::Unspecified).await;
    assert_eq!(ids, expected);
    assert_eq!(pages, 3);
    let (images, _) = list_all_models(&app, 10, Modality::Image).await;
    assert_eq!(
        images,
        vec![
            "black-forest-labs/flux-1.1-pro",
            "google/imagen-4",
            "openai/gpt-image-1"
        ]
    );
    let (videos, _) = list_all_models(&app, 2, Modality::Video).await;
    assert_eq!(
        videos,
        vec![
            "bytedance/seedance-1-pro",
            "google/veo-3",
            "kling/kling-2.1"
        ]
    );
    let first_page = app
        .catalog_as(Some(&app.key))
        .list_models(ListModelsRequest {
            page_size: 10,
            ..ListModelsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.catalog_version, 2);
    assert_eq!(first_page.models.len(), 10);

    app.assert_books_balance().await;
    app.stop().await;
}

/// catalog.proto: `Catalog.created_at` is "when this version was published".
#[tokio::test]
async fn published_catalog_says_when_it_was_published() {
    let app = TestApp::spawn().await;
    let v1 = get_catalog_on(&app, 1).await.unwrap();
    assert!(
        v1.created_at.is_some(),
        "GetCatalog leaves created_at unset for version 1"
    );

    let before = app.clock.now();
    let mut v2 = v1.clone();
    v2.created_at = None;
    v2.description = "republished".to_owned();
    let published = publish(&app, &app.key, &key(), v2, None)
        .await
        .unwrap()
        .catalog
        .unwrap();
    let after = app.clock.now();
    let created_at = time(
        published
            .created_at
            .as_ref()
            .expect("PublishCatalog leaves created_at unset"),
    );
    assert!(
        created_at >= before && created_at <= after,
        "created_at {created_at} is not the publishing time ({before} .. {after})"
    );
    let read = get_catalog_on(&app, 2).await.unwrap();
    assert_eq!(read.created_at, published.created_at);

    app.assert_books_balance().await;
    app.stop().await;
}
