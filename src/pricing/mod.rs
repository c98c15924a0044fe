//! Pricing, pure: the catalog (models, tools, surcharges, multipliers) and the pricing of a
//! usage estimate into exact line items and a total rounded once, half-even, to 9 places.
//! No I/O; knows nothing of proto or SQL.

mod catalog;
mod lines;
mod price;
pub mod quote_token;
mod usage;
mod validate;

pub use catalog::{
    Catalog, ImageRate, Modality, Model, Multiplier, Surcharges, TokenRates, Tool, VideoRate,
};
pub use price::{Priced, PricingError, price};
pub use usage::{ImageUsage, Resolution, Usage, UsageError};
pub use validate::CatalogError;

#[cfg(test)]
pub(crate) mod hostile;
#[cfg(test)]
mod tests;
