//! Usage → line items → total. Each line item is exact (quantity × rate); the total is their
//! sum rounded once, half to even, to 9 decimal places. Anything the catalog cannot price is an
//! error, never a free run.

use super::catalog::{Catalog, Model, Tool};
use super::lines::Lines;
use super::usage::Usage;
use crate::money::{Credits, LineItem};

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

/// Prices `usage` for `tool` and/or `model` with `catalog`.
///
/// The steps run in a fixed order, which fixes both the order of the line items and which
/// refusal a caller sees first when several apply.
pub fn price(
    catalog: &Catalog,
    tool: Option<&str>,
    model: Option<&str>,
    usage: &Usage,
) -> Result<Priced, PricingError> {
    usage
        .validate()
        .map_err(|error| PricingError::InvalidUsage(error.0))?;
    let tool = tool.map(|id| find_tool(catalog, id)).transpose()?;
    let model = chosen_model(catalog, tool, model)?;
    let mut lines = Lines::default();
    if let Some(tool) = tool {
        lines.add_tool_fee(tool);
    }
    match model {
        Some(model) => lines.add_model_usage(model, usage)?,
        None if needs_model(usage) => {
            return Err(PricingError::InvalidUsage(
                "usage with tokens, images or video needs a model".to_owned(),
            ));
        }
        None => {}
    }
    lines.add_surcharges(&catalog.surcharges, usage)?;
    let subtotal = lines.billable_subtotal()?;
    lines.add_multipliers(&catalog.multipliers, &usage.multipliers, subtotal)?;
    let total = lines.rounded_total()?;
    Ok(Priced {
        line_items: lines.items,
        total,
        model: model.map(|model| model.id.clone()),
        tool: tool.map(|tool| tool.id.clone()),
        required_entitlement: model.and_then(|model| model.required_entitlement.clone()),
    })
}

fn find_tool<'c>(catalog: &'c Catalog, id: &str) -> Result<&'c Tool, PricingError> {
    catalog
        .tool(id)
        .ok_or_else(|| PricingError::UnknownTool(id.to_owned()))
}

/// The model that prices the run: the one asked for (if the tool allows it), else the tool's
/// default; `None` when a tool without a default runs alone.
fn chosen_model<'c>(
    catalog: &'c Catalog,
    tool: Option<&Tool>,
    model: Option<&str>,
) -> Result<Option<&'c Model>, PricingError> {
    let model_id = match (model, tool) {
        (Some(model), Some(tool)) => {
            if !tool_allows(tool, model) {
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
    model_id
        .map(|id| {
            catalog
                .model(id)
                .ok_or_else(|| PricingError::UnknownModel(id.to_owned()))
        })
        .transpose()
}

/// A tool always allows its own default, listed or not.
fn tool_allows(tool: &Tool, model: &str) -> bool {
    tool.default_model.as_deref() == Some(model)
        || tool.allowed_models.iter().any(|allowed| allowed == model)
}

/// Whether the usage holds anything only a model has rates for (tokens, images, video), so a
/// tool without a default model cannot price it.
fn needs_model(usage: &Usage) -> bool {
    let tokens = [
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_read_tokens,
        usage.reasoning_tokens,
    ];
    tokens.iter().any(|count| *count > 0)
        || !usage.images.is_empty()
        || usage
            .video_seconds
            .is_some_and(|seconds| !seconds.is_zero())
}
