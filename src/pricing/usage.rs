//! A run's usage, metered or estimated, bounded and checked at the edge.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Most tokens of one kind in one run.
pub const MAX_TOKENS: u64 = 1_000_000_000_000;
/// Most images, searches, tool calls or agent steps in one run.
pub const MAX_COUNT: u32 = 1_000_000;
/// Most image entries in one usage.
pub const MAX_IMAGE_ENTRIES: usize = 64;
/// Longest video, in seconds.
const MAX_VIDEO_SECONDS: Decimal = Decimal::from_parts(86_400, 0, 0, false, 0);
/// Largest image, in megapixels.
const MAX_MEGAPIXELS: Decimal = Decimal::from_parts(1_000, 0, 0, false, 0);
/// Most multipliers on one run.
const MAX_MULTIPLIERS: usize = 8;

/// Video resolution tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Resolution {
    /// 480p.
    #[serde(rename = "480p")]
    P480,
    /// 540p.
    #[serde(rename = "540p")]
    P540,
    /// 720p.
    #[serde(rename = "720p")]
    P720,
    /// 1080p.
    #[serde(rename = "1080p")]
    P1080,
    /// 4K.
    #[serde(rename = "4k")]
    K4,
}

impl Resolution {
    /// Its name in catalogs and line items.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::P480 => "480p",
            Resolution::P540 => "540p",
            Resolution::P720 => "720p",
            Resolution::P1080 => "1080p",
            Resolution::K4 => "4k",
        }
    }
}

/// Images of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageUsage {
    /// How many.
    pub count: u32,
    /// Size tier, e.g. `1024x1024`.
    pub size: Option<String>,
    /// Megapixels, for per-megapixel pricing.
    pub megapixels: Option<Decimal>,
    /// Quality tier.
    pub quality: Option<String>,
}

/// What a run used (or is expected to use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens read.
    pub cached_read_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Images.
    pub images: Vec<ImageUsage>,
    /// Seconds of video.
    pub video_seconds: Option<Decimal>,
    /// Their resolution.
    pub resolution: Option<Resolution>,
    /// Web searches.
    pub searches: u32,
    /// Tool calls.
    pub tool_calls: u32,
    /// Agent steps.
    pub agent_steps: u32,
    /// Names of multipliers to apply.
    pub multipliers: Vec<String>,
}

/// Why a usage is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Usage {
    /// Checks the bounds of every field.
    pub fn validate(&self) -> Result<(), UsageError> {
        for (name, tokens) in [
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
            ("cached_read_tokens", self.cached_read_tokens),
            ("reasoning_tokens", self.reasoning_tokens),
        ] {
            if tokens > MAX_TOKENS {
                return Err(UsageError(format!("{name} {tokens} is above {MAX_TOKENS}")));
            }
        }
        for (name, count) in [
            ("searches", self.searches),
            ("tool_calls", self.tool_calls),
            ("agent_steps", self.agent_steps),
        ] {
            if count > MAX_COUNT {
                return Err(UsageError(format!("{name} {count} is above {MAX_COUNT}")));
            }
        }
        if self.images.len() > MAX_IMAGE_ENTRIES {
            return Err(UsageError(format!(
                "at most {MAX_IMAGE_ENTRIES} image entries"
            )));
        }
        for image in &self.images {
            if image.count > MAX_COUNT {
                return Err(UsageError(format!(
                    "image count {} is above {MAX_COUNT}",
                    image.count
                )));
            }
            if image.megapixels.is_some_and(|megapixels| {
                megapixels <= Decimal::ZERO || megapixels > MAX_MEGAPIXELS
            }) {
                return Err(UsageError(format!(
                    "image megapixels must be above 0 and at most {MAX_MEGAPIXELS}"
                )));
            }
            if image.size.is_none() && image.megapixels.is_none() {
                return Err(UsageError(
                    "each image entry needs a size or megapixels".to_owned(),
                ));
            }
        }
        if let Some(seconds) = self.video_seconds {
            if seconds < Decimal::ZERO || seconds > MAX_VIDEO_SECONDS {
                return Err(UsageError(format!(
                    "video_seconds must be between 0 and {MAX_VIDEO_SECONDS}"
                )));
            }
            if seconds > Decimal::ZERO && self.resolution.is_none() {
                return Err(UsageError("video_seconds needs a resolution".to_owned()));
            }
        }
        if self.multipliers.len() > MAX_MULTIPLIERS {
            return Err(UsageError(format!("at most {MAX_MULTIPLIERS} multipliers")));
        }
        for (index, name) in self.multipliers.iter().enumerate() {
            if self.multipliers[..index].contains(name) {
                return Err(UsageError(format!("multiplier {name:?} is listed twice")));
            }
        }
        Ok(())
    }
}
