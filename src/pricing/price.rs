//! Usage → line items → total. Each line item is exact (quantity × rate); the total is their
//! sum rounded once, half to even, to 9 decimal places. Anything the catalog cannot price is an
//! error, never a free run.

use rust_decimal::Decimal;

use super::catalog::{Catalog, Model};
use super::usage::Usage;
use crate::money::{Credits, LineItem};

/// Tokens per token rate unit.
const TOKENS_PER_RATE_UNIT: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

/// A priced run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    /// Line items, in a fixed order.
    pub line_items: Vec<LineItem>,
    /// Their sum, rounded half-even to 9 places.
    pub total: Credits,
    /// The model used (after the tool's default).
    pub model: Option<String>,
    /// The tool used.
    pub tool: Option<String>,
    /// Entitlement the model requires.
    pub required_entitlement: Option<String>,
}

/// Why a run cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// The model is not in the catalog.
    #[error("model {0:?} is not in the catalog")]
    UnknownModel(String),
    /// The tool is not in the catalog.
    #[error("tool {0:?} is not in the catalog")]
    UnknownTool(String),
    /// The tool does not allow this model.
    #[error("tool {tool} does not allow model {model}")]
    ModelNotAllowed {
        /// The tool.
        tool: String,
        /// The model asked for.
        model: String,
    },
    /// The usage asks for something the catalog has no price for, or nothing at all.
    #[error("{0}")]
    InvalidUsage(String),
}

impl PricingError {
    /// The ErrorInfo reason.
    pub fn reason(&self) -> &'static str {
        match self {
            PricingError::UnknownModel(_) => "UNKNOWN_MODEL",
            PricingError::UnknownTool(_) => "UNKNOWN_TOOL",
            PricingError::ModelNotAllowed { .. } => "MODEL_NOT_ALLOWED",
            PricingError::InvalidUsage(_) => "INVALID_USAGE",
        }
    }
}

struct Lines {
    items: Vec<LineItem>,
}

impl Lines {
    fn add(
        &mut self,
        kind: &str,
        description: String,
        quantity: Decimal,
        unit: &str,
        rate: Decimal,
    ) {
        if quantity.is_zero() {
            return;
        }
        self.items.push(LineItem {
            kind: kind.to_owned(),
            description,
            quantity: quantity.normalize(),
            unit: unit.to_owned(),
            rate: rate.normalize(),
            amount: (quantity * rate).normalize(),
        });
    }
}

fn unpriced(model: &Model, what: &str) -> PricingError {
    PricingError::InvalidUsage(format!("model {} has no rate for {what}", model.id))
}

/// Prices `usage` for `tool` and/or `model` with `catalog`.
pub fn price(
    catalog: &Catalog,
    tool: Option<&str>,
    model: Option<&str>,
    usage: &Usage,
) -> Result<Priced, PricingError> {
    usage
        .validate()
        .map_err(|error| PricingError::InvalidUsage(error.0))?;
    let tool = tool
        .map(|id| {
            catalog
                .tool(id)
                .ok_or_else(|| PricingError::UnknownTool(id.to_owned()))
        })
        .transpose()?;
    let model_id = match (model, tool) {
        (Some(model), Some(tool)) => {
            let allowed = tool.default_model.as_deref() == Some(model)
                || tool.allowed_models.iter().any(|allowed| allowed == model);
            if !allowed {
                return Err(PricingError::ModelNotAllowed {
                    tool: tool.id.clone(),
                    model: model.to_owned(),
                });
            }
            Some(model)
        }
        (Some(model), None) => Some(model),
        (None, Some(tool)) => tool.default_model.as_deref(),
        (None, None) => {
            return Err(PricingError::InvalidUsage(
                "a tool or a model is required".to_owned(),
            ));
        }
    };
    let model = model_id
        .map(|id| {
            catalog
                .model(id)
                .ok_or_else(|| PricingError::UnknownModel(id.to_owned()))
        })
        .transpose()?;
    let mut lines = Lines { items: Vec::new() };
    if let Some(tool) = tool {
        lines.add(
            "tool_execution",
            format!("{} execution", tool.id),
            Decimal::ONE,
            "execution",
            tool.fee_per_execution,
        );
    }
    let tokens = [
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_read_tokens,
        usage.reasoning_tokens,
    ];
    let needs_model = tokens.iter().any(|count| *count > 0)
        || !usage.images.is_empty()
        || usage
            .video_seconds
            .is_some_and(|seconds| !seconds.is_zero());
    match model {
        Some(model) => price_model(model, usage, &mut lines)?,
        None if needs_model => {
            return Err(PricingError::InvalidUsage(
                "usage with tokens, images or video needs a model".to_owned(),
            ));
        }
        None => {}
    }
    let surcharges = &catalog.surcharges;
    for (count, rate, kind, unit) in [
        (
            usage.searches,
            surcharges.per_web_search,
            "web_search",
            "search",
        ),
        (
            usage.tool_calls,
            surcharges.per_tool_call,
            "tool_call",
            "call",
        ),
        (
            usage.agent_steps,
            surcharges.per_agent_step,
            "agent_step",
            "step",
        ),
    ] {
        if count > 0 {
            let rate = rate.ok_or_else(|| {
                PricingError::InvalidUsage(format!("the catalog has no price for {kind}"))
            })?;
            lines.add(
                kind,
                format!("{kind} surcharge"),
                Decimal::from(count),
                unit,
                rate,
            );
        }
    }
    let subtotal: Decimal = lines.items.iter().map(|item| item.amount).sum();
    // Never a free run by accident: something must cost (a tool's fee counts).
    if subtotal.is_zero() {
        return Err(PricingError::InvalidUsage(
            "the run prices at 0 credits: the usage is empty or nothing in it is billable"
                .to_owned(),
        ));
    }
    // Multipliers compound: each applies to the subtotal after the ones before it.
    let mut running = subtotal;
    for name in &usage.multipliers {
        let multiplier = catalog
            .multipliers
            .iter()
            .find(|multiplier| &multiplier.name == name)
            .ok_or_else(|| PricingError::InvalidUsage(format!("unknown multiplier {name:?}")))?;
        let adjustment = multiplier.factor - Decimal::ONE;
        if !adjustment.is_zero() {
            let too_large = || {
                PricingError::InvalidUsage(
                    "the multipliers make the run too large to price".to_owned(),
                )
            };
            running.checked_mul(adjustment).ok_or_else(too_large)?;
            lines.add(
                "multiplier",
                format!("{name} × {}", multiplier.factor.normalize()),
                running,
                "credits",
                adjustment,
            );
            running = running
                .checked_mul(multiplier.factor)
                .ok_or_else(too_large)?;
        }
    }
    let exact = lines
        .items
        .iter()
        .try_fold(Decimal::ZERO, |sum, item| sum.checked_add(item.amount))
        .ok_or_else(|| PricingError::InvalidUsage("the run is too large to price".to_owned()))?;
    Ok(Priced {
        line_items: lines.items,
        total: Credits::round_half_even(exact.max(Decimal::ZERO)),
        model: model.map(|model| model.id.clone()),
        tool: tool.map(|tool| tool.id.clone()),
        required_entitlement: model.and_then(|model| model.required_entitlement.clone()),
    })
}

fn price_model(model: &Model, usage: &Usage, lines: &mut Lines) -> Result<(), PricingError> {
    let rates = &model.tokens;
    // Reasoning tokens are output tokens unless the model prices them apart.
    let reasoning_rate = rates.reasoning.or(rates.output);
    for (tokens, rate, kind, what) in [
        (
            usage.input_tokens,
            rates.input,
            "input_tokens",
            "input tokens",
        ),
        (
            usage.output_tokens,
            rates.output,
            "output_tokens",
            "output tokens",
        ),
        (
            usage.cached_read_tokens,
            rates.cached_read,
            "cached_read_tokens",
            "cached-read tokens",
        ),
        (
            usage.reasoning_tokens,
            reasoning_rate,
            "reasoning_tokens",
            "reasoning tokens",
        ),
    ] {
        if tokens > 0 {
            let rate = rate.ok_or_else(|| unpriced(model, what))?;
            let quantity = Decimal::from(tokens) / TOKENS_PER_RATE_UNIT;
            lines.add(
                kind,
                format!("{} {what}", model.id),
                quantity,
                "10k tokens",
                rate,
            );
        }
    }
    for image in &usage.images {
        let tier = image.size.as_deref().and_then(|size| {
            model.images.iter().find(|rate| {
                rate.size == size
                    && image
                        .quality
                        .as_deref()
                        .is_none_or(|quality| rate.quality == quality)
            })
        });
        match (tier, image.megapixels, model.per_megapixel) {
            (Some(rate), _, _) => {
                let description = format!("{} image {} {}", model.id, rate.size, rate.quality);
                lines.add(
                    "image",
                    description,
                    Decimal::from(image.count),
                    "image",
                    rate.per_image,
                );
            }
            (None, Some(megapixels), Some(rate)) => {
                let description =
                    format!("{} image {} megapixels", model.id, megapixels.normalize());
                lines.add(
                    "image",
                    description,
                    Decimal::from(image.count) * megapixels,
                    "megapixel",
                    rate,
                );
            }
            _ => {
                let what = format!(
                    "images of size {:?} quality {:?}",
                    image.size.as_deref().unwrap_or("-"),
                    image.quality.as_deref().unwrap_or("-")
                );
                return Err(unpriced(model, &what));
            }
        }
    }
    if let Some(seconds) = usage.video_seconds.filter(|seconds| !seconds.is_zero()) {
        let resolution = usage.resolution.ok_or_else(|| {
            PricingError::InvalidUsage("video_seconds needs a resolution".to_owned())
        })?;
        let rate = model
            .video
            .iter()
            .find(|rate| rate.resolution == resolution)
            .ok_or_else(|| unpriced(model, &format!("{} video", resolution.as_str())))?;
        lines.add(
            "video",
            format!("{} video {}", model.id, resolution.as_str()),
            seconds,
            "second",
            rate.per_second,
        );
    }
    Ok(())
}
