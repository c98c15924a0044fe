//! Hand-computed quotes: tokens, images, video, tools, surcharges and multipliers.

use super::*;

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
