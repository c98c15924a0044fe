//! The catalog: what each model, tool and extra costs. A version is immutable once published.
//! The same shape is read from the default catalog file (TOML) and stored as JSON.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::usage::Resolution;

/// Most models, tools or multipliers in one catalog.
pub const MAX_ENTRIES: usize = 5_000;
/// Most decimal places of a rate.
pub const MAX_RATE_PLACES: u32 = 12;
/// Largest rate.
const MAX_RATE: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
/// Longest id.
const MAX_ID: usize = 200;

/// What a model produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    /// Text in, text out.
    #[default]
    Text,
    /// Images.
    Image,
    /// Video.
    Video,
    /// Audio.
    Audio,
    /// Embeddings.
    Embedding,
    /// Several.
    Multimodal,
}

/// Credits per 10,000 tokens; `None` = the model has no such rate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRates {
    /// Input tokens.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub input: Option<Decimal>,
    /// Output tokens.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub output: Option<Decimal>,
    /// Cached input tokens read.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cached_read: Option<Decimal>,
    /// Reasoning tokens, where priced apart from output (otherwise they are output).
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub reasoning: Option<Decimal>,
}

/// Price of one image of a size and quality tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRate {
    /// Size, e.g. `1024x1024`.
    pub size: String,
    /// Quality tier, e.g. `standard`, `hd`.
    pub quality: String,
    /// Credits per image.
    #[serde(with = "rust_decimal::serde::str")]
    pub per_image: Decimal,
}

/// Price of one second of video at a resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoRate {
    /// Resolution tier.
    pub resolution: Resolution,
    /// Credits per second.
    #[serde(with = "rust_decimal::serde::str")]
    pub per_second: Decimal,
}

/// A model and its rates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Id, e.g. `openai/o3-pro`.
    pub id: String,
    /// Name for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    /// What it produces.
    #[serde(default)]
    pub modality: Modality,
    /// Token rates.
    #[serde(default)]
    pub tokens: TokenRates,
    /// Image rates by size and quality.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageRate>,
    /// Credits per megapixel of image, for sizes not listed.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub per_megapixel: Option<Decimal>,
    /// Video rates by resolution.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub video: Vec<VideoRate>,
    /// Entitlement an account needs to run it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_entitlement: Option<String>,
}

/// A tool: a flat fee per execution and the models it may run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// Id, e.g. `image-studio`.
    pub id: String,
    /// Credits per execution.
    #[serde(with = "rust_decimal::serde::str")]
    pub fee_per_execution: Decimal,
    /// Model used when the request names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
    /// Models a request may choose instead (empty = only the default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_models: Vec<String>,
}

/// Fees per unit of extra work.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Surcharges {
    /// Per web search.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub per_web_search: Option<Decimal>,
    /// Per tool call.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub per_tool_call: Option<Decimal>,
    /// Per agent step.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub per_agent_step: Option<Decimal>,
}

/// A named factor applied to a run's subtotal (e.g. `batch` = 0.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Multiplier {
    /// Name used in `Usage.multipliers`.
    pub name: String,
    /// Factor.
    #[serde(with = "rust_decimal::serde::str")]
    pub factor: Decimal,
}

/// A catalog version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Version, from 1; 0 before publishing.
    #[serde(default)]
    pub version: i64,
    /// When it becomes the active version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<DateTime<Utc>>,
    /// When it was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// What changed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Models.
    #[serde(default)]
    pub models: Vec<Model>,
    /// Tools.
    #[serde(default)]
    pub tools: Vec<Tool>,
    /// Surcharges.
    #[serde(default)]
    pub surcharges: Surcharges,
    /// Multipliers.
    #[serde(default)]
    pub multipliers: Vec<Multiplier>,
}

/// Why a catalog cannot be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// A rate is negative, too precise or too large.
    #[error(
        "{what}: rate {rate} must be between 0 and {MAX_RATE} with at most {MAX_RATE_PLACES} decimal places"
    )]
    BadRate {
        /// Where.
        what: String,
        /// The rate.
        rate: Decimal,
    },
    /// Something else is wrong; the message says what.
    #[error("{0}")]
    Invalid(String),
    /// A tool names a model the catalog lacks.
    #[error("tool {tool} names model {model}, which is not in the catalog")]
    UnknownModel {
        /// The tool.
        tool: String,
        /// The model.
        model: String,
    },
}

/// Most characters of a published name quoted back in an error.
const MAX_SHOWN: usize = 64;

/// A name from the catalog as an error shows it: at most [`MAX_SHOWN`] characters, marked when
/// cut, so an error never grows with what was published.
fn shown(name: &str) -> String {
    let mut text: String = name.chars().take(MAX_SHOWN).collect();
    if text.len() < name.len() {
        text.push('…');
    }
    text
}

fn check_rate(what: impl FnOnce() -> String, rate: Decimal) -> Result<(), CatalogError> {
    if rate.is_sign_negative() || rate > MAX_RATE || rate.normalize().scale() > MAX_RATE_PLACES {
        return Err(CatalogError::BadRate { what: what(), rate });
    }
    Ok(())
}

fn check_id(kind: &str, id: &str, seen: &mut BTreeSet<String>) -> Result<(), CatalogError> {
    if id.is_empty()
        || id.len() > MAX_ID
        || id
            .chars()
            .any(|character| character.is_whitespace() || character.is_control())
    {
        return Err(CatalogError::Invalid(format!(
            "{kind} id {:?} must be 1-{MAX_ID} characters without spaces",
            shown(id)
        )));
    }
    if !seen.insert(id.to_owned()) {
        return Err(CatalogError::Invalid(format!(
            "{kind} {} is listed twice",
            shown(id)
        )));
    }
    Ok(())
}

impl Catalog {
    /// Parses a catalog file (TOML).
    pub fn from_toml(text: &str) -> Result<Catalog, CatalogError> {
        let catalog: Catalog = toml::from_str(text)
            .map_err(|error| CatalogError::Invalid(format!("catalog file: {error}")))?;
        catalog.validate()?;
        Ok(catalog)
    }

    /// Writes the catalog as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks ids are unique, rates are sane and tools name known models.
    pub fn validate(&self) -> Result<(), CatalogError> {
        // Stored as JSONB, which refuses NUL characters.
        if serde_json::to_string(self).is_ok_and(|json| json.contains("\\u0000")) {
            return Err(CatalogError::Invalid(
                "catalog text must not contain NUL characters".to_owned(),
            ));
        }
        if self.models.len() > MAX_ENTRIES
            || self.tools.len() > MAX_ENTRIES
            || self.multipliers.len() > MAX_ENTRIES
        {
            return Err(CatalogError::Invalid(format!(
                "at most {MAX_ENTRIES} models, tools and multipliers each"
            )));
        }
        let mut models = BTreeSet::new();
        for model in &self.models {
            check_id("model", &model.id, &mut models)?;
            let tokens = &model.tokens;
            for (name, rate) in [
                ("input", tokens.input),
                ("output", tokens.output),
                ("cached_read", tokens.cached_read),
                ("reasoning", tokens.reasoning),
            ] {
                if let Some(rate) = rate {
                    check_rate(|| format!("model {} {name} tokens", shown(&model.id)), rate)?;
                }
            }
            for image in &model.images {
                check_rate(
                    || {
                        let (id, size) = (shown(&model.id), shown(&image.size));
                        // Tiers are free text (spaces included): quoted, so a quote shows where each ends.
                        format!("model {id} image {size:?} {:?}", shown(&image.quality))
                    },
                    image.per_image,
                )?;
            }
            if let Some(rate) = model.per_megapixel {
                check_rate(|| format!("model {} per megapixel", shown(&model.id)), rate)?;
            }
            for video in &model.video {
                check_rate(
                    || format!("model {} video {:?}", shown(&model.id), video.resolution),
                    video.per_second,
                )?;
            }
        }
        let mut tools = BTreeSet::new();
        for tool in &self.tools {
            check_id("tool", &tool.id, &mut tools)?;
            check_rate(
                || format!("tool {} fee", shown(&tool.id)),
                tool.fee_per_execution,
            )?;
            for model in tool.default_model.iter().chain(&tool.allowed_models) {
                if !models.contains(model) {
                    return Err(CatalogError::UnknownModel {
                        tool: shown(&tool.id),
                        model: shown(model),
                    });
                }
            }
        }
        let surcharges = &self.surcharges;
        for (name, rate) in [
            ("per_web_search", surcharges.per_web_search),
            ("per_tool_call", surcharges.per_tool_call),
            ("per_agent_step", surcharges.per_agent_step),
        ] {
            if let Some(rate) = rate {
                check_rate(|| format!("surcharge {name}"), rate)?;
            }
        }
        let mut multipliers = BTreeSet::new();
        for multiplier in &self.multipliers {
            check_id("multiplier", &multiplier.name, &mut multipliers)?;
            check_rate(
                || format!("multiplier {}", shown(&multiplier.name)),
                multiplier.factor,
            )?;
        }
        Ok(())
    }

    /// The model with this id.
    pub fn model(&self, id: &str) -> Option<&Model> {
        self.models.iter().find(|model| model.id == id)
    }

    /// The tool with this id.
    pub fn tool(&self, id: &str) -> Option<&Tool> {
        self.tools.iter().find(|tool| tool.id == id)
    }
}
