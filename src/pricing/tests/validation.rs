//! Catalog validation: rates in range, unique ids, tools naming known models.

use super::*;

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
