//! The default catalog: valid, as the reference rate sheet writes it, strings for amounts.

use super::*;

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
