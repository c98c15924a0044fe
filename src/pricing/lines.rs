//! The line items of a run, one kind at a time: tool fee, the model's tokens, images and video,
//! surcharges, then multipliers. Each item is exact (quantity × rate); only the total is
//! rounded, once.

use rust_decimal::Decimal;

use super::catalog::{ImageRate, Model, Multiplier, Surcharges, Tool};
use super::price::PricingError;
use super::usage::{ImageUsage, Usage};
use crate::money::{Credits, LineItem};

/// Tokens per token rate unit.
const TOKENS_PER_RATE_UNIT: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

/// The line items priced so far, in the order they were added.
#[derive(Default)]
pub(super) struct Lines {
    pub(super) items: Vec<LineItem>,
}

fn unpriced(model: &Model, what: &str) -> PricingError {
    PricingError::InvalidUsage(format!("model {} has no rate for {what}", model.id))
}

fn invalid(message: &str) -> PricingError {
    PricingError::InvalidUsage(message.to_owned())
}

impl Lines {
    /// Adds `quantity` × `rate`; nothing used means no line, so a quote lists only what costs.
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

    /// The tool's flat fee, charged once per run.
    pub(super) fn add_tool_fee(&mut self, tool: &Tool) {
        self.add(
            "tool_execution",
            format!("{} execution", tool.id),
            Decimal::ONE,
            "execution",
            tool.fee_per_execution,
        );
    }

    /// Everything the model prices: tokens, then images, then video.
    pub(super) fn add_model_usage(
        &mut self,
        model: &Model,
        usage: &Usage,
    ) -> Result<(), PricingError> {
        self.add_tokens(model, usage)?;
        for image in &usage.images {
            self.add_image(model, image)?;
        }
        self.add_video(model, usage)
    }

    fn add_tokens(&mut self, model: &Model, usage: &Usage) -> Result<(), PricingError> {
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
                let description = format!("{} {what}", model.id);
                self.add(kind, description, quantity, "10k tokens", rate);
            }
        }
        Ok(())
    }

    /// One image entry: at its listed tier if the model has one, else per megapixel.
    fn add_image(&mut self, model: &Model, image: &ImageUsage) -> Result<(), PricingError> {
        match (
            image_tier(model, image),
            image.megapixels,
            model.per_megapixel,
        ) {
            (Some(rate), _, _) => {
                let description = format!("{} image {} {}", model.id, rate.size, rate.quality);
                let quantity = Decimal::from(image.count);
                self.add("image", description, quantity, "image", rate.per_image);
            }
            (None, Some(megapixels), Some(rate)) => {
                let description =
                    format!("{} image {} megapixels", model.id, megapixels.normalize());
                let quantity = Decimal::from(image.count) * megapixels;
                self.add("image", description, quantity, "megapixel", rate);
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
        Ok(())
    }

    fn add_video(&mut self, model: &Model, usage: &Usage) -> Result<(), PricingError> {
        let Some(seconds) = usage.video_seconds.filter(|seconds| !seconds.is_zero()) else {
            return Ok(());
        };
        let resolution = usage
            .resolution
            .ok_or_else(|| invalid("video_seconds needs a resolution"))?;
        let rate = model
            .video
            .iter()
            .find(|rate| rate.resolution == resolution)
            .ok_or_else(|| unpriced(model, &format!("{} video", resolution.as_str())))?;
        let description = format!("{} video {}", model.id, resolution.as_str());
        self.add("video", description, seconds, "second", rate.per_second);
        Ok(())
    }

    /// Web searches, tool calls and agent steps; a count the catalog has no price for is
    /// refused rather than given away.
    pub(super) fn add_surcharges(
        &mut self,
        surcharges: &Surcharges,
        usage: &Usage,
    ) -> Result<(), PricingError> {
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
                let description = format!("{kind} surcharge");
                self.add(kind, description, Decimal::from(count), unit, rate);
            }
        }
        Ok(())
    }

    /// The sum before multipliers. Never a free run by accident: something must cost (a tool's
    /// fee counts).
    pub(super) fn billable_subtotal(&self) -> Result<Decimal, PricingError> {
        let subtotal: Decimal = self.items.iter().map(|item| item.amount).sum();
        if subtotal.is_zero() {
            return Err(invalid(
                "the run prices at 0 credits: the usage is empty or nothing in it is billable",
            ));
        }
        Ok(subtotal)
    }

    /// The named multipliers, in the order given. They compound: each applies to the subtotal
    /// after the ones before it, as its own line of the adjustment (factor − 1).
    pub(super) fn add_multipliers(
        &mut self,
        catalog: &[Multiplier],
        names: &[String],
        subtotal: Decimal,
    ) -> Result<(), PricingError> {
        let mut running = subtotal;
        for name in names {
            let multiplier = catalog
                .iter()
                .find(|multiplier| &multiplier.name == name)
                .ok_or_else(|| {
                    PricingError::InvalidUsage(format!("unknown multiplier {name:?}"))
                })?;
            running = self.add_multiplier(name, multiplier.factor, running)?;
        }
        Ok(())
    }

    /// Adds one multiplier's adjustment of `running` and returns the new running subtotal; a
    /// factor of 1 adds no line.
    fn add_multiplier(
        &mut self,
        name: &str,
        factor: Decimal,
        running: Decimal,
    ) -> Result<Decimal, PricingError> {
        let adjustment = factor - Decimal::ONE;
        if adjustment.is_zero() {
            return Ok(running);
        }
        let too_large = || invalid("the multipliers make the run too large to price");
        // Checked first: the line item's amount is this product, computed unchecked.
        running.checked_mul(adjustment).ok_or_else(too_large)?;
        let description = format!("{name} × {}", factor.normalize());
        self.add("multiplier", description, running, "credits", adjustment);
        running.checked_mul(factor).ok_or_else(too_large)
    }

    /// The exact sum of the line items, rounded once, half to even, to 9 places (never below 0).
    pub(super) fn rounded_total(&self) -> Result<Credits, PricingError> {
        let exact = self
            .items
            .iter()
            .try_fold(Decimal::ZERO, |sum, item| sum.checked_add(item.amount))
            .ok_or_else(|| invalid("the run is too large to price"))?;
        Ok(Credits::round_half_even(exact.max(Decimal::ZERO)))
    }
}

/// The model's listed tier for the image's size (and quality, when given): the first that
/// matches, so an image without a quality takes the first tier listed for its size.
fn image_tier<'m>(model: &'m Model, image: &ImageUsage) -> Option<&'m ImageRate> {
    let size = image.size.as_deref()?;
    model.images.iter().find(|rate| {
        rate.size == size
            && image
                .quality
                .as_deref()
                .is_none_or(|quality| rate.quality == quality)
    })
}
