#![allow(clippy::unwrap_used)]
//! Tests of pricing: the default catalog against the reference rate sheet, hand-computed quotes,
//! every error, the one rounding, catalog validation, then properties over random token counts.

use std::str::FromStr;

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::money::Credits;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

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

const DEFAULT_CATALOG: &str = include_str!("../../catalog/default.toml");

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

// ---------------------------------------------------------------------------------------------
// The default catalog
// ---------------------------------------------------------------------------------------------

#[test]
fn default_catalog_parses_and_validates() {
    let catalog = default_catalog();
    catalog.validate().unwrap();
    assert!(!catalog.description.is_empty());
    assert_eq!(catalog.surcharges.per_web_search, Some(d("0.25")));
    assert_eq!(catalog.surcharges.per_tool_call, Some(d("0.01")));
    assert_eq!(catalog.surcharges.per_agent_step, Some(d("0.05")));
    assert_eq!(
        catalog.multipliers,
        vec![Multiplier {
            name: "batch".to_owned(),
            factor: d("0.5")
        }]
    );
    for tool in ["chat", "image-studio", "video-studio", "web-research"] {
        assert!(catalog.tool(tool).is_some(), "tool {tool}");
    }
    assert_eq!(
        catalog.tool("chat").unwrap().default_model.as_deref(),
        Some("google/gemini-2.5-flash-preview-09-2025")
    );
}

#[test]
fn default_catalog_round_trips_through_toml() {
    let catalog = default_catalog();
    assert_eq!(Catalog::from_toml(&catalog.to_toml()).unwrap(), catalog);
}

#[test]
fn default_catalog_has_every_reference_model_with_exact_rates() {
    let catalog = default_catalog();
    let references = reference_rates();
    assert_eq!(references.len(), 22);
    for reference in &references {
        let model = catalog
            .model(&reference.model)
            .unwrap_or_else(|| panic!("{} missing", reference.model));
        assert_eq!(model.modality, Modality::Text, "{}", model.id);
        assert!(!model.display_name.is_empty(), "{}", model.id);
        assert_eq!(model.tokens.input, reference.input, "{} input", model.id);
        assert_eq!(model.tokens.output, reference.output, "{} output", model.id);
        assert_eq!(
            model.tokens.cached_read, reference.cached_read,
            "{} cached_read",
            model.id
        );
        assert_eq!(model.tokens.reasoning, None, "{} reasoning", model.id);
    }
    let text_models = catalog
        .models
        .iter()
        .filter(|model| model.modality == Modality::Text)
        .count();
    assert_eq!(text_models, references.len());
}

#[test]
fn default_catalog_rates_are_written_as_in_the_reference_sheet() {
    // Same digits, not just the same value ("0.05", not "0.050").
    for reference in reference_rates() {
        let line = REFERENCE_RATES_CSV
            .lines()
            .find(|line| line.starts_with(&format!("{},", reference.model)))
            .unwrap();
        let cells: Vec<&str> = line.split(',').collect();
        for (name, cell) in [
            ("input", cells[1]),
            ("output", cells[2]),
            ("cached_read", cells[3]),
        ] {
            if !cell.is_empty() {
                let needle = format!("{name} = \"{cell}\"");
                assert!(
                    DEFAULT_CATALOG.contains(&needle),
                    "{} {needle}",
                    reference.model
                );
            }
        }
    }
}

#[test]
fn default_catalog_amounts_are_strings_never_floats() {
    fn walk(path: &str, value: &toml::Value) {
        match value {
            toml::Value::Float(float) => {
                panic!("{path} is the float {float}; amounts must be strings")
            }
            toml::Value::Integer(integer) => {
                panic!("{path} is the integer {integer}; amounts must be strings")
            }
            toml::Value::Array(values) => {
                for (index, value) in values.iter().enumerate() {
                    walk(&format!("{path}[{index}]"), value);
                }
            }
            toml::Value::Table(table) => {
                for (key, value) in table {
                    walk(&format!("{path}.{key}"), value);
                }
            }
            _ => {}
        }
    }
    let table: toml::Table = toml::from_str(DEFAULT_CATALOG).unwrap();
    for (key, value) in &table {
        walk(key, value);
    }
}

#[test]
fn default_catalog_entitlements() {
    let catalog = default_catalog();
    assert_eq!(
        catalog
            .model("openai/o3-pro")
            .unwrap()
            .required_entitlement
            .as_deref(),
        Some("pro")
    );
    let video_pro = catalog
        .models
        .iter()
        .filter(|model| {
            model.modality == Modality::Video
                && model.required_entitlement.as_deref() == Some("pro")
        })
        .count();
    assert_eq!(video_pro, 1);
    let priced = price(&catalog, None, Some("openai/o3-pro"), &tokens(1, 0, 0)).unwrap();
    assert_eq!(priced.required_entitlement.as_deref(), Some("pro"));
    let priced = price(&catalog, None, Some("bytedance/seed-1.8"), &tokens(1, 0, 0)).unwrap();
    assert_eq!(priced.required_entitlement, None);
}

#[test]
fn default_catalog_image_and_video_rates_are_in_range() {
    let catalog = default_catalog();
    let images: Vec<&Model> = catalog
        .models
        .iter()
        .filter(|model| model.modality == Modality::Image)
        .collect();
    assert!(images.len() >= 3);
    assert!(images.iter().any(|model| model.per_megapixel.is_some()));
    for model in &images {
        assert!(!model.images.is_empty(), "{}", model.id);
        for rate in &model.images {
            assert!(
                (d("2")..=d("31")).contains(&rate.per_image),
                "{} {rate:?}",
                model.id
            );
        }
        for size in ["1024x1024", "1024x1536", "1536x1024"] {
            assert!(
                model.images.iter().any(|rate| rate.size == size),
                "{} {size}",
                model.id
            );
        }
    }
    let videos: Vec<&Model> = catalog
        .models
        .iter()
        .filter(|model| model.modality == Modality::Video)
        .collect();
    assert!(videos.len() >= 3);
    for model in &videos {
        let resolutions: Vec<Resolution> = model.video.iter().map(|rate| rate.resolution).collect();
        assert_eq!(
            resolutions,
            vec![
                Resolution::P480,
                Resolution::P540,
                Resolution::P720,
                Resolution::P1080,
                Resolution::K4
            ],
            "{}",
            model.id
        );
        for pair in model.video.windows(2) {
            assert!(
                pair[0].per_second < pair[1].per_second,
                "{} rates must increase with resolution",
                model.id
            );
        }
        for rate in &model.video {
            assert!(
                (d("2")..=d("23")).contains(&rate.per_second),
                "{} {rate:?}",
                model.id
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-computed quotes
// ---------------------------------------------------------------------------------------------

#[test]
fn o3_pro_ten_thousand_in_and_out() {
    // 1 × 0.5 + 1 × 2
    let catalog = default_catalog();
    assert_eq!(
        quote(
            &catalog,
            None,
            Some("openai/o3-pro"),
            &tokens(10_000, 10_000, 0)
        ),
        "2.5"
    );
}

#[test]
fn flash_lite_cached_read() {
    // 1.2345 × 0.00025
    let catalog = default_catalog();
    let usage = tokens(0, 0, 12_345);
    assert_eq!(
        quote(
            &catalog,
            None,
            Some("google/gemini-2.5-flash-lite-preview-09-2025"),
            &usage
        ),
        "0.000308625"
    );
}

#[test]
fn seed_input_output_and_cached_read() {
    // 0.1 × 0.00625 + 0.2 × 0.05 + 50 × 0.00125 = 0.000625 + 0.01 + 0.0625
    let catalog = default_catalog();
    let priced = price(
        &catalog,
        None,
        Some("bytedance/seed-1.8"),
        &tokens(1_000, 2_000, 500_000),
    )
    .unwrap();
    assert_line_items_exact(&priced);
    assert_eq!(priced.total.to_string(), "0.073125");
    let kinds: Vec<&str> = priced
        .line_items
        .iter()
        .map(|item| item.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        ["input_tokens", "output_tokens", "cached_read_tokens"]
    );
    let amounts: Vec<String> = priced
        .line_items
        .iter()
        .map(|item| item.amount.to_string())
        .collect();
    assert_eq!(amounts, ["0.000625", "0.01", "0.0625"]);
    assert_eq!(priced.line_items[2].quantity, d("50"));
    assert_eq!(priced.line_items[2].unit, "10k tokens");
    assert_eq!(priced.model.as_deref(), Some("bytedance/seed-1.8"));
    assert_eq!(priced.tool, None);
}

#[test]
fn reasoning_tokens_are_output_tokens_unless_priced_apart() {
    // o3-pro has no reasoning rate: 0.5 × 2 (output rate).
    let catalog = default_catalog();
    let usage = Usage {
        reasoning_tokens: 5_000,
        ..Usage::default()
    };
    assert_eq!(quote(&catalog, None, Some("openai/o3-pro"), &usage), "1");
    // Priced apart: 0.5 × 0.3.
    let mut catalog = tiny_catalog("1");
    catalog.models[0].tokens.reasoning = Some(d("0.3"));
    assert_eq!(quote(&catalog, None, Some("t/tiny"), &usage), "0.15");
}

#[test]
fn image_tool_default_model_hd_portrait() {
    // image-studio fee 0.5 + 3 × 31 (gpt-image-1 1024x1536 hd)
    let catalog = default_catalog();
    let usage = Usage {
        images: vec![ImageUsage {
            count: 3,
            size: Some("1024x1536".to_owned()),
            megapixels: None,
            quality: Some("hd".to_owned()),
        }],
        ..Usage::default()
    };
    let priced = price(&catalog, Some("image-studio"), None, &usage).unwrap();
    assert_line_items_exact(&priced);
    assert_eq!(priced.total.to_string(), "93.5");
    assert_eq!(priced.model.as_deref(), Some("openai/gpt-image-1"));
    assert_eq!(priced.line_items.len(), 2);
    assert_eq!(priced.line_items[1].kind, "image");
    assert_eq!(priced.line_items[1].rate, d("31"));
}

#[test]
fn image_without_quality_uses_the_first_tier_listed() {
    // gpt-image-1 lists "standard" first: 2 × 8.
    let catalog = default_catalog();
    let usage = Usage {
        images: vec![ImageUsage {
            count: 2,
            size: Some("1024x1024".to_owned()),
            megapixels: None,
            quality: None,
        }],
        ..Usage::default()
    };
    assert_eq!(
        quote(&catalog, None, Some("openai/gpt-image-1"), &usage),
        "16"
    );
}

#[test]
fn image_per_megapixel() {
    // flux: 2 images × 2.5 MP × 4 = 20, plus one listed 1024x1024 at 4.
    let catalog = default_catalog();
    let usage = Usage {
        images: vec![
            ImageUsage {
                count: 2,
                size: None,
                megapixels: Some(d("2.5")),
                quality: None,
            },
            ImageUsage {
                count: 1,
                size: Some("1024x1024".to_owned()),
                megapixels: None,
                quality: None,
            },
        ],
        ..Usage::default()
    };
    let priced = price(
        &catalog,
        None,
        Some("black-forest-labs/flux-1.1-pro"),
        &usage,
    )
    .unwrap();
    assert_line_items_exact(&priced);
    assert_eq!(priced.total.to_string(), "24");
    assert_eq!(priced.line_items[0].unit, "megapixel");
    assert_eq!(priced.line_items[0].quantity, d("5"));
}

#[test]
fn video_tool_with_allowed_model() {
    // video-studio fee 1 + 7.5 s × 11 (kling 1080p)
    let catalog = default_catalog();
    let usage = Usage {
        video_seconds: Some(d("7.5")),
        resolution: Some(Resolution::P1080),
        ..Usage::default()
    };
    let priced = price(
        &catalog,
        Some("video-studio"),
        Some("kling/kling-2.1"),
        &usage,
    )
    .unwrap();
    assert_line_items_exact(&priced);
    assert_eq!(priced.total.to_string(), "83.5");
    assert_eq!(priced.tool.as_deref(), Some("video-studio"));
    assert_eq!(priced.model.as_deref(), Some("kling/kling-2.1"));
    assert_eq!(priced.line_items[1].unit, "second");
}

#[test]
fn video_pro_model_reports_its_entitlement() {
    // veo-3 4k: 4 s × 23
    let catalog = default_catalog();
    let usage = Usage {
        video_seconds: Some(d("4")),
        resolution: Some(Resolution::K4),
        ..Usage::default()
    };
    let priced = price(&catalog, None, Some("google/veo-3"), &usage).unwrap();
    assert_eq!(priced.total.to_string(), "92");
    assert_eq!(priced.required_entitlement.as_deref(), Some("pro"));
}

#[test]
fn web_research_with_searches_tool_calls_and_agent_steps() {
    // fee 0.1 + 0.1 × 0.0075 + 0.05 × 0.0625 + 3 × 0.25 + 2 × 0.01 + 4 × 0.05
    // = 0.1 + 0.00075 + 0.003125 + 0.75 + 0.02 + 0.2
    let catalog = default_catalog();
    let usage = Usage {
        searches: 3,
        tool_calls: 2,
        agent_steps: 4,
        ..tokens(1_000, 500, 0)
    };
    let priced = price(&catalog, Some("web-research"), None, &usage).unwrap();
    assert_line_items_exact(&priced);
    assert_eq!(priced.total.to_string(), "1.073875");
    assert_eq!(
        priced.model.as_deref(),
        Some("google/gemini-2.5-flash-preview-09-2025")
    );
    let kinds: Vec<&str> = priced
        .line_items
        .iter()
        .map(|item| item.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "tool_execution",
            "input_tokens",
            "output_tokens",
            "web_search",
            "tool_call",
            "agent_step"
        ]
    );
}

#[test]
fn search_alone_with_a_model() {
    // 1 search × 0.25
    let catalog = default_catalog();
    let usage = Usage {
        searches: 1,
        ..Usage::default()
    };
    assert_eq!(
        quote(&catalog, None, Some("xai/grok-3-fast"), &usage),
        "0.25"
    );
}

#[test]
fn tool_fee_with_allowed_model() {
    // image-studio fee 0.5 + 1 × 6 (imagen-4 1024x1024 hd)
    let catalog = default_catalog();
    let usage = Usage {
        images: vec![ImageUsage {
            count: 1,
            size: Some("1024x1024".to_owned()),
            megapixels: None,
            quality: Some("hd".to_owned()),
        }],
        ..Usage::default()
    };
    let priced = price(
        &catalog,
        Some("image-studio"),
        Some("google/imagen-4"),
        &usage,
    )
    .unwrap();
    assert_line_items_exact(&priced);
    assert_eq!(priced.total.to_string(), "6.5");
    let fee = &priced.line_items[0];
    assert_eq!(
        (fee.kind.as_str(), fee.quantity, fee.rate, fee.amount),
        ("tool_execution", d("1"), d("0.5"), d("0.5"))
    );
}

#[test]
fn batch_multiplier_halves_the_subtotal() {
    // (1 × 0.5 + 1 × 2) × 0.5: a multiplier line of 2.5 × (0.5 − 1) = −1.25
    let catalog = default_catalog();
    let usage = Usage {
        multipliers: vec!["batch".to_owned()],
        ..tokens(10_000, 10_000, 0)
    };
    let priced = price(&catalog, None, Some("openai/o3-pro"), &usage).unwrap();
    assert_line_items_exact(&priced);
    assert_eq!(priced.total.to_string(), "1.25");
    let multiplier = priced.line_items.last().unwrap();
    assert_eq!(multiplier.kind, "multiplier");
    assert_eq!(
        (multiplier.quantity, multiplier.rate, multiplier.amount),
        (d("2.5"), d("-0.5"), d("-1.25"))
    );
}

#[test]
fn batch_multiplier_applies_to_tool_fee_and_surcharges() {
    // image-studio (0.5 + 1 × 3 (gpt-image-1 1536x1024 low) + 2 × 0.25) × 0.5 = 4 × 0.5
    let catalog = default_catalog();
    let usage = Usage {
        images: vec![ImageUsage {
            count: 1,
            size: Some("1536x1024".to_owned()),
            megapixels: None,
            quality: Some("low".to_owned()),
        }],
        searches: 2,
        multipliers: vec!["batch".to_owned()],
        ..Usage::default()
    };
    assert_eq!(quote(&catalog, Some("image-studio"), None, &usage), "2");
}

#[test]
fn duplicate_multiplier_does_not_make_a_run_free() {
    // BUG: each multiplier adds (factor − 1) × subtotal, so "batch" named twice subtracts the
    // whole subtotal and the run costs 0 (three times: negative, clamped to 0). A repeated
    // multiplier should be refused (or applied once, or compounded to 0.25), never a free run.
    let catalog = default_catalog();
    let usage = Usage {
        multipliers: vec!["batch".to_owned(), "batch".to_owned()],
        ..tokens(10_000, 10_000, 0)
    };
    match price(&catalog, None, Some("openai/o3-pro"), &usage) {
        Err(PricingError::InvalidUsage(_)) => {}
        Ok(priced) => assert!(
            priced.total > Credits::ZERO,
            "batch named twice priced 2.5 credits of work at {}",
            priced.total
        ),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_model() {
    let catalog = default_catalog();
    let result = price(&catalog, None, Some("nobody/nothing"), &tokens(1, 0, 0));
    assert_eq!(
        result,
        Err(PricingError::UnknownModel("nobody/nothing".to_owned()))
    );
    assert_eq!(result.unwrap_err().reason(), "UNKNOWN_MODEL");
}

#[test]
fn unknown_tool() {
    let catalog = default_catalog();
    let result = price(&catalog, Some("no-such-tool"), None, &tokens(1, 0, 0));
    assert_eq!(
        result,
        Err(PricingError::UnknownTool("no-such-tool".to_owned()))
    );
    assert_eq!(result.unwrap_err().reason(), "UNKNOWN_TOOL");
    // Unknown even when the model is known.
    let result = price(
        &catalog,
        Some("no-such-tool"),
        Some("openai/o3-pro"),
        &tokens(1, 0, 0),
    );
    assert_eq!(
        result,
        Err(PricingError::UnknownTool("no-such-tool".to_owned()))
    );
}

#[test]
fn tool_refuses_a_model_it_does_not_allow() {
    let catalog = default_catalog();
    let result = price(
        &catalog,
        Some("chat"),
        Some("openai/o3-pro"),
        &tokens(1, 0, 0),
    );
    assert_eq!(
        result,
        Err(PricingError::ModelNotAllowed {
            tool: "chat".to_owned(),
            model: "openai/o3-pro".to_owned()
        })
    );
    assert_eq!(result.unwrap_err().reason(), "MODEL_NOT_ALLOWED");
    // A model the catalog lacks, through a tool, is not allowed either.
    let result = price(
        &catalog,
        Some("chat"),
        Some("nobody/nothing"),
        &tokens(1, 0, 0),
    );
    assert!(
        matches!(result, Err(PricingError::ModelNotAllowed { .. })),
        "{result:?}"
    );
}

#[test]
fn tool_allows_its_default_and_listed_models() {
    let catalog = default_catalog();
    let usage = tokens(10_000, 0, 0);
    // chat's default, named explicitly: 1 × 0.0075
    assert_eq!(
        quote(
            &catalog,
            Some("chat"),
            Some("google/gemini-2.5-flash-preview-09-2025"),
            &usage
        ),
        "0.0075"
    );
    // listed: 1 × 0.125
    assert_eq!(
        quote(&catalog, Some("chat"), Some("xai/grok-3-fast"), &usage),
        "0.125"
    );
}

#[test]
fn tool_alone_uses_its_default_model() {
    let catalog = default_catalog();
    let usage = tokens(10_000, 10_000, 10_000);
    let priced = price(&catalog, Some("chat"), None, &usage).unwrap();
    assert_line_items_exact(&priced);
    assert_eq!(
        priced.model.as_deref(),
        Some("google/gemini-2.5-flash-preview-09-2025")
    );
    assert_eq!(priced.tool.as_deref(), Some("chat"));
    // fee 0 + 0.0075 + 0.0625 + 0.00075
    assert_eq!(priced.total.to_string(), "0.07075");
    let direct = price(
        &catalog,
        None,
        Some("google/gemini-2.5-flash-preview-09-2025"),
        &usage,
    )
    .unwrap();
    assert_eq!(direct.total, priced.total);
}

#[test]
fn cached_read_on_a_model_without_a_cached_rate() {
    let catalog = default_catalog();
    let message = invalid_usage(price(
        &catalog,
        None,
        Some("openai/o3-pro"),
        &tokens(0, 0, 1),
    ));
    assert!(message.contains("openai/o3-pro"), "{message}");
    assert!(message.contains("cached"), "{message}");
    // Alongside priced tokens too: never silently free.
    invalid_usage(price(
        &catalog,
        None,
        Some("meta/llama-3.1-70b"),
        &tokens(100, 100, 100),
    ));
}

#[test]
fn empty_usage() {
    let catalog = default_catalog();
    invalid_usage(price(
        &catalog,
        None,
        Some("openai/o3-pro"),
        &Usage::default(),
    ));
    // Zero video seconds are no usage either.
    let usage = Usage {
        video_seconds: Some(Decimal::ZERO),
        resolution: Some(Resolution::P720),
        ..Usage::default()
    };
    invalid_usage(price(&catalog, None, Some("kling/kling-2.1"), &usage));
}

#[test]
fn unknown_multiplier() {
    let catalog = default_catalog();
    let usage = Usage {
        multipliers: vec!["priority".to_owned()],
        ..tokens(1, 0, 0)
    };
    let message = invalid_usage(price(&catalog, None, Some("openai/o3-pro"), &usage));
    assert!(message.contains("priority"), "{message}");
}

#[test]
fn image_size_or_quality_the_model_lacks() {
    let catalog = default_catalog();
    let image = |size: &str, quality: Option<&str>| Usage {
        images: vec![ImageUsage {
            count: 1,
            size: Some(size.to_owned()),
            megapixels: None,
            quality: quality.map(str::to_owned),
        }],
        ..Usage::default()
    };
    invalid_usage(price(
        &catalog,
        None,
        Some("openai/gpt-image-1"),
        &image("512x512", None),
    ));
    invalid_usage(price(
        &catalog,
        None,
        Some("openai/gpt-image-1"),
        &image("1024x1024", Some("ultra")),
    ));
    // Megapixels on a model without a per-megapixel rate.
    let usage = Usage {
        images: vec![ImageUsage {
            count: 1,
            size: None,
            megapixels: Some(d("1")),
            quality: None,
        }],
        ..Usage::default()
    };
    invalid_usage(price(&catalog, None, Some("google/imagen-4"), &usage));
    // Images on a text model.
    invalid_usage(price(
        &catalog,
        None,
        Some("openai/o3-pro"),
        &image("1024x1024", None),
    ));
}

#[test]
fn video_resolution_or_model_without_video() {
    let catalog = default_catalog();
    let usage = Usage {
        video_seconds: Some(d("1")),
        resolution: None,
        ..Usage::default()
    };
    invalid_usage(price(&catalog, None, Some("kling/kling-2.1"), &usage));
    let usage = Usage {
        video_seconds: Some(d("1")),
        resolution: Some(Resolution::P720),
        ..Usage::default()
    };
    invalid_usage(price(&catalog, None, Some("openai/gpt-image-1"), &usage));
}

#[test]
fn tokens_on_an_image_model() {
    let catalog = default_catalog();
    invalid_usage(price(
        &catalog,
        None,
        Some("openai/gpt-image-1"),
        &tokens(10, 0, 0),
    ));
}

#[test]
fn neither_tool_nor_model() {
    let catalog = default_catalog();
    let message = invalid_usage(price(&catalog, None, None, &tokens(10, 0, 0)));
    assert!(message.contains("tool or a model"), "{message}");
}

#[test]
fn surcharge_the_catalog_does_not_price() {
    let catalog = tiny_catalog("1");
    let usage = Usage {
        searches: 1,
        ..tokens(1, 0, 0)
    };
    invalid_usage(price(&catalog, None, Some("t/tiny"), &usage));
}

// ---------------------------------------------------------------------------------------------
// Rounding
// ---------------------------------------------------------------------------------------------

#[test]
fn total_is_rounded_half_even_to_nine_places() {
    // 0.000005 per 10k tokens: one token is 0.0000000005 credits.
    let catalog = tiny_catalog("0.000005");
    for (input_tokens, total) in [
        (1, "0"),            // 0.0000000005 → 0 (half to even)
        (3, "0.000000002"),  // 0.0000000015 → 0.000000002
        (5, "0.000000002"),  // 0.0000000025 → 0.000000002
        (7, "0.000000004"),  // 0.0000000035 → 0.000000004
        (2, "0.000000001"),  // exact
        (11, "0.000000006"), // 0.0000000055 → 0.000000006
    ] {
        let priced = price(&catalog, None, Some("t/tiny"), &tokens(input_tokens, 0, 0)).unwrap();
        assert_eq!(priced.total.to_string(), total, "{input_tokens} tokens");
        assert_line_items_exact(&priced);
    }
}

#[test]
fn line_items_are_exact_and_the_total_rounded_once() {
    // Two line items of 0.0000000005 each: rounded apart they would be 0 + 0; summed, 0.000000001.
    let catalog = tiny_catalog("0.000005");
    let priced = price(&catalog, None, Some("t/tiny"), &tokens(1, 1, 0)).unwrap();
    assert_eq!(priced.line_items.len(), 2);
    for item in &priced.line_items {
        assert_eq!(item.quantity, d("0.0001"));
        assert_eq!(item.rate, d("0.000005"));
        assert_eq!(item.amount, d("0.0000000005"));
        assert_eq!(item.amount.to_string(), "0.0000000005");
    }
    assert_eq!(priced.total.to_string(), "0.000000001");
}

#[test]
fn line_items_keep_twelve_place_rates_exact() {
    // 123,457 tokens × 0.000000000001 per 10k = 12.3457 × 1e-12
    let catalog = tiny_catalog("0.000000000001");
    let priced = price(&catalog, None, Some("t/tiny"), &tokens(123_457, 0, 0)).unwrap();
    assert_eq!(priced.line_items[0].amount, d("0.0000000000123457"));
    assert_eq!(priced.total.to_string(), "0");
}

// ---------------------------------------------------------------------------------------------
// Catalog validation
// ---------------------------------------------------------------------------------------------

#[test]
fn validate_rejects_a_negative_rate() {
    let mut catalog = tiny_catalog("1");
    catalog.models[0].tokens.output = Some(d("-0.01"));
    assert!(
        matches!(catalog.validate(), Err(CatalogError::BadRate { .. })),
        "{:?}",
        catalog.validate()
    );
    let mut catalog = default_catalog();
    catalog.tools[0].fee_per_execution = d("-1");
    assert!(matches!(
        catalog.validate(),
        Err(CatalogError::BadRate { .. })
    ));
    let mut catalog = default_catalog();
    catalog.multipliers[0].factor = d("-0.5");
    assert!(matches!(
        catalog.validate(),
        Err(CatalogError::BadRate { .. })
    ));
}

#[test]
fn validate_rejects_a_duplicate_model_id() {
    let mut catalog = default_catalog();
    let copy = catalog.models[3].clone();
    catalog.models.push(copy);
    assert!(
        matches!(catalog.validate(), Err(CatalogError::Invalid(message)) if message.contains("twice"))
    );
}

#[test]
fn validate_rejects_a_tool_naming_an_unknown_model() {
    let mut catalog = default_catalog();
    catalog.tools[0]
        .allowed_models
        .push("nobody/nothing".to_owned());
    assert_eq!(
        catalog.validate(),
        Err(CatalogError::UnknownModel {
            tool: "chat".to_owned(),
            model: "nobody/nothing".to_owned()
        })
    );
    let mut catalog = default_catalog();
    catalog.tools[1].default_model = Some("nobody/else".to_owned());
    assert!(matches!(
        catalog.validate(),
        Err(CatalogError::UnknownModel { .. })
    ));
}

#[test]
fn validate_rejects_a_rate_with_thirteen_places() {
    let mut catalog = tiny_catalog("1");
    catalog.models[0].tokens.input = Some(d("0.0000000000001"));
    assert!(matches!(
        catalog.validate(),
        Err(CatalogError::BadRate { .. })
    ));
    // Twelve places is fine, and so are trailing zeros past the twelfth.
    catalog.models[0].tokens.input = Some(d("0.000000000001"));
    catalog.validate().unwrap();
    catalog.models[0].tokens.input = Some(d("0.1000000000000"));
    catalog.validate().unwrap();
}

#[test]
fn from_toml_rejects_invalid_catalogs() {
    let duplicate = format!("{DEFAULT_CATALOG}\n[[models]]\nid = \"openai/o3-pro\"\n");
    assert!(Catalog::from_toml(&duplicate).is_err());
    let unknown_field = format!("{DEFAULT_CATALOG}\n[[models]]\nid = \"x/y\"\nprice = \"1\"\n");
    assert!(Catalog::from_toml(&unknown_field).is_err());
    let bad_resolution =
        "[[models]]\nid = \"x/y\"\n[[models.video]]\nresolution = \"8k\"\nper_second = \"1\"\n";
    assert!(Catalog::from_toml(bad_resolution).is_err());
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// A reference model and token counts it can price (zero for rates it lacks).
fn text_usage() -> impl Strategy<Value = (Reference, Usage)> {
    let references = reference_rates();
    (
        0..references.len(),
        0u64..1_000_000_000,
        0u64..1_000_000_000,
        0u64..1_000_000_000,
        0u64..1_000_000_000,
    )
        .prop_map(move |(index, input, output, cached_read, reasoning)| {
            let reference = references[index].clone();
            let usage = Usage {
                input_tokens: if reference.input.is_some() { input } else { 0 },
                output_tokens: if reference.output.is_some() {
                    output
                } else {
                    0
                },
                cached_read_tokens: if reference.cached_read.is_some() {
                    cached_read
                } else {
                    0
                },
                reasoning_tokens: if reference.output.is_some() {
                    reasoning
                } else {
                    0
                },
                ..Usage::default()
            };
            (reference, usage)
        })
}

fn is_empty(usage: &Usage) -> bool {
    usage.input_tokens + usage.output_tokens + usage.cached_read_tokens + usage.reasoning_tokens
        == 0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn total_is_the_rounded_sum_of_exact_line_items((reference, usage) in text_usage(), batch in any::<bool>()) {
        let catalog = default_catalog();
        let usage = Usage { multipliers: if batch { vec!["batch".to_owned()] } else { Vec::new() }, ..usage };
        let result = price(&catalog, None, Some(&reference.model), &usage);
        if is_empty(&usage) {
            prop_assert!(matches!(result, Err(PricingError::InvalidUsage(_))));
            return Ok(());
        }
        let priced = result.unwrap();
        let mut exact = Decimal::ZERO;
        for item in &priced.line_items {
            prop_assert_eq!(item.amount, item.quantity * item.rate, "{:?}", item);
            exact += item.amount;
        }
        prop_assert_eq!(priced.total, Credits::round_half_even(exact));
        prop_assert!(priced.total.decimal().normalize().scale() <= 9);
        prop_assert!(priced.total >= Credits::ZERO);
        // Token line items: quantity is tokens / 10k at the sheet's rate.
        let ten_k = Decimal::from(10_000);
        for (kind, tokens, rate) in [
            ("input_tokens", usage.input_tokens, reference.input),
            ("output_tokens", usage.output_tokens, reference.output),
            ("cached_read_tokens", usage.cached_read_tokens, reference.cached_read),
            ("reasoning_tokens", usage.reasoning_tokens, reference.output),
        ] {
            let item = priced.line_items.iter().find(|item| item.kind == kind);
            if tokens == 0 {
                prop_assert!(item.is_none());
            } else {
                let item = item.unwrap();
                prop_assert_eq!(item.quantity, Decimal::from(tokens) / ten_k);
                prop_assert_eq!(Some(item.rate), rate);
            }
        }
        // Without the multiplier the total is the exact sum of token costs, rounded.
        if !batch {
            let expected: Decimal = [
                (usage.input_tokens, reference.input),
                (usage.output_tokens, reference.output),
                (usage.cached_read_tokens, reference.cached_read),
                (usage.reasoning_tokens, reference.output),
            ]
            .into_iter()
            .map(|(tokens, rate)| Decimal::from(tokens) / ten_k * rate.unwrap_or_default())
            .sum();
            prop_assert_eq!(priced.total, Credits::round_half_even(expected));
        }
    }

    #[test]
    fn more_tokens_never_cost_less(
        (reference, usage) in text_usage(),
        extra in (0u64..1_000_000_000, 0u64..1_000_000_000, 0u64..1_000_000_000, 0u64..1_000_000_000),
        batch in any::<bool>(),
    ) {
        let catalog = default_catalog();
        let multipliers = if batch { vec!["batch".to_owned()] } else { Vec::new() };
        let less = Usage { multipliers: multipliers.clone(), ..usage.clone() };
        let more = Usage {
            input_tokens: usage.input_tokens + if reference.input.is_some() { extra.0 } else { 0 },
            output_tokens: usage.output_tokens + if reference.output.is_some() { extra.1 } else { 0 },
            cached_read_tokens: usage.cached_read_tokens + if reference.cached_read.is_some() { extra.2 } else { 0 },
            reasoning_tokens: usage.reasoning_tokens + if reference.output.is_some() { extra.3 } else { 0 },
            multipliers,
            ..Usage::default()
        };
        prop_assume!(!is_empty(&less));
        let less = price(&catalog, None, Some(&reference.model), &less).unwrap();
        let more = price(&catalog, None, Some(&reference.model), &more).unwrap();
        prop_assert!(more.total >= less.total, "{} then {}", less.total, more.total);
    }

    #[test]
    fn one_token_more_never_costs_less(
        (reference, usage) in text_usage(),
        kind in 0usize..4,
    ) {
        let catalog = default_catalog();
        prop_assume!(!is_empty(&usage));
        let mut more = usage.clone();
        match kind {
            0 if reference.input.is_some() => more.input_tokens += 1,
            1 if reference.output.is_some() => more.output_tokens += 1,
            2 if reference.cached_read.is_some() => more.cached_read_tokens += 1,
            _ => more.reasoning_tokens += 1,
        }
        let less = price(&catalog, None, Some(&reference.model), &usage).unwrap();
        let more = price(&catalog, None, Some(&reference.model), &more).unwrap();
        prop_assert!(more.total >= less.total, "{} then {}", less.total, more.total);
    }
}
