//! Every refusal: unknown names, rates a model lacks, usage nothing can price.

use super::*;

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
