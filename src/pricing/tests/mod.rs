#![allow(clippy::unwrap_used)]
//! Tests of pricing, by feature: the default catalog against the reference rate sheet,
//! hand-computed quotes, every error, the one rounding, catalog validation, then properties over
//! random token counts. The helpers they share are here.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;
use crate::money::Credits;

mod default_catalog;
mod errors;
mod properties;
mod quotes;
mod rounding;
mod validation;

/// The reference rate sheet (`reference-rates.csv`), verbatim: credits per 10k tokens.
const REFERENCE_RATES_CSV: &str = "\
model,input_per_10k,output_per_10k,cached_read_per_10k
bytedance/seed-1.8,0.00625,0.05,0.00125
arcee-ai/trinity-mini,0.001,0.00375,
zai/glm-4.5v,0.015,0.045,0.00275
zai/glm-4.5-air,0.005,0.0275,0.00075
alibaba/qwen3-next-80b-a3b-instruct,0.00225,0.0275,
alibaba/qwen3-coder-30b-a3b,0.00375,0.015,
inception/mercury-2,0.00625,0.01875,0.00075
meta/llama-3.1-70b,0.018,0.018,
xai/grok-3-fast,0.125,0.625,0.03125
meta/llama-3.2-1b,0.0025,0.0025,
openai/o3-pro,0.5,2,
moonshotai/kimi-k2-thinking-turbo,0.02875,0.2,0.00375
meta/llama-3.2-11b,0.004,0.004,
meta/llama-3.2-90b,0.018,0.018,
amazon/nova-pro,0.02,0.08,
arcee-ai/trinity-large-preview,0.00625,0.025,
inception/mercury-coder-small,0.00625,0.025,
mistral/mixtral-8x22b-instruct,0.03,0.03,
openai/gpt-3.5-turbo-instruct,0.0375,0.05,
prime-intellect/intellect-3,0.005,0.0275,
google/gemini-2.5-flash-lite-preview-09-2025,0.0025,0.01,0.00025
google/gemini-2.5-flash-preview-09-2025,0.0075,0.0625,0.00075
";

const DEFAULT_CATALOG: &str = include_str!("../../../catalog/default.toml");

/// One row of the reference sheet.
#[derive(Debug, Clone)]
struct Reference {
    model: String,
    input: Option<Decimal>,
    output: Option<Decimal>,
    cached_read: Option<Decimal>,
}

fn reference_rates() -> Vec<Reference> {
    let cell = |text: &str| (!text.is_empty()).then(|| Decimal::from_str(text).unwrap());
    REFERENCE_RATES_CSV
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), 4, "row {line:?}");
            Reference {
                model: cells[0].to_owned(),
                input: cell(cells[1]),
                output: cell(cells[2]),
                cached_read: cell(cells[3]),
            }
        })
        .collect()
}

fn default_catalog() -> Catalog {
    Catalog::from_toml(DEFAULT_CATALOG).unwrap()
}

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn tokens(input: u64, output: u64, cached_read: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cached_read_tokens: cached_read,
        ..Usage::default()
    }
}

fn quote(catalog: &Catalog, tool: Option<&str>, model: Option<&str>, usage: &Usage) -> String {
    let priced = price(catalog, tool, model, usage).unwrap();
    assert_line_items_exact(&priced);
    priced.total.to_string()
}

fn invalid_usage(result: Result<Priced, PricingError>) -> String {
    match result {
        Err(PricingError::InvalidUsage(message)) => message,
        other => panic!("expected InvalidUsage, got {other:?}"),
    }
}

/// Every line item is exactly quantity × rate, and the total is their sum rounded once.
fn assert_line_items_exact(priced: &Priced) {
    for item in &priced.line_items {
        assert_eq!(item.amount, item.quantity * item.rate, "line item {item:?}");
    }
    let exact: Decimal = priced.line_items.iter().map(|item| item.amount).sum();
    assert_eq!(
        priced.total,
        Credits::round_half_even(exact.max(Decimal::ZERO))
    );
    assert!(
        priced.total.decimal().normalize().scale() <= 9,
        "total {} has more than 9 places",
        priced.total
    );
}

fn text_model(id: &str, input: &str, output: &str) -> Model {
    Model {
        id: id.to_owned(),
        display_name: String::new(),
        modality: Modality::Text,
        tokens: TokenRates {
            input: Some(d(input)),
            output: Some(d(output)),
            cached_read: None,
            reasoning: None,
        },
        images: Vec::new(),
        per_megapixel: None,
        video: Vec::new(),
        required_entitlement: None,
    }
}

/// A catalog with one text model whose input and output rates are both `rate` per 10k tokens.
fn tiny_catalog(rate: &str) -> Catalog {
    Catalog {
        version: 0,
        effective_at: None,
        created_at: None,
        description: "tiny".to_owned(),
        models: vec![text_model("t/tiny", rate, rate)],
        tools: Vec::new(),
        surcharges: Surcharges::default(),
        multipliers: Vec::new(),
    }
}
