//! Pricing through the gRPC surface: Quote (hand-computed totals, errors, eligibility),
//! Authorize by quote or usage, the price lock across catalog versions, Settle by usage, and
//! CatalogService (publish, idempotency, future versions, reads, model listing). Every amount is
//! checked as the exact decimal string.

mod authorize;
mod catalog;
mod quote;
mod quote_refusals;
mod settle;

use std::str::FromStr as _;

use chrono::{DateTime, Utc};
use creditgate::proto::v1::{
    AuthorizeRequest, AuthorizeResponse, Catalog, CreateAccountRequest, GetCatalogRequest,
    LineItem, ListModelsRequest, Modality, PublishCatalogRequest, PublishCatalogResponse,
    QuoteRequest, QuoteResponse, RunMetadata, SettleRequest, SettleResponse, Usage,
    authorize_request, settle_request,
};
use rust_decimal::{Decimal, RoundingStrategy};
use tonic::Status;

use crate::helpers::TestApp;
use crate::helpers::money::{create_account_request, key};
use crate::helpers::time::timestamp;

const O3_PRO: &str = "openai/o3-pro";
const FLASH_LITE: &str = "google/gemini-2.5-flash-lite-preview-09-2025";
const FLASH: &str = "google/gemini-2.5-flash-preview-09-2025";
const SEED: &str = "bytedance/seed-1.8";
const GROK: &str = "xai/grok-3-fast";

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

/// Creates an account of the tenant of `api_key` with `entitlements`; returns its id.
async fn account_entitled(app: &TestApp, api_key: &str, entitlements: &[&str]) -> String {
    let request = CreateAccountRequest {
        entitlements: entitlements
            .iter()
            .map(|entitlement| (*entitlement).to_owned())
            .collect(),
        ..create_account_request(&key(), &key())
    };
    app.create_account_as(api_key, request).await
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
            ..Default::default()
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
