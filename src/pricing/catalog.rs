//! The catalog: what each model, tool and extra costs. A version is immutable once published.
//! The same shape is read from the default catalog file (TOML) and stored as JSON.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::usage::Resolution;
use super::validate::CatalogError;

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

    /// The model with this id.
    pub fn model(&self, id: &str) -> Option<&Model> {
        self.models.iter().find(|model| model.id == id)
    }

    /// The tool with this id.
    pub fn tool(&self, id: &str) -> Option<&Tool> {
        self.tools.iter().find(|tool| tool.id == id)
    }
}
