//! A line item: one priced unit of a run. Pricing makes them; settlements keep them beside the
//! amounts they explain, so they sit below both.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One priced unit of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    /// What, e.g. `input_tokens`, `image`, `video`, `web_search`, `tool_execution`, `multiplier`.
    pub kind: String,
    /// For people, e.g. `openai/o3-pro input tokens`.
    pub description: String,
    /// How many units.
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    /// The unit, e.g. `10k tokens`, `image`, `second`.
    pub unit: String,
    /// Credits per unit.
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    /// quantity × rate, exact.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}
