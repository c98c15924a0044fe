//! What makes a catalog publishable: bounded size, unique sane ids, rates in range, tools that
//! name models the catalog has. Errors quote published names cut short, so a refusal never
//! grows with what was sent.

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use super::catalog::{Catalog, Model, Multiplier, Surcharges, Tool};

/// Most models, tools or multipliers in one catalog.
pub const MAX_ENTRIES: usize = 5_000;
/// Most decimal places of a rate.
pub const MAX_RATE_PLACES: u32 = 12;
/// Largest rate.
const MAX_RATE: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
/// Longest id.
const MAX_ID: usize = 200;

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
    /// Checks ids are unique, rates are sane and tools name known models.
    ///
    /// The checks run in a fixed order (models, tools, surcharges, multipliers), which fixes
    /// which refusal a publisher sees first when several apply.
    pub fn validate(&self) -> Result<(), CatalogError> {
        self.check_storable()?;
        self.check_size()?;
        let models = check_models(&self.models)?;
        check_tools(&self.tools, &models)?;
        check_surcharges(&self.surcharges)?;
        check_multipliers(&self.multipliers)
    }

    /// Stored as JSONB, which refuses NUL characters.
    fn check_storable(&self) -> Result<(), CatalogError> {
        if serde_json::to_string(self).is_ok_and(|json| json.contains("\\u0000")) {
            return Err(CatalogError::Invalid(
                "catalog text must not contain NUL characters".to_owned(),
            ));
        }
        Ok(())
    }

    fn check_size(&self) -> Result<(), CatalogError> {
        if self.models.len() > MAX_ENTRIES
            || self.tools.len() > MAX_ENTRIES
            || self.multipliers.len() > MAX_ENTRIES
        {
            return Err(CatalogError::Invalid(format!(
                "at most {MAX_ENTRIES} models, tools and multipliers each"
            )));
        }
        Ok(())
    }
}

/// Checks each model in turn and returns their ids, for the tools to name.
fn check_models(models: &[Model]) -> Result<BTreeSet<String>, CatalogError> {
    let mut ids = BTreeSet::new();
    for model in models {
        check_id("model", &model.id, &mut ids)?;
        check_model_rates(model)?;
    }
    Ok(ids)
}

fn check_model_rates(model: &Model) -> Result<(), CatalogError> {
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
    Ok(())
}

fn check_tools(tools: &[Tool], models: &BTreeSet<String>) -> Result<(), CatalogError> {
    let mut ids = BTreeSet::new();
    for tool in tools {
        check_id("tool", &tool.id, &mut ids)?;
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
    Ok(())
}

fn check_surcharges(surcharges: &Surcharges) -> Result<(), CatalogError> {
    for (name, rate) in [
        ("per_web_search", surcharges.per_web_search),
        ("per_tool_call", surcharges.per_tool_call),
        ("per_agent_step", surcharges.per_agent_step),
    ] {
        if let Some(rate) = rate {
            check_rate(|| format!("surcharge {name}"), rate)?;
        }
    }
    Ok(())
}

fn check_multipliers(multipliers: &[Multiplier]) -> Result<(), CatalogError> {
    let mut names = BTreeSet::new();
    for multiplier in multipliers {
        check_id("multiplier", &multiplier.name, &mut names)?;
        check_rate(
            || format!("multiplier {}", shown(&multiplier.name)),
            multiplier.factor,
        )?;
    }
    Ok(())
}
