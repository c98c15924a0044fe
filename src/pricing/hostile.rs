#![allow(clippy::unwrap_used)]
//! Hostile input against the decoders of caller text: wire amounts, usage, catalog files.
//! Whatever arrives (huge digit strings, exponents, signs, unicode digits, NULs, megabytes of
//! one character, bytes that were not UTF-8) is refused with the decoder's own error, without a
//! panic, and no refusal echoes more than [`MAX_ECHOED_CHARS`] characters of it.

use std::str::FromStr as _;

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::money::{AmountError, Credits, parse_amount};

/// Most characters of caller input a refusal may repeat.
pub(crate) const MAX_ECHOED_CHARS: usize = 64;
/// Longest refusal message.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1_024;

const DEFAULT_CATALOG: &str = include_str!("../../catalog/default.toml");

/// Text a hostile or broken client may send in a string field.
pub(crate) fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,200}",
        "[0-9]{1,3000}",
        "[0-9]{1,80}\\.[0-9]{1,80}",
        "[0-9]{1,6}(\\.[0-9]{1,4})?[eE][+-]?[0-9]{1,6}",
        "[-+][0-9]{1,12}(\\.[0-9]{1,9})?",
        "-0(\\.0{1,9})?",
        "[٠-٩۰-۹०-९０-９𝟎-𝟗]{1,30}",
        "[0-9.\\x00]{1,30}",
        "[ \\t\\n]{0,3}[0-9]{1,6}[ \\t\\n]{0,3}",
        prop::sample::select(vec![
            "NaN", "inf", "Infinity", "0x1F", "1_000", "1,5", "", "."
        ])
        .prop_map(str::to_owned),
        (any::<char>(), 1_000..10_000_usize).prop_map(|(c, count)| c.to_string().repeat(count)),
        prop::collection::vec(any::<u8>(), 0..400)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ]
}

/// Fails unless `message` is short and repeats at most [`MAX_ECHOED_CHARS`] characters of
/// `input` in a row, as sent or escaped.
pub(crate) fn assert_short_echo(message: &str, input: &str) {
    assert!(
        message.len() <= MAX_MESSAGE_BYTES,
        "a refusal of {} bytes: {:?}",
        message.len(),
        message.chars().take(200).collect::<String>()
    );
    let chars: Vec<char> = input.chars().collect();
    if chars.len() <= MAX_ECHOED_CHARS {
        return;
    }
    for start in [0, chars.len() - MAX_ECHOED_CHARS - 1] {
        let window: String = chars[start..=start + MAX_ECHOED_CHARS].iter().collect();
        let escaped = window.escape_debug().to_string();
        // Raw text that escaping changes (backslashes, quotes) may show up inside the escaped
        // echo of fewer characters; only the escaped form tells then.
        let raw_echo = escaped == window && message.contains(&window);
        assert!(
            !raw_echo && !message.contains(&escaped),
            "the refusal repeats more than {MAX_ECHOED_CHARS} characters of the input: {message:?}"
        );
    }
}

fn default_catalog() -> Catalog {
    Catalog::from_toml(DEFAULT_CATALOG).unwrap()
}

/// A TOML basic string holding `text` exactly.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// Usage text as the API passes it on: at most 64 characters once trimmed (longer is refused
/// at the edge, in `api::pricing`).
fn usage_text() -> impl Strategy<Value = String> {
    hostile_text().prop_map(|text| text.trim().chars().take(MAX_ECHOED_CHARS).collect())
}

/// A decimal as the API decodes one (plain digits only there, so anything `Decimal` reads).
fn hostile_decimal() -> impl Strategy<Value = Option<Decimal>> {
    hostile_text().prop_map(|text| Decimal::from_str(&text).ok())
}

prop_compose! {
    fn hostile_usage()(
        tokens in prop::array::uniform4(prop_oneof![Just(0_u64), Just(u64::MAX), any::<u64>(), 0..10_000_u64]),
        images in prop::collection::vec(
            (any::<u32>(), prop::option::of(usage_text()), hostile_decimal(), prop::option::of(usage_text())),
            0..3,
        ),
        video_seconds in hostile_decimal(),
        counts in prop::array::uniform3(prop_oneof![Just(0_u32), Just(u32::MAX), any::<u32>()]),
        multipliers in prop::collection::vec(prop_oneof![usage_text(), Just("batch".to_owned())], 0..3),
    ) -> Usage {
        Usage {
            input_tokens: tokens[0],
            output_tokens: tokens[1],
            cached_read_tokens: tokens[2],
            reasoning_tokens: tokens[3],
            images: images
                .into_iter()
                .map(|(count, size, megapixels, quality)| ImageUsage { count, size, megapixels, quality })
                .collect(),
            video_seconds,
            resolution: video_seconds.map(|_| Resolution::P720),
            searches: counts[0],
            tool_calls: counts[1],
            agent_steps: counts[2],
            multipliers,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn hostile_amounts_are_refused_as_amount_errors(text in hostile_text(), allow_zero in any::<bool>()) {
        let max = Credits::whole(1_000_000_000);
        match parse_amount(&text, max, allow_zero) {
            Ok(amount) => {
                prop_assert!(text.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.'), "{text:?}");
                prop_assert!(amount <= max && (allow_zero || amount.is_positive()));
                prop_assert_eq!(parse_amount(&amount.to_string(), max, allow_zero), Ok(amount));
            }
            Err(error) => {
                prop_assert!(!matches!(error, AmountError::Zero) || !allow_zero);
                assert_short_echo(&error.to_string(), &text);
            }
        }
    }

    #[test]
    fn hostile_usage_is_priced_or_refused_as_a_pricing_error(
        usage in hostile_usage(),
        model in prop_oneof![Just("openai/o3-pro".to_owned()), usage_text()],
    ) {
        let catalog = default_catalog();
        match price(&catalog, None, Some(&model), &usage) {
            Ok(priced) => {
                prop_assert!(usage.validate().is_ok());
                prop_assert!(!priced.total.decimal().is_sign_negative());
            }
            Err(error) => {
                prop_assert!(!error.reason().is_empty());
                assert_short_echo(&error.to_string(), &model);
                for name in &usage.multipliers {
                    assert_short_echo(&error.to_string(), name);
                }
            }
        }
    }

    #[test]
    fn hostile_catalog_files_are_refused_as_catalog_errors(text in hostile_text()) {
        match Catalog::from_toml(&text) {
            Ok(catalog) => prop_assert_eq!(catalog.validate(), Ok(())),
            Err(error) => assert_short_echo_unless_known(&error, &[&text]),
        }
    }

    #[test]
    fn hostile_catalog_fields_are_refused_as_catalog_errors(
        id in hostile_text(),
        rate in hostile_text(),
        size in hostile_text(),
    ) {
        let text = format!(
            "[[models]]\nid = {}\ntokens = {{ input = {} }}\nimages = [{{ size = {}, quality = \"hd\", per_image = {} }}]\n",
            toml_string(&id),
            toml_string(&rate),
            toml_string(&size),
            toml_string(&rate),
        );
        match Catalog::from_toml(&text) {
            Ok(catalog) => {
                prop_assert_eq!(catalog.validate(), Ok(()));
                prop_assert_eq!(Catalog::from_toml(&catalog.to_toml()), Ok(catalog));
            }
            Err(error) => assert_short_echo_unless_known(&error, &[&id, &rate, &size]),
        }
    }

    /// What `PublishCatalog` validates: a catalog decoded from the wire, names and rates as sent.
    #[test]
    fn hostile_published_catalogs_are_refused_as_catalog_errors(
        names in prop::array::uniform4(hostile_text()),
        rate in hostile_decimal(),
    ) {
        let rate = rate.unwrap_or(Decimal::NEGATIVE_ONE);
        let [model, size, tool, multiplier] = names;
        let catalog = Catalog {
            models: vec![Model {
                id: model.clone(),
                display_name: String::new(),
                modality: Modality::Image,
                tokens: TokenRates::default(),
                images: vec![ImageRate { size: size.clone(), quality: "hd".to_owned(), per_image: rate }],
                per_megapixel: None,
                video: Vec::new(),
                required_entitlement: None,
            }],
            tools: vec![Tool {
                id: tool.clone(),
                fee_per_execution: rate,
                default_model: Some(model.clone()),
                allowed_models: Vec::new(),
            }],
            multipliers: vec![Multiplier { name: multiplier.clone(), factor: rate }],
            ..Catalog::from_toml("").unwrap()
        };
        if let Err(error) = catalog.validate() {
            assert_short_echo_unless_known(&error, &[&model, &size, &tool, &multiplier]);
        }
    }
}

/// [`assert_short_echo`] for each input, except TOML parse errors, which quote the offending
/// line of a catalog file (read by the command line from a local file, never from a request).
fn assert_short_echo_unless_known(error: &CatalogError, inputs: &[&String]) {
    let message = error.to_string();
    if matches!(error, CatalogError::Invalid(text) if text.starts_with("catalog file: ")) {
        return;
    }
    for input in inputs {
        assert_short_echo(&message, input);
    }
}
