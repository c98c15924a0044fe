//! Pricing types on the wire: usage in, catalogs and line items both ways.

use std::str::FromStr as _;

use rust_decimal::Decimal;

use super::convert::timestamp_opt;
use crate::money::LineItem;
use crate::pricing::{
    Catalog, ImageRate, ImageUsage, Modality, Model, Multiplier, PricingError, Resolution,
    Surcharges, TokenRates, Tool, Usage, VideoRate,
};
use crate::proto::v1;
use crate::service::ServiceError;

fn invalid_usage(message: String) -> ServiceError {
    PricingError::InvalidUsage(message).into()
}

/// A plain non-negative decimal string (digits, optionally a point and digits); empty = none.
fn decimal(field: &str, text: &str) -> Result<Option<Decimal>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let plain = text.len() <= 40
        && text.split('.').count() <= 2
        && text
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()));
    if !plain {
        return Err(format!(
            "{field}: {} is not a plain decimal string such as \"0.5\"",
            super::parse::echo(text)
        ));
    }
    Decimal::from_str(text)
        .map(Some)
        .map_err(|_| format!("{field}: {} is out of range", super::parse::echo(text)))
}

fn resolution(value: i32) -> Result<Option<Resolution>, ServiceError> {
    match v1::VideoResolution::try_from(value) {
        Ok(v1::VideoResolution::Unspecified) => Ok(None),
        Ok(v1::VideoResolution::VideoResolution480p) => Ok(Some(Resolution::P480)),
        Ok(v1::VideoResolution::VideoResolution540p) => Ok(Some(Resolution::P540)),
        Ok(v1::VideoResolution::VideoResolution720p) => Ok(Some(Resolution::P720)),
        Ok(v1::VideoResolution::VideoResolution1080p) => Ok(Some(Resolution::P1080)),
        Ok(v1::VideoResolution::VideoResolution4k) => Ok(Some(Resolution::K4)),
        Err(_) => Err(invalid_usage(format!("unknown video resolution {value}"))),
    }
}

/// A wire resolution.
pub fn resolution_to_proto(resolution: Resolution) -> v1::VideoResolution {
    match resolution {
        Resolution::P480 => v1::VideoResolution::VideoResolution480p,
        Resolution::P540 => v1::VideoResolution::VideoResolution540p,
        Resolution::P720 => v1::VideoResolution::VideoResolution720p,
        Resolution::P1080 => v1::VideoResolution::VideoResolution1080p,
        Resolution::K4 => v1::VideoResolution::VideoResolution4k,
    }
}

/// Wire usage as domain usage, bounds checked.
pub fn usage(usage: &v1::Usage) -> Result<Usage, ServiceError> {
    let text = |field: &str, value: &str| {
        let value = value.trim();
        if value.len() > 64 {
            return Err(invalid_usage(format!(
                "{field} is longer than 64 characters"
            )));
        }
        Ok((!value.is_empty()).then(|| value.to_owned()))
    };
    let mut images = Vec::with_capacity(usage.images.len());
    for image in &usage.images {
        images.push(ImageUsage {
            count: image.count,
            size: text("images.size", &image.size)?,
            megapixels: decimal("images.megapixels", &image.megapixels).map_err(invalid_usage)?,
            quality: text("images.quality", &image.quality)?,
        });
    }
    let mut multipliers = Vec::with_capacity(usage.multipliers.len());
    for name in &usage.multipliers {
        multipliers.extend(text("multipliers", name)?);
    }
    let usage = Usage {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cached_read_tokens: usage.cached_read_tokens,
        reasoning_tokens: usage.reasoning_tokens,
        images,
        video_seconds: decimal("video_seconds", &usage.video_seconds).map_err(invalid_usage)?,
        resolution: resolution(usage.resolution)?,
        searches: usage.searches,
        tool_calls: usage.tool_calls,
        agent_steps: usage.agent_steps,
        multipliers,
    };
    usage.validate().map_err(|error| invalid_usage(error.0))?;
    Ok(usage)
}

/// A wire line item.
pub fn line_item(item: &LineItem) -> v1::LineItem {
    v1::LineItem {
        kind: item.kind.clone(),
        description: item.description.clone(),
        quantity: item.quantity.normalize().to_string(),
        unit: item.unit.clone(),
        rate: item.rate.normalize().to_string(),
        amount: item.amount.normalize().to_string(),
    }
}

fn text_of(value: Option<Decimal>) -> String {
    value
        .map(|value| value.normalize().to_string())
        .unwrap_or_default()
}

fn modality_to_proto(modality: Modality) -> v1::Modality {
    match modality {
        Modality::Text => v1::Modality::Text,
        Modality::Image => v1::Modality::Image,
        Modality::Video => v1::Modality::Video,
        Modality::Audio => v1::Modality::Audio,
        Modality::Embedding => v1::Modality::Embedding,
        Modality::Multimodal => v1::Modality::Multimodal,
    }
}

/// Domain modality of a wire one; `None` for UNSPECIFIED.
pub fn modality(value: i32) -> Option<Modality> {
    match v1::Modality::try_from(value).ok()? {
        v1::Modality::Unspecified => None,
        v1::Modality::Text => Some(Modality::Text),
        v1::Modality::Image => Some(Modality::Image),
        v1::Modality::Video => Some(Modality::Video),
        v1::Modality::Audio => Some(Modality::Audio),
        v1::Modality::Embedding => Some(Modality::Embedding),
        v1::Modality::Multimodal => Some(Modality::Multimodal),
    }
}

/// A wire model.
pub fn model(model: &Model) -> v1::Model {
    let tokens = &model.tokens;
    v1::Model {
        model_id: model.id.clone(),
        display_name: model.display_name.clone(),
        modality: modality_to_proto(model.modality) as i32,
        token_rates: Some(v1::TokenRates {
            input_per_10k: text_of(tokens.input),
            output_per_10k: text_of(tokens.output),
            cached_read_per_10k: text_of(tokens.cached_read),
            reasoning_per_10k: text_of(tokens.reasoning),
        }),
        image_rates: model
            .images
            .iter()
            .map(|rate| v1::ImageRate {
                size: rate.size.clone(),
                quality: rate.quality.clone(),
                per_image: text_of(Some(rate.per_image)),
            })
            .collect(),
        per_megapixel: text_of(model.per_megapixel),
        video_rates: model
            .video
            .iter()
            .map(|rate| v1::VideoRate {
                resolution: resolution_to_proto(rate.resolution) as i32,
                per_second: text_of(Some(rate.per_second)),
            })
            .collect(),
        required_entitlement: model.required_entitlement.clone().unwrap_or_default(),
    }
}

/// A wire catalog.
pub fn catalog(catalog: &Catalog) -> v1::Catalog {
    let surcharges = &catalog.surcharges;
    v1::Catalog {
        version: u64::try_from(catalog.version).unwrap_or(0),
        effective_at: timestamp_opt(catalog.effective_at),
        created_at: timestamp_opt(catalog.created_at),
        description: catalog.description.clone(),
        models: catalog.models.iter().map(model).collect(),
        tools: catalog
            .tools
            .iter()
            .map(|tool| v1::Tool {
                tool_id: tool.id.clone(),
                fee_per_execution: text_of(Some(tool.fee_per_execution)),
                default_model: tool.default_model.clone().unwrap_or_default(),
                allowed_models: tool.allowed_models.clone(),
            })
            .collect(),
        surcharges: Some(v1::Surcharges {
            per_web_search: text_of(surcharges.per_web_search),
            per_tool_call: text_of(surcharges.per_tool_call),
            per_agent_step: text_of(surcharges.per_agent_step),
        }),
        multipliers: catalog
            .multipliers
            .iter()
            .map(|multiplier| v1::Multiplier {
                name: multiplier.name.clone(),
                factor: text_of(Some(multiplier.factor)),
            })
            .collect(),
    }
}

/// A domain catalog from the wire; rates must be plain decimal strings.
///
/// Decoded in a fixed order (models, tools, multipliers, then surcharges), which fixes which
/// refusal a publisher sees first when several apply.
pub fn catalog_from(catalog: &v1::Catalog) -> Result<Catalog, ServiceError> {
    let mut models = Vec::with_capacity(catalog.models.len());
    for wire in &catalog.models {
        models.push(model_from(wire)?);
    }
    let mut tools = Vec::with_capacity(catalog.tools.len());
    for wire in &catalog.tools {
        tools.push(tool_from(wire)?);
    }
    let surcharges = catalog.surcharges.clone().unwrap_or_default();
    let mut multipliers = Vec::with_capacity(catalog.multipliers.len());
    for wire in &catalog.multipliers {
        multipliers.push(Multiplier {
            name: wire.name.clone(),
            factor: required_rate("factor", &wire.factor)?,
        });
    }
    Ok(Catalog {
        version: 0,
        effective_at: None,
        created_at: None,
        description: catalog.description.clone(),
        models,
        tools,
        surcharges: surcharges_from(&surcharges)?,
        multipliers,
    })
}

/// A rate a catalog entry cannot do without; a bad one is an invalid amount.
fn required_rate(field: &str, text: &str) -> Result<Decimal, ServiceError> {
    decimal(field, text)
        .and_then(|value| value.ok_or_else(|| format!("{field} is required")))
        .map_err(bad_catalog_amount)
}

/// A rate the catalog may leave out (empty); a bad one is an invalid amount.
fn optional_rate(field: &str, text: &str) -> Result<Option<Decimal>, ServiceError> {
    decimal(field, text).map_err(bad_catalog_amount)
}

fn bad_catalog_amount(message: String) -> ServiceError {
    ServiceError::InvalidAmount {
        field: "catalog",
        message,
    }
}

fn model_from(wire: &v1::Model) -> Result<Model, ServiceError> {
    let rates = wire.token_rates.clone().unwrap_or_default();
    let mut images = Vec::new();
    for rate in &wire.image_rates {
        images.push(ImageRate {
            size: rate.size.clone(),
            quality: rate.quality.clone(),
            per_image: required_rate("per_image", &rate.per_image)?,
        });
    }
    let video = video_rates_from(wire)?;
    Ok(Model {
        id: wire.model_id.clone(),
        display_name: wire.display_name.clone(),
        modality: modality(wire.modality).unwrap_or_default(),
        tokens: TokenRates {
            input: optional_rate("input_per_10k", &rates.input_per_10k)?,
            output: optional_rate("output_per_10k", &rates.output_per_10k)?,
            cached_read: optional_rate("cached_read_per_10k", &rates.cached_read_per_10k)?,
            reasoning: optional_rate("reasoning_per_10k", &rates.reasoning_per_10k)?,
        },
        images,
        per_megapixel: optional_rate("per_megapixel", &wire.per_megapixel)?,
        video,
        required_entitlement: (!wire.required_entitlement.is_empty())
            .then(|| wire.required_entitlement.clone()),
    })
}

/// A model's video rates; each needs a resolution, as the rate is per second at one.
fn video_rates_from(wire: &v1::Model) -> Result<Vec<VideoRate>, ServiceError> {
    let mut video = Vec::new();
    for rate in &wire.video_rates {
        let resolution =
            resolution(rate.resolution)?.ok_or_else(|| ServiceError::InvalidArgument {
                field: "catalog",
                message: format!("model {}: video rate without a resolution", wire.model_id),
            })?;
        video.push(VideoRate {
            resolution,
            per_second: required_rate("per_second", &rate.per_second)?,
        });
    }
    Ok(video)
}

/// A tool; a fee left out is no fee.
fn tool_from(wire: &v1::Tool) -> Result<Tool, ServiceError> {
    Ok(Tool {
        id: wire.tool_id.clone(),
        fee_per_execution: optional_rate("fee_per_execution", &wire.fee_per_execution)?
            .unwrap_or_default(),
        default_model: (!wire.default_model.is_empty()).then(|| wire.default_model.clone()),
        allowed_models: wire.allowed_models.clone(),
    })
}

fn surcharges_from(wire: &v1::Surcharges) -> Result<Surcharges, ServiceError> {
    Ok(Surcharges {
        per_web_search: optional_rate("per_web_search", &wire.per_web_search)?,
        per_tool_call: optional_rate("per_tool_call", &wire.per_tool_call)?,
        per_agent_step: optional_rate("per_agent_step", &wire.per_agent_step)?,
    })
}
