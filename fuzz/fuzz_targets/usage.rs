//! Usage: arbitrary token counts, image entries, video seconds and multipliers (decimals from
//! arbitrary text, as the wire carries them) validated and priced with the default catalog. No
//! panic; a priced run has a non-negative total equal to its line items rounded once; a refusal
//! is a `PricingError`.
#![no_main]

use std::str::FromStr as _;
use std::sync::OnceLock;

use creditgate::money::Credits;
use creditgate::pricing::{Catalog, ImageUsage, Resolution, Usage, price};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;

const DEFAULT_CATALOG: &str = include_str!("../../catalog/default.toml");

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::from_toml(DEFAULT_CATALOG).expect("the default catalog"))
}

#[derive(Debug, Arbitrary)]
struct Image {
    count: u32,
    size: Option<String>,
    megapixels: Option<String>,
    quality: Option<String>,
}

/// A name: one of the catalog's (by index) or any text.
#[derive(Debug, Arbitrary)]
enum Name {
    None,
    Known(u16),
    Any(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    tool: Name,
    model: Name,
    input_tokens: u64,
    output_tokens: u64,
    cached_read_tokens: u64,
    reasoning_tokens: u64,
    images: Vec<Image>,
    video_seconds: Option<String>,
    resolution: Option<u8>,
    searches: u32,
    tool_calls: u32,
    agent_steps: u32,
    multipliers: Vec<String>,
}

fn decimal(text: Option<String>) -> Option<Decimal> {
    text.and_then(|text| Decimal::from_str(&text).ok())
}

fn resolution(value: u8) -> Resolution {
    match value % 5 {
        0 => Resolution::P480,
        1 => Resolution::P540,
        2 => Resolution::P720,
        3 => Resolution::P1080,
        _ => Resolution::K4,
    }
}

fn name(name: Name, known: &[&str]) -> Option<String> {
    match name {
        Name::None => None,
        Name::Known(index) => known
            .get(usize::from(index) % known.len().max(1))
            .map(|id| (*id).to_owned()),
        Name::Any(text) => Some(text),
    }
}

fuzz_target!(|input: Input| {
    let catalog = catalog();
    let models: Vec<&str> = catalog
        .models
        .iter()
        .map(|model| model.id.as_str())
        .collect();
    let tools: Vec<&str> = catalog.tools.iter().map(|tool| tool.id.as_str()).collect();
    let multipliers: Vec<&str> = catalog
        .multipliers
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    let usage = Usage {
        input_tokens: input.input_tokens,
        output_tokens: input.output_tokens,
        cached_read_tokens: input.cached_read_tokens,
        reasoning_tokens: input.reasoning_tokens,
        images: input
            .images
            .into_iter()
            .map(|image| ImageUsage {
                count: image.count,
                size: image.size,
                megapixels: decimal(image.megapixels),
                quality: image.quality,
            })
            .collect(),
        video_seconds: decimal(input.video_seconds),
        resolution: input.resolution.map(resolution),
        searches: input.searches,
        tool_calls: input.tool_calls,
        agent_steps: input.agent_steps,
        multipliers: input
            .multipliers
            .into_iter()
            .map(|text| match text.parse::<u16>() {
                Ok(index) if !multipliers.is_empty() => {
                    multipliers[usize::from(index) % multipliers.len()].to_owned()
                }
                _ => text,
            })
            .collect(),
    };
    let tool = name(input.tool, &tools);
    let model = name(input.model, &models);
    let valid = usage.validate().is_ok();
    match price(catalog, tool.as_deref(), model.as_deref(), &usage) {
        Ok(priced) => {
            assert!(valid, "an invalid usage was priced: {usage:?}");
            assert!(!priced.total.decimal().is_sign_negative() || priced.total.is_zero());
            let sum = priced
                .line_items
                .iter()
                .try_fold(Decimal::ZERO, |sum, item| sum.checked_add(item.amount))
                .expect("a priced run's line items add up");
            assert_eq!(
                priced.total,
                Credits::round_half_even(sum.max(Decimal::ZERO))
            );
        }
        Err(error) => {
            let _ = (error.reason(), error.to_string());
        }
    }
});
